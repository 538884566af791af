// Where a prefixed build's result lands on Docker 29's containerd image store (a fresh
// `docker:29-dind`), REAL engines (the newest pair, where daemonMatrix puts that daemon): the
// docker exporter takes manifest lists there, so a tagged build of several platforms, or with
// attestations, and no output is loaded like any other (issue 18) — where the classic store
// refuses it before the build (test/e2e/real-load.test.ts).
import t, { type Test } from 'tap';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, realWorld, requireSetup, lastLine } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const setup of engines ? daemonMatrix(engines).filter((s) => s.daemon === 'dockerd-29-containerd') : []) {
  t.test(`${setup.label}: a tagged multi-platform or attested build without an output is loaded`, async (t) => {
    if (!requireSetup(t, setup)) return;
    const w = await realWorld(t, setup);
    const dir = w.project({
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: setup.kit.version },
      builder: { name: 'pinned', driverOpts: { network: 'host' } },
    }, { Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY one.txt /one.txt\n', 'one.txt': 'one\n' });
    copyFileSync('/bin/busybox', join(dir, 'busybox'));
    const cli = (args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, env: w.env });
    const run = async (image: string, args: string[]): Promise<string> => {
      const r = await w.dockerd.docker(['run', '--rm', '--network', 'none', image, ...args]);
      return r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr.trim()}`;
    };

    const two = ['docker', 'buildx', 'build', '-t', 'multi:1', '--platform', 'linux/amd64,linux/386', '.'];
    const planned = await cli(['plan', '--json', '--', ...two]);
    ok(t, planned, 'plan (not refused: the containerd store loads manifest lists)');
    const plan = JSON.parse(planned.stdout || '{"command":{"argv":[]}}') as { command: { argv: string[] } };
    t.same(plan.command.argv, ['docker', 'buildx', 'build', '--builder', 'pinned', '--load', '-t', 'multi:1', '--platform', 'linux/amd64,linux/386', '.'], 'the command carries --load');
    ok(t, await cli(['--', ...two]), 'two platforms, tagged, no output');
    t.equal(await run('multi:1', ['/bin/busybox', 'cat', '/one.txt']), 'one\n', 'loaded: docker run multi:1 works');
    const platforms = await w.dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'multi:1']);
    t.equal(platforms.code, 0, 'in the local store');

    ok(t, await cli(['--', 'docker', 'buildx', 'build', '-t', 'prov:1', '--provenance=true', '.']), 'attested, tagged, no output');
    t.equal(await run('prov:1', ['/bin/busybox', 'cat', '/one.txt']), 'one\n', 'loaded with its attestation');
  });
}
