// The effects around prefix mode's build cache (issue 20): the facts the pure decisions in
// src/driver/build-cache.ts need (git branch, the daemon's image store, which local caches exist),
// the per-key lock and atomic replace of a `type: local` cache, and the one stderr line after the
// build, read from BuildKit's own record of it.
//
// Where each part of the report comes from, per driver:
// - docker-container: `docker exec buildx_buildkit_<node> buildctl debug histories` (cached and
//   total steps) and `buildctl debug logs --progress plain <ref>` (errors of the cache-export
//   steps), any buildx version, BuildKit ≥ 0.12;
// - docker (dockerd's BuildKit, no container to exec into), kubernetes, remote: `docker buildx
//   history ls|logs` (buildx ≥ 0.23); with an older buildx the line says the steps are not known;
// - the build's ref: `buildx.build.ref` in the `--metadata-file` we add (buildx ≥ 0.13; a bake's
//   under each target's name), else the newest record created since the build started (a bake
//   target's: the one record whose frontend attributes import its cache, or name its Dockerfile).
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../io.js';
import { daemonImageStore, tlsContextName, tlsFromEnvironment, type ImageStore } from '../docker/daemon.js';
import { pickRecord, recordReader, type BuildRecord, type RecordAttrs, type RecordSource } from '../docker/history.js';
import type { DockerRunner } from '../docker/runner.js';
import { cacheTargetOf, pushesImage, type BuildRequest } from '../driver/build-args.js';
import {
  bakeCacheKeys,
  cacheBranches,
  cacheFlagsFor,
  cacheKey,
  cacheTypeForDriver,
  formatCacheReport,
  resolveCacheType,
  type BranchPlan,
  type CacheTarget,
  type CacheTypeChoice,
  type TargetCacheFlags,
} from '../driver/build-cache.js';
import type { Driver } from '../driver/choose-driver.js';
import { bakeCacheTargets, type BakeTarget } from '../driver/bake-targets.js';
import { acquireFileLock, type Release } from './lock.js';
import type { CommandContext } from '../context.js';
import type { CreateState } from './full-create.js';
import { versionOfTag } from './pipeline.js';
import { builderDir } from '../state.js';

export interface BuildCachePlan {
  choice: CacheTypeChoice;
  branches: BranchPlan;
  /** One entry for a build (bake: one per target). */
  targets: TargetCacheFlags[];
  /** Everything `plan` shows: the type, the branches, per-target notes. */
  reasons: string[];
}

/** The branch checked out in the repository around `dir`, and origin's default branch, from `.git` files (no git binary). */
export async function gitBranchFacts(dir: string): Promise<{ branch?: string; defaultBranch?: string }> {
  for (let d = resolvePath(dir); ; ) {
    const dotGit = join(d, '.git');
    if (existsSync(dotGit)) {
      let gitDir = dotGit;
      const text = await readFile(dotGit, 'utf8').catch(() => undefined); // a worktree's .git is a file
      if (text !== undefined) {
        const m = /^gitdir:\s*(.+)$/m.exec(text);
        if (!m) return {};
        gitDir = resolvePath(d, m[1]!.trim());
      }
      const common = await readFile(join(gitDir, 'commondir'), 'utf8').then((c) => resolvePath(gitDir, c.trim()), () => gitDir);
      const head = await readFile(join(gitDir, 'HEAD'), 'utf8').catch(() => '');
      const origin = await readFile(join(common, 'refs', 'remotes', 'origin', 'HEAD'), 'utf8').catch(() => '');
      const branch = /^ref:\s*refs\/heads\/(.+)$/m.exec(head)?.[1]?.trim();
      const defaultBranch = /^ref:\s*refs\/remotes\/origin\/(.+)$/m.exec(origin)?.[1]?.trim();
      return { ...(branch ? { branch } : {}), ...(defaultBranch ? { defaultBranch } : {}) };
    }
    const parent = dirname(d);
    if (parent === d) return {};
    d = parent;
  }
}

/**
 * The cache type before the driver is chosen: what decideDriver weighs (`auto` → a container
 * builder). A bake wants it when one of its targets (from `bake --print`) gets cache flags.
 */
export function cacheWanted(
  config: Config,
  env: Record<string, string | undefined>,
  request: BuildRequest | undefined,
  bakeTargets?: CacheTarget[] | undefined,
): CacheTypeChoice | undefined {
  if (!request || doesNotBuild(request)) return undefined;
  const own = (t: { cacheFrom: unknown[]; cacheTo: unknown[] }): boolean => t.cacheFrom.length > 0 || t.cacheTo.length > 0;
  if (request.kind === 'bake' ? !bakeTargets?.some((t) => !own(t)) : own(request)) return undefined;
  return resolveCacheType(config.buildCache, env, config.cache.dir);
}

/** A bake's targets (DriverChoice.bake, read with `bake --print`) as planBuildCache takes them. */
export function bakeCacheInput(bake: { targets: BakeTarget[] } | undefined, cwd: string): Pick<PlanInput, 'bakeTargets' | 'bakeNotes'> {
  if (!bake) return {};
  const { targets, notes } = bakeCacheTargets(bake.targets, cwd);
  return { bakeTargets: targets, bakeNotes: notes };
}

export interface PlanInput {
  config: Config;
  env: Record<string, string | undefined>;
  cwd: string;
  request: BuildRequest | undefined;
  driver: Driver;
  runner: DockerRunner;
  /** `--build-cache-branch`. */
  branchFlag: string | undefined;
  /** Pinned BuildKit version (`v0.12.5`), undefined when the tag names none or the docker driver builds. */
  buildkitVersion: string | undefined;
  /** Suffix of this run's fresh local export directory. */
  runId: string;
  /**
   * `bake`: its targets as `docker buildx bake --print` gives them (context and Dockerfile
   * resolved, the user's cache-from/cache-to per target); undefined: bake gets no cache flags.
   */
  bakeTargets?: CacheTarget[] | undefined;
  /** `bake`: why some targets get no flags (bakeCacheTargets). */
  bakeNotes?: string[] | undefined;
}

/** The cache flags for a prefixed command, with the reasons; undefined when there is no build to add them to. */
export async function planBuildCache(input: PlanInput): Promise<BuildCachePlan | undefined> {
  const { config, env, request } = input;
  if (!request) return undefined;
  const wanted = resolveCacheType(config.buildCache, env, config.cache.dir);
  const none = (reason: string): BuildCachePlan => ({ choice: wanted, branches: { own: undefined, fallback: undefined, write: false, reasons: [] }, targets: [], reasons: [reason] });
  if (doesNotBuild(request)) return none(`build --call ${request.call} checks or prints and builds nothing: no cache flags are added`);
  let targets: CacheTarget[];
  if (request.kind === 'bake') {
    if (!input.bakeTargets) return none('bake: no cache flags are added (its targets could not be read with bake --print)');
    targets = input.bakeTargets;
  } else {
    const target = cacheTargetOf(request, input.cwd);
    if (!target) return none('the build has no local context and Dockerfile to derive a cache key from: no cache flags added');
    targets = [target];
  }
  let imageStore: ImageStore | undefined;
  if (input.driver === 'docker' && (wanted.type === 'registry' || wanted.type === 'local')) imageStore = await daemonImageStore(input.runner);
  const choice = cacheTypeForDriver({ choice: wanted, driver: input.driver, imageStore });
  const git = isGitlab(env) || !targets[0] ? {} : await gitBranchFacts(targets[0].context);
  const branches = cacheBranches({ env, flag: input.branchFlag, gitBranch: git.branch, gitDefault: git.defaultBranch });
  const localRoot = config.cache.dir ? join(config.cache.dir, 'build') : undefined;
  const reasons = [choice.reason];
  if (choice.type === 'registry' || choice.type === 'local') reasons.push(...branches.reasons);
  if (request.kind === 'bake' && choice.type !== 'off') reasons.push(...(input.bakeNotes ?? []));
  const keys = request.kind === 'bake' ? bakeCacheKeys(targets, config.buildCache.key) : [config.buildCache.key || cacheKey(targets[0]!)];
  const flags = targets.map((target, i) => {
    const key = keys[i]!;
    const f = cacheFlagsFor(target, {
      choice,
      branches,
      mode: config.buildCache.mode,
      key,
      buildkitVersion: input.driver === 'docker' ? undefined : input.buildkitVersion,
      localRoot,
      localExisting: new Set(localRoot && existsSync(join(localRoot, key, 'index.json')) ? [key] : []),
      localSuffix: input.runId,
      push: target.push ?? pushesImage(request),
      tags: target.tags ?? (request.kind === 'build' ? request.tags : []),
    });
    reasons.push(...f.reasons);
    if (choice.type !== 'off' && f.from.length + f.to.length > 0) reasons.push(`${target.name ? `target ${target.name}: ` : ''}key ${f.key} (Dockerfile path in the context, --target, platforms)`);
    return f;
  });
  return { choice, branches, targets: flags, reasons };
}

/**
 * `build --call check|outline|targets` (or `--check`, the old `--print`): buildx evaluates the
 * Dockerfile and builds nothing, so there is no cache to read or write. A bake's non-build calls
 * are per target (bakeCacheInput).
 */
function doesNotBuild(request: BuildRequest): request is BuildRequest & { call: string } {
  return request.kind === 'build' && request.call !== undefined;
}

function isGitlab(env: Record<string, string | undefined>): boolean {
  return env.GITLAB_CI === 'true';
}

/** Where prefix mode has buildx write the build's metadata (the report reads the build's ref there). */
export function metadataFileFor(env: Record<string, string | undefined>, builder: string, runId: string): string {
  return join(builderDir(env, builder), `metadata-${runId}.json`);
}

/** True when the plan adds any flag. */
export function addsCacheFlags(plan: BuildCachePlan | undefined): plan is BuildCachePlan {
  return plan !== undefined && plan.targets.some((t) => t.from.length + t.to.length > 0);
}

export interface StartedCache {
  /** Releases the local-cache lock; after the build. */
  release: Release | undefined;
  startedAt: number;
}

/**
 * Before the build. Type local: one job per key at a time on this machine (lock file beside the
 * directory), and fresh-export directories a killed job left behind are removed.
 */
export async function startBuildCache(plan: BuildCachePlan, opts: { log: Logger; signal?: AbortSignal | undefined; timeoutMs: number }): Promise<StartedCache> {
  const releases: Release[] = [];
  try {
    for (const local of plan.targets.flatMap((t) => (t.local ? [t.local] : []))) {
      const root = dirname(local.dir);
      const key = local.dir.slice(root.length + 1);
      await mkdir(root, { recursive: true });
      const lockFile = join(root, `${key}.lock`);
      await writeFile(lockFile, '', { flag: 'a' });
      releases.push(await acquireFileLock(lockFile, `the build cache ${local.dir}`, opts));
      for (const name of await readdir(root)) {
        if (name.startsWith(`${key}.new-`) || name.startsWith(`${key}.old-`)) await rm(join(root, name), { recursive: true, force: true });
      }
    }
  } catch (error) {
    for (const release of releases) await release();
    throw error;
  }
  const release = releases.length ? async () => { for (const r of releases) await r(); } : undefined;
  return { release, startedAt: Date.now() };
}

/** Type local, after the build: the fresh export replaces the old cache only when the build succeeded. */
export async function settleLocalCache(plan: BuildCachePlan, exitCode: number): Promise<void> {
  for (const t of plan.targets) {
    if (!t.local) continue;
    const { fresh, dir } = t.local;
    if (exitCode === 0 && existsSync(join(fresh, 'index.json'))) {
      const old = `${fresh.replace(/\.new-/, '.old-')}`;
      if (existsSync(dir)) await rename(dir, old);
      await rename(fresh, dir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rm(fresh, { recursive: true, force: true });
    }
  }
}

/**
 * Where this builder's records are read (see the head of this file). A builder we create has one
 * node `<name>0` on the daemon of `endpoint` (a docker context name, or empty for the current
 * one): known without asking buildx, which would cost a plugin start after every build.
 */
export function recordSourceFor(driver: Driver, builder: string, endpoint: string): RecordSource {
  if (driver !== 'docker-container') return { kind: 'buildx', builder };
  return { kind: 'container', container: `buildx_buildkit_${builder}0`, context: endpoint && !endpoint.includes('://') ? endpoint : undefined };
}

/**
 * `buildx.build.ref` from a metadata file (`<builder>/<node>/<ref>`), when buildx wrote one: at
 * the top for a build, under each target's name for a bake (buildx ≥ 0.13 both).
 */
export async function refFromMetadata(file: string | undefined, bakeTarget?: string): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    const top = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const meta = bakeTarget === undefined ? top : top[bakeTarget];
    const ref = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)['buildx.build.ref'] : undefined;
    return typeof ref === 'string' ? ref.split('/').pop() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The lines after the build, from BuildKit's records of it: one for a build, one per bake target
 * that got cache flags (`cache: target app: …`), each from that target's own record — found by
 * the ref buildx wrote for it, or with buildx 0.12 (no refs) by the cache it imports or its
 * Dockerfile and stage, in the records' frontend attributes.
 */
export async function cacheReport(input: {
  plan: BuildCachePlan;
  bake: boolean;
  exitCode: number;
  runner: DockerRunner;
  source: RecordSource;
  metadataFile: string | undefined;
  startedAt: number;
  /** bake: each target's Dockerfile (name as buildx sends it) and stage, for buildx 0.12. */
  bakeAttrs?: Record<string, Omit<RecordAttrs, 'cacheImport'>>;
}): Promise<string[]> {
  const withFlags = input.plan.targets.filter((f) => f.from.length + f.to.length > 0);
  if (!withFlags.length) return [];
  const reader = recordReader(input.runner, input.source);
  // One build whose ref is known (buildx ≥ 0.13): its record and its export's logs in one read.
  const single = !input.bake && withFlags.length === 1 && withFlags[0]!.to.length ? await refFromMetadata(input.metadataFile, undefined) : undefined;
  const both = single ? await reader.recordsAndExportErrors(single) : undefined;
  const records = both?.records ?? (await reader.records());
  const lines: string[] = [];
  for (const flags of withFlags) {
    const ref = await refFromMetadata(input.metadataFile, input.bake ? flags.target : undefined);
    let record: BuildRecord | undefined;
    let missing = records.known ? 'BuildKit kept no record of this build' : records.why;
    if (records.known) {
      const attrs = input.bake && !ref ? { filename: '', target: undefined, ...input.bakeAttrs?.[flags.target], cacheImport: flags.reads[0] } : undefined;
      record = pickRecord(records.records, { ref, startedAt: input.startedAt, attrs });
      if (!record && input.bake && !ref) missing = `buildx wrote no build ref for the target, and its record could not be told from the others'`;
    }
    const steps = record ? { cached: record.cachedSteps, total: record.totalSteps } : { why: missing };
    let exportErrors: string[] | { why: string } = { why: 'no build record' };
    if (record && flags.to.length) {
      const errors = both && record.ref === single ? both.errors : await reader.exportErrors(record.ref);
      exportErrors = errors.known ? errors.errors : { why: errors.why };
    }
    const line = formatCacheReport({ flags, exitCode: input.exitCode, steps, exportErrors });
    lines.push(input.bake ? line.replace(/^cache: /, `cache: target ${flags.target}: `) : line);
  }
  return lines;
}

/**
 * Prefix mode's build cache: the flags for the command, and what runs after it (replace a local
 * cache on success, release its lock, print the one-line report).
 */
export async function prefixBuildCache(ctx: CommandContext, state: CreateState): Promise<{ targets: TargetCacheFlags[]; metadataFile: string | undefined; finish(code: number): Promise<void> }> {
  const { io, log } = ctx;
  const driver = state.driver!;
  const builder = state.builder!;
  const runner = state.runner!;
  const config = state.loaded!.config;
  const plan = await planBuildCache({
    config,
    env: io.env,
    cwd: io.cwd,
    request: driver.request,
    driver: driver.driver,
    runner,
    branchFlag: ctx.args.buildCacheBranch,
    buildkitVersion: versionOfTag(state.pin?.tag ?? ''),
    runId: String(process.pid),
    ...bakeCacheInput(driver.bake, io.cwd),
  });
  const targets = plan?.targets ?? [];
  for (const r of plan?.reasons ?? []) log.debug(`build cache: ${r}`);
  if (!addsCacheFlags(plan)) return { targets, metadataFile: undefined, finish: async () => undefined };
  const own = driver.request?.metadataFile;
  const metadataFile = own === undefined ? metadataFileFor(io.env, builder, String(process.pid)) : resolvePath(io.cwd, own);
  if (own === undefined) await mkdir(dirname(metadataFile), { recursive: true });
  const started = await startBuildCache(plan, { log, signal: io.signal, timeoutMs: config.timeouts.drain });
  return {
    targets,
    metadataFile: own === undefined ? metadataFile : undefined,
    async finish(code) {
      try {
        await settleLocalCache(plan, code);
      } finally {
        await started.release?.();
      }
      // The user's own --builder wins over ours: its records are asked through buildx.
      const userBuilder = driver.request?.builder;
      const tls = await tlsFromEnvironment(io.env);
      const endpoint = config.builder.endpoint || (tls ? tlsContextName(tls) : '');
      const source: RecordSource =
        userBuilder !== undefined ? { kind: 'buildx', builder: userBuilder } : recordSourceFor(driver.driver, driver.driver === 'docker' ? driver.contextBuilder : builder, endpoint);
      const bake = driver.request?.kind === 'bake';
      const bakeAttrs = Object.fromEntries((driver.bake?.targets ?? []).map((t) => [t.name, { filename: basename(t.dockerfile), target: t.target }]));
      const lines = await cacheReport({ plan, bake, exitCode: code, runner, source, metadataFile, startedAt: started.startedAt, bakeAttrs }).catch((e: unknown) => [
        `cache: no report (${(e as Error).message})`,
      ]);
      for (const line of lines) log.info(line);
      if (own === undefined) await rm(metadataFile, { force: true });
    },
  };
}
