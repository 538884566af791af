import t from 'tap';
import { builderIdentity, defaultBuilderName, withBuilderName, type FileHasher } from '../../src/builder/name.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';

const TOML = '[registry."docker.io"]\n  mirrors = ["mirror.example:5000"]\n';
const noFiles: FileHasher = async () => undefined;

async function nameOf(edit: (c: Config) => void = () => {}, toml = TOML, hasher: FileHasher = noFiles): Promise<string> {
  const c = defaultConfig();
  edit(c);
  return (await withBuilderName(c, async () => toml, hasher)).config.builder.name;
}

t.test('the default name is buildx-bootstrap-<8 hex> and the same for the same configuration', async (t) => {
  const a = await nameOf();
  t.match(a, /^buildx-bootstrap-[0-9a-f]{8}$/);
  t.equal(await nameOf(), a, 'same again');
  // Pinned value: a change of the hashing (a field added, another order) renames every user's
  // builder, so it has to be deliberate (bump `v` in name.ts and say so in the changelog).
  t.equal(a, 'buildx-bootstrap-a4f86e91', 'stable across machines and releases');
});

t.test('a user-set builder.name is kept as given', async (t) => {
  const r = await withBuilderName({ ...defaultConfig(), builder: { ...defaultConfig().builder, name: 'ci' } }, async () => t.fail('no render needed') as never);
  t.same([r.config.builder.name, r.derived], ['ci', false]);
});

t.test('each field that defines the builder changes the name', async (t) => {
  const base = await nameOf();
  const edits: [string, (c: Config) => void, string?][] = [
    ['driver kubernetes', (c) => (c.builder.driver = 'kubernetes')],
    ['buildkit.version', (c) => (c.buildkit.version = '^0.18')],
    ['buildkit.image', (c) => (c.buildkit.image = 'harbor.corp/moby/buildkit')],
    ['buildkit.rootless', (c) => (c.buildkit.rootless = true)],
    ['buildkitd.flags', (c) => (c.buildkitd.flags = ['--debug'])],
    ['builder.platforms', (c) => (c.builder.platforms = ['linux/amd64'])],
    ['builder.driverOpts', (c) => (c.builder.driverOpts = { network: 'host' })],
    ['builder.endpoint', (c) => (c.builder.endpoint = 'other-context')],
    ['builder.nodes', (c) => (c.builder.nodes = [{ endpoint: 'unix:///run/other.sock' }])],
    ['buildkitd.toml (mirrors, registries, base config)', () => {}, '[registry."docker.io"]\n  mirrors = ["other.example:5000"]\n'],
  ];
  const seen = new Set([base]);
  for (const [what, edit, toml] of edits) {
    const name = await nameOf(edit, toml ?? TOML);
    t.not(name, base, what);
    seen.add(name);
  }
  t.equal(seen.size, edits.length + 1, 'every variant has a name of its own');
});

t.test('what does not define the builder leaves the name alone', async (t) => {
  const base = await nameOf();
  t.equal(await nameOf((c) => (c.builder.driver = 'docker-container')), base, 'auto creates the same docker-container builder');
  t.equal(await nameOf((c) => ((c.timeouts.probe = 1), (c.lockfile = 'x.json'), (c.cache.dir = '/cache'), (c.upstream = false))), base, 'timeouts, lockfile, cache dir, upstream');
  t.equal(await nameOf((c) => (c.builder.driverOpts = { network: 'host', 'env.A': '1' })), await nameOf((c) => (c.builder.driverOpts = { 'env.A': '1', network: 'host' })), 'driver option order');
  t.equal(await nameOf((c) => (c.builder.platforms = ['linux/arm64', 'linux/amd64'])), await nameOf((c) => (c.builder.platforms = ['linux/amd64', 'linux/arm64'])), 'platform order');
});

t.test('file paths count by content: the same CA at another path on another machine gives the same name', async (t) => {
  const ca = (path: string) => `[registry."mirror.example:5000"]\n  ca = ["${path}"]\n`;
  const hasher = (content: string): FileHasher => async (p) => (p.endsWith('.pem') ? `sha256:${content}` : undefined);
  const here = await nameOf(() => {}, ca('/home/a/certs/ca.pem'), hasher('one'));
  t.equal(await nameOf(() => {}, ca('/builds/b/corp-ca.pem'), hasher('one')), here, 'other path, same content');
  t.not(await nameOf(() => {}, ca('/home/a/certs/ca.pem'), hasher('two')), here, 'same path, other content');
});

t.test('remote: only what buildx passes to a remote builder counts', async (t) => {
  const remote = (edit: (c: Config) => void = () => {}) => nameOf((c) => ((c.builder.driver = 'remote'), (c.builder.endpoint = 'tcp://127.0.0.1:1234'), edit(c)));
  t.equal(await remote((c) => (c.buildkit.version = 'v0.19.0')), await remote(), 'engine version is not passed to remote');
  t.not(await remote((c) => (c.builder.endpoint = 'tcp://127.0.0.1:4321')), await remote(), 'endpoint');
  const id = await builderIdentity({ ...defaultConfig(), builder: { ...defaultConfig().builder, driver: 'remote', driverOpts: { cacert: '/etc/ca.pem' } } }, TOML, async () => 'sha256:abc');
  t.same([id.driverOpts, id.buildkitdToml, id.image], [{ cacert: 'sha256:abc' }, '', '']);
  t.equal(defaultBuilderName(id), defaultBuilderName({ ...id }), 'pure');
});
