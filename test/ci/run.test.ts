// .ci/run's verdict, with everything it calls stubbed (apt-get, sudo, the engine build, npm): the
// lines it ends with and its exit code follow tap's summary line and the fuzz run, and a test run
// that printed no summary is a failure even when it exited 0.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../.ci/run', import.meta.url));

interface Outcome {
  /** What `npm test` prints, and its exit code. */
  testOutput: string;
  testCode: number;
  fuzzCode: number;
}

function script(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

function runCi(t: Test, o: Outcome): { code: number | null; lines: string[] } {
  const dir = t.testdir();
  mkdirSync(join(dir, '.ci'));
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(RUN, join(dir, '.ci', 'run'));
  script(join(dir, 'scripts', 'build-test-engines.sh'), 'exit 0');
  script(join(dir, 'bin', 'apt-get'), 'exit 0');
  script(join(dir, 'bin', 'sudo'), 'exec "$@"');
  writeFileSync(join(dir, 'test-output.txt'), o.testOutput);
  script(
    join(dir, 'bin', 'npm'),
    [
      'case "$1 $2" in',
      `  "test "*) cat "${join(dir, 'test-output.txt')}"; exit ${o.testCode} ;;`,
      `  "run fuzz") echo "fuzz dockerfile: …"; exit ${o.fuzzCode} ;;`,
      '  *) exit 0 ;;',
      'esac',
    ].join('\n'),
  );
  const r = spawnSync('bash', [join(dir, '.ci', 'run')], { encoding: 'utf8', env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, HOME: dir }, timeout: 30_000 });
  return { code: r.status, lines: r.stdout.trim().split('\n').slice(-2) };
}

const SUMMARY = '# { total: 5, pass: 4, fail: 0, skip: 1 }\n';

t.test('tests and fuzzing pass: exit 0, each verdict on its own line', async (t) => {
  const r = runCi(t, { testOutput: `ok 1 - a\n${SUMMARY}`, testCode: 0, fuzzCode: 0 });
  t.same(r, { code: 0, lines: ['tests: 4 passed, 0 failed', 'fuzz: passed'] });
});

t.test('a test run that exits 0 without a tap summary line fails the run', async (t) => {
  const r = runCi(t, { testOutput: 'ok 1 - a\n', testCode: 0, fuzzCode: 0 });
  t.not(r.code, 0, 'non-zero exit');
  t.same(r.lines, ['tests: no summary line from tap (exit 0): counted as failed', 'fuzz: passed']);
});

t.test('failing tests, and a failing fuzz run, each fail the run on their own line', async (t) => {
  const failing = runCi(t, { testOutput: '# { total: 3, pass: 1, fail: 2 }\n', testCode: 1, fuzzCode: 0 });
  t.same(failing, { code: 1, lines: ['tests: 1 passed, 2 failed', 'fuzz: passed'] });
  const fuzz = runCi(t, { testOutput: SUMMARY, testCode: 0, fuzzCode: 1 });
  t.same(fuzz, { code: 1, lines: ['tests: 4 passed, 0 failed', 'fuzz: failed'] });
});
