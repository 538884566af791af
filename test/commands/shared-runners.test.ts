// Shared runners (issue 10): many jobs, one daemon. A builder is never removed or recreated while a
// build runs on it; builders are keyed by configuration; rm --stale cleans up idle ones.
// Real dockerd and registries; the emulated buildx plugin, whose stand-in BuildKit answers
// `buildctl debug histories --format {{json .}}` with the builds a test marks as running, in the
// shape real BuildKit prints (test/fixtures/history, parsed in test/docker/history.test.ts).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { pushEngineTags, standInBuildLine } from '../helpers/engine-image.js';
import { installFakeBuildx, type FakeBuildx } from '../helpers/buildx.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const BINARIES = ['dockerd', 'docker', 'docker-registry', 'busybox'];

interface World {
  dockerd: Dockerd;
  upstream: RunningRegistry;
  fake: FakeBuildx;
  env: Record<string, string | undefined>;
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-shared-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function world(t: Test): Promise<World> {
  const [dockerd, upstream] = await Promise.all([startDockerd(t), startRegistry(t)]);
  await pushEngineTags(upstream, { tags: { 'v0.18.2': {}, 'v0.19.1': {} } });
  const fake = installFakeBuildx(t as never, { dockerConfig: join(tempDir(t), 'docker-config') });
  const env = { PATH: process.env.PATH, HOME: fake.env.DOCKER_CONFIG, ...fake.env, ...dockerd.env };
  return { dockerd, upstream, fake, env };
}

/** A project dir whose config is `config` on top of the loopback engine image. */
function project(t: Test, w: World, config: Record<string, unknown> = {}): string {
  const dir = tempDir(t);
  writeConfig(dir, w, config);
  return dir;
}

function writeConfig(dir: string, w: World, config: Record<string, unknown>): void {
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.18.2' }, ...config }));
}

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
}

/** Marks a build as running on the builder's first node, the way the stand-in buildctl reports it. */
async function startBuild(w: World, builder: string, ref: string): Promise<void> {
  const line = standInBuildLine(ref, 'v0.18.2');
  const r = await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'sh', '-c', 'mkdir -p /run/bxb-builds && printf "%s\\n" "$1" > "/run/bxb-builds/$2"', 'sh', line, ref]);
  if (r.code !== 0) throw new Error(`cannot mark a build on ${builder}: ${r.stderr}`);
}

async function endBuild(w: World, builder: string, ref: string): Promise<void> {
  await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'rm', '-f', `/run/bxb-builds/${ref}`]);
}

async function buildStillRunning(w: World, builder: string, ref: string): Promise<boolean> {
  return (await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'test', '-f', `/run/bxb-builds/${ref}`])).code === 0;
}

async function containerId(w: World, builder: string): Promise<string> {
  return (await w.dockerd.docker(['inspect', '--format', '{{.Id}}', `buildx_buildkit_${builder}0`])).stdout.trim();
}

async function engineVersion(w: World, builder: string): Promise<string> {
  return (await w.dockerd.docker(['exec', `buildx_buildkit_${builder}0`, 'buildkitd', '--version'])).stdout.split(' ')[2] ?? '';
}

function removals(fake: FakeBuildx): string[][] {
  return fake.calls().map((c) => c.args).filter((a) => a[0] === 'rm');
}

t.test('(emulated buildx) two configurations on one daemon get builders of their own; the busy one is left alone', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const a = project(t, w, { builder: { driverOpts: { network: 'host' } } });
  const first = await runCli([], { cwd: a, env: w.env });
  ok(t, first, 'config A');
  const nameA = first.stdout.trim();
  t.match(nameA, /^buildx-bootstrap-[0-9a-f]{8}$/, 'default name carries the configuration hash');
  await startBuild(w, nameA, 'longbuilda0000000000000000');
  const idA = await containerId(w, nameA);

  const b = project(t, w, { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.19.1' }, buildkitd: { flags: ['--debug'] } });
  const second = await runCli([], { cwd: b, env: w.env });
  ok(t, second, 'config B while a build runs on A');
  const nameB = second.stdout.trim();
  t.not(nameB, nameA, 'config B has a builder of its own');
  t.same(removals(w.fake), [], 'no builder was removed');
  t.equal(await containerId(w, nameA), idA, "A's container is the same one");
  t.ok(await buildStillRunning(w, nameA, 'longbuilda0000000000000000'), "A's build is untouched");
  t.equal(await engineVersion(w, nameB), 'v0.19.1');

  const plan = await runCli(['plan', '--json'], { cwd: a, env: w.env });
  ok(t, plan, 'plan for config A');
  t.equal(JSON.parse(plan.stdout).builder, nameA, 'plan shows the same derived name');
  const again = await runCli([], { cwd: a, env: w.env });
  ok(t, again, 'config A again');
  t.equal(again.stdout.trim(), nameA, 'the same configuration finds the same builder');
  t.match(again.stderr, new RegExp(`reusing builder ${nameA}`));
});

t.test('(emulated buildx) a drifted, explicitly named, busy builder is recreated only after its build ends', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const dir = project(t, w, { builder: { name: 'shared' } });
  ok(t, await runCli([], { cwd: dir, env: w.env }), 'create');
  await startBuild(w, 'shared', 'busybuild00000000000000000');
  const before = await containerId(w, 'shared');
  writeConfig(dir, w, { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.19.1' }, builder: { name: 'shared' } });

  let ended: Promise<void> | undefined;
  let idWhileWaiting = '';
  const r = await runCli(['--drain-timeout', '2m'], {
    cwd: dir,
    env: w.env,
    onStderr: (text) => {
      // The run says it is waiting: the build is still there, then it ends.
      if (!ended && /waiting for 1 build/.test(text)) {
        ended = (async () => {
          idWhileWaiting = await containerId(w, 'shared');
          await endBuild(w, 'shared', 'busybuild00000000000000000');
        })();
      }
    },
  });
  await ended;
  ok(t, r, 'create after the drift');
  t.ok(ended, 'the run waited for the build');
  t.match(r.stderr, /waiting for 1 build\(s\) on builder shared to finish before recreating it \(\d+s of up to 2m00s\): busybuild00000000000000000/, 'progress names the build and the limit');
  t.match(r.stderr, /builds on builder shared have finished/);
  t.equal(idWhileWaiting, before, 'the builder was not touched while the build ran');
  t.not(await containerId(w, 'shared'), before, 'then it was recreated');
  t.equal(await engineVersion(w, 'shared'), 'v0.19.1', 'with the new engine');
});

t.test('(emulated buildx) a short timeouts.drain exits 1 naming the running build, and the build goes on', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const dir = project(t, w, { builder: { name: 'shared' } });
  ok(t, await runCli([], { cwd: dir, env: w.env }), 'create');
  await startBuild(w, 'shared', 'stillrunning00000000000000');
  const before = await containerId(w, 'shared');
  writeConfig(dir, w, { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.19.1' }, builder: { name: 'shared' }, timeouts: { drain: '1s' } });
  const r = await runCli([], { cwd: dir, env: w.env });
  t.equal(r.code, 1, 'exit 1');
  t.equal(r.stdout, '', 'no builder name printed');
  t.match(r.stderr, /builder shared must be recreated \(engine image \w{12} → \w{12}\) but 1 build\(s\) still run on it after 1s: stillrunning00000000000000/, 'names the builder, why, and the build');
  t.match(r.stderr, /timeouts\.drain/, 'the hint names the setting');
  t.equal(await containerId(w, 'shared'), before, 'the builder is the same');
  t.ok(await buildStillRunning(w, 'shared', 'stillrunning00000000000000'), 'the build still runs');
  t.equal(await engineVersion(w, 'shared'), 'v0.18.2');
  t.same(removals(w.fake), [], 'buildx rm was never called');
});

t.test('(emulated buildx) rm refuses a builder with a running build; --force removes it', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const dir = project(t, w, { builder: { name: 'busy' } });
  ok(t, await runCli([], { cwd: dir, env: w.env }), 'create');
  await startBuild(w, 'busy', 'rmbuild0000000000000000000');
  const refused = await runCli(['rm'], { cwd: dir, env: w.env });
  t.equal(refused.code, 1);
  t.match(refused.stderr, /builder busy was not removed: 1 build\(s\) run on it: rmbuild0000000000000000000/);
  t.ok(await buildStillRunning(w, 'busy', 'rmbuild0000000000000000000'));
  const forced = await runCli(['rm', '--force'], { cwd: dir, env: w.env });
  ok(t, forced, 'rm --force');
  t.same(removals(w.fake).map((a) => a.at(-1)), ['busy']);
});

t.test('(emulated buildx) rm --stale removes an idle old builder, keeps a busy one, a recent one and one it did not make', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const names: string[] = [];
  for (const flags of [['--debug'], ['--oci-worker-gc=false'], []]) {
    const r = await runCli([], { cwd: project(t, w, { buildkitd: { flags } }), env: w.env });
    ok(t, r, `create with flags [${flags.join(' ')}]`);
    names.push(r.stdout.trim());
  }
  const [oldIdle, oldBusy, recent] = names as [string, string, string];
  // Someone else's builder, made with buildx directly, also unused for long.
  const foreign = spawnSync('docker', ['buildx', 'create', '--name', 'theirs', '--driver', 'docker-container'], { env: w.env as NodeJS.ProcessEnv, encoding: 'utf8' });
  t.equal(foreign.status, 0, `a builder made without buildx-bootstrap ${foreign.stderr}`);
  const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  for (const name of [oldIdle, oldBusy, 'theirs']) writeFileSync(join(w.fake.dockerConfig, 'buildx', 'activity', name), tenDaysAgo);
  await startBuild(w, oldBusy, 'stalebuild0000000000000000');

  const doctor = await runCli(['doctor'], { cwd: project(t, w), env: w.env });
  t.match(doctor.stdout, /^ok\s+builders\s+3 made by buildx-bootstrap \(buildx-bootstrap-[0-9a-f]{8}, .*\); 3 state volumes take \d+(\.\d)? (B|kB|MB)/m, 'doctor counts our builders (not theirs) and their state volumes');

  const r = await runCli(['rm', '--stale', '--json'], { cwd: tempDir(t), env: w.env });
  ok(t, r, 'rm --stale');
  const result = JSON.parse(r.stdout) as { removed: string[]; kept: { name: string; reason: string }[] };
  t.same(result.removed, [oldIdle], 'only the idle old one');
  t.same(result.kept.map((k) => k.name).sort(), [oldBusy, recent].sort(), 'busy and recent kept');
  t.match(result.kept.find((k) => k.name === oldBusy)?.reason, /1 build\(s\) running: stalebuild0000000000000000/);
  const instances = readdirSync(join(w.fake.dockerConfig, 'buildx', 'instances'));
  t.same(instances.sort(), [oldBusy, recent, 'theirs'].sort(), "buildx's store keeps the others, including the foreign one");
  t.ok(await buildStillRunning(w, oldBusy, 'stalebuild0000000000000000'));

  const plain = await runCli(['rm', '--stale', '--older-than', '1h'], { cwd: tempDir(t), env: w.env });
  ok(t, plain, 'rm --stale --older-than 1h');
  t.equal(plain.stdout, '', 'nothing removed: nothing printed');
  const bad = await runCli(['rm', '--stale', '--older-than', 'soon'], { cwd: tempDir(t), env: w.env });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /invalid --older-than "soon"/);
});
