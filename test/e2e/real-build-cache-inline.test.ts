// The docker driver on the classic image store (dockerd 20.10) can export only inline cache, which
// travels inside the pushed image (issue 20 item 5), with REAL buildx and dockerd's own BuildKit:
// with --push the image carries the cache and a fresh daemon's rebuild reuses it (the builder
// stage's random value survives); without --push `plan` says there is no cross-job cache.
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireDaemon, requireEngines } from '../helpers/engines.js';
import { dockerWith, exitsZero, freshJob, RANDOM_VALUE_DOCKERFILE, tempDir } from '../helpers/real-world.js';
import { runCli } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';

const ok = exitsZero;

// The final image holds the builder stage's random value; inline cache (mode=min) covers the
// final stage's layers, and the builder stage's RUN is skipped when the COPY --from result is cached.
const DOCKERFILE = RANDOM_VALUE_DOCKERFILE;

/** The project both daemons build: the docker driver, the cache repository in `registryHost`. */
function writeProject(root: string, registryHost: string): string {
  const project = join(root, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'Dockerfile'), DOCKERFILE);
  copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
  writeFileSync(join(project, '.buildx-bootstraprc.json'), JSON.stringify({ builder: { driver: 'docker' }, buildCache: { ref: `${registryHost}/app/cache` } }));
  return project;
}

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const buildxVersion of engines ? engines.buildx : []) {
  t.test(`buildx ${buildxVersion.version}, docker driver on dockerd 20.10 (classic store): inline cache through the pushed image`, async (t) => {
    const registry = await startRegistry(t);
    const root = tempDir(t);
    const project = writeProject(root, registry.host);
    const image = `${registry.host}/app:1`;

    const job = async (): Promise<Record<string, string | undefined>> => (await freshJob(t, { buildx: buildxVersion, env: { HOME: root } })).env;

    const noPush = await runCli(['plan', '--json', '--build-cache-branch', 'main', '--', 'docker', 'buildx', 'build', '-t', 'app:local', '.'], { cwd: project, env: await job() });
    ok(t, noPush, 'plan without --push');
    const plan = JSON.parse(noPush.stdout) as { driver: { driver: string }; buildCache: { type: string; reasons: string[]; targets: { cacheFrom: string[]; cacheTo: string[] }[] } };
    t.same([plan.driver.driver, plan.buildCache.type], ['docker', 'inline'], 'the docker driver, and the cache falls back to inline');
    t.match(plan.buildCache.reasons.join('\n'), /classic image store exports only inline cache/);
    t.match(plan.buildCache.reasons.join('\n'), /does not push: no cross-job cache/, 'plan says there is no cross-job cache without --push');
    t.same(plan.buildCache.targets[0]?.cacheTo, [], 'and adds nothing');

    // Reads /value out of an image through a daemon of its own.
    const viewer = await job();
    let n = 0;
    const valueIn = async (ref: string): Promise<string> => {
      const pulled = await dockerWith(viewer, ['pull', ref]);
      t.equal(pulled.code, 0, `pull ${ref}: ${pulled.stderr}`);
      const id = (await dockerWith(viewer, ['create', ref, '/value'])).stdout.trim();
      const file = join(root, `value-${n++}`);
      const cp = await dockerWith(viewer, ['cp', `${id}:/value`, file]);
      t.equal(cp.code, 0, `docker cp from ${ref}: ${cp.stderr}`);
      await dockerWith(viewer, ['rm', id]);
      return readFileSync(file, 'utf8');
    };
    // --network none: the test daemon has no bridge network.
    const build = ['--build-cache-branch', 'main', '--', 'docker', 'buildx', 'build', '--network', 'none', '--push', '-t', image, '.'];

    const first = await runCli(build, { cwd: project, env: await job() });
    ok(t, first, 'job 1 (push, fresh daemon)');
    await registry.settle();
    t.ok(registry.requestLog().some((l) => l.startsWith('PUT /v2/app/manifests/1 201')), 'job 1 pushed the image');
    const value1 = await valueIn(image);

    const second = await runCli(build, { cwd: project, env: await job() });
    ok(t, second, 'job 2 (push, another fresh daemon)');
    t.equal(await valueIn(image), value1, "job 2's image holds job 1's value: the builder stage came from the inline cache");
    t.match(second.stderr, /cache: (?:[1-9]\d* of \d+ steps cached|cached steps not known \((?:buildx before 0\.23 has no history command|the builder's BuildKit keeps no build history)\)); read [^;]*app:1; wrote [^\n]*app:1/, 'job 2 reports the inline cache it read and wrote');
  });
}

// The docker driver on dockerd 29's containerd image store exports a registry cache itself: the
// cache is not downgraded to inline, and a fresh daemon's rebuild reuses the builder stage.
for (const buildxVersion of engines ? engines.buildx.slice(-1) : []) {
  t.test(`buildx ${buildxVersion.version}, docker driver on dockerd 29 (containerd store): registry cache across fresh daemons`, async (t) => {
    if (!requireDaemon(t, 'dockerd-29-containerd')) return;
    const registry = await startRegistry(t);
    const root = tempDir(t);
    const project = writeProject(root, registry.host);
    const job = async (): Promise<Record<string, string | undefined>> => (await freshJob(t, { buildx: buildxVersion, daemon: 'dockerd-29-containerd', env: { HOME: root } })).env;
    const build = (out: string): string[] => ['--build-cache-branch', 'main', '--', 'docker', 'buildx', 'build', '--network', 'none', '--output', `type=local,dest=${out}`, '.'];
    const env1 = await job();
    const plan = await runCli(['plan', '--json', ...build('o')], { cwd: project, env: env1 });
    ok(t, plan, 'plan');
    t.equal((JSON.parse(plan.stdout) as { buildCache: { type: string } }).buildCache.type, 'registry', 'the containerd store keeps the registry cache');
    const first = await runCli(build('out1'), { cwd: project, env: env1 });
    ok(t, first, 'job 1');
    const second = await runCli(build('out2'), { cwd: project, env: await job() });
    ok(t, second, 'job 2 (another fresh dockerd 29)');
    t.equal(readFileSync(join(project, 'out2', 'value'), 'utf8'), readFileSync(join(project, 'out1', 'value'), 'utf8'), "job 2's value is job 1's: the builder stage came from the registry cache");
    await registry.settle();
    t.ok(registry.requestLog().some((l) => l.startsWith('PUT /v2/app/cache/manifests/cache-main-')), 'the cache was written to the registry');
  });
}
