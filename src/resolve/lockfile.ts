// The lockfile: which tag a version spec resolved to and the digest it must keep serving, so a
// range resolves the same everywhere and a moved tag is caught (product.md, Resolution rules).
// JSON with a fixed key order, 2-space indent and a trailing newline, written temp + rename so a
// reader never sees half a file. It holds registry names and digests only, never a credential.
import { readFileSync } from 'node:fs';
import { describeJsonError } from '../config/json-error.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { writeFileAtomic } from '../state.js';
import { isValidDigest, isValidTag } from '../registry/reference.js';
import { engineImage } from './candidates.js';

export const LOCKFILE_VERSION = 1;

export interface PlatformPin {
  /** Digest of the platform's image manifest inside the index. */
  manifest: string;
  /** Its config digest, which is the image ID `docker load` / `docker images` shows. */
  config: string;
}

export interface Lockfile {
  lockfileVersion: number;
  /** Engine image repository, normalised: `docker.io/moby/buildkit`. */
  image: string;
  /** `buildkit.version` as configured. */
  spec: string;
  rootless: boolean;
  /** The tag the spec resolved to. */
  tag: string;
  /** The tag's own digest (an OCI index for current BuildKit images). */
  digest: string;
  /** `host[/path]/repository` it was resolved from. */
  source: string;
  /**
   * Per-platform manifest and config digests, from the index: the pin identity every image store
   * can check. dockerd 20.10 drops RepoDigests on `docker load`, so a loaded image is checked by
   * its ID, which is the config digest on the classic store and the index or manifest digest on
   * the containerd store (src/docker/engine-image.ts pinnedImageIds).
   */
  platforms?: Record<string, PlatformPin>;
  /** Config digest when the tag is a single-platform manifest (no index, so no platform key). */
  config?: string;
}

/** Fixed key order; platforms sorted. Rendering the same lock always gives the same bytes. */
export function renderLockfile(lock: Lockfile): string {
  const out: Record<string, unknown> = {
    lockfileVersion: lock.lockfileVersion,
    image: lock.image,
    spec: lock.spec,
    rootless: lock.rootless,
    tag: lock.tag,
    digest: lock.digest,
    source: lock.source,
  };
  if (lock.platforms && Object.keys(lock.platforms).length) {
    const platforms: Record<string, PlatformPin> = {};
    for (const key of Object.keys(lock.platforms).sort()) {
      const p = lock.platforms[key]!;
      setOwn(platforms, key, { manifest: p.manifest, config: p.config });
    }
    out.platforms = platforms;
  }
  if (lock.config) out.config = lock.config;
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Validates a parsed lockfile; every problem is reported against the file (exit 2). */
export function parseLockfile(text: string, file: string): Lockfile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([{ source: file, path: '', message: `cannot be parsed: ${describeJsonError(error, text)}` }], {
      hint: 'delete the lockfile and run buildx-bootstrap lock to write it again',
    });
  }
  const problems: { path: string; message: string }[] = [];
  const r = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  if (!r) problems.push({ path: '', message: 'expected a JSON object' });
  const str = (key: string, check?: (v: string) => boolean): string => {
    const v = r?.[key];
    if (typeof v !== 'string' || !v || (check && !check(v))) {
      if (r) problems.push({ path: key, message: `expected ${check ? 'a valid ' : 'a '}${key}, got ${JSON.stringify(v)}` });
      return '';
    }
    return v;
  };
  const lock: Lockfile = {
    lockfileVersion: typeof r?.lockfileVersion === 'number' ? r.lockfileVersion : 0,
    image: str('image'),
    spec: str('spec'),
    rootless: r?.rootless === true,
    tag: str('tag', isValidTag),
    digest: str('digest', isValidDigest),
    source: str('source'),
  };
  if (r && lock.lockfileVersion !== LOCKFILE_VERSION) {
    problems.push({ path: 'lockfileVersion', message: `unsupported version ${JSON.stringify(r.lockfileVersion)} (this buildx-bootstrap writes ${LOCKFILE_VERSION})` });
  }
  if (r && typeof r.rootless !== 'boolean') problems.push({ path: 'rootless', message: 'expected true or false' });
  if (r?.platforms !== undefined) {
    const p = r.platforms;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) problems.push({ path: 'platforms', message: 'expected a map' });
    else {
      const platforms: Record<string, PlatformPin> = {};
      for (const [key, value] of Object.entries(p as Record<string, unknown>)) {
        const v = value as Record<string, unknown> | null;
        if (v && typeof v.manifest === 'string' && isValidDigest(v.manifest) && typeof v.config === 'string' && isValidDigest(v.config)) {
          setOwn(platforms, key, { manifest: v.manifest, config: v.config });
        } else problems.push({ path: `platforms.${key}`, message: 'expected {manifest, config} digests' });
      }
      lock.platforms = platforms;
    }
  }
  if (r?.config !== undefined) {
    if (typeof r.config === 'string' && isValidDigest(r.config)) lock.config = r.config;
    else problems.push({ path: 'config', message: 'expected a digest' });
  }
  if (problems.length) {
    throw new ConfigError(
      problems.map((p) => ({ ...p, source: file })),
      { hint: 'delete the lockfile and run buildx-bootstrap lock to write it again' },
    );
  }
  return lock;
}

/** The lockfile at `file`, or undefined when there is none. A broken one is a ConfigError. */
export async function readLockfile(file: string): Promise<Lockfile | undefined> {
  let text: string;
  try {
    // Sync on purpose: one small file at start-up, and fs/promises' file handles cost more.
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseLockfile(text, file);
}

/** Writes the lockfile atomically: a temp file beside it, then rename. */
export async function writeLockfile(file: string, lock: Lockfile): Promise<void> {
  await writeFileAtomic(file, renderLockfile(lock), 0o644);
}

/** What in the configuration no longer matches the lock; empty when the lock applies. */
export function lockDifferences(lock: Lockfile, config: Pick<Config, 'buildkit'>): string[] {
  const image = engineImage(config);
  const wanted = `${image.registry}/${image.repository}`;
  const out: string[] = [];
  if (lock.image !== wanted) out.push(`image is ${wanted}, the lockfile has ${lock.image}`);
  if (lock.spec !== config.buildkit.version.trim()) out.push(`buildkit.version is ${JSON.stringify(config.buildkit.version)}, the lockfile has ${JSON.stringify(lock.spec)}`);
  if (lock.rootless !== config.buildkit.rootless) out.push(`rootless is ${config.buildkit.rootless}, the lockfile has ${lock.rootless}`);
  return out;
}

export function isLockStale(lock: Lockfile, config: Pick<Config, 'buildkit'>): boolean {
  return lockDifferences(lock, config).length > 0;
}

/**
 * `map[key] = value` as an own property whatever the key: a platform key `__proto__` (JSON.parse
 * reads it as one) would otherwise set the object's prototype and vanish from the lockfile.
 */
function setOwn<T>(map: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
}
