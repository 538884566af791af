// Faults that must not cost the next job (issue 21), on the REAL engines: an unreadable engine tar
// in cache.dir is loaded once and replaced after the pull (and named first when no registry can
// serve); a full file system (a small tmpfs) never fails a job whose builder comes up, and `lock`
// onto one exits 1 leaving the old lockfile whole; a prefixed build started while another
// configuration's run sits between its drain check and its `buildx rm` (held there by the test
// hook) completes.
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { processTag } from '../../src/owned-temp.js';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseHistoriesJson } from '../../src/docker/history.js';
import { requireEngines, type RealBuildx } from '../helpers/engines.js';
import { daemonMatrix, freshJob, realWorld, requireSetup, lastLine, tempDir, worldConfig, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { until } from '../helpers/bin.js';
import { requireBinaries, requireCondition } from '../helpers/integration.js';
import { endLongRun, longRunPids, writeLongRunContext } from '../helpers/long-run.js';

// Four setups on two cores: a file-level bound like the other real-engine files.
t.setTimeout(1_800_000);
const engines = requireEngines(t);

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}` : ''}`);
}

const config = worldConfig;

/** A job on a fresh daemon with a fresh ~/.docker: nothing of the engine image but the cache dir. */
async function createInFreshJob(t: Test, w: RealWorld, dir: string, buildx: RealBuildx): Promise<CliResult> {
  return runCli([], { cwd: dir, env: (await freshJob(t, { buildx, daemon: w.daemon, env: w.env })).env });
}

function warnings(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.includes('warning:'));
}

/** A tmpfs of `size` at a fresh dir, unmounted in teardown; undefined when this user cannot mount. */
function smallTmpfs(t: Test, size: string): string | undefined {
  if (!requireCondition(t, process.getuid?.() === 0, 'needs root to mount a tmpfs (CI runs as root)')) return undefined;
  const dir = join(tempDir(t), 'small');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  return dir;
}

/** Fills the file system holding `dir` to the last byte. */
function fill(dir: string): void {
  const fd = openSync(join(dir, 'filler'), 'w');
  const chunk = Buffer.alloc(64 << 10);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  const one = Buffer.alloc(1);
  try {
    for (;;) writeSync(fd, one);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

for (const pair of engines ? daemonMatrix(engines) : []) {
  const on = pair.label;

  t.test(`${on}: an unreadable engine tar in cache.dir is loaded once, replaced after the pull, and named when no registry can serve`, async (t) => {
    if (!requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const cache = join(tempDir(t), 'engine-cache');
    const dir = w.project(config(w, 'healed', { cache: { dir: cache } }));
    ok(t, await runCli(['lock'], { cwd: dir, env: w.env }), 'lock');
    ok(t, await runCli([], { cwd: dir, env: w.env }), 'first job');
    const tar = join(cache, readdirSync(cache).find((f) => f.endsWith('.tar'))!);
    const size = statSync(tar).size;

    for (const [how, breakIt] of [
      ['truncated', () => truncateSync(tar, Math.floor(size / 2))],
      ['replaced by random bytes', () => writeFileSync(tar, randomBytes(1 << 20))],
    ] as const) {
      breakIt();
      const healed = await createInFreshJob(t, w, dir, pair.buildx);
      ok(t, healed, `${how} tar, mirror up`);
      // With the lockfile the tar is read before any load (src/docker/image-archive.ts): a broken
      // one is found then, never loaded; at most one load either way.
      t.ok((healed.stderr.match(/loading .* from /g)?.length ?? 0) <= 1, `${how}: at most one load attempt`);
      t.equal(warnings(healed).filter((l) => l.includes(tar)).length, 1, `${how}: one warning names the tar`);
      t.match(warnings(healed).join('\n'), /pulling instead, and replacing it after/, `${how}: and says it is replaced`);
      t.match(healed.stderr, `replaced the unusable ${tar}`, `${how}: the tar was replaced`);
      t.equal(statSync(tar).size, size, `${how}: the cache holds a whole tar again`);
      t.same(readdirSync(cache).filter((f) => f.endsWith('.tmp')), [], `${how}: no temp file left`);
    }

    // Temp files of saves: one a killed job left, one of a save still running (this process).
    const me = await processTag();
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const killedSave = `${tar}.${me.replace(/-\d+$/, `-${dead.pid}`)}.tmp`;
    const runningSave = `${tar}.${me}.tmp`;
    writeFileSync(killedSave, 'partial');
    writeFileSync(runningSave, 'partial');

    // The replaced tar serves a fresh daemon with every registry stopped.
    await Promise.all([w.upstream.stop(), w.mirror.stop()]);
    const offline = await createInFreshJob(t, w, dir, pair.buildx);
    ok(t, offline, 'fresh daemon, every registry stopped');
    t.match(offline.stderr, /loaded from the cache directory/);
    t.same(warnings(offline), [], 'no warning');
    t.notOk(existsSync(killedSave), 'the temp file of the killed save was removed');
    t.ok(existsSync(runningSave), 'the one of a save in progress was not');

    // Unreadable and no registry: exit 3, the cache file named before the registries.
    truncateSync(tar, 1000);
    const failed = await createInFreshJob(t, w, dir, pair.buildx);
    t.equal(failed.code, 3, 'exit 3');
    const line = lastLine(failed);
    t.match(line, `the cached engine image ${tar} is unusable (`, 'the cache file and why');
    t.ok(line.includes(tar) && line.indexOf(tar) < line.indexOf('no registry could serve'), `the cache file comes before the registries: ${line}`);
  });

  t.test(`${on}: a full file system is a warning for the job, exit 1 for lock`, async (t) => {
    if (!requireBinaries(t, ['mount', 'umount']) || !requireSetup(t, pair)) return;
    const small = smallTmpfs(t, '4m');
    if (!small) return;
    const w = await realWorld(t, pair);
    const cache = join(small, 'cache');
    const state = join(small, 'state');
    mkdirSync(cache);
    const lockfile = join(small, 'buildx-bootstrap.lock.json');
    const dir = w.project(config(w, 'full', { cache: { dir: cache }, lockfile }));
    ok(t, await runCli(['lock'], { cwd: dir, env: w.env }), 'lock onto the tmpfs while it has room');
    const before = readFileSync(lockfile);
    fill(small);

    const job = await runCli([], { cwd: dir, env: { ...w.env, BUILDX_BOOTSTRAP_STATE_DIR: state } });
    ok(t, job, 'the job on a full cache dir and state dir');
    t.equal(job.stdout, 'full\n');
    const warned = warnings(job);
    t.equal(warned.filter((l) => l.includes(cache)).length, 1, `one warning about the cache dir: ${warned.join(' | ')}`);
    t.match(warned.join('\n'), /could not save the engine image in .*ENOSPC|no space left/i, 'naming why');
    t.equal(warned.filter((l) => l.includes(state)).length, 1, 'one warning about the state dir');
    t.same(readdirSync(cache), [], 'no partial file in the cache dir');
    t.notOk(existsSync(state) && readdirSync(state, { recursive: true }).some((f) => String(f).endsWith('.tmp')), 'no partial file in the state dir');
    const running = await w.dockerd.docker(['inspect', '--format', '{{.State.Status}}', 'buildx_buildkit_full0']);
    t.equal(running.stdout.trim(), 'running', 'the builder came up');

    const relock = await runCli(['lock'], { cwd: dir, env: w.env });
    t.equal(relock.code, 1, 'lock onto a full file system exits 1');
    t.match(lastLine(relock), `could not write ${lockfile}: ENOSPC`, 'naming the path and the errno');
    t.same(readFileSync(lockfile), before, 'the old lockfile is byte-identical');
    t.same(readdirSync(small).sort(), ['buildx-bootstrap.lock.json', 'cache', 'filler', ...(existsSync(state) ? ['state'] : [])].sort(), 'no temp file beside it');

    // Read-only: the same one warning each, and the builder comes up.
    execFileSync('mount', ['-o', 'remount,ro', small]);
    const ro = w.project(config(w, 'read-only', { cache: { dir: cache }, lockfile: join(tempDir(t), 'lock.json') }));
    const roJob = await runCli([], { cwd: ro, env: { ...w.env, BUILDX_BOOTSTRAP_STATE_DIR: state } });
    ok(t, roJob, 'the job on a read-only cache dir and state dir');
    t.equal(roJob.stdout, 'read-only\n');
    t.match(warnings(roJob).filter((l) => l.includes(cache)), [/could not save the engine image in .*(EROFS|read-only file system)/i], 'one warning about the cache dir, naming why');
    t.equal(warnings(roJob).filter((l) => l.includes(state)).length, 1, 'one warning about the state dir');
  });

  t.test(`${on}: a prefixed build started while another configuration's run is between its drain check and its rm completes`, async (t) => {
    if (!requireBinaries(t, ['busybox']) || !requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const base = config(w, 'shared');
    // The build's RUN lasts until the test ends it, after B has removed and recreated the builder:
    // a build that had started on the old builder is still running when B removes it.
    const ctxDir = w.project({});
    const marker = writeLongRunContext(ctxDir);
    const a = w.project(base);
    // With a lockfile A's prefixed run takes the no-op path: no lock, straight to its build.
    ok(t, await runCli(['lock'], { cwd: a, env: w.env }), 'lock A');
    ok(t, await runCli([], { cwd: a, env: w.env }), 'configuration A creates builder shared');
    const oldId = (await w.dockerd.docker(['inspect', '--format', '{{.Id}}', 'buildx_buildkit_shared0'])).stdout.trim();

    // Configuration B recreates it; the hook holds B after its drain check, before its rm.
    const gate = join(tempDir(t), 'gate');
    const b = w.project({ ...base, buildkitd: { flags: ['--debug'] } });
    const recreating = runCli([], { cwd: b, env: { ...w.env, BXB_TEST_PAUSE_BEFORE_RM: gate } });
    await until('B to reach the point between its drain check and its rm', async () => existsSync(`${gate}.reached`), 120_000);

    // A prefixed build of configuration A starts now.
    let buildStderr = '';
    const building = runCli(['--', 'docker', 'buildx', 'build', '--progress', 'plain', '--no-cache', ctxDir], { cwd: a, env: w.env, onStderr: (s) => (buildStderr += s) });
    const active = async (): Promise<boolean> => {
      const r = await w.dockerd.docker(['exec', 'buildx_buildkit_shared0', 'buildctl', 'debug', 'histories', '--format', '{{json .}}']);
      return r.code === 0 && parseHistoriesJson(r.stdout).length > 0;
    };
    await until('the prefixed build to wait for B, or to start', async () => /waiting for another buildx-bootstrap working on builder shared/.test(buildStderr) || (await active()), 120_000);
    writeFileSync(gate, ''); // B goes on: rm, create

    const recreated = await recreating;
    ok(t, recreated, 'B recreated the builder');
    let buildEnded = false;
    void building.then(() => (buildEnded = true));
    await until("the prefixed build's RUN to start, or the build to end", () => buildEnded || longRunPids(marker).length > 0, 120_000);
    t.equal(endLongRun(marker), 1, "the test ends the build's RUN once B is done");
    const built = await building;
    t.equal(built.code, 0, `the prefixed build completed${built.code ? `: ${lastLine(built)}` : ''}`);
    // buildx ≥ 0.3x reconnects to a recreated builder with `error: dial unix …buildkitd.sock` on the
    // way; buildx 0.12's `http2: … PROTOCOL_ERROR` line at the end of every build is not a loss.
    t.notMatch(built.stderr, /error: dial|ERROR: /, 'it never lost its builder');
    t.match(built.stderr, /waiting for another buildx-bootstrap working on builder shared .*before the build starts/, 'it waited for B rather than start on the builder B was removing');
    const newId = (await w.dockerd.docker(['inspect', '--format', '{{.Id}}', 'buildx_buildkit_shared0'])).stdout.trim();
    t.not(newId, oldId, 'it ran on the new builder');
    const leases = await w.dockerd.docker(['ps', '-a', '--filter', 'label=io.buildx-bootstrap.lease', '--format', '{{.Names}}']);
    t.equal(leases.stdout.trim(), '', 'no lease is left in the daemon');
  });
}
