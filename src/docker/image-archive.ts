// What a `docker save` archive holds, read from the tar without loading it: for each image in its
// manifest.json, the config's digest (hashed here, not taken from a file name), the platform, the
// layer diff_ids the config lists and whether every layer file is in the archive.
//
// Every store writes manifest.json: dockerd 20.10's classic store as its only index (legacy
// layout, `<config hex>.json` + `<id>/layer.tar`, MOBY@v20.10.24 image/tarexport/save.go), dockerd
// 25+ (both stores) beside an OCI layout, with paths into `blobs/sha256/` (plain files or
// symlinks). The config digest is the content address of the config, which lists the layers'
// diff_ids, so an archive whose config hashes to the pinned one carries the pinned image; the
// daemon checks each layer against those diff_ids as it loads (classic: the layer chain must
// match the config's rootfs; containerd: the unpacker compares each uncompressed digest).
import { posix } from 'node:path';
import { sha256Digest } from './oci-image.js';
import { indexTar, readTarEntry, type TarEntry } from './tar.js';

export interface ArchivedImage {
  /** `sha256:` of the config file's bytes. */
  config: string;
  /** `os/arch[/variant]` from the config. */
  platform: string;
  diffIds: string[];
  repoTags: string[];
}

/** JSON files larger than this are not a manifest or a config; refused rather than read. */
const SMALL_FILE_LIMIT = 8 << 20;

/** The images in a `docker save` archive; throws an Error saying what is wrong with it. */
export async function readImageArchive(file: string): Promise<ArchivedImage[]> {
  const entries = await indexTar(file);
  const files = new Map<string, TarEntry>();
  const links = new Map<string, string>();
  for (const e of entries) {
    const name = clean(e.name);
    if (e.type === 'file') files.set(name, e);
    else if (e.type === 'symlink') links.set(name, posix.normalize(posix.join(posix.dirname(name), e.linkname)));
    else if (e.type === 'hardlink') links.set(name, clean(e.linkname));
  }
  const find = (path: string): TarEntry => {
    let p = clean(path);
    for (let hops = 0; hops < 16 && !files.has(p) && links.has(p); hops++) p = links.get(p)!;
    const f = files.get(p);
    if (!f) throw new Error(`${path} is missing from the archive`);
    return f;
  };
  const readSmall = async (path: string): Promise<Buffer> => {
    const e = find(path);
    if (e.size > SMALL_FILE_LIMIT) throw new Error(`${path} is ${e.size} bytes, too large for a manifest or config`);
    return readTarEntry(file, e);
  };

  const manifest = parseJson(await readSmall('manifest.json'), 'manifest.json');
  if (!Array.isArray(manifest)) throw new Error('manifest.json is not a list of images');
  const out: ArchivedImage[] = [];
  for (const item of manifest as unknown[]) {
    const m = item as { Config?: unknown; Layers?: unknown; RepoTags?: unknown } | null;
    if (!m || typeof m.Config !== 'string' || !Array.isArray(m.Layers) || !m.Layers.every((l) => typeof l === 'string')) {
      throw new Error('manifest.json has an entry without Config and Layers');
    }
    const bytes = await readSmall(m.Config);
    const config = parseJson(bytes, m.Config) as { os?: unknown; architecture?: unknown; variant?: unknown; rootfs?: { diff_ids?: unknown } } | null;
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string')) throw new Error(`${m.Config} lists no layer diff_ids`);
    if (diffIds.length !== m.Layers.length) throw new Error(`${m.Config} lists ${diffIds.length} diff_ids, manifest.json ${m.Layers.length} layers`);
    for (const layer of m.Layers as string[]) find(layer);
    const os = typeof config?.os === 'string' ? config.os : '';
    const arch = typeof config?.architecture === 'string' ? config.architecture : '';
    const variant = typeof config?.variant === 'string' && config.variant ? `/${config.variant}` : '';
    out.push({
      config: sha256Digest(bytes),
      platform: `${os}/${arch}${variant}`,
      diffIds: diffIds as string[],
      repoTags: Array.isArray(m.RepoTags) ? m.RepoTags.filter((t): t is string => typeof t === 'string') : [],
    });
  }
  return out;
}

function clean(name: string): string {
  return posix.normalize(name).replace(/^\.\//, '').replace(/\/$/, '');
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
}
