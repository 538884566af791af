// The CI situations on the REAL engines: eight parallel jobs on one daemon, an interrupted
// bootstrap, a fresh DinD daemon coming up from the cache directory with every registry stopped,
// and DinD with TLS from the environment, where a bare `docker buildx create` refuses.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, freshJob, pairs, realWorld, requireSetup, lastLine, tempDir, dockerWith, worldConfig } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { runBin, until } from '../helpers/bin.js';
import type { Dockerd } from '../helpers/dockerd.js';
import { dockerOutput } from '../helpers/docker-out.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}` : ''}`);
}

async function buildkitContainers(d: Dockerd): Promise<string[]> {
  return (await dockerOutput(d, ['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter((l) => l.startsWith('buildx_buildkit_'));
}

async function buildkitVolumes(d: Dockerd): Promise<string[]> {
  return (await dockerOutput(d, ['volume', 'ls', '--format', '{{.Name}}'])).split('\n').filter((l) => l.startsWith('buildx_buildkit_'));
}

function instances(w: { buildx: { dockerConfig: string } }): string[] {
  try {
    return readdirSync(join(w.buildx.dockerConfig, 'buildx', 'instances'));
  } catch {
    return [];
  }
}

const config = worldConfig;

// Real engines are slow to start on two cores: a file-level bound above tap's default per file.
t.setTimeout(1_200_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  const on = `buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}`;

  t.test(`${on}: eight parallel runs end with one builder and one container; SIGINT mid-bootstrap leaves nothing`, async (t) => {
    const w = await realWorld(t, pair);
    const dir = w.project(config(w, 'shared'));
    const runs = Array.from({ length: 8 }, () => runBin(['--quiet'], { cwd: dir, env: w.env }));
    const results = await Promise.all(runs.map((r) => r.done));
    t.same(results.map((r) => r.code), Array(8).fill(0), `all exit 0 ${results.map((r) => r.stderr).join('')}`);
    t.same(results.map((r) => r.stdout), Array(8).fill('shared\n'), 'each prints the builder name');
    t.same(instances(w), ['shared'], 'one builder in the buildx store');
    t.same(await buildkitContainers(w.dockerd), ['buildx_buildkit_shared0'], 'one BuildKit container');
    const state = await w.dockerd.docker(['inspect', '--format', '{{.State.Status}}', 'buildx_buildkit_shared0']);
    t.equal(state.stdout.trim(), 'running');

    // Interrupted: the container start is held in the runtime, so the signal lands while buildx
    // is bootstrapping.
    w.dockerd.slowStart(20);
    const slow = w.project(config(w, 'interrupted'));
    const run = runBin([], { cwd: slow, env: w.env });
    await until('the BuildKit container to be created', async () => (await buildkitContainers(w.dockerd)).includes('buildx_buildkit_interrupted0'), 90_000);
    run.child.kill('SIGINT');
    const result = await run.done;
    w.dockerd.slowStart(0);
    t.equal(result.code, 130, 'exit 130');
    t.match(result.stderr, /interrupted by SIGINT/);
    t.equal(result.stdout, '', 'no builder name printed');
    t.same(instances(w), ['shared'], 'no interrupted builder in the buildx store');
    t.same(await buildkitContainers(w.dockerd), ['buildx_buildkit_shared0'], 'no container of the interrupted builder');
    t.same(await buildkitVolumes(w.dockerd), ['buildx_buildkit_shared0_state'], 'no state volume of it either');
  });
}

for (const pair of engines ? daemonMatrix(engines) : []) {
  const on = pair.label;

  t.test(`${on}: the next DinD job comes up from cache.dir + lockfile with every registry stopped`, async (t) => {
    if (!requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const cache = join(tempDir(t), 'engine-cache');
    const dir = w.project(config(w, 'cached', { cache: { dir: cache } }));
    ok(t, await runCli(['lock'], { cwd: dir, env: w.env }), 'lock');
    ok(t, await runCli([], { cwd: dir, env: w.env }), 'first job');
    t.ok(readdirSync(cache).some((f) => f.endsWith('.tar')), 'the engine image was saved to the cache directory');

    // The next job: a fresh daemon, a fresh ~/.docker, no registry at all.
    await Promise.all([w.upstream.stop(), w.mirror.stop()]);
    const { dockerd: fresh, env } = await freshJob(t, { buildx: pair.buildx, daemon: w.daemon, env: w.env });
    const second = await runCli([], { cwd: dir, env });
    ok(t, second, 'job on a fresh daemon with every registry stopped');
    t.equal(second.stdout, 'cached\n');
    t.match(second.stderr, /loaded from the cache directory/);
    t.same(await buildkitContainers(fresh), ['buildx_buildkit_cached0'], 'the builder container runs on the fresh daemon');
    const version = await fresh.docker(['exec', 'buildx_buildkit_cached0', 'buildkitd', '--version']);
    t.match(version.stdout, ` ${pair.kit.version} `, 'it runs the locked BuildKit version');
    // A cache-loaded engine runs under an unpullable alias (so buildx's always-pull asks no
    // registry); what identifies it is the image ID: the locked platform's config digest on the
    // classic store, the locked index digest on the containerd store (the tar was saved there).
    const lock = JSON.parse(readFileSync(join(dir, 'buildx-bootstrap.lock.json'), 'utf8')) as { digest: string; platforms?: Record<string, { config: string }> };
    const id = (await fresh.docker(['inspect', '--format', '{{.Image}}', 'buildx_buildkit_cached0'])).stdout.trim();
    const expected = fresh.imageStore === 'containerd' ? lock.digest : lock.platforms?.['linux/amd64']?.config;
    t.equal(id, expected, `the container runs the locked linux/amd64 image (${fresh.imageStore} store)`);
    const inspect = await dockerWith(env, ['buildx', 'inspect', 'cached']);
    t.match(inspect.stdout, /Status:\s+running/, 'real buildx sees it running');
  });

  t.test(`${on}: DinD with TLS from the environment — buildx alone refuses, buildx-bootstrap brings the builder up`, async (t) => {
    if (!requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const dind = await w.startDockerd(t, { tls: true });
    const env = { ...w.env, ...dind.env };
    const bare = await dockerWith(env, ['buildx', 'create', '--name', 'bare', '--driver', 'docker-container']);
    t.not(bare.code, 0, 'a bare docker buildx create fails');
    t.match(bare.stderr, /could not create a builder instance with TLS data loaded from environment/, 'with the TLS-from-environment error');

    const dir = w.project(config(w, 'dind'));
    const r = await runCli([], { cwd: dir, env });
    ok(t, r, 'create on the DinD daemon');
    t.equal(r.stdout, 'dind\n');
    t.same(await buildkitContainers(dind), ['buildx_buildkit_dind0'], 'the container runs on the DinD daemon');
    t.same(await buildkitContainers(w.dockerd), [], 'and not on the other one');
    const build = await dockerWith(env, ['buildx', 'build', '--builder', 'dind', '-'], { input: 'FROM scratch\n' });
    t.equal(build.code, 0, `a build on it succeeds${build.code ? `: ${build.stderr.trim().split('\n').pop()}` : ''}`);
    const again = await runCli([], { cwd: dir, env });
    ok(t, again, 'second run');
    t.match(again.stderr, /reusing builder dind/);
  });
}
