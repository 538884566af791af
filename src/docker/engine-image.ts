// Making the pinned engine image local before buildx bootstraps the builder: by digest if the
// daemon has it, by image ID (a `docker load`ed copy), from the CI cache directory, else a pull
// from the resolved registry. Saves it to the cache directory for the next ephemeral job.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError, LockMismatchError } from '../errors.js';
import type { Logger } from '../io.js';
import { writeFileAtomic } from '../state.js';
import { check, type DockerRunner, type RunOptions } from './runner.js';

export interface EngineImageTarget {
  /** `registry[/path]/repository:tag@digest` */
  reference: string;
  /** `registry[/path]/repository:tag` */
  repoTag: string;
  digest: string;
  /** Image ID (config digest) expected for the daemon's platform, when the lock knows it. */
  expectedImageId?: string | undefined;
}

export interface LocalEngineImage {
  /** The reference to hand buildx (`image=` driver option): one the daemon finds locally. */
  ref: string;
  imageId: string;
  how: 'present' | 'present-by-id' | 'cache' | 'pulled';
}

/**
 * The name a loaded (or found-by-ID) engine image is handed to buildx under. buildx always pulls
 * `image=` first and uses the local copy only when that pull fails (buildx
 * driver/docker-container/driver.go); a name on `localhost:1` can never be pulled — the connection
 * is refused at once, no registry is asked (a manifest GET counts as a Docker Hub pull) — so the
 * local copy, verified by its image ID, is what the builder runs.
 */
export function localAlias(repoTag: string): string {
  const withoutRegistry = repoTag.slice(repoTag.indexOf('/') + 1);
  return `localhost:1/buildx-bootstrap/${withoutRegistry}`;
}

async function tagLocal(runner: DockerRunner, id: string, target: EngineImageTarget): Promise<string> {
  const alias = localAlias(target.repoTag);
  check(await runner.run(['tag', id, alias]), `docker tag ${alias}`, 'check the docker daemon');
  return alias;
}

interface CacheMeta {
  reference: string;
  imageId: string;
}

export function cacheFiles(cacheDir: string, digest: string): { tar: string; meta: string } {
  const hex = digest.replace(/^sha256:/, '');
  return { tar: join(cacheDir, `buildkit-${hex}.tar`), meta: join(cacheDir, `buildkit-${hex}.json`) };
}

async function imageId(runner: DockerRunner, ref: string): Promise<string | undefined> {
  const r = await runner.run(['image', 'inspect', '--format', '{{.Id}}', ref], { timeoutMs: 30_000 });
  const id = r.stdout.trim();
  return r.exitCode === 0 && id.startsWith('sha256:') ? id : undefined;
}

interface LocalOptions {
  /** Credentials for the pull (src/docker/registry-auth.ts): X-Registry-Auth, or the CLI's per-run DOCKER_CONFIG. */
  registryAuth?: RunOptions['registryAuth'];
  cacheDir: string;
  log: Logger;
  signal?: AbortSignal | undefined;
  timeoutMs: number;
}

/** Finds the pinned image without any registry: by digest, by image ID, or in the cache dir. */
export async function findLocalEngineImage(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<LocalEngineImage | undefined> {
  const byDigest = await imageId(runner, target.reference);
  if (byDigest) return { ref: target.reference, imageId: byDigest, how: 'present' };
  // `docker load` on dockerd 20.10 drops RepoDigests (tags and the ID survive), so a loaded copy
  // is found by its image ID and re-tagged; buildx falls back to that local tag when its own pull
  // fails (buildx driver/docker-container/driver.go).
  if (target.expectedImageId && (await imageId(runner, target.expectedImageId)) === target.expectedImageId) {
    return { ref: await tagLocal(runner, target.expectedImageId, target), imageId: target.expectedImageId, how: 'present-by-id' };
  }
  return opts.cacheDir ? loadFromCache(runner, target, opts) : undefined;
}

/**
 * `docker pull ref@digest` through the daemon (dockerd's own mirrors apply), with the credentials
 * the resolve used (opts.registryAuth), so a job with no `docker login` pulls from a private mirror.
 */
export async function pullEngineImage(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<LocalEngineImage> {
  opts.log.info(`pulling ${target.reference}`);
  const pulled = await runner.run(['pull', target.reference], {
    timeoutMs: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.registryAuth ? { registryAuth: opts.registryAuth } : {}),
    // docker pull reports its progress on stdout (one line per layer event when not a terminal).
    onStdoutLine: (line) => opts.log.info(line.trim()),
    onStderrLine: (line) => opts.log.debug(line),
  });
  check(pulled, `docker pull ${target.reference}`, 'check the registry is reachable from the docker daemon (dockerd does the pull) and that its credentials are in docker config.json, DOCKER_AUTH_CONFIG or the CI variables');
  const id = await imageId(runner, target.reference);
  if (!id) throw new DockerError(`docker pull ${target.reference} succeeded but the image is not in the daemon`, { hint: 'check that DOCKER_HOST points at the daemon you expect' });
  if (target.expectedImageId && id !== target.expectedImageId) {
    throw new LockMismatchError(`${target.reference} has image ID ${id} on this daemon, the lockfile expects ${target.expectedImageId}`, {
      hint: 'the registry served other content for the pinned digest; run buildx-bootstrap lock to re-pin deliberately',
    });
  }
  return { ref: target.reference, imageId: id, how: 'pulled' };
}

async function loadFromCache(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<LocalEngineImage | undefined> {
  const files = cacheFiles(opts.cacheDir, target.digest);
  if (!existsSync(files.tar) || !existsSync(files.meta)) return undefined;
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(files.meta, 'utf8')) as CacheMeta;
  } catch {
    opts.log.warn(`ignoring unreadable cache metadata ${files.meta}`);
    return undefined;
  }
  if (target.expectedImageId && meta.imageId !== target.expectedImageId) {
    opts.log.warn(`cached engine image ${files.tar} has image ID ${meta.imageId}, the lockfile expects ${target.expectedImageId}; ignoring it`);
    return undefined;
  }
  opts.log.info(`loading ${target.repoTag} from ${files.tar}`);
  const loaded = await runner.run(['load', '-i', files.tar], { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (loaded.exitCode !== 0) {
    opts.log.warn(`docker load ${files.tar} failed (${loaded.stderr.trim().split('\n').pop()}); pulling instead`);
    return undefined;
  }
  const id = await imageId(runner, meta.imageId);
  if (id !== meta.imageId) {
    opts.log.warn(`docker load ${files.tar} did not produce image ${meta.imageId}; pulling instead`);
    return undefined;
  }
  return { ref: await tagLocal(runner, id, target), imageId: id, how: 'cache' };
}

/** Saves the image to the cache dir for the next ephemeral job (temp file + rename). */
export async function saveToCache(runner: DockerRunner, target: EngineImageTarget, id: string, opts: LocalOptions): Promise<void> {
  if (!opts.cacheDir) return;
  const files = cacheFiles(opts.cacheDir, target.digest);
  if (existsSync(files.tar) && existsSync(files.meta)) return;
  // Tag first so the saved copy carries a name; `docker save` of a digest reference has none.
  check(await runner.run(['tag', id, target.repoTag]), `docker tag ${target.repoTag}`, 'check the docker daemon');
  const temp = `${files.tar}.${process.pid}.tmp`;
  await mkdir(opts.cacheDir, { recursive: true });
  const saved = await runner.run(['save', '-o', temp, target.repoTag], { timeoutMs: opts.timeoutMs });
  if (saved.exitCode !== 0) {
    await rm(temp, { force: true });
    opts.log.warn(`could not save the engine image to ${opts.cacheDir}: ${saved.stderr.trim().split('\n').pop()}`);
    return;
  }
  await rename(temp, files.tar);
  await writeFileAtomic(files.meta, `${JSON.stringify({ reference: target.reference, imageId: id } satisfies CacheMeta, null, 2)}\n`);
  opts.log.info(`saved the engine image to ${files.tar}`);
}
