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
// - the build's ref: `buildx.build.ref` in the `--metadata-file` we add (buildx ≥ 0.13), else the
//   newest record created since the build started.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../io.js';
import { daemonImageStore, tlsContextName, tlsFromEnvironment, type ImageStore } from '../docker/daemon.js';
import { pickRecord, recordReader, type RecordSource } from '../docker/history.js';
import type { DockerRunner } from '../docker/runner.js';
import { cacheTargetOf, pushesImage, type BuildRequest } from '../driver/build-args.js';
import {
  cacheBranches,
  cacheFlagsFor,
  cacheKey,
  cacheTypeForDriver,
  formatCacheReport,
  resolveCacheType,
  refSlug,
  type BranchPlan,
  type CacheTarget,
  type CacheTypeChoice,
  type TargetCacheFlags,
} from '../driver/build-cache.js';
import type { Driver } from '../driver/choose-driver.js';
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

/** The cache type before the driver is chosen: what decideDriver weighs (`auto` → a container builder). */
export function cacheWanted(config: Config, env: Record<string, string | undefined>, request: BuildRequest | undefined): CacheTypeChoice | undefined {
  if (!request || request.kind !== 'build') return undefined;
  if (request.cacheFrom.length > 0 || request.cacheTo.length > 0) return undefined;
  return resolveCacheType(config.buildCache, env, config.cache.dir);
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
}

/** The cache flags for a prefixed command, with the reasons; undefined when there is no build to add them to. */
export async function planBuildCache(input: PlanInput): Promise<BuildCachePlan | undefined> {
  const { config, env, request } = input;
  if (!request) return undefined;
  const wanted = resolveCacheType(config.buildCache, env, config.cache.dir);
  const none = (reason: string): BuildCachePlan => ({ choice: wanted, branches: { own: undefined, fallback: undefined, write: false, reasons: [] }, targets: [], reasons: [reason] });
  let targets: CacheTarget[];
  if (request.kind === 'bake') {
    if (!input.bakeTargets) return none('bake: no cache flags are added (the bake targets are not read yet)');
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
  const flags = targets.map((target) => {
    // One configured key for several bake targets would make them overwrite each other's cache.
    const key = config.buildCache.key && request.kind === 'bake' ? `${config.buildCache.key}-${refSlug(target.name)}` : config.buildCache.key || cacheKey(target);
    const f = cacheFlagsFor(target, {
      choice,
      branches,
      mode: config.buildCache.mode,
      key,
      buildkitVersion: input.driver === 'docker' ? undefined : input.buildkitVersion,
      localRoot,
      localExisting: new Set(localRoot && existsSync(join(localRoot, key, 'index.json')) ? [key] : []),
      localSuffix: input.runId,
      push: pushesImage(request),
      // bake: the targets' tags are not known here, so inline has nothing to read from.
      tags: request.kind === 'build' ? request.tags : [],
    });
    reasons.push(...f.reasons);
    if (choice.type !== 'off' && f.from.length + f.to.length > 0) reasons.push(`${target.name ? `target ${target.name}: ` : ''}key ${f.key} (Dockerfile path in the context, --target, platforms)`);
    return f;
  });
  return { choice, branches, targets: flags, reasons };
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

/** `buildx.build.ref` from a metadata file (`<builder>/<node>/<ref>`), when buildx wrote one. */
export async function refFromMetadata(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    const meta = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const ref = meta['buildx.build.ref'];
    return typeof ref === 'string' ? ref.split('/').pop() : undefined;
  } catch {
    return undefined;
  }
}

/** The one line after the build, from BuildKit's record of it. */
export async function cacheReport(input: {
  plan: BuildCachePlan;
  exitCode: number;
  runner: DockerRunner;
  source: RecordSource;
  metadataFile: string | undefined;
  startedAt: number;
}): Promise<string | undefined> {
  const flags = input.plan.targets[0];
  if (!flags || flags.from.length + flags.to.length === 0) return undefined;
  // bake: one record per target and no ref per target in buildx 0.12's metadata; name what is known.
  if (input.plan.targets.length > 1) {
    const written = input.plan.targets.filter((t) => t.writes !== undefined && t.to.length > 0).map((t) => `${t.target} → ${t.writes}`);
    return `cache: ${input.plan.targets.length} bake targets (cached steps not counted per target); ${input.exitCode === 0 ? `wrote ${written.join(', ') || 'nothing'}` : `not written: the build failed (exit ${input.exitCode})`}`;
  }
  const reader = recordReader(input.runner, input.source);
  const ref = await refFromMetadata(input.metadataFile);
  // With the ref known (buildx ≥ 0.13) the record and the export's logs are read together.
  const both = ref && flags.to.length ? await reader.recordsAndExportErrors(ref) : undefined;
  const records = both?.records ?? (await reader.records());
  const record = records.known ? pickRecord(records.records, { ref, startedAt: input.startedAt }) : undefined;
  const steps = record ? { cached: record.cachedSteps, total: record.totalSteps } : { why: records.known ? 'BuildKit kept no record of this build' : records.why };
  let exportErrors: string[] | { why: string } = { why: 'no build record' };
  if (record && flags.to.length) {
    const errors = both?.errors ?? (await reader.exportErrors(record.ref));
    exportErrors = errors.known ? errors.errors : { why: errors.why };
  }
  return formatCacheReport({ flags, exitCode: input.exitCode, steps, exportErrors });
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
      const line = await cacheReport({ plan, exitCode: code, runner, source, metadataFile, startedAt: started.startedAt }).catch((e: unknown) => `cache: no report (${(e as Error).message})`);
      if (line) log.info(line);
      if (own === undefined) await rm(metadataFile, { force: true });
    },
  };
}
