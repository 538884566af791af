// `lock`, `lock --check` and `resolve` with a lockfile, end to end against real docker-registry
// instances: the round trip, a stale lock, and a retagged (or tampered) tag → exit 4.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { startRefusingPort } from '../helpers/net.js';
import { engineImageForTag, pushEngineTags, pushImage, type EngineImage } from '../helpers/engine-image.js';

const REPO = 'moby/buildkit';

if (requireBinaries(t, ['docker-registry', 'openssl', 'busybox'])) {
  const project = (t: Test, config: Record<string, unknown>): { cwd: string; env: Record<string, string | undefined>; lockfile: string; setConfig(c: Record<string, unknown>): void } => {
    const cwd = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify(config) });
    mkdirSync(join(cwd, '.docker'));
    return {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, DOCKER_CONFIG: join(cwd, '.docker') },
      lockfile: join(cwd, 'buildx-bootstrap.lock.json'),
      setConfig: (c) => writeFileSync(join(cwd, '.buildx-bootstraprc.json'), JSON.stringify(c)),
    };
  };
  const cli = (p: { cwd: string; env: Record<string, string | undefined> }, ...argv: string[]): Promise<CliResult> => runCli(argv, p);
  const configDigest = (child: EngineImage['children'][number]): string => (JSON.parse(child.manifest.data.toString('utf8')) as { config: { digest: string } }).config.digest;
  const platformKey = (c: EngineImage['children'][number]): string => `${c.platform.os}/${c.platform.architecture}`;

  t.test('lock writes the pin; resolve keeps using it after a newer release appears', async (t) => {
    const upstream = await startRegistry(t);
    const images = await pushEngineTags(upstream.url, { tags: { 'v0.18.1': {}, 'v0.18.2': {}, 'v0.17.0': {} } });
    const image = `${upstream.host}/${REPO}`;
    const p = project(t, { buildkit: { version: '^0.18', image } });

    const locked = await cli(p, 'lock');
    t.equal(locked.code, 0, locked.stderr);
    t.equal(locked.stdout, `${image}:v0.18.2@${images['v0.18.2']!.digest}\n`, 'the reference on stdout');
    t.match(locked.stderr, p.lockfile, 'the lockfile path on stderr');
    const text = readFileSync(p.lockfile, 'utf8');
    t.ok(text.endsWith('}\n'), 'trailing newline');
    const lock = JSON.parse(text) as Record<string, unknown>;
    t.same(Object.keys(lock), ['lockfileVersion', 'image', 'spec', 'rootless', 'tag', 'digest', 'source', 'platforms']);
    t.match(lock, { lockfileVersion: 1, image, spec: '^0.18', rootless: false, tag: 'v0.18.2', digest: images['v0.18.2']!.digest, source: image });
    const children = images['v0.18.2']!.children;
    t.equal(children.length, 2, 'a multi-platform index');
    t.same(
      lock.platforms,
      Object.fromEntries(children.map((c) => [platformKey(c), { manifest: c.manifest.digest, config: configDigest(c) }]).sort(([a], [b]) => String(a).localeCompare(String(b)))),
      'per-platform manifest and config (image ID) digests',
    );

    // A newer satisfying release: the lock keeps every resolve on v0.18.2 until `lock` runs again.
    const newer = await pushEngineTags(upstream.url, { tags: { 'v0.18.3': {} } });
    const again = await cli(p, 'resolve');
    t.equal(again.code, 0, again.stderr);
    t.equal(again.stdout, locked.stdout);
    const check = await cli(p, 'lock', '--check');
    t.equal(check.code, 0, check.stderr);
    t.equal(readFileSync(p.lockfile, 'utf8'), text, '--check writes nothing');

    const relock = await cli(p, 'lock');
    t.equal(relock.code, 0, relock.stderr);
    t.equal(relock.stdout, `${image}:v0.18.3@${newer['v0.18.3']!.digest}\n`);
    const relocked = JSON.parse(readFileSync(p.lockfile, 'utf8')) as Record<string, unknown>;
    t.match(relocked, { tag: 'v0.18.3', digest: newer['v0.18.3']!.digest, spec: '^0.18' }, 'the new pin');
    t.same(Object.keys(relocked.platforms as object), Object.keys(lock.platforms as object));
  });

  t.test('lock --check: missing or stale lock → exit 4 naming what differs', async (t) => {
    const upstream = await startRegistry(t);
    await pushEngineTags(upstream.url, { tags: { 'v0.18.2': {}, 'v0.18.2-rootless': {} } });
    const image = `${upstream.host}/${REPO}`;
    const p = project(t, { buildkit: { version: '^0.18', image } });

    const missing = await cli(p, 'lock', '--check');
    t.equal(missing.code, 4);
    t.match(missing.stderr, new RegExp(`no lockfile at ${p.lockfile.replace(/[.]/g, '\\.')} — run buildx-bootstrap lock`));
    t.notOk(existsSync(p.lockfile));

    t.equal((await cli(p, 'lock')).code, 0);
    p.setConfig({ buildkit: { version: '~0.18.2', image, rootless: true } });
    const stale = await cli(p, 'lock', '--check');
    t.equal(stale.code, 4);
    t.match(stale.stderr, /is stale: buildkit\.version is "~0\.18\.2", the lockfile has "\^0\.18"; rootless is true, the lockfile has false/);
    t.equal(stale.stdout, '');

    // resolve with a stale lock warns and resolves afresh (only --check fails on it).
    const r = await cli(p, 'resolve');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /:v0\.18\.2-rootless@/);
    t.match(r.stderr, /does not match the configuration/);
  });

  t.test('a retagged locked tag is refused: exit 4 naming the registry and both digests', async (t) => {
    const upstream = await startRegistry(t);
    const images = await pushEngineTags(upstream.url, { tags: { 'v0.18.2': {} } });
    const image = `${upstream.host}/${REPO}`;
    const refusing = await startRefusingPort();
    const p = project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: refusing.host, for: upstream.host }], timeouts: { probe: '1500ms', hedge: '100ms' } });
    t.equal((await cli(p, 'lock')).code, 0);
    const locked = images['v0.18.2']!.digest;

    // Someone pushes different content under the same tag.
    const imposter = engineImageForTag('v0.18.2', { version: 'v0.18.2', platforms: ['linux/s390x'] });
    await pushImage(upstream.url, REPO, ['v0.18.2'], imposter);
    t.not(imposter.digest, locked);

    for (const argv of [['resolve'], ['resolve', '--json'], ['lock', '--check']]) {
      const r = await cli(p, ...argv);
      t.equal(r.code, 4, argv.join(' '));
      t.equal(r.stdout, '', argv.join(' '));
      const line = r.stderr.trim().split('\n').pop()!;
      t.ok(line.includes(upstream.host), 'names the registry');
      t.ok(line.includes(imposter.digest), 'the served digest');
      t.ok(line.includes(locked), 'the expected digest');
      t.match(line, /run buildx-bootstrap lock/);
    }
    t.same(JSON.parse(readFileSync(p.lockfile, 'utf8')).digest, locked, 'the lock is not touched');

    // Re-pinning on purpose accepts the new content.
    const relock = await cli(p, 'lock');
    t.equal(relock.code, 0, relock.stderr);
    t.equal(relock.stdout, `${image}:v0.18.2@${imposter.digest}\n`);
    t.equal((await cli(p, 'resolve')).code, 0);
  });

  t.test('with a lock a range resolves the locked tag on a mirror that lists other tags', async (t) => {
    const upstream = await startRegistry(t);
    const images = await pushEngineTags(upstream.url, { tags: { 'v0.18.1': {}, 'v0.18.2': {} } });
    const image = `${upstream.host}/${REPO}`;
    const p = project(t, { buildkit: { version: '^0.18', image }, upstream: true });
    t.equal((await cli(p, 'lock')).code, 0);
    // A mirror that only has v0.18.1 cached and v0.18.2: with the lock it is asked for v0.18.2 only.
    const mirror = await startRegistry(t);
    await pushImage(mirror.url, REPO, ['v0.18.1', 'v0.18.2'], images['v0.18.2']!);
    await pushImage(mirror.url, REPO, ['v0.18.1'], images['v0.18.1']!);
    p.setConfig({ buildkit: { version: '^0.18', image }, mirrors: [{ host: mirror.host, for: upstream.host }] });
    const r = await cli(p, 'resolve');
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${mirror.host}/${REPO}:v0.18.2@${images['v0.18.2']!.digest}\n`);
    await mirror.settle();
    t.same(mirror.requestLog().filter((l) => l.includes('/tags/list')), [], 'no tag listing with a lock');
  });
}
