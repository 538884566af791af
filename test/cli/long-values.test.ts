// A pasted 100 kB value must not come back whole: every error that echoes user input keeps the
// value's start, says its length, and stays one short line that still names the file and key.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { clipLongValues } from '../../src/errors.js';

const HUGE = 'v' + '1'.repeat(99_999);

function assertShort(t: Test, r: { code: number; stderr: string; stdout: string }, what: string, ...names: (string | RegExp)[]): void {
  t.equal(r.code, 2, `${what}: exit 2`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
  t.ok(r.stderr.length < 600, `${what}: stderr is short (${r.stderr.length} characters): ${r.stderr.slice(0, 300)}`);
  t.equal(r.stderr.trimEnd().split('\n').length, 1, `${what}: one line`);
  t.match(r.stderr, /v1{30,}…"? \(1000\d\d characters\)/, `${what}: the value's start and its length`);
  for (const n of names) t.match(r.stderr, n, `${what}: names ${String(n)}`);
}

t.test('config file, environment, flags and Dockerfile errors cut a 100 kB value', async (t) => {
  const dir = t.testdir({});
  const env = { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'docker') };
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { version: HUGE } }));
  assertShort(t, await runCli(['plan'], { cwd: dir, env }), 'config file', join(dir, '.buildx-bootstraprc.json'), 'buildkit.version');

  const clean = t.testdir({ Dockerfile: `FROM scratch AS ${HUGE}!\n` });
  assertShort(t, await runCli(['plan'], { cwd: clean, env: { ...env, BUILDX_BOOTSTRAP_VERSION: HUGE } }), 'environment', 'environment', 'buildkit.version');
  assertShort(t, await runCli(['plan', '--buildkit-version', HUGE], { cwd: clean, env }), 'flag value', 'flags', 'buildkit.version');
  assertShort(t, await runCli(['plan', '--driver-opt', HUGE], { cwd: clean, env }), 'args', '--driver-opt');
  assertShort(t, await runCli([`--${HUGE}`], { cwd: clean, env }), 'unknown option', 'unknown option');
  assertShort(t, await runCli(['--', 'docker', 'buildx', 'build', '.'], { cwd: clean, env }), 'Dockerfile', join(clean, 'Dockerfile:1'), 'build stage');
});

t.test('clipLongValues: short values and paths stay, escapes are counted unescaped', async (t) => {
  t.equal(clipLongValues('mirrors[0].host: "harbor.corp" is not valid'), 'mirrors[0].host: "harbor.corp" is not valid');
  const path = `/builds/${'group/'.repeat(30)}.buildx-bootstraprc.yaml`;
  t.equal(clipLongValues(`${path}: buildkit.version: "x"`), `${path}: buildkit.version: "x"`, 'a long path is not a long value');
  t.equal(clipLongValues(`bad ${JSON.stringify('\n'.repeat(200))}`), `bad "${'\\n'.repeat(20)}…" (200 characters)`);
  t.equal(clipLongValues(`bad "${'a b"'.repeat(2000)}`).length < 4200, true, 'stray quotes and spaces: the whole is capped');
});
