// Shared runners on the REAL engines (issue 10): real buildx drives real BuildKit containers on a
// private dockerd while real builds (a long `RUN`, ended by the test) run on them. Another configuration gets its
// own builder and leaves the busy one alone; rm --stale keeps a busy and a recent builder; a
// drifted, explicitly named, busy builder is recreated only once its build has ended (a short
// timeouts.drain gives up naming the build) — and every build finishes successfully.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, realWorld, requireSetup, lastLine, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { requireBinaries } from '../helpers/integration.js';
import { endLongRun, writeLongRunContext } from '../helpers/long-run.js';

t.setTimeout(1_200_000);
const engines = requireEngines(t);

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}` : ''}`);
}

/** A context whose RUN lasts until the test ends it (test/helpers/long-run.ts). */
function longBuildContext(w: RealWorld): { dir: string; marker: string } {
  const dir = w.project({});
  return { dir, marker: writeLongRunContext(dir) };
}

/** Starts `docker buildx build` (real buildx) on `builder`; resolves with its result when it ends. */
function startBuild(w: RealWorld, builder: string, context: string, cacheBust: string) {
  return w.docker(['buildx', 'build', '--builder', builder, '--progress', 'plain', '--no-cache', '--build-arg', `BUST=${cacheBust}`, context], { timeoutMs: 300_000 });
}

/**
 * The ref of the build started with `--build-arg BUST=<bust>` while BuildKit in the builder's
 * container reports it running (no CompletedAt), read from `buildctl debug histories` JSON right
 * here — not through src/docker/history.ts, whose reading is what the product's answers rest on.
 */
async function runningBuild(w: RealWorld, builder: string, bust: string): Promise<string | undefined> {
  const r = await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'buildctl', 'debug', 'histories', '--format', '{{json .}}']);
  if (r.code !== 0) return undefined;
  for (const line of r.stdout.split('\n').filter((l) => l.trim())) {
    const record = (JSON.parse(line) as { record?: { Ref?: string; CompletedAt?: string; FrontendAttrs?: Record<string, string> } }).record;
    if (record?.Ref && record.CompletedAt === undefined && record.FrontendAttrs?.['build-arg:BUST'] === bust) return record.Ref;
  }
  return undefined;
}

/** Waits (bounded) until that build runs; returns its ref. */
async function waitForActiveBuild(w: RealWorld, builder: string, bust: string): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const ref = await runningBuild(w, builder, bust);
    if (ref) return ref;
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
    // A's build lasts until the test ends it after rm --stale (two builders come up meanwhile on a
    // busy machine); it is checked to be running right before and after rm --stale.
    const longContext = longBuildContext(w);
    const context = longBuildContext(w);

    // Config A, default name; a long build runs on it.
    const a = await runCli([], { cwd: w.project(base), env: w.env });
    ok(t, a, 'config A');
    const nameA = a.stdout.trim();
    t.match(nameA, /^buildx-bootstrap-[0-9a-f]{8}$/);
    const idA = await containerId(w, nameA);
    const longA = startBuild(w, nameA, longContext.dir, 'a');
    const refA = await waitForActiveBuild(w, nameA, 'a');

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
    t.equal(await runningBuild(w, nameA, 'a'), refA, "A's build still runs right before rm --stale");
    const stale = await runCli(['rm', '--stale', '--json'], { cwd: w.project({}), env: w.env });
    ok(t, stale, 'rm --stale');
    t.equal(await runningBuild(w, nameA, 'a'), refA, 'and right after');
    const result = JSON.parse(stale.stdout) as { removed: string[]; kept: { name: string; reason: string }[] };
    t.same(result.removed, [nameB], 'the idle old builder is removed');
    t.match(result.kept.find((k) => k.name === nameA)?.reason, new RegExp(`build\\(s\\) running: ${refA}`), 'the busy one is kept because BuildKit reports its build');
    t.ok(result.kept.some((k) => k.name === 'shared'), 'the recent one is kept');

    t.equal(endLongRun(longContext.marker), 1, "the test ends A's long RUN: one process carried its marker");
    const doneA = await longA;
    t.equal(doneA.code, 0, `the long build on A finished successfully${doneA.code ? `: ${doneA.stderr.trim().split('\n').pop()}` : ''}`);

    // Explicit name, drifted, busy: a short drain gives up naming the build; the build goes on.
    const longShared = startBuild(w, 'shared', context.dir, 'shared');
    const refShared = await waitForActiveBuild(w, 'shared', 'shared');
    const idShared = await containerId(w, 'shared');
    const drifted = w.project({ ...base, builder: { name: 'shared' }, buildkitd: { flags: ['--debug'] } });
    const gaveUp = await runCli(['--drain-timeout', '1s'], { cwd: drifted, env: w.env });
    t.equal(gaveUp.code, 1, 'a short drain exits 1');
    t.match(gaveUp.stderr, new RegExp(`builder shared must be recreated .* still run on it after 1s: ${refShared}`), 'naming the builder and the running build');
    t.equal(await containerId(w, 'shared'), idShared, 'the builder was left alone');

    // Again with room to wait: it waits for the build, then recreates. The build is ended once the
    // run says it waits for it, and not before.
    let ended = -1;
    const waited = await runCli(['--drain-timeout', '5m'], {
      cwd: drifted,
      env: w.env,
      onStderr: (text) => {
        if (ended < 0 && text.includes('waiting for 1 build(s) on builder shared')) ended = endLongRun(context.marker);
      },
    });
    t.equal(ended, 1, 'the build was ended by the test once the run waited for it');
    const doneShared = await longShared;
    ok(t, waited, 'create with a drain long enough');
    t.match(waited.stderr, new RegExp(`waiting for 1 build\\(s\\) on builder shared to finish before recreating it .*: ${refShared}`), 'progress names the build');
    t.equal(doneShared.code, 0, `the build on the drifted builder finished successfully${doneShared.code ? `: ${doneShared.stderr.trim().split('\n').pop()}` : ''}`);
    t.not(await containerId(w, 'shared'), idShared, 'then the builder was recreated');
    const args = await w.dockerd.docker(['inspect', '--format', '{{json .Args}}', 'buildx_buildkit_shared0']);
    t.match(args.stdout, '--debug', 'with the new configuration');
  });
}
