// The no-op check without buildx reads buildx's store record and the container's state; every
// answer it gives must lead decideConverge to the same verdict `buildx inspect` would, and
// anything it cannot tell must say so (undefined) so the caller asks buildx.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decideConverge, type BuilderSpec } from '../../src/builder/converge.js';
import { readBuilderWithoutBuildx } from '../../src/builder/quick-state.js';
import type { CommandResult, DockerRunner } from '../../src/docker/runner.js';
import type { Lockfile } from '../../src/resolve/lockfile.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const ID_AMD64 = `sha256:${'1'.repeat(64)}`;
const ID_ARM64 = `sha256:${'2'.repeat(64)}`;
const IMAGE = `mirror.example/moby/buildkit:v0.18.2@${DIGEST}`;
const LOCK = { lockfileVersion: 1, image: 'mirror.example/moby/buildkit', spec: 'v0.18.2', rootless: false, tag: 'v0.18.2', digest: DIGEST, source: 'mirror.example/moby/buildkit', platforms: { 'linux/amd64': { manifest: DIGEST, config: ID_AMD64 }, 'linux/arm64': { manifest: DIGEST, config: ID_ARM64 } } } as unknown as Lockfile;

const spec = (over: Partial<BuilderSpec> = {}): BuilderSpec => ({
  name: 'CI', driver: 'docker-container', endpoint: '', daemon: 'default', image: IMAGE, digest: DIGEST,
  driverOpts: { network: 'host' }, buildkitdFlags: [], configSha: 'c1', platforms: [], nodes: [], ...over,
});

function world(t: Test, instance: unknown, container: { status: string; image: string } | 'missing' | 'broken') {
  const dir = t.testdir({});
  if (instance !== undefined) {
    mkdirSync(join(dir, 'buildx', 'instances'), { recursive: true });
    writeFileSync(join(dir, 'buildx', 'instances', 'ci'), typeof instance === 'string' ? instance : JSON.stringify(instance));
  }
  const calls: string[][] = [];
  const runner: DockerRunner = {
    binary: 'docker', globalArgs: [], env: {},
    async run(args): Promise<CommandResult> {
      calls.push(args);
      const command = `docker ${args.join(' ')}`;
      if (container === 'missing') return { exitCode: 1, stdout: '', stderr: `Error response from daemon: No such container: ${args.at(-1)}\n`, command };
      if (container === 'broken') return { exitCode: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon\n', command };
      return { exitCode: 0, stdout: `${container.status} ${container.image}\n`, stderr: '', command };
    },
  };
  return { env: { DOCKER_CONFIG: dir, HOME: dir }, runner, calls };
}

const instance = (over: Record<string, unknown> = {}, nodeOver: Record<string, unknown> = {}) => ({
  Name: 'CI', Driver: 'docker-container',
  Nodes: [{ Name: 'CI0', Endpoint: 'default', Platforms: null, DriverOpts: { image: IMAGE, network: 'host' }, Flags: ['--allow-insecure-entitlement=network.host'], Files: {}, ...nodeOver }],
  Dynamic: false, ...over,
});
const opts = { tlsContext: undefined };

t.test('a running container on a pinned image ID: reuse, with no buildx call', async (t) => {
  const w = world(t, instance(), { status: 'running', image: ID_ARM64 });
  const quick = await readBuilderWithoutBuildx(w.runner, w.env, spec(), LOCK, opts);
  t.equal(quick?.runsPinned, true, 'any platform\'s image ID of the pinned digest counts');
  t.match(decideConverge(spec(), quick?.info, spec()), { action: 'reuse', start: false });
  t.same(w.calls, [['container', 'inspect', '--format', '{{.State.Status}} {{.Image}}', 'buildx_buildkit_CI0']], 'one daemon call, the store file is lower-cased');
});

t.test('what buildx inspect would report as drift or a stopped node is seen here too', async (t) => {
  const other = world(t, instance(), { status: 'running', image: `sha256:${'9'.repeat(64)}` });
  t.equal((await readBuilderWithoutBuildx(other.runner, other.env, spec(), LOCK, opts))?.runsPinned, false, 'a container on another image is not the pinned engine');
  const stopped = world(t, instance(), { status: 'exited', image: ID_AMD64 });
  t.match(decideConverge(spec(), (await readBuilderWithoutBuildx(stopped.runner, stopped.env, spec(), LOCK, opts))?.info, spec()), { action: 'reuse', start: true }, 'an exited container is a stopped node');
  const gone = world(t, instance(), 'missing');
  const q = await readBuilderWithoutBuildx(gone.runner, gone.env, spec(), LOCK, opts);
  t.match(q, { runsPinned: false, info: { nodes: [{ status: 'inactive' }] } }, 'no container: inactive, as before bootstrap');
  const retagged = world(t, instance({}, { DriverOpts: { image: 'someone/else:latest', network: 'host' } }), { status: 'running', image: ID_AMD64 });
  t.match(decideConverge(spec(), (await readBuilderWithoutBuildx(retagged.runner, retagged.env, spec(), LOCK, opts))?.info, spec()), { action: 'recreate', reasons: [/engine image was changed outside/] });
  const driver = world(t, instance({ Driver: 'kubernetes' }), { status: 'running', image: ID_AMD64 });
  t.match(decideConverge(spec(), (await readBuilderWithoutBuildx(driver.runner, driver.env, spec(), LOCK, opts))?.info, spec()), { action: 'recreate', reasons: [/driver kubernetes → docker-container/] });
  const none = world(t, undefined, 'missing');
  t.same(await readBuilderWithoutBuildx(none.runner, none.env, spec(), LOCK, opts), { info: undefined, runsPinned: false }, 'no record: no builder');
  t.same(none.calls, [], 'and no daemon call');
});

t.test('what it cannot tell is left to buildx inspect', async (t) => {
  const w = world(t, instance(), { status: 'running', image: ID_AMD64 });
  t.equal(await readBuilderWithoutBuildx(w.runner, w.env, spec({ endpoint: 'other-context' }), LOCK, opts), undefined, 'a builder on another endpoint');
  t.equal(await readBuilderWithoutBuildx(w.runner, w.env, spec({ driver: 'kubernetes' }), LOCK, opts), undefined, 'another driver');
  t.equal(await readBuilderWithoutBuildx(w.runner, w.env, spec(), { ...LOCK, platforms: undefined } as Lockfile, opts), undefined, 'a lock without image IDs');
  const two = world(t, instance({ Nodes: [instance().Nodes[0], { ...instance().Nodes[0], Name: 'CI1' }] }), { status: 'running', image: ID_AMD64 });
  t.equal(await readBuilderWithoutBuildx(two.runner, two.env, spec(), LOCK, opts), undefined, 'several nodes');
  const garbled = world(t, '{not json', { status: 'running', image: ID_AMD64 });
  t.equal(await readBuilderWithoutBuildx(garbled.runner, garbled.env, spec(), LOCK, opts), undefined, 'an unreadable store record');
  const broken = world(t, instance(), 'broken');
  t.equal(await readBuilderWithoutBuildx(broken.runner, broken.env, spec(), LOCK, opts), undefined, 'a daemon error that is not "no such container"');
  t.ok(await readBuilderWithoutBuildx(w.runner, w.env, spec({ endpoint: 'bxb-tls' }), LOCK, { tlsContext: 'bxb-tls' }), 'the TLS-environment context is the same daemon');
});

t.test('containerd image store: a container on the locked index or platform-manifest digest runs the pinned engine', async (t) => {
  const manifest = `sha256:${'b'.repeat(64)}`;
  const lock = { ...LOCK, platforms: { 'linux/amd64': { manifest, config: ID_AMD64 } } } as unknown as Lockfile;
  for (const [what, image] of [['pulled by the index digest', DIGEST], ['loaded as the platform manifest', manifest]] as const) {
    const w = world(t, instance(), { status: 'running', image });
    t.equal((await readBuilderWithoutBuildx(w.runner, w.env, spec(), lock, opts))?.runsPinned, true, what);
  }
});
