import t from 'tap';
import { runCli } from '../helpers/cli.js';
import { VERSION } from '../../src/version.js';
import { parseArgs } from '../../src/cli/args.js';

t.test('--version prints the version alone on stdout', async (t) => {
  const r = await runCli(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout, `${VERSION}\n`);
  t.equal(r.stderr, '');
});

t.test('--help lists every command and the exit codes', async (t) => {
  const r = await runCli(['--help']);
  t.equal(r.code, 0);
  for (const c of ['resolve', 'lock', 'plan', 'doctor', 'rm', 'init', '-- <command…>']) t.match(r.stdout, c);
  t.match(r.stdout, /4 lockfile mismatch/);
});

t.test('usage errors are one line with a hint and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--frobnicate'], /^buildx-bootstrap: unknown option --frobnicate — run buildx-bootstrap --help/],
    [['launch'], /^buildx-bootstrap: unknown command "launch" — commands: create, resolve/],
    [['--name'], /^buildx-bootstrap: option --name needs a value — write --name NAME/],
    [['--'], /^buildx-bootstrap: nothing to run after --/],
    [['resolve', '--', 'true'], /^buildx-bootstrap: -- <command> cannot follow "resolve"/],
    [['--json=1'], /option --json takes no value/],
    [['--driver-opt', 'network'], /invalid --driver-opt "network" — use --driver-opt key=value/],
  ];
  for (const [argv, re] of cases) {
    const r = await runCli(argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.stderr, re, argv.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '');
  }
});

t.test('rm --stale / --older-than / --drain-timeout', async (t) => {
  t.match(parseArgs(['rm', '--stale', '--older-than', '3d']), { command: 'rm', stale: true, olderThan: '3d' });
  t.match(parseArgs(['--drain-timeout', '30s']), { flags: { timeouts: { drain: '30s' } } });
  t.throws(() => parseArgs(['create', '--stale']), /--stale only applies to rm/);
  t.throws(() => parseArgs(['rm', '--older-than', '3d']), /--older-than only applies to rm --stale/);
});

t.test('mirror: IMAGE arguments, --to and --dry-run; those flags belong to mirror only', async (t) => {
  const { parseArgs } = await import('../../src/cli/args.js');
  const a = parseArgs(['mirror', 'docker:27-cli', '--to', 'harbor.corp/hub', 'alpine@sha256:' + 'a'.repeat(64), '--dry-run']);
  t.match(a, { command: 'mirror', images: ['docker:27-cli', `alpine@sha256:${'a'.repeat(64)}`], to: 'harbor.corp/hub', dryRun: true });
  for (const argv of [['resolve', '--to', 'x'], ['--dry-run'], ['lock', 'docker:27-cli']]) {
    const r = await runCli(argv);
    t.equal(r.code, 2, argv.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  t.match((await runCli(['--help'])).stdout, /mirror \[--to HOST\[\/PATH\]\] \[--dry-run\] \[--json\] \[IMAGE…\]/);
});
