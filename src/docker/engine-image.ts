// Making the pinned engine image local before buildx bootstraps the builder: by digest if the
// daemon has it, by image ID (a `docker load`ed copy), from the CI cache directory, else a pull
// from the resolved registry. Saves it to the cache directory for the next ephemeral job.
//
// What an image ID is depends on the daemon's image store: the classic store names an image by
// its config digest; the containerd store (Docker 29's default) by the digest of what it was
// pulled or loaded as — the index we resolved, or a platform's manifest. The lock keeps all three
// (src/resolve/lockfile.ts), and they are content digests of the one pinned image, so an ID equal
// to any of them is that image on either store (pinnedImageIds). A cached tar is accepted by its
// content — the config it carries for the daemon's platform — before it is loaded, since a tar
// saved by the other store (a runner upgraded between jobs) loads under an ID none of the lock's
// digests is (./image-archive.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError, LockMismatchError, NoRegistryError, isBxbError } from '../errors.js';
import type { Logger } from '../io.js';
import { ownedTempName, removeAbandonedTemps } from '../owned-temp.js';
import { readImageArchive, type ArchivedImage } from './image-archive.js';
import { check, lastStderrLine, type CommandResult, type DockerRunner, type RunOptions } from './runner.js';

export interface EngineImageTarget {
  /** `registry[/path]/repository:tag@digest` */
  reference: string;
  /** `registry[/path]/repository:tag` */
  repoTag: string;
  digest: string;
  /** Config digest for the daemon's platform, when the lock knows it: the classic store's image ID. */
  expectedImageId?: string | undefined;
  /** The daemon platform's manifest digest, when the lock knows it: a containerd-store image ID. */
  platformManifest?: string | undefined;
  /** The daemon's platform (`linux/amd64`), to find its image in a cached tar. */
  platform?: string | undefined;
}

/**
 * The image IDs the pinned image can have on this daemon, whichever its store: config digest
 * (classic), index or platform-manifest digest (containerd). Empty when the lock knows no config.
 */
export function pinnedImageIds(target: Pick<EngineImageTarget, 'digest' | 'expectedImageId' | 'platformManifest'>): string[] {
  if (!target.expectedImageId) return [];
  return [...new Set([target.expectedImageId, target.platformManifest, target.digest].filter((d): d is string => !!d))];
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

/** Why the cache directory's copy of an engine image could not be used; the next save replaces it. */
export interface CacheProblem {
  file: string;
  why: string;
  /**
   * Broken (unreadable, not an image): the save after the pull replaces it. A whole copy of another
   * image (another platform's, in a cache dir runners of two architectures share) is left alone.
   */
  replace: boolean;
}

/** What the cache directory gave for one digest, remembered for the rest of the run. */
export type CacheOutcome = { kind: 'absent' } | { kind: 'loaded'; image: LocalEngineImage } | { kind: 'unusable'; problem: CacheProblem };

interface LocalOptions {
  /** Credentials for the pull (src/docker/registry-auth.ts): X-Registry-Auth, or the CLI's per-run DOCKER_CONFIG. */
  registryAuth?: RunOptions['registryAuth'];
  cacheDir: string;
  log: Logger;
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  /** A load of the cached tar already on its way (startCacheLoad). */
  preload?: CacheLoad | undefined;
  /** A pull of the locked reference already on its way (startEarlyPull). */
  earlyPull?: EarlyPull | undefined;
  /**
   * Per digest, what the cache directory gave this run: it is tried once (a second look after
   * resolving reuses the answer), and an unusable copy is replaced by the save after the pull.
   */
  cacheOutcomes?: Map<string, CacheOutcome> | undefined;
}

/**
 * `docker load` of the cached engine image, started before anything else of the run (facts,
 * buildx's version, rendering): on a fresh CI daemon it is most of the bring-up, and nothing it
 * needs waits on those. Nothing is loaded when the cached image is already on the daemon (the
 * no-op re-run). loadFromCache takes its result and checks it as it checks its own.
 */
export interface CacheLoad {
  tar: string;
  /**
   * The load's result; undefined when nothing was loaded (the image was already there, or the
   * tar holds none of the locked configs): loadFromCache then decides as without an early load.
   */
  done: Promise<CommandResult | undefined>;
  /** What the tar holds, read once for the early load's check and loadFromCache's. */
  images(): Promise<ArchivedImage[]>;
  /** Whether the tar holds an image the lockfile pins (false when it cannot be read). */
  holdsLocked: Promise<boolean>;
}

/**
 * `lockConfigs`: every config digest the lockfile pins (any platform; the daemon's is not known
 * yet). The tar is loaded only when it holds one of them — checked by content before loading, as
 * loadFromCache does for the daemon's own platform.
 */
export function startCacheLoad(
  runner: DockerRunner,
  cacheDir: string,
  digest: string,
  lockConfigs: string[],
  opts: { timeoutMs: number; signal?: AbortSignal | undefined; /** For the image-ID look (the Engine API); default `runner`. */ inspector?: DockerRunner },
): CacheLoad | undefined {
  if (!cacheDir || lockConfigs.length === 0) return undefined;
  const files = cacheFiles(cacheDir, digest);
  if (!existsSync(files.tar) || !existsSync(files.meta)) return undefined;
  let read: Promise<ArchivedImage[]> | undefined;
  const images = (): Promise<ArchivedImage[]> => (read ??= readImageArchive(files.tar));
  // The daemon is asked while the tar's index is read: both before the load, neither after the other.
  const holdsLocked = images().then((held) => held.some((i) => lockConfigs.includes(i.config)), () => false);
  const done = (async () => {
    const meta = JSON.parse(await readFile(files.meta, 'utf8')) as CacheMeta;
    if (typeof meta.imageId === 'string' && (await imageId(opts.inspector ?? runner, meta.imageId)) === meta.imageId) return undefined;
    if (!(await holdsLocked)) return undefined;
    return runner.run(['load', '-i', files.tar], { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
  })();
  done.catch(() => undefined); // awaited by loadFromCache, which falls back to its own load
  return { tar: files.tar, done, images, holdsLocked };
}

/**
 * `docker pull` of the locked reference, started at the beginning of the run (beside the facts,
 * buildx's version and rendering) when nothing else can be chosen: a fresh lockfile, no mirror to
 * pick among, the image not on the daemon. pullEngineImage takes its result when the resolve names
 * the same reference, and checks it as it checks its own pull; a failed early pull is not the
 * answer — the pull then runs as it would have.
 */
export interface EarlyPull {
  reference: string;
  /** The pull's result and its progress lines, shown when pullEngineImage takes it. */
  done: Promise<{ result: CommandResult; lines: string[] } | undefined>;
}

type DisposableAuth = NonNullable<RunOptions['registryAuth']> & { dispose(): Promise<void> };

export function startEarlyPull(runner: DockerRunner, target: Pick<EngineImageTarget, 'reference'>, lockIds: string[], opts: { timeoutMs: number; signal?: AbortSignal | undefined; registryAuth: () => Promise<DisposableAuth> }): EarlyPull {
  const done = (async () => {
    // The credentials are made while the daemon is asked what it has.
    const authReady = opts.registryAuth();
    authReady.catch(() => undefined);
    // Anything of the pinned image already here: the regular look decides, no registry is asked.
    const present = await Promise.all([target.reference, ...lockIds].map((ref) => imageId(runner, ref)));
    if (present.some(Boolean)) {
      await (await authReady.catch(() => undefined))?.dispose();
      return undefined;
    }
    const lines: string[] = [];
    const auth = await authReady;
    try {
      const result = await runner.run(['pull', target.reference], {
        timeoutMs: opts.timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
        registryAuth: { header: auth.header, cliEnv: auth.cliEnv },
        onStdoutLine: (line) => lines.push(line.trim()),
      });
      return { result, lines };
    } finally {
      await auth.dispose();
    }
  })();
  done.catch(() => undefined); // awaited by pullEngineImage, which pulls itself on any failure
  return { reference: target.reference, done };
}

/** Finds the pinned image without any registry: by digest, by image ID, or in the cache dir. */
export async function findLocalEngineImage(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<LocalEngineImage | undefined> {
  // `docker load` on dockerd 20.10 drops RepoDigests (tags and the ID survive), so a loaded copy
  // is found by its image ID and re-tagged; buildx falls back to that local tag when its own pull
  // fails (buildx driver/docker-container/driver.go). Each store's ID is tried: config digest
  // (classic), then manifest and index digest (containerd). All asked at once, taken in that order.
  const ids = pinnedImageIds(target);
  const [byDigest, ...byId] = await Promise.all([imageId(runner, target.reference), ...ids.map((id) => imageId(runner, id))]);
  if (byDigest) return { ref: target.reference, imageId: byDigest, how: 'present' };
  const id = ids.find((candidate, i) => byId[i] === candidate);
  if (id) return { ref: await tagLocal(runner, id, target), imageId: id, how: 'present-by-id' };
  if (!opts.cacheDir) return undefined;
  let outcome = opts.cacheOutcomes?.get(target.digest);
  if (!outcome) {
    outcome = await loadFromCache(runner, target, opts);
    opts.cacheOutcomes?.set(target.digest, outcome);
  }
  return outcome.kind === 'loaded' ? outcome.image : undefined;
}

/** The cache directory's copy of `digest` was found unusable this run (and why). */
export function cacheProblem(opts: Pick<LocalOptions, 'cacheOutcomes'>, digest: string): CacheProblem | undefined {
  const outcome = opts.cacheOutcomes?.get(digest);
  return outcome?.kind === 'unusable' ? outcome.problem : undefined;
}

/**
 * A failure to get the image from a registry after the cache copy was unusable: the cache file and
 * why come first — the registries were only the second way, and the cache file is what to fix.
 */
export function withCacheProblem(error: unknown, problem: CacheProblem | undefined): unknown {
  if (!problem || !isBxbError(error)) return error;
  const message = `the cached engine image ${problem.file} is unusable (${problem.why}), and ${error.message}`;
  const details = { hint: error.hint ?? 'fix or remove the cache file, or make a registry reachable', transcript: error.transcript, cause: error };
  if (error instanceof NoRegistryError) return new NoRegistryError(message, details);
  if (error instanceof DockerError) return new DockerError(message, details);
  return error;
}

/**
 * `docker pull ref@digest` through the daemon (dockerd's own mirrors apply), with the credentials
 * the resolve used (opts.registryAuth), so a job with no `docker login` pulls from a private mirror.
 */
export async function pullEngineImage(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<LocalEngineImage> {
  opts.log.info(`pulling ${target.reference}`);
  const early = opts.earlyPull?.reference === target.reference ? await opts.earlyPull.done.catch(() => undefined) : undefined;
  for (const line of early?.result.exitCode === 0 ? early.lines : []) opts.log.info(line);
  const pulled = early?.result.exitCode === 0 ? early.result : await runner.run(['pull', target.reference], {
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
  const ids = pinnedImageIds(target);
  if (ids.length && !ids.includes(id)) {
    throw new LockMismatchError(`${target.reference} has image ID ${id} on this daemon, the lockfile expects ${ids.join(' or ')}`, {
      hint: 'the registry served other content for the pinned digest; run buildx-bootstrap lock to re-pin deliberately',
    });
  }
  return { ref: target.reference, imageId: id, how: 'pulled' };
}

async function loadFromCache(runner: DockerRunner, target: EngineImageTarget, opts: LocalOptions): Promise<CacheOutcome> {
  const files = cacheFiles(opts.cacheDir, target.digest);
  if (!existsSync(files.tar) || !existsSync(files.meta)) return { kind: 'absent' };
  const unusable = (why: string, file = files.tar, replace = true): CacheOutcome => ({ kind: 'unusable', problem: { file, why, replace } });
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(files.meta, 'utf8')) as CacheMeta;
  } catch (error) {
    opts.log.warn(`ignoring unreadable cache metadata ${files.meta}`);
    return unusable(`unreadable metadata: ${(error as Error).message}`, files.meta);
  }
  // With a lock, the tar is accepted by what it holds (checked before loading); without one, by
  // the image ID its metadata recorded, which the load must give back.
  const byContent = target.expectedImageId !== undefined;
  if (byContent) {
    // The early load's read of the tar when it read this one (one pass over the file, not two).
    const refused = await refuseCachedTar(files.tar, target, opts.preload?.tar === files.tar ? opts.preload.images() : undefined);
    if (refused) {
      // Unreadable: broken, replaced after the pull. Readable but another image (another
      // platform's, in a cache dir two architectures share): left alone.
      const broken = refused.startsWith('cannot be read');
      opts.log.warn(`cached engine image ${files.tar} ${refused}; ${broken ? 'pulling instead, and replacing it after' : 'ignoring it'}`);
      return unusable(refused, files.tar, broken);
    }
  }
  opts.log.info(`loading ${target.repoTag} from ${files.tar}`);
  // The early load's result when it loaded this tar; else the load happens now.
  const early = opts.preload?.tar === files.tar ? await opts.preload.done.catch(() => undefined) : undefined;
  const loaded = early ?? (await runner.run(['load', '-i', files.tar], { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) }));
  if (loaded.exitCode !== 0) {
    const why = `docker load failed: ${lastStderrLine(loaded) || `exit code ${loaded.exitCode}`}`;
    opts.log.warn(`docker load ${files.tar} failed (${lastStderrLine(loaded)}); pulling instead, and replacing it after`);
    return unusable(why);
  }
  // The ID this daemon's store gave the loaded image (the tar carries repoTag, see saveToCache):
  // the builder container must run exactly it.
  const id = byContent ? await imageId(runner, target.repoTag) : await imageId(runner, meta.imageId);
  if (!id || (!byContent && id !== meta.imageId)) {
    const what = byContent ? target.repoTag : meta.imageId;
    opts.log.warn(`docker load ${files.tar} did not produce image ${what}; pulling instead, and replacing it after`);
    return unusable(`docker load did not produce image ${what}`);
  }
  return { kind: 'loaded', image: { ref: await tagLocal(runner, id, target), imageId: id, how: 'cache' } };
}

/**
 * Why the cached tar does not hold the locked image for the daemon's platform (its config digest,
 * and with it the layer diff_ids), or undefined when it does. Read from the tar, nothing loaded.
 */
export async function refuseCachedTar(tar: string, target: Pick<EngineImageTarget, 'expectedImageId' | 'platform'>, read?: Promise<ArchivedImage[]>): Promise<string | undefined> {
  let images;
  try {
    images = await (read ?? readImageArchive(tar));
  } catch (error) {
    return `cannot be read (${(error as Error).message})`;
  }
  if (images.some((i) => i.config === target.expectedImageId)) return undefined;
  const forPlatform = images.filter((i) => !target.platform || i.platform === target.platform);
  const has = (forPlatform.length ? forPlatform : images).map((i) => `${i.platform} config ${i.config}`).join(', ') || 'no image';
  return `holds ${has}, the lockfile expects config ${target.expectedImageId}${target.platform ? ` for ${target.platform}` : ''}`;
}

const CACHE_PREFIX = 'buildkit-';

/**
 * Saves the image to the cache dir for the next ephemeral job, or replaces a copy this run found
 * unusable. The tar and its metadata are written to temp files named after this process first and
 * renamed into place only when both are whole, so a reader sees the old pair, no pair, or the new
 * one. Temp files a killed save left are removed first (owned-temp.ts). A full or read-only
 * directory costs one warning, never the job, and leaves no partial file.
 */
export async function saveToCache(runner: DockerRunner, target: EngineImageTarget, id: string, opts: LocalOptions): Promise<void> {
  if (!opts.cacheDir) return;
  const files = cacheFiles(opts.cacheDir, target.digest);
  const found = cacheProblem(opts, target.digest);
  const problem = found?.replace ? found : undefined;
  // Before the early return: a run that finds the cache whole still cleans what a killed save left.
  await removeAbandonedTemps(opts.cacheDir, CACHE_PREFIX, opts.timeoutMs);
  if (!problem && existsSync(files.tar) && existsSync(files.meta)) return;
  // Tag first so the saved copy carries a name; `docker save` of a digest reference has none.
  check(await runner.run(['tag', id, target.repoTag]), `docker tag ${target.repoTag}`, 'check the docker daemon');
  const tarTemp = await ownedTempName(files.tar);
  const metaTemp = await ownedTempName(files.meta);
  const cleanUp = (): Promise<unknown> => Promise.all([rm(tarTemp, { force: true }), rm(metaTemp, { force: true })]).catch(() => undefined);
  const cannot = async (why: string): Promise<void> => {
    await cleanUp();
    opts.log.warn(`could not ${problem ? 'replace' : 'save'} the engine image in ${opts.cacheDir}: ${why}; the next job pulls it`);
  };
  try {
    await mkdir(opts.cacheDir, { recursive: true });
    const saved = await runner.run(['save', '-o', tarTemp, target.repoTag], { timeoutMs: opts.timeoutMs });
    if (saved.exitCode !== 0) return await cannot(lastStderrLine(saved) || `docker save exit code ${saved.exitCode}`);
    await writeFile(metaTemp, `${JSON.stringify({ reference: target.reference, imageId: id } satisfies CacheMeta, null, 2)}\n`);
    // A replaced pair: the old metadata goes first, so no reader pairs it with the new tar.
    if (problem) await rm(files.meta, { force: true });
    await rename(tarTemp, files.tar);
    await rename(metaTemp, files.meta);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return cannot(e.code ? `${e.code} (${e.message})` : e.message);
  }
  opts.log.info(problem ? `replaced the unusable ${files.tar} with the engine image` : `saved the engine image to ${files.tar}`);
}
