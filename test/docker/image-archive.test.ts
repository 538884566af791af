// A `docker save` archive read without loading it: the engine-image cache accepts a tar by the
// config it carries for the daemon's platform (src/docker/engine-image.ts refuseCachedTar), in
// both layouts the stores write — dockerd 20.10's legacy one and the OCI one of dockerd 25+, whose
// legacy paths are symlinks into blobs/.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImageArchive } from '../../src/docker/image-archive.js';
import { refuseCachedTar } from '../../src/docker/engine-image.js';
import { writeTar, type TarEntry } from '../helpers/engine-image.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const layer = Buffer.from('pretend layer tar');
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] } }));
const CONFIG = `sha256:${sha(config)}`;

function legacy(over: { layers?: string[]; config?: Buffer } = {}): TarEntry[] {
  const c = over.config ?? config;
  return [
    { name: `${sha(c)}.json`, type: 'file', data: c },
    { name: 'abc', type: 'dir' },
    { name: 'abc/layer.tar', type: 'file', data: layer },
    { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([{ Config: `${sha(c)}.json`, RepoTags: ['r/buildkit:v1'], Layers: over.layers ?? ['abc/layer.tar'] }])) },
  ];
}

function oci(): TarEntry[] {
  return [
    { name: 'blobs', type: 'dir' },
    { name: 'blobs/sha256', type: 'dir' },
    { name: `blobs/sha256/${sha(config)}`, type: 'file', data: config },
    { name: `blobs/sha256/${sha(layer)}`, type: 'file', data: layer },
    { name: 'abc', type: 'dir' },
    { name: 'abc/layer.tar', type: 'symlink', linkname: `../blobs/sha256/${sha(layer)}` },
    { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${sha(config)}`, RepoTags: null, Layers: ['abc/layer.tar'] }])) },
  ];
}

function tar(t: Test, entries: TarEntry[]): string {
  const file = join(t.testdir({}), 'image.tar');
  writeFileSync(file, writeTar(entries));
  return file;
}

t.test('legacy and OCI archives: the config digest is hashed from the archive, with platform and diff_ids', async (t) => {
  for (const [name, entries] of [['legacy', legacy()], ['oci', oci()]] as const) {
    const images = await readImageArchive(tar(t, entries));
    t.same(images.map((i) => ({ config: i.config, platform: i.platform, diffIds: i.diffIds })), [{ config: CONFIG, platform: 'linux/amd64', diffIds: [`sha256:${sha(layer)}`] }], name);
    t.equal(await refuseCachedTar(tar(t, entries), { expectedImageId: CONFIG, platform: 'linux/amd64' }), undefined, `${name}: the locked config is accepted`);
  }
});

t.test('anything but the locked image is refused, saying what the tar holds', async (t) => {
  const other = `sha256:${'e'.repeat(64)}`;
  t.equal(
    await refuseCachedTar(tar(t, legacy()), { expectedImageId: other, platform: 'linux/amd64' }),
    `holds linux/amd64 config ${CONFIG}, the lockfile expects config ${other} for linux/amd64`,
  );
  // A config file named after the locked digest but with other bytes: the name is not trusted.
  const forged = legacy();
  forged[0] = { name: `${other.slice(7)}.json`, type: 'file', data: config };
  forged[3] = { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([{ Config: `${other.slice(7)}.json`, Layers: ['abc/layer.tar'] }])) };
  t.match(await refuseCachedTar(tar(t, forged), { expectedImageId: other, platform: 'linux/amd64' }), /^holds linux\/amd64 config sha256:/, 'a file name claiming the locked digest is not enough');
  t.match(await refuseCachedTar(tar(t, legacy({ layers: ['abc/missing.tar'] })), { expectedImageId: CONFIG }), /^cannot be read \(abc\/missing\.tar is missing from the archive\)$/, 'a layer missing from the tar');
  t.match(await refuseCachedTar(tar(t, legacy({ layers: ['abc/layer.tar', 'abc/layer.tar'] })), { expectedImageId: CONFIG }), /lists 1 diff_ids, manifest\.json 2 layers/, 'layers and diff_ids disagree');
  const cut = writeTar(legacy()).subarray(0, 1024 + 300);
  const truncated = join(t.testdir({}), 'cut.tar');
  writeFileSync(truncated, cut);
  t.match(await refuseCachedTar(truncated, { expectedImageId: CONFIG }), /^cannot be read/, 'a truncated tar');
});

t.test('the cache path reads the tar once: the early load checks it, loadFromCache takes that answer (fake runner)', async (t) => {
  const { mkdirSync } = await import('node:fs');
  const { cacheFiles, findLocalEngineImage, startCacheLoad } = await import('../../src/docker/engine-image.js');
  const { fakeRunner } = await import('../helpers/fake-runner.js');
  const dir = t.testdir({});
  const digest = `sha256:${'d'.repeat(64)}`;
  const files = cacheFiles(dir, digest);
  mkdirSync(dir, { recursive: true });
  writeFileSync(files.tar, writeTar(legacy()));
  writeFileSync(files.meta, JSON.stringify({ reference: `r/buildkit:v1@${digest}`, imageId: CONFIG }));
  let loaded = false;
  const runner = fakeRunner((args) => {
    if (args[0] === 'load') {
      loaded = true;
      // The file changes once the daemon has it: a second read would find no image in it.
      writeFileSync(files.tar, 'not a tar any more');
      return { stdout: `Loaded image: r/buildkit:v1\n` };
    }
    if (args[0] === 'image' && args[1] === 'inspect') return loaded && args[4] === 'r/buildkit:v1' ? { stdout: `${CONFIG}\n` } : { exitCode: 1, stderr: 'No such image' };
    return {};
  });
  const preload = startCacheLoad(runner, dir, digest, [CONFIG], { timeoutMs: 10_000 });
  t.ok(preload, 'the early load starts');
  await preload!.done;
  const log = { info: () => undefined, warn: (m: string) => t.fail(m), debug: () => undefined, level: 'normal' as const };
  const target = { reference: `r/buildkit:v1@${digest}`, repoTag: 'r/buildkit:v1', digest, expectedImageId: CONFIG, platform: 'linux/amd64' };
  const local = await findLocalEngineImage(runner, target, { cacheDir: dir, log, timeoutMs: 10_000, preload });
  t.match(local, { how: 'cache', imageId: CONFIG }, 'accepted by the content the early load read');
  t.equal(runner.calls.filter((c) => c[0] === 'load').length, 1, 'loaded once');
});
