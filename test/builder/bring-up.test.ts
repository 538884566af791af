// bringUpBuilder after `buildx create --bootstrap`, against a scripted daemon: the container is
// looked at once (no second inspect of what the first told), and a container on any image but the
// pinned one for this daemon fails the bring-up and leaves no builder behind.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { bringUpBuilder, type BringUpInput } from '../../src/builder/bring-up.js';
import type { BuilderSpec } from '../../src/builder/converge.js';
import { DockerError } from '../../src/errors.js';
import type { CommandResult, DockerRunner } from '../../src/docker/runner.js';
import type { Lockfile } from '../../src/resolve/lockfile.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const ID_AMD64 = `sha256:${'1'.repeat(64)}`;
const ID_ARM64 = `sha256:${'2'.repeat(64)}`;
const UNPINNED = `sha256:${'9'.repeat(64)}`;
const IMAGE = `mirror.example/moby/buildkit:v0.18.2@${DIGEST}`;
const LOCK = { lockfileVersion: 1, image: 'mirror.example/moby/buildkit', spec: 'v0.18.2', rootless: false, tag: 'v0.18.2', digest: DIGEST, source: 'mirror.example/moby/buildkit', platforms: { 'linux/amd64': { manifest: DIGEST, config: ID_AMD64 }, 'linux/arm64': { manifest: DIGEST, config: ID_ARM64 } } } as unknown as Lockfile;
const SPEC: BuilderSpec = { name: 'ci', driver: 'docker-container', endpoint: '', daemon: 'default', image: IMAGE, digest: DIGEST, driverOpts: { image: IMAGE }, buildkitdFlags: [], configSha: 'c1', platforms: [], nodes: [] };
const INSPECT = readFileSync(new URL('../fixtures/buildx/inspect-current-bootstrapped.txt', import.meta.url), 'utf8').replaceAll('ci-builder', 'ci');

/** A daemon where `buildx create` records the builder and its container runs `image`. */
function daemon(t: Test, image: string) {
  const dir = t.testdir({});
  const env = { DOCKER_CONFIG: dir, HOME: dir };
  const instances = join(dir, 'buildx', 'instances');
  const calls: string[] = [];
  let exists = false;
  const runner: DockerRunner = {
    binary: 'docker',
    globalArgs: [],
    env: {},
    async run(args): Promise<CommandResult> {
      const command = `docker ${args.join(' ')}`;
      calls.push(args.join(' '));
      const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '', command });
      if (args[0] === 'buildx' && args[1] === 'create') {
        mkdirSync(instances, { recursive: true });
        writeFileSync(join(instances, 'ci'), JSON.stringify({ Name: 'ci', Driver: 'docker-container', Nodes: [{ Name: 'ci0', Endpoint: 'default', DriverOpts: { image: IMAGE }, Flags: [], Files: {} }] }));
        exists = true;
        return ok();
      }
      if (args[0] === 'buildx' && args[1] === 'inspect' && exists) return ok(INSPECT);
      if (args[0] === 'buildx' && args[1] === 'rm') {
        exists = false;
        return ok();
      }
      // The daemon lease (src/docker/leases.ts): made, listed (none other), removed.
      if (args[0] === 'create' && args.includes('buildx-bootstrap/lease:1')) return ok('lease-id\n');
      if (args[0] === 'ps' || (args[0] === 'rm' && args[2] === 'lease-id')) return ok();
      if (args[0] === 'container' && args[1] === 'inspect' && exists) return ok(args[3] === '{{.Image}}' ? `${image}\n` : `running ${image}\n`);
      return { exitCode: 1, stdout: '', stderr: `unexpected in this test: ${command}\n`, command };
    },
  };
  const input: BringUpInput = {
    runner,
    env,
    log: { level: 'quiet', info: () => undefined, warn: () => undefined, debug: () => undefined },
    buildxVersion: '0.38.2',
    spec: SPEC,
    configText: '',
    expectedImageId: ID_AMD64,
    endpointKey: 'default',
    createArgs: ['buildx', 'create', '--name', 'ci', '--driver', 'docker-container', '--bootstrap'],
    appendArgs: [],
    timeouts: { bootstrap: 60_000 },
    pinLock: LOCK,
  };
  return { input, calls, exists: () => exists };
}

const inspects = (calls: string[]): string[] => calls.filter((c) => c.startsWith('container inspect') || c.startsWith('buildx inspect'));

t.test('the pinned image seen running after create --bootstrap: one look, no buildx inspect', async (t) => {
  const d = daemon(t, ID_AMD64);
  const r = await bringUpBuilder(d.input);
  t.equal(r.decision.action, 'create');
  t.equal(r.info.nodes[0]?.status, 'running');
  t.same(inspects(d.calls), ['container inspect --format {{.State.Status}} {{.Image}} buildx_buildkit_ci0'], 'the image ID is not asked for twice');
});

for (const [what, image, looks] of [
  ["another platform's image of the pinned digest", ID_ARM64, ['container inspect --format {{.State.Status}} {{.Image}} buildx_buildkit_ci0', 'container inspect --format {{.Image}} buildx_buildkit_ci0']],
  ['an image that is not pinned at all (buildx is asked, then the image)', UNPINNED, ['container inspect --format {{.State.Status}} {{.Image}} buildx_buildkit_ci0', 'buildx inspect --bootstrap ci', 'container inspect --format {{.Image}} buildx_buildkit_ci0']],
] as const) {
  t.test(`a container on ${what} fails the bring-up and is removed`, async (t) => {
    const d = daemon(t, image);
    const error = await bringUpBuilder(d.input).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(error instanceof DockerError, String(error));
    t.match((error as Error).message, `builder container buildx_buildkit_ci0 runs image ${image}, expected the pinned ${ID_AMD64}`);
    t.same(inspects(d.calls), looks);
    t.notOk(d.exists(), 'no builder left behind');
  });
}
