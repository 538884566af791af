import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPlatforms, convertDockerArchive, layoutTagFor, ociLayoutContext, readTar, REF_NAME_ANNOTATION, type TarEntry } from '../../src/docker/oci-layout.js';
import { DockerError, UsageError } from '../../src/errors.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function entries(file: string): Promise<(TarEntry & { digest?: string })[]> {
  const out: (TarEntry & { digest?: string })[] = [];
  await readTar(createReadStream(file) as AsyncIterable<Buffer>, async (e, body) => {
    if (e.type !== 'file') {
      out.push(e);
      return;
    }
    const h = createHash('sha256');
    for await (const c of body) h.update(c);
    out.push({ ...e, digest: `sha256:${h.digest('hex')}` });
  });
  return out;
}

t.test('readTar reads what GNU tar writes: ustar prefix, gnu and pax long names, links, odd sizes', async (t) => {
  const root = t.testdir({});
  const src = join(root, 'src');
  const longDir = `${'d'.repeat(90)}/${'e'.repeat(90)}`;
  const longFile = `${'f'.repeat(120)}.txt`;
  mkdirSync(join(src, longDir), { recursive: true });
  const odd = randomBytes(1000);
  const big = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(join(src, longDir, longFile), odd);
  writeFileSync(join(src, 'big.bin'), big);
  writeFileSync(join(src, 'empty'), '');
  symlinkSync(`${longDir}/${longFile}`, join(src, 'link'));
  for (const format of ['gnu', 'pax', 'ustar']) {
    const archive = join(root, `a-${format}.tar`);
    const names = format === 'ustar' ? ['big.bin', 'empty'] : ['big.bin', 'empty', 'link', longDir];
    execFileSync('tar', ['--format', format, '-C', src, '-cf', archive, ...names]);
    const got = await entries(archive);
    const byName = new Map(got.map((e) => [e.name.replace(/\/$/, ''), e]));
    t.equal(byName.get('big.bin')?.digest, sha(big), `${format}: large file content`);
    t.equal(byName.get('big.bin')?.size, big.length);
    t.equal(byName.get('empty')?.size, 0, `${format}: empty file`);
    if (format === 'ustar') continue;
    t.same([byName.get('link')?.type, byName.get('link')?.linkname], ['symlink', `${longDir}/${longFile}`], `${format}: long symlink target`);
    t.equal(byName.get(`${longDir}/${longFile}`)?.digest, sha(odd), `${format}: long name and odd size`);
  }
  const ustarPrefix = join(root, 'prefix.tar');
  mkdirSync(join(src, 'p'.repeat(80), 'q'.repeat(60)), { recursive: true });
  writeFileSync(join(src, 'p'.repeat(80), 'q'.repeat(60), 'file'), 'x');
  execFileSync('tar', ['--format', 'ustar', '-C', src, '-cf', ustarPrefix, `${'p'.repeat(80)}/${'q'.repeat(60)}/file`]);
  t.ok((await entries(ustarPrefix)).some((e) => e.name === `${'p'.repeat(80)}/${'q'.repeat(60)}/file`), 'ustar prefix field joins the name');
});

t.test('readTar rejects what is not a tar archive', async (t) => {
  const dir = t.testdir({ 'junk.tar': 'x'.repeat(2048) });
  await t.rejects(entries(join(dir, 'junk.tar')), /header checksum mismatch/);
  const truncated = join(dir, 't.tar');
  const src = join(dir, 's');
  mkdirSync(src);
  writeFileSync(join(src, 'f'), randomBytes(5000));
  execFileSync('tar', ['-C', src, '-cf', truncated, 'f']);
  writeFileSync(truncated, readFileSync(truncated).subarray(0, 3000));
  await t.rejects(entries(truncated), /unexpected end of tar archive/);
});

/** A docker-save-shaped legacy archive (MOBY@v20.10.24 image/tarexport): layer dirs, config, manifest.json. */
function legacyArchive(dir: string, opts: { layers: Buffer[]; duplicateLastAsSymlink?: boolean; arch?: string; variant?: string; repoTag: string }): { archive: string; config: Buffer; diffIds: string[] } {
  const root = join(dir, 'save');
  mkdirSync(root, { recursive: true });
  const diffIds = opts.layers.map(sha);
  const config = Buffer.from(
    JSON.stringify({ architecture: opts.arch ?? 'amd64', ...(opts.variant ? { variant: opts.variant } : {}), os: 'linux', config: { Cmd: ['/busybox', 'true'] }, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configName = `${sha(config).slice(7)}.json`;
  writeFileSync(join(root, configName), config);
  const layerPaths: string[] = [];
  opts.layers.forEach((layer, i) => {
    const id = createHash('sha256').update(`layer${i}`).digest('hex');
    mkdirSync(join(root, id));
    writeFileSync(join(root, id, 'VERSION'), '1.0');
    writeFileSync(join(root, id, 'json'), '{}');
    if (opts.duplicateLastAsSymlink && i === opts.layers.length - 1 && i > 0) {
      symlinkSync(`../${layerPaths[0]!.split('/')[0]}/layer.tar`, join(root, id, 'layer.tar'));
    } else writeFileSync(join(root, id, 'layer.tar'), layer);
    layerPaths.push(`${id}/layer.tar`);
  });
  writeFileSync(join(root, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [opts.repoTag], Layers: layerPaths }]));
  writeFileSync(join(root, 'repositories'), '{}');
  const archive = join(dir, 'image.tar');
  execFileSync('tar', ['-C', root, '-cf', archive, ...readdirSync(root)]);
  return { archive, config, diffIds };
}

function layerTar(dir: string, name: string, content: Buffer): Buffer {
  const d = join(dir, `l-${name}`);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, name), content);
  const out = join(dir, `l-${name}.tar`);
  execFileSync('tar', ['-C', d, '-cf', out, name]);
  return readFileSync(out);
}

function readLayout(dir: string): { index: { manifests: { digest: string; mediaType: string; platform?: unknown; annotations?: Record<string, string> }[] }; blob: (d: string) => Buffer } {
  const blob = (d: string): Buffer => readFileSync(join(dir, 'blobs', 'sha256', d.slice(7)));
  return { index: JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')), blob };
}

t.test('convertDockerArchive turns a legacy docker save into a valid OCI layout', async (t) => {
  const dir = t.testdir({});
  const l1 = layerTar(dir, 'small', Buffer.from('hello'));
  const l2 = layerTar(dir, 'large', randomBytes(2 * 1024 * 1024));
  const { archive, config, diffIds } = legacyArchive(dir, { layers: [l1, l2, l1], duplicateLastAsSymlink: true, repoTag: 'local/app:dev' });
  const out = join(dir, 'layout');
  const work = join(dir, 'work');
  mkdirSync(work);
  const res = await convertDockerArchive(archive, out, 'app-dev', 'local/app:dev', work);
  t.same(res.platforms, ['linux/amd64']);
  t.same(JSON.parse(readFileSync(join(out, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const { index, blob } = readLayout(out);
  t.equal(index.manifests.length, 1);
  const desc = index.manifests[0]!;
  t.equal(desc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.same(desc.annotations, { [REF_NAME_ANNOTATION]: 'app-dev' });
  t.same(desc.platform, { os: 'linux', architecture: 'amd64' });
  t.equal(desc.digest, res.digest);
  const manifestBytes = blob(desc.digest);
  t.equal(sha(manifestBytes), desc.digest, 'manifest blob is content-addressed');
  const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string; size: number; mediaType: string }; layers: { digest: string; size: number; mediaType: string }[] };
  t.equal(manifest.config.digest, sha(config));
  t.equal(manifest.config.size, config.length);
  t.same(blob(manifest.config.digest), config, 'config bytes kept exactly (its digest is the image ID)');
  t.same(manifest.layers.map((l) => l.digest), diffIds, 'uncompressed layers: digests are the diff_ids, the symlinked duplicate included');
  t.same(manifest.layers.map((l) => l.mediaType), Array(3).fill('application/vnd.oci.image.layer.v1.tar'));
  for (const l of manifest.layers) t.equal(sha(blob(l.digest)), l.digest);
  const blobs = readdirSync(join(out, 'blobs', 'sha256'));
  t.equal(blobs.length, 4, 'two distinct layers + config + manifest, nothing else');
  t.same(readdirSync(work), [], 'staged layer files were moved into blobs/, none left behind');

  // A second image shares the layout; re-exporting a tag replaces only that tag.
  const dir2 = join(dir, 'second');
  mkdirSync(dir2);
  const arm = legacyArchive(dir2, { layers: [l1], arch: 'arm', variant: 'v7', repoTag: 'local/tool:1' });
  const res2 = await convertDockerArchive(arm.archive, out, 'tool-1', 'local/tool:1', work);
  t.same(res2.platforms, ['linux/arm/v7']);
  await convertDockerArchive(arm.archive, out, 'tool-1', 'local/tool:1', work);
  const tags = readLayout(out).index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]);
  t.same(tags, ['app-dev', 'tool-1']);
});

t.test('convertDockerArchive refuses inconsistent archives with a DockerError', async (t) => {
  const dir = t.testdir({});
  const l1 = layerTar(dir, 'small', Buffer.from('hello'));
  const { archive } = legacyArchive(dir, { layers: [l1], repoTag: 'x:1' });
  // Corrupt the diff_id in the config by rebuilding with a different layer list.
  const root = join(dir, 'save');
  const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  manifest[0]!.Layers.push('nope/layer.tar');
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest));
  execFileSync('tar', ['-C', root, '-cf', archive, ...readdirSync(root)]);
  const work = join(dir, 'w');
  mkdirSync(work);
  await t.rejects(convertDockerArchive(archive, join(dir, 'out'), 't', 'x:1', work), DockerError);
  await t.rejects(convertDockerArchive(archive, join(dir, 'out'), 't', 'x:1', work), { message: /docker save x:1 produced an archive we cannot read: 2 layers but 1 diff_ids/ });
});

t.test('checkPlatforms names the image and the missing platform', async (t) => {
  t.doesNotThrow(() => checkPlatforms(['linux/amd64'], ['linux/amd64']));
  t.doesNotThrow(() => checkPlatforms(['linux/arm64'], ['linux/aarch64', 'linux/arm64/v8']), 'platforms compare normalised');
  t.doesNotThrow(() => checkPlatforms(['linux/amd64'], []));
  let err: unknown;
  try {
    checkPlatforms(['linux/amd64'], ['linux/amd64', 'linux/arm64'], 'local/app:dev');
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof UsageError);
  t.equal((err as UsageError).message, 'local image local/app:dev is linux/amd64 only, but the build needs it for linux/arm64');
  t.match((err as UsageError).hint, /build or load local\/app:dev for linux\/arm64/);
});

t.test('layout tags and context values', async (t) => {
  const tag = layoutTagFor('docker.io/library/alpine:3.20');
  t.match(tag, /^alpine-3\.20-[0-9a-f]{8}$/);
  t.not(layoutTagFor('a.example/x/alpine:3.20'), tag, 'different references get different tags');
  t.match(layoutTagFor(`ghcr.io/a/b@sha256:${'a'.repeat(64)}`), /^b-[0-9a-f]{8}$/);
  t.equal(ociLayoutContext('/tmp/bxb-l', 'alpine-1'), 'oci-layout:///tmp/bxb-l:alpine-1');
});

// Found by test/properties/oci-layout.test.ts: shapes of manifest.json and the config that were TypeErrors.
t.test('a docker save archive with a null image entry or an empty platform is a DockerError', async (t) => {
  const root = t.testdir({});
  const archive = (files: Record<string, string>, name: string): string => {
    const src = join(root, `${name}-src`);
    mkdirSync(src, { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(src, f), text);
    const file = join(root, `${name}.tar`);
    execFileSync('tar', ['-C', src, '-cf', file, ...Object.keys(files)]);
    return file;
  };
  const convert = (file: string, name: string) => {
    mkdirSync(join(root, `${name}-work`), { recursive: true });
    return convertDockerArchive(file, join(root, `${name}-layout`), 'x', 'app:1', join(root, `${name}-work`));
  };
  await t.rejects(convert(archive({ 'manifest.json': '[null]' }, 'null'), 'null'), { name: 'DockerError', message: /^docker save app:1 produced an archive we cannot read: manifest.json names no image$/ });
  await t.rejects(convert(archive({ 'manifest.json': '{}' }, 'obj'), 'obj'), { name: 'DockerError', message: /manifest.json is not a list of images/ });
  const config = JSON.stringify({ os: '', architecture: '', rootfs: { diff_ids: [] } });
  await t.rejects(convert(archive({ 'manifest.json': JSON.stringify([{ Config: 'c.json', Layers: [] }]), 'c.json': config }, 'plat'), 'plat'), { name: 'DockerError', message: /c\.json has no usable platform/ });
});

t.test('a multi-platform save (the containerd store writes one manifest.json entry per platform): the platforms the build needs', async (t) => {
  const dir = t.testdir({});
  const root = join(dir, 'save');
  mkdirSync(root);
  const entry = (arch: string): { Config: string; RepoTags: string[]; Layers: string[] } => {
    const layer = layerTar(dir, arch, Buffer.from(`only on ${arch}`));
    const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
    writeFileSync(join(root, `${sha(config).slice(7)}.json`), config);
    writeFileSync(join(root, `${sha(layer).slice(7)}.tar`), layer);
    return { Config: `${sha(config).slice(7)}.json`, RepoTags: ['local/multi:1'], Layers: [`${sha(layer).slice(7)}.tar`] };
  };
  writeFileSync(join(root, 'manifest.json'), JSON.stringify([entry('amd64'), entry('arm64')]));
  const archive = join(dir, 'image.tar');
  execFileSync('tar', ['-C', root, '-cf', archive, ...readdirSync(root)]);
  const work = join(dir, 'work');
  mkdirSync(work);

  const arm = await convertDockerArchive(archive, join(dir, 'arm'), 'm', 'local/multi:1', work, ['linux/arm64']);
  t.same(arm.platforms, ['linux/arm64'], 'the platform asked for, not the first in the archive');
  const armLayout = readLayout(join(dir, 'arm'));
  t.same(armLayout.index.manifests[0]!.platform, { os: 'linux', architecture: 'arm64' });
  t.equal(readdirSync(join(dir, 'arm', 'blobs', 'sha256')).length, 3, 'only its layer, config and manifest: nothing of amd64');

  const both = await convertDockerArchive(archive, join(dir, 'both'), 'm', 'local/multi:1', work, ['linux/arm64', 'linux/amd64']);
  t.same(both.platforms.sort(), ['linux/amd64', 'linux/arm64'], 'both platforms');
  const layout = readLayout(join(dir, 'both'));
  const top = layout.index.manifests[0]!;
  t.equal(top.mediaType, 'application/vnd.oci.image.index.v1+json', 'the tag names an index of them');
  t.same(top.annotations, { [REF_NAME_ANNOTATION]: 'm' });
  const nested = JSON.parse(layout.blob(top.digest).toString()) as { manifests: { platform: { architecture: string } }[] };
  t.same(nested.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  t.doesNotThrow(() => checkPlatforms(both.platforms, ['linux/amd64', 'linux/arm64']), 'and checkPlatforms is satisfied');

  const none = await convertDockerArchive(archive, join(dir, 'none'), 'm', 'local/multi:1', work);
  t.same(none.platforms, ['linux/amd64'], 'no platform asked: the first image, as before');
});

t.test('a save that holds an OCI layout (containerd store, dockerd 25+): its own manifest is kept, with the store\'s digest', async (t) => {
  const dir = t.testdir({});
  const root = join(dir, 'save');
  mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
  const blob = (b: Buffer): string => {
    writeFileSync(join(root, 'blobs', 'sha256', sha(b).slice(7)), b);
    return sha(b);
  };
  const raw = layerTar(dir, 'gz', Buffer.from('compressed in the store'));
  const gz = (await import('node:zlib')).gzipSync(raw);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(raw)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blob(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blob(gz), size: gz.length }],
      annotations: { 'org.example.kept': 'yes' },
    }),
  );
  const manifestDigest = blob(manifest);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] }));
  const indexDigest = blob(index);
  writeFileSync(join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'io.containerd.image.name': 'docker.io/local/app:1' } }] }));
  writeFileSync(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(root, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${sha(config).slice(7)}`, RepoTags: ['local/app:1'], Layers: [`blobs/sha256/${sha(gz).slice(7)}`] }]));
  const archive = join(dir, 'image.tar');
  execFileSync('tar', ['-C', root, '-cf', archive, ...readdirSync(root)]);
  const work = join(dir, 'work');
  mkdirSync(work);
  const res = await convertDockerArchive(archive, join(dir, 'layout'), 'app', 'local/app:1', work);
  t.equal(res.digest, manifestDigest, 'the layout names the store\'s own manifest, not a rebuilt one');
  const layout = readLayout(join(dir, 'layout'));
  t.same(layout.blob(manifestDigest), manifest, 'byte for byte (its annotations and layer media types kept)');
  t.same(layout.index.manifests[0]!.platform, { os: 'linux', architecture: 'amd64' });
});
