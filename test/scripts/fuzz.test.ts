// scripts/fuzz.mjs's verdict on its own workers: a worker that exits non-zero, ends without its
// `done` report, or ran no input has not fuzzed, and the run must fail naming that; a worker that
// fuzzed cleanly passes. The targets come from BXB_FUZZ_TARGETS (the test-only seam), so the real
// harness (esbuild bundle, worker thread, coverage loop) runs unchanged.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FUZZ = fileURLToPath(new URL('../../scripts/fuzz.mjs', import.meta.url));

/** One target; `run` and `seeds` are JavaScript function bodies. */
function targets(t: Test, seeds: string, run: string): string {
  const file = join(t.testdir(), 'targets.mjs');
  writeFileSync(
    file,
    `export const targets = { t: { seeds: () => ${seeds}, dictionary: ['a', 'b'], run(input) { ${run} } } };\n`,
  );
  return file;
}

function fuzz(file: string, seconds: number): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FUZZ, 't', String(seconds)], {
    encoding: 'utf8',
    env: { ...process.env, BXB_FUZZ_TARGETS: file },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('a worker that fuzzed and ended cleanly passes, with its summary', async (t) => {
  const r = fuzz(targets(t, "['ab', 'ba']", 'if (input.length > 1e6) throw new Error("never");'), 1);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^fuzz t: [1-9]\d* inputs in 1 s, corpus \d+ \(from 2 seeds\), \d+ coverage points, 0 failing input\(s\), 0 distinct$/m);
  t.equal(r.stderr.trim(), '');
});

t.test("a worker's non-zero exit code fails the run", async (t) => {
  const r = fuzz(targets(t, "['ab']", 'process.exit(3);'), 1);
  t.equal(r.code, 1);
  t.match(r.stderr, /^fuzz t: worker exited with code 3$/m);
});

t.test('a worker that ends without its done report fails the run', async (t) => {
  const r = fuzz(targets(t, "['ab']", 'process.exit(0);'), 1);
  t.equal(r.code, 1);
  t.match(r.stderr, /^fuzz t: worker ended without reporting its results$/m);
  t.notMatch(r.stdout, /inputs in/, 'no summary is printed for a worker that gave none');
});

t.test('a worker that ran no input fails the run', async (t) => {
  // No seeds and no time: the worker reports done with zero executions.
  const r = fuzz(targets(t, '[]', ''), 0);
  t.equal(r.code, 1);
  t.match(r.stderr, /^fuzz t: worker ran no inputs$/m);
  t.match(r.stdout, /^fuzz t: 0 inputs in 0 s/m);
});

