// Local image → OCI image layout directory, so a container builder can use an image that exists
// only in the daemon's store: buildx passes `--build-context name=oci-layout://<dir>:<tag>` from
// the client (BX `build/opt.go`, `util/ocilayout/parse.go`), and resolves `<tag>` through the
// `org.opencontainers.image.ref.name` annotation in index.json (BK `client/ociindex/ociindex.go`
// `StoreIndex.Get`).
//
// dockerd 20.10's `docker save` writes the legacy format (manifest.json + `<id>.json` config +
// `<layer>/layer.tar`, no index.json or oci-layout; MOBY@v20.10.24 `image/tarexport/save.go`), so
// we rebuild a valid OCI layout from it: config and uncompressed layers become blobs under
// `blobs/sha256/`, a fresh OCI manifest is written, and index.json names it with the tag. Newer
// daemons (25+) save an OCI layout whose manifest.json points into `blobs/`; the same path works.
// The archive is streamed through the small tar reader of ./tar.ts, one layer at a time, hashing
// as it goes; no layer is held in memory.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BxbError, DockerError, UsageError } from '../errors.js';
import { isValidTag } from '../registry/reference.js';
import { normalizePlatform } from '../dockerfile/platform.js';
import { saveImage } from './images.js';
import { MEDIA_TYPE, REF_NAME_ANNOTATION, parseManifest, type Descriptor } from './oci-image.js';
import type { DockerRunner } from './runner.js';
import { readTar } from './tar.js';

export { MEDIA_TYPE, REF_NAME_ANNOTATION } from './oci-image.js';
export { readTar, type TarEntry } from './tar.js';

// ---- conversion ---------------------------------------------------------------------------------

interface Staged {
  /** Small files kept in memory. */
  data?: Buffer;
  /** Larger files streamed to a temporary file. */
  file?: string;
  digest: string;
  size: number;
  /** First bytes, to recognise compressed layers. */
  head: Buffer;
}

interface LegacyManifestEntry {
  Config?: string;
  RepoTags?: string[] | null;
  Layers?: string[];
}

interface ImageConfig {
  os?: string;
  architecture?: string;
  variant?: string;
  rootfs?: { diff_ids?: string[] };
}

const IN_MEMORY_LIMIT = 1 << 20;

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MEDIA_TYPE.layerGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return MEDIA_TYPE.layerZstd;
  return MEDIA_TYPE.layer;
}

async function stageEntry(body: AsyncIterable<Buffer>, size: number, tmpFile: string): Promise<Staged> {
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  let written = 0;
  const tap = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      hash.update(chunk);
      written += chunk.length;
      if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
      yield chunk;
    }
  };
  if (size <= IN_MEMORY_LIMIT) {
    const parts: Buffer[] = [];
    for await (const chunk of tap()) parts.push(chunk);
    return { data: Buffer.concat(parts), digest: `sha256:${hash.digest('hex')}`, size: written, head };
  }
  await pipeline(Readable.from(tap()), createWriteStream(tmpFile, { flags: 'wx' }));
  return { file: tmpFile, digest: `sha256:${hash.digest('hex')}`, size: written, head };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function putBlob(blobsDir: string, staged: Staged): Promise<void> {
  const target = join(blobsDir, staged.digest.slice('sha256:'.length));
  if (await exists(target)) {
    if (staged.file) await rm(staged.file, { force: true });
    return;
  }
  if (staged.file) await rename(staged.file, target);
  else await writeAtomic(target, staged.data ?? Buffer.alloc(0));
}

async function putBytes(blobsDir: string, data: Buffer): Promise<Descriptor & { digest: string }> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  await putBlob(blobsDir, { data, digest, size: data.length, head: data.subarray(0, 4) });
  return { mediaType: '', digest, size: data.length };
}

export interface OciLayoutResult {
  dir: string;
  tag: string;
  /** Platforms the layout holds for this tag (`linux/amd64`). */
  platforms: string[];
  /** Digest of the manifest index.json points at for the tag. */
  digest: string;
}

/**
 * Saves a local image with `docker save` and writes it into `dir` as an OCI image layout under
 * `tag`. Other tags already in `dir` are kept, so several images can share one layout (blobs are
 * de-duplicated). Throws a DockerError when docker fails or its archive is inconsistent.
 */
export async function exportOciLayout(runner: DockerRunner, ref: string, dir: string, tag: string, platforms: string[] = []): Promise<OciLayoutResult> {
  if (!isValidTag(tag)) throw new UsageError(`invalid OCI layout tag "${tag}"`, { hint: 'use letters, digits, _ . - (up to 128)' });
  const work = join(dir, `.bxb-save-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(work, { recursive: true });
    const archive = join(work, 'image.tar');
    await saveImage(runner, ref, archive);
    return await convertDockerArchive(archive, dir, tag, ref, work, platforms);
  } catch (e) {
    if (e instanceof BxbError) throw e;
    throw new DockerError(`exporting ${ref} as an OCI layout to ${dir} failed: ${(e as Error).message}`, {
      hint: 'check free space and permissions of the layout directory',
      cause: e,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Converts a `docker save` archive (legacy or OCI flavour) into an OCI layout in `dir` under `tag`. */
export async function convertDockerArchive(archive: string, dir: string, tag: string, ref: string, workDir: string, platforms: string[] = []): Promise<OciLayoutResult> {
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const files = new Map<string, Staged>();
  const links = new Map<string, string>();
  let n = 0;
  const bad = (why: string): DockerError =>
    new DockerError(`docker save ${ref} produced an archive we cannot read: ${why}`, { hint: 'check the image with docker image inspect; re-run with --debug' });
  try {
    await readTar(createReadStream(archive, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, async (entry, body) => {
      const name = posix.normalize(entry.name).replace(/^\.\//, '').replace(/\/$/, '');
      if (entry.type === 'file') files.set(name, await stageEntry(body, entry.size, join(workDir, `entry-${n++}`)));
      else if (entry.type === 'symlink') links.set(name, posix.normalize(posix.join(posix.dirname(name), entry.linkname)));
      else if (entry.type === 'hardlink') links.set(name, posix.normalize(entry.linkname).replace(/^\.\//, ''));
    });
  } catch (e) {
    if (e instanceof DockerError) throw e;
    throw bad((e as Error).message);
  }
  const resolve = (path: string): Staged => {
    let p = posix.normalize(path).replace(/^\.\//, '');
    for (let hops = 0; hops < 16 && !files.has(p) && links.has(p); hops++) p = links.get(p)!;
    const f = files.get(p);
    if (!f) throw bad(`${path} is missing`);
    return f;
  };
  const readStaged = async (s: Staged): Promise<Buffer> => s.data ?? (await readFile(s.file!));

  let manifest: LegacyManifestEntry[];
  try {
    manifest = JSON.parse((await readStaged(resolve('manifest.json'))).toString('utf8')) as LegacyManifestEntry[];
  } catch (e) {
    if (e instanceof DockerError) throw e;
    throw bad('manifest.json is not JSON');
  }
  // Checked shape by shape: the archive is input, and a `null` entry must not become a TypeError.
  if (!Array.isArray(manifest)) throw bad('manifest.json is not a list of images');
  const images = manifest.filter((m): m is LegacyManifestEntry => m !== null && typeof m === 'object');
  const tagged = images.filter((m) => Array.isArray(m.RepoTags) && m.RepoTags.includes(ref));
  // One entry per platform the store had (the containerd store saves each platform of an index;
  // the classic store has one): the ones named `ref`, else all.
  const candidates = tagged.length ? tagged : images;
  if (candidates.length === 0) throw bad('manifest.json names no image');

  const saved = await savedManifests(files, readStaged);
  const placed = new Set<Staged>();
  /** One manifest.json entry as an OCI manifest blob in the layout, with its platform. */
  const writeManifest = async (entry: LegacyManifestEntry, accept: (platform: string) => boolean = () => true): Promise<{ descriptor: Descriptor; normalized: string } | undefined> => {
    if (typeof entry.Config !== 'string' || !entry.Config || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
      throw bad('manifest.json names no image');
    }
    const configStaged = resolve(entry.Config);
    const configBytes = await readStaged(configStaged);
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch {
      throw bad(`${entry.Config} is not JSON`);
    }
    if (config === null || typeof config !== 'object') throw bad(`${entry.Config} is not an image config`);
    const rawDiffIds: unknown = (config.rootfs as { diff_ids?: unknown } | null | undefined)?.diff_ids ?? [];
    if (!Array.isArray(rawDiffIds) || !rawDiffIds.every((d) => typeof d === 'string')) throw bad(`${entry.Config} has no list of diff_ids`);
    const diffIds: string[] = rawDiffIds;
    if (diffIds.length !== entry.Layers.length) throw bad(`${entry.Layers.length} layers but ${diffIds.length} diff_ids in the image config`);

    const os = config.os ?? 'linux';
    const architecture = config.architecture ?? 'amd64';
    const platformText = `${os}/${architecture}${config.variant ? `/${config.variant}` : ''}`;
    let normalized: string;
    try {
      if (typeof os !== 'string' || typeof architecture !== 'string' || (config.variant !== undefined && typeof config.variant !== 'string')) throw new Error('os, architecture and variant must be strings');
      normalized = normalizePlatform(platformText);
    } catch (e) {
      throw bad(`${entry.Config} has no usable platform: ${(e as Error).message}`);
    }
    if (!accept(normalized)) return undefined;

    const layers: Descriptor[] = [];
    for (const [i, path] of entry.Layers.entries()) {
      const staged = resolve(path);
      const mediaType = layerMediaType(staged.head);
      // An uncompressed layer's digest is its diff_id: a cheap integrity check of what docker wrote.
      if (mediaType === MEDIA_TYPE.layer && staged.digest !== diffIds[i]) throw bad(`layer ${path} has digest ${staged.digest}, expected ${diffIds[i]}`);
      if (!placed.has(staged)) {
        await putBlob(blobsDir, staged);
        placed.add(staged);
      }
      layers.push({ mediaType, digest: staged.digest, size: staged.size });
    }
    if (!placed.has(configStaged)) {
      await putBlob(blobsDir, { ...configStaged, data: configBytes, file: undefined });
      if (configStaged.file) await rm(configStaged.file, { force: true });
      placed.add(configStaged);
    }

    const platform: Descriptor['platform'] = { os, architecture, ...(config.variant ? { variant: config.variant } : {}) };
    // A save that already holds this image's manifest (an OCI layout inside the archive: the
    // containerd store, dockerd 25+) is used as it is, with the store's own digest.
    const own = saved.get(configStaged.digest);
    if (own && own.layers.length === layers.length && own.layers.every((d, i) => d === layers[i]!.digest)) {
      await putBlob(blobsDir, { ...own.staged, data: own.bytes, file: undefined });
      return { descriptor: { mediaType: own.mediaType, digest: own.staged.digest, size: own.staged.size, platform }, normalized };
    }
    const manifestJson = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: configStaged.digest, size: configStaged.size },
        layers,
      }),
    );
    const manifestDesc = await putBytes(blobsDir, manifestJson);
    return { descriptor: { mediaType: MEDIA_TYPE.manifest, digest: manifestDesc.digest, size: manifestDesc.size, platform }, normalized };
  };

  // The platforms the build needs (several: an index of them); without any, the first image, as
  // before. A platform the archive lacks is left to checkPlatforms to name.
  const written: { descriptor: Descriptor; normalized: string }[] = [];
  const wanted = new Set(platforms.map((p) => normalizePlatform(p)));
  for (const entry of wanted.size ? candidates : candidates.slice(0, 1)) {
    const w = await writeManifest(entry, (p) => wanted.size === 0 || (wanted.has(p) && !written.some((x) => x.normalized === p)));
    if (w) written.push(w);
  }
  if (written.length === 0) written.push((await writeManifest(candidates[0]!))!);
  let descriptor: Descriptor;
  if (written.length === 1) descriptor = { ...written[0]!.descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } };
  else {
    const nested = await putBytes(blobsDir, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: written.map((w) => w.descriptor) })));
    descriptor = { mediaType: MEDIA_TYPE.index, digest: nested.digest, size: nested.size, annotations: { [REF_NAME_ANNOTATION]: tag } };
  }

  // Keep other tags already in this layout; replace this one.
  const indexPath = join(dir, 'index.json');
  let manifests: Descriptor[] = [];
  if (await exists(indexPath)) {
    try {
      const old = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests?: Descriptor[] };
      manifests = (old.manifests ?? []).filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
    } catch {
      throw new UsageError(`${indexPath} exists but is not an OCI index`, { hint: 'use an empty directory for exported layouts' });
    }
  }
  manifests.push(descriptor);
  await writeAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeAtomic(indexPath, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests }));
  return { dir, tag, platforms: written.map((w) => w.normalized), digest: descriptor.digest };
}

interface SavedManifest {
  staged: Staged;
  bytes: Buffer;
  mediaType: string;
  /** Layer digests, in order. */
  layers: string[];
}

/**
 * The image manifests an archive's own OCI layout holds (index.json and what it points to in
 * blobs/, nested indexes followed), by config digest. Empty for a legacy archive or one whose
 * layout cannot be read: then manifests are written afresh.
 */
async function savedManifests(files: Map<string, Staged>, read: (s: Staged) => Promise<Buffer>): Promise<Map<string, SavedManifest>> {
  const out = new Map<string, SavedManifest>();
  const index = files.get('index.json');
  if (!index) return out;
  const walk = async (descriptors: Descriptor[], depth: number): Promise<void> => {
    for (const d of descriptors) {
      const staged = files.get(`blobs/sha256/${d.digest.slice('sha256:'.length)}`);
      if (!staged || staged.digest !== d.digest || staged.size > IN_MEMORY_LIMIT) continue;
      const bytes = await read(staged);
      const m = parseManifest(bytes, d.mediaType);
      if (m.kind === 'index') {
        if (depth < 3) await walk(m.manifests, depth + 1);
      } else out.set(m.config.digest, { staged, bytes, mediaType: m.mediaType, layers: m.layers.map((l) => l.digest) });
    }
  };
  try {
    const top = parseManifest(await read(index), MEDIA_TYPE.index);
    if (top.kind === 'index') await walk(top.manifests, 0);
  } catch {
    out.clear(); // not a layout we can follow; the manifests are rebuilt
  }
  return out;
}

/** The `--build-context` value for a layout tag: `oci-layout://<dir>:<tag>`. */
export function ociLayoutContext(dir: string, tag: string): string {
  return `oci-layout://${dir}:${tag}`;
}

/** A valid, unique-enough layout tag for an image reference (`docker.io/library/alpine:3` → `alpine-3-1a2b3c4d`). */
export function layoutTagFor(ref: string): string {
  const last = ref.replace(/@.*$/, '').split('/').pop() ?? 'image';
  const base = last.replace(/[^\w.-]+/g, '-').replace(/^[.-]+/, '').slice(0, 100) || 'image';
  return `${base}-${createHash('sha256').update(ref).digest('hex').slice(0, 8)}`;
}

/**
 * Throws a UsageError when a bridged image lacks a platform the build needs: BuildKit would fail
 * later with "no match for platform in manifest". Platforms compare normalised.
 */
export function checkPlatforms(layoutPlatforms: string[], wanted: string[], image = 'the local image'): void {
  const have = new Set(layoutPlatforms.map((p) => normalizePlatform(p)));
  const missing = [...new Set(wanted.map((p) => normalizePlatform(p)))].filter((p) => !have.has(p));
  if (missing.length === 0) return;
  throw new UsageError(
    `local image ${image} is ${[...have].join(', ') || 'of unknown platform'} only, but the build needs it for ${missing.join(', ')}`,
    { hint: `build or load ${image} for ${missing.join(', ')} too, push it to a registry the builder can reach, or drop ${missing.join(', ')} from --platform` },
  );
}
