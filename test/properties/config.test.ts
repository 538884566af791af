// Property tests of what the user configures: config files (JSON, YAML), BUILDX_BOOTSTRAP_*
// variables, the lockfile, buildkitd.toml (the user's base file and our rendering of it), and the
// build-argument rewrite of prefix mode. Bad input ends in a one-line ConfigError/UsageError
// (exit 2) naming the file (and, for a file that does not parse, the line); round trips hold.
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import t from 'tap';
import { renderBuildkitdConfig } from '../../src/buildkitd/render.js';
import { environmentLayer, ENVIRONMENT, loadConfig } from '../../src/config/load.js';
import { validateConfigLayer, type MirrorConfig } from '../../src/config/schema.js';
import { rewriteBuildCommand } from '../../src/driver/build-args.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';
import { LOCKFILE_VERSION, parseLockfile, readLockfile, renderLockfile, writeLockfile, type Lockfile } from '../../src/resolve/lockfile.js';
import { bytesAsText, endsWell, endsWellAsync, hostileString, runs } from '../helpers/properties.js';

const keyish = fc.oneof(fc.constantFrom('buildkit', 'version', 'image', 'mirrors', 'host', 'path', 'for', 'ca', 'http', 'insecure', 'builder', 'driver', 'platforms', 'registries', 'timeouts', 'probe', 'cache', 'dir', 'lockfile', '__proto__', 'constructor', 'toString'), hostileString(10));
/** JSON-like values shaped a little like our config: the right keys with the wrong things in them. */
const configish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.jsonValue({ maxDepth: 2 }), tie('object'), fc.array(tie('value'), { maxLength: 4 })),
  object: fc.dictionary(keyish, tie('value'), { maxKeys: 5 }),
})).value;

t.test('any config layer validates into problems, never an exception', async () => {
  fc.assert(
    fc.property(configish, (raw) => {
      const problems: ConfigProblem[] = [];
      validateConfigLayer(raw, 'buildx-bootstrap.json', problems);
      for (const p of problems) if (p.source !== 'buildx-bootstrap.json' || typeof p.message !== 'string') throw new Error(`bad problem ${JSON.stringify(p)}`);
    }),
    runs(1500),
  );
  // Deep nesting: a 10,000-level document is rejected, not a stack overflow.
  let deep: unknown = 'x';
  for (let i = 0; i < 10_000; i++) deep = { buildkit: deep };
  validateConfigLayer(deep, 'deep.json', []);
});

t.test('config files of any content load or fail with exit 2 naming the file (and the line when it does not parse)', async (t) => {
  const dir = t.testdir();
  let n = 0;
  const seed = JSON.stringify({ buildkit: { version: '^0.18' }, mirrors: [{ host: 'harbor.corp', path: 'proxy' }] }, null, 2);
  const text = fc.oneof(bytesAsText(400), hostileString(300), fc.tuple(fc.nat(seed.length), hostileString(6)).map(([at, s]) => seed.slice(0, at) + s + seed.slice(at)), configish.map((v) => JSON.stringify(v) ?? ''));
  await fc.assert(
    fc.asyncProperty(text, fc.constantFrom('.json', '.yaml'), async (content, ext) => {
      const file = join(dir, `c${n++}${ext}`);
      writeFileSync(file, content);
      await endsWellAsync(async () => {
        try {
          return await loadConfig({ cwd: dir, env: {}, configFile: file });
        } catch (e) {
          if (e instanceof ConfigError) {
            for (const p of e.problems) {
              if (p.message.startsWith('cannot be parsed') && !/\d+:\d+|line \d+/.test(p.message)) throw new Error(`parse error without a line: ${p.message}`);
            }
          }
          throw e;
        }
      }, 2, new RegExp(`^invalid configuration.*${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }),
    runs(150),
  );
});

t.test('BUILDX_BOOTSTRAP_* variables of any value load or fail with exit 2 naming the environment', async (t) => {
  const dir = t.testdir();
  const names = fc.constantFrom(...Object.keys(ENVIRONMENT).map((k) => `BUILDX_BOOTSTRAP_${k}`), 'BUILDX_BOOTSTRAP_NOPE', 'BUILDX_BOOTSTRAP_', 'BUILDX_BOOTSTRAP___proto__');
  await fc.assert(
    fc.asyncProperty(fc.dictionary(names, hostileString(60), { maxKeys: 6 }), async (env) => {
      const problems: ConfigProblem[] = [];
      environmentLayer(env, problems);
      await endsWellAsync(() => loadConfig({ cwd: dir, env }), 2, /^invalid configuration.*(environment|configuration): /);
    }),
    runs(300),
  );
});

const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
const lockfile: fc.Arbitrary<Lockfile> = fc.record(
  {
    lockfileVersion: fc.constant(LOCKFILE_VERSION),
    image: fc.constantFrom('docker.io/moby/buildkit', 'harbor.corp/proxy/moby/buildkit'),
    spec: fc.oneof(fc.constantFrom('^0.18', 'v0.18.2', 'buildx-stable-1', 'latest'), hostileString(20).filter((s) => s.length > 0)),
    rootless: fc.boolean(),
    tag: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}$/),
    digest,
    source: fc.constantFrom('docker.io/moby/buildkit', '127.0.0.1:5000/moby/buildkit'),
    platforms: fc.dictionary(fc.oneof(fc.constantFrom('linux/amd64', 'linux/arm64', 'linux/arm/v7'), hostileString(12)), fc.record({ manifest: digest, config: digest }), { maxKeys: 4 }),
    config: digest,
  },
  { requiredKeys: ['lockfileVersion', 'image', 'spec', 'rootless', 'tag', 'digest', 'source'] },
);

t.test('lockfile: write → read is the identity; any other text is exit 2 naming the file', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'buildx-bootstrap.lock');
  await fc.assert(
    fc.asyncProperty(lockfile, async (lock) => {
      await writeLockfile(file, lock);
      const back = await readLockfile(file);
      const want = { ...lock };
      if (want.platforms && Object.keys(want.platforms).length === 0) delete want.platforms;
      t.strictSame(back, want);
      if (renderLockfile(back!) !== renderLockfile(lock)) throw new Error('rendering is not stable');
    }),
    runs(200),
  );
  const seed = renderLockfile(fc.sample(lockfile, { numRuns: 1, seed: 1 })[0]!);
  const broken = fc.oneof(bytesAsText(300), fc.tuple(fc.nat(seed.length), fc.nat(30), hostileString(8)).map(([at, cut, s]) => seed.slice(0, at) + s + seed.slice(at + cut)), configish.map((v) => JSON.stringify(v) ?? ''));
  fc.assert(fc.property(broken, (text) => void endsWell(() => parseLockfile(text, '/repo/buildx-bootstrap.lock'), 2, /^invalid configuration.*\/repo\/buildx-bootstrap\.lock: /)), runs(800));
});

const host = fc.constantFrom('harbor.corp', 'harbor.corp:8443', '127.0.0.1:5000', 'mirror.gcr.io', '[::1]:5000', 'registry.example');
const mirror: fc.Arbitrary<MirrorConfig> = fc.record({
  host,
  path: fc.constantFrom('', 'proxy', 'dockerhub-proxy/sub', '/a/'),
  for: fc.constantFrom('docker.io', 'ghcr.io', 'quay.io'),
  ca: fc.constantFrom('', '/etc/ssl/corp.pem'),
  http: fc.boolean(),
  insecure: fc.boolean(),
});

t.test('buildkitd.toml: render → parse → render is stable, and a hostile base file ends in exit 2 naming it', async () => {
  // Every generated configuration is valid (absolute CA paths, known hosts): each one must render.
  fc.assert(
    fc.property(fc.array(mirror, { maxLength: 5 }), fc.dictionary(host, fc.record({ http: fc.boolean(), insecure: fc.boolean() }), { maxKeys: 3 }), (mirrors, registries) => {
      const first = renderBuildkitdConfig({ mirrors, registries });
      const parsed = parse(first);
      const again = renderBuildkitdConfig({ mirrors: [], registries: {}, base: { text: first, file: '/b/buildkitd.toml' } });
      if (JSON.stringify(parse(again)) !== JSON.stringify(parsed)) throw new Error(`not stable:\n${first}\n---\n${again}`);
      if (renderBuildkitdConfig({ mirrors: [], registries: {}, base: { text: again, file: '/b/buildkitd.toml' } }) !== again) throw new Error('second render differs');
    }),
    runs(400),
  );
  const seed = '[registry."docker.io"]\nmirrors = [ "harbor.corp" ]\n[worker.oci]\nmax-parallelism = 4\n';
  const base = fc.oneof(bytesAsText(300), fc.tuple(fc.nat(seed.length), fc.nat(10), hostileString(8)).map(([at, cut, s]) => seed.slice(0, at) + s + seed.slice(at + cut)));
  fc.assert(
    fc.property(base, fc.array(mirror, { maxLength: 2 }), (text, mirrors) => {
      endsWell(() => renderBuildkitdConfig({ mirrors, registries: {}, base: { text, file: '/b/buildkitd.toml' } }), 2, /\/b\/buildkitd\.toml/);
    }),
    runs(600),
  );
});

t.test('the build-argument rewrite inserts exactly --builder and the contexts after the subcommand, every user argument kept', async (t) => {
  // User arguments never name a builder by accident; whether the user chose one is generated.
  const userArg = fc.oneof(
    fc.constantFrom('--platform', 'linux/amd64,linux/arm64', '-t', 'app:1', '--build-arg', 'X=$Y "q"', '-f', '-', '--', '.', '--build-context', 'a=b', '--load', '--push'),
    hostileString(15).filter((s) => !s.startsWith('--builder')),
  );
  const heads = [['docker', 'buildx', 'build'], ['docker', 'build'], ['docker', '--context', 'x', 'buildx', 'build'], ['docker', 'buildx', 'bake']];
  let rewritten = 0;
  let total = 0;
  fc.assert(
    fc.property(fc.constantFrom(...heads), fc.boolean(), fc.array(userArg, { maxLength: 12 }), fc.dictionary(fc.constantFrom('alpine', 'base', 'ghcr.io/a/b:1'), fc.constantFrom('oci-layout:///tmp/x:alpine'), { maxKeys: 2 }), (head, chose, more, contexts) => {
      total++;
      const rest = chose ? ['--builder', 'mine', ...more] : more;
      const argv = [...head, ...rest];
      const out = endsWell(() => rewriteBuildCommand(argv, { builder: 'bxb', addBuildContexts: contexts }), 2, /./);
      const named = Object.entries(contexts);
      if (head.includes('bake') && named.length > 0) {
        if (out !== undefined) throw new Error(`build contexts were added to bake: ${JSON.stringify(out)}`);
        return;
      }
      if (out === undefined) return; // a malformed user flag (e.g. -t with no value): exit 2, checked by endsWell
      rewritten++;
      const inserted = [...(chose ? [] : ['--builder', 'bxb']), ...named.flatMap(([name, value]) => ['--build-context', `${name}=${value}`])];
      const want = [...head, ...inserted, ...rest];
      if (JSON.stringify(out) !== JSON.stringify(want)) throw new Error(`rewrote ${JSON.stringify(argv)}\n  into ${JSON.stringify(out)}\n  want ${JSON.stringify(want)}`);
    }),
    runs(800),
  );
  // A rewrite that always refused would pass the loop above: most generated commands are fine.
  t.ok(rewritten >= total * 0.5, `${rewritten} of ${total} generated commands were rewritten`);
});
