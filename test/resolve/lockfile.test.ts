import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { isLockStale, lockDifferences, readLockfile, renderLockfile, writeLockfile, type Lockfile } from '../../src/resolve/lockfile.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const lock: Lockfile = {
  lockfileVersion: 1,
  image: 'docker.io/moby/buildkit',
  spec: '^0.18',
  rootless: false,
  tag: 'v0.18.2',
  digest: D('a'),
  source: 'harbor.example/hub/moby/buildkit',
  platforms: { 'linux/arm64': { manifest: D('c'), config: D('d') }, 'linux/amd64': { manifest: D('e'), config: D('f') } },
};

t.test('written as stable JSON with a trailing newline, read back the same, no temp file left', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'buildx-bootstrap.lock.json');
  await writeLockfile(file, lock);
  const text = readFileSync(file, 'utf8');
  t.ok(text.endsWith('}\n'));
  t.match(text, /^\{\n {2}"lockfileVersion": 1,\n {2}"image": "docker.io\/moby\/buildkit",\n {2}"spec": "\^0.18",/);
  t.ok(text.indexOf('linux/amd64') < text.indexOf('linux/arm64'), 'platforms sorted');
  t.same(await readLockfile(file), lock);
  t.equal(renderLockfile((await readLockfile(file))!), text, 'same bytes again');
  t.same(readdirSync(dir), ['buildx-bootstrap.lock.json']);
  t.equal(await readLockfile(join(dir, 'missing.json')), undefined);
});

t.test('any platform key survives write and read, `__proto__` included (it used to set the map\'s prototype and vanish)', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'buildx-bootstrap.lock.json');
  const platforms: Record<string, { manifest: string; config: string }> = {};
  Object.defineProperty(platforms, '__proto__', { value: { manifest: D('1'), config: D('2') }, enumerable: true, writable: true, configurable: true });
  platforms['linux/amd64'] = { manifest: D('e'), config: D('f') };
  await writeLockfile(file, { ...lock, platforms });
  t.match(readFileSync(file, 'utf8'), /"__proto__": \{/, 'written');
  const back = (await readLockfile(file))!;
  t.same(Object.keys(back.platforms!), ['__proto__', 'linux/amd64'], 'read back as a key');
  t.equal(Object.getPrototypeOf(back.platforms), Object.prototype, 'the map keeps its prototype');
  t.same(Object.getOwnPropertyDescriptor(back.platforms, '__proto__')?.value, { manifest: D('1'), config: D('2') });
});

t.test('a broken lockfile is a configuration error naming the file and each problem', async (t) => {
  const dir = t.testdir({ 'bad.json': '{"lockfileVersion": 1, "image": "docker.io/moby/buildkit", "spec": "^0.18", "rootless": "no", "tag": "v0.18.2", "digest": "md5:x", "source": "x"}', 'junk.json': '{' });
  const e = await readLockfile(join(dir, 'bad.json')).catch((x: unknown) => x);
  t.ok(e instanceof ConfigError);
  t.match((e as Error).message, /bad\.json: digest: .*bad\.json: rootless/);
  const j = await readLockfile(join(dir, 'junk.json')).catch((x: unknown) => x);
  t.match((j as Error).message, /junk\.json: cannot be parsed/);
});

t.test('stale when the spec, image or flavour changed', async (t) => {
  const config = defaultConfig();
  config.buildkit = { version: '^0.18', image: 'moby/buildkit', rootless: false };
  t.notOk(isLockStale(lock, config));
  config.buildkit = { version: '^0.19', image: 'docker.io/moby/buildkit', rootless: true };
  t.same(lockDifferences(lock, config), ['buildkit.version is "^0.19", the lockfile has "^0.18"', 'rootless is true, the lockfile has false']);
  config.buildkit = { version: '^0.18', image: 'harbor.example/moby/buildkit', rootless: false };
  t.same(lockDifferences(lock, config), ['image is harbor.example/moby/buildkit, the lockfile has docker.io/moby/buildkit']);
});
