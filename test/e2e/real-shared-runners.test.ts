// Shared runners on the REAL engines (issue 10): real buildx drives real BuildKit containers on a
// private dockerd while real builds (`RUN sleep 20`) run on them. Another configuration gets its
// own builder and leaves the busy one alone; rm --stale keeps a busy and a recent builder; a
// drifted, explicitly named, busy builder is recreated only once its build has ended (a short
// timeouts.drain gives up naming the build) — and every build finishes successfully.
import t, { type Test } from 'tap';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHistoriesJson } from '../../src/docker/history.js';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, realWorld, requireSetup, lastLine, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { requireBinaries } from '../helpers/integration.js';

t.setTimeout(1_200_000);
const engines = requireEngines(t);

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}` : ''}`);
}

/** A context whose build needs no image: busybox-static copied in, then a long RUN. */
function longBuildContext(w: RealWorld, seconds: number): string {
  const dir = w.project({});
  copyFileSync('/bin/busybox', join(dir, 'busybox'));
  writeFileSync(join(dir, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', `RUN ["/bin/busybox", "sleep", "${seconds}"]`, ''].join('\n'));
  return dir;
}

/** Starts `docker buildx build` (real buildx) on `builder`; resolves with its result when it ends. */
function startBuild(w: RealWorld, builder: string, context: string, cacheBust: string) {
  return w.docker(['buildx', 'build', '--builder', builder, '--progress', 'plain', '--no-cache', '--build-arg', `BUST=${cacheBust}`, context], { timeoutMs: 300_000 });
}

/** Waits (bounded) until BuildKit in the builder's container reports a running build; returns its ref. */
async function waitForActiveBuild(w: RealWorld, builder: string): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const r = await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'buildctl', 'debug', 'histories', '--format', '{{json .}}']);
    const active = r.code === 0 ? parseHistoriesJson(r.stdout) : [];
    if (active[0]) return active[0].ref;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`no build became active on ${builder}`);
}

async function containerId(w: RealWorld, builder: string): Promise<string> {
  return (await w.dockerd.docker(['inspect', '--format', '{{.Id}}', `buildx_buildkit_${builder}0`])).stdout.trim();
}

function setLastActivity(w: RealWorld, builder: string, when: Date): void {
  writeFileSync(join(w.buildx.dockerConfig, 'buildx', 'activity', builder), when.toISOString().replace(/\.\d+Z$/, 'Z'));
}

for (const pair of engines ? daemonMatrix(engines) : []) {
  t.test(`${pair.label}: builds are never pulled out from under`, async (t) => {
    if (!requireBinaries(t, ['busybox']) || !requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const base = { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version }, mirrors: [{ host: w.mirror.host, for: w.upstream.host }] };
    const context = longBuildContext(w, 20);

    // Config A, default name; a long build runs on it.
    const a = await runCli([], { cwd: w.project(base), env: w.env });
    ok(t, a, 'config A');
    const nameA = a.stdout.trim();
    t.match(nameA, /^buildx-bootstrap-[0-9a-f]{8}$/);
    const idA = await containerId(w, nameA);
    const longA = startBuild(w, nameA, context, 'a');
    const refA = await waitForActiveBuild(w, nameA);

    // Config B on the same daemon meanwhile: its own builder, A untouched.
    const b = await runCli([], { cwd: w.project({ ...base, buildkitd: { flags: ['--debug'] } }), env: w.env });
    ok(t, b, 'config B while A builds');
    const nameB = b.stdout.trim();
    t.not(nameB, nameA, 'B has a builder of its own');
    t.equal(await containerId(w, nameA), idA, "A's BuildKit container is the same one");

    // An explicitly named builder, used just now.
    const shared = w.project({ ...base, builder: { name: 'shared' } });
    ok(t, await runCli([], { cwd: shared, env: w.env }), 'explicitly named builder');

    // rm --stale with A and B unused for ten days by the record: B goes, busy A and recent shared stay.
    const old = new Date(Date.now() - 10 * 86_400_000);
    setLastActivity(w, nameA, old);
    setLastActivity(w, nameB, old);
    const stale = await runCli(['rm', '--stale', '--json'], { cwd: w.project({}), env: w.env });
    ok(t, stale, 'rm --stale');
    const result = JSON.parse(stale.stdout) as { removed: string[]; kept: { name: string; reason: string }[] };
    t.same(result.removed, [nameB], 'the idle old builder is removed');
    t.match(result.kept.find((k) => k.name === nameA)?.reason, new RegExp(`build\\(s\\) running: ${refA}`), 'the busy one is kept because BuildKit reports its build');
    t.ok(result.kept.some((k) => k.name === 'shared'), 'the recent one is kept');

    const doneA = await longA;
    t.equal(doneA.code, 0, `the long build on A finished successfully${doneA.code ? `: ${doneA.stderr.trim().split('\n').pop()}` : ''}`);

    // Explicit name, drifted, busy: a short drain gives up naming the build; the build goes on.
    const longShared = startBuild(w, 'shared', context, 'shared');
    const refShared = await waitForActiveBuild(w, 'shared');
    const idShared = await containerId(w, 'shared');
    const drifted = w.project({ ...base, builder: { name: 'shared' }, buildkitd: { flags: ['--debug'] } });
    const gaveUp = await runCli(['--drain-timeout', '1s'], { cwd: drifted, env: w.env });
    t.equal(gaveUp.code, 1, 'a short drain exits 1');
    t.match(gaveUp.stderr, new RegExp(`builder shared must be recreated .* still run on it after 1s: ${refShared}`), 'naming the builder and the running build');
    t.equal(await containerId(w, 'shared'), idShared, 'the builder was left alone');

    // Again with room to wait: it waits for the build, then recreates.
    const waited = await runCli(['--drain-timeout', '5m'], { cwd: drifted, env: w.env });
    const doneShared = await longShared;
    ok(t, waited, 'create with a drain long enough');
    t.match(waited.stderr, new RegExp(`waiting for 1 build\\(s\\) on builder shared to finish before recreating it .*: ${refShared}`), 'progress names the build');
    t.equal(doneShared.code, 0, `the build on the drifted builder finished successfully${doneShared.code ? `: ${doneShared.stderr.trim().split('\n').pop()}` : ''}`);
    t.not(await containerId(w, 'shared'), idShared, 'then the builder was recreated');
    const args = await w.dockerd.docker(['inspect', '--format', '{{json .Args}}', 'buildx_buildkit_shared0']);
    t.match(args.stdout, '--debug', 'with the new configuration');
  });
}
