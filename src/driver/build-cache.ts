// The cross-job build cache of prefix mode (product.md §Build cache, issue 20), as pure decisions:
// which cache type applies, which branch tags are read and written, the key that keeps two images
// of one repository apart, and the exact `--cache-from`/`--cache-to` values. build-args.ts inserts
// them into the build command; src/builder/build-cache.ts does the effects (git, the local
// directory, the report after the build).
//
// Facts it rests on:
// - BuildKit picks inconsistently among more than two cache imports (moby/buildkit#6418): at most
//   two tags are read, the branch's own, then the merge request's target or the default branch.
// - Tags follow the scheme GitLab's own infrastructure templates use, `cache-<ref slug>-<key>`, the
//   slug being GitLab's CI_COMMIT_REF_SLUG rule (`Gitlab::Utils.slugify`), applied to every branch
//   name so a fall-back tag matches what another job wrote.
// - Registries such as ECR, Quay, Artifactory refuse BuildKit's own cache manifest list unless the
//   cache is an OCI image manifest (moby/buildkit#2251, #3724); `image-manifest=true` exists from
//   BuildKit 0.12. Every option is written out: the defaults changed between versions.
// - `ignore-error=true` (BuildKit `control.go` parseCacheExportIgnoreError) makes a refused export
//   a recorded vertex error instead of a failed build; we report it after the build.
// - The docker driver exports cache other than inline only on the containerd image store (BX
//   `driver/docker/driver.go` Features: CacheExport = containerd snapshotter).
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { BuildCacheConfig, BuildCacheMode } from '../config/schema.js';

export type Env = Record<string, string | undefined>;

/** The type in effect once `auto` is resolved. */
export type EffectiveCacheType = 'registry' | 'local' | 'inline' | 'off';

// ---- names ----------------------------------------------------------------------------------

/**
 * GitLab's CI_COMMIT_REF_SLUG rule: lower-cased, every character but 0-9 and a-z replaced by `-`,
 * cut to 63 characters, no leading or trailing `-` (characters, not UTF-16 units: an emoji is one `-`).
 */
export function refSlug(name: string): string {
  // After the replacement every character is ASCII, so slicing counts characters.
  return name.toLowerCase().replace(/[^a-z0-9]/gu, '-').slice(0, 63).replace(/^-+|-+$/g, '');
}

export interface KeyInput {
  /** Dockerfile path as the build names it (relative to the working directory, or absolute). */
  dockerfile: string;
  /** The build context directory (same frame as `dockerfile`). */
  context: string;
  target?: string | undefined;
  platforms: string[];
  /** A bake target's name, only where two targets of one bake would otherwise share a key. */
  bakeTarget?: string | undefined;
}

/** The Dockerfile path relative to the context, `/`-separated (`Dockerfile`, `docker/app.Dockerfile`). */
export function dockerfileInContext(input: Pick<KeyInput, 'dockerfile' | 'context'>): string {
  const norm = (p: string): string => posix.normalize(p.replace(/\\/g, '/'));
  const rel = posix.relative(norm(input.context || '.'), norm(input.dockerfile));
  return rel || posix.basename(norm(input.dockerfile));
}

/** 8 hex of a sha256 over the Dockerfile path relative to the context, `--target` and the sorted platforms. */
export function cacheKey(input: KeyInput): string {
  const platforms = [...new Set(input.platforms)].sort().join(',');
  const text = `${dockerfileInContext(input)}\n${input.target ?? ''}\n${platforms}${input.bakeTarget !== undefined ? `\n${input.bakeTarget}` : ''}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * One key per bake target. Two targets we add cache flags to whose derived keys agree (they differ
 * only in what the key does not see: build args, an inline Dockerfile) would overwrite each
 * other's cache: those fold their name in. A target with its own cache flags writes none of ours
 * and shares with nobody. A configured `buildCache.key` gets `-<target>`, the target's name as a
 * slug; two names with one slug (`App` and `app`, `a_b` and `a-b`) also get 8 hex of the name, or
 * they would share one tag (and, with a local cache, one directory whose lock the bake holds).
 */
export function bakeCacheKeys(targets: Pick<CacheTarget, 'name' | 'context' | 'dockerfile' | 'target' | 'platforms' | 'cacheFrom' | 'cacheTo'>[], configured: string): string[] {
  if (configured) {
    const slugs = targets.map((t) => refSlug(t.name));
    const nameHash = (name: string): string => createHash('sha256').update(name).digest('hex').slice(0, 8);
    return targets.map((t, i) => `${configured}-${slugs[i]}${slugs.indexOf(slugs[i]!) === slugs.lastIndexOf(slugs[i]!) ? '' : `-${nameHash(t.name)}`}`);
  }
  const keys = targets.map((t) => cacheKey(t));
  const ours = keys.filter((_, i) => targets[i]!.cacheFrom.length + targets[i]!.cacheTo.length === 0);
  const shared = (key: string): boolean => ours.indexOf(key) !== ours.lastIndexOf(key);
  return targets.map((t, i) => (shared(keys[i]!) && t.cacheFrom.length + t.cacheTo.length === 0 ? cacheKey({ ...t, bakeTarget: t.name }) : keys[i]!));
}

export function cacheTag(branchSlug: string, key: string): string {
  return `cache-${branchSlug}-${key}`;
}

// ---- type -----------------------------------------------------------------------------------

export interface CacheTypeChoice {
  type: EffectiveCacheType;
  /** Registry cache repository (type registry). */
  ref: string;
  reason: string;
}

/** `$CI_REGISTRY_IMAGE/cache` in GitLab CI, when the project has a registry. */
export function gitlabCacheRef(env: Env): string | undefined {
  const image = env.CI_REGISTRY_IMAGE?.trim();
  return isGitlabCi(env) && image ? `${image}/cache` : undefined;
}

export function isGitlabCi(env: Env): boolean {
  return env.GITLAB_CI === 'true';
}

/** `auto` = registry when a repository is known (`ref`, or `$CI_REGISTRY_IMAGE` in GitLab CI), else local when `cache.dir` is set, else off. */
export function resolveCacheType(settings: Pick<BuildCacheConfig, 'type' | 'ref'>, env: Env, cacheDir: string): CacheTypeChoice {
  const ref = settings.ref || gitlabCacheRef(env) || '';
  const refSource = settings.ref ? `buildCache.ref ${settings.ref}` : `$CI_REGISTRY_IMAGE/cache (${ref})`;
  switch (settings.type) {
    case 'off':
      return { type: 'off', ref: '', reason: 'buildCache.type is off' };
    case 'inline':
      return { type: 'inline', ref: '', reason: 'buildCache.type is inline: the cache travels inside the pushed image' };
    case 'local':
      return cacheDir
        ? { type: 'local', ref: '', reason: `buildCache.type is local: ${cacheDir}/build` }
        : { type: 'off', ref: '', reason: 'buildCache.type is local but cache.dir is not set, so there is no directory to keep it in' };
    case 'registry':
      return ref
        ? { type: 'registry', ref, reason: `buildCache.type is registry: ${refSource}` }
        : { type: 'off', ref: '', reason: 'buildCache.type is registry but no repository is known (set buildCache.ref, or run in GitLab CI with a container registry)' };
    case 'auto':
      if (ref) return { type: 'registry', ref, reason: `cache in the registry: ${refSource}` };
      if (cacheDir) return { type: 'local', ref: '', reason: `cache in the cache directory ${cacheDir}/build (no registry cache repository known)` };
      return { type: 'off', ref: '', reason: 'no cache: no registry cache repository (buildCache.ref, $CI_REGISTRY_IMAGE) and no cache.dir' };
  }
}

/** A type whose export needs a container builder (or the docker driver on the containerd store). */
export function exportsCache(type: EffectiveCacheType): boolean {
  return type === 'registry' || type === 'local';
}

// ---- branches -------------------------------------------------------------------------------

export interface BranchFacts {
  env: Env;
  /** `--build-cache-branch`. */
  flag?: string | undefined;
  /** The checked-out branch outside CI; undefined on a detached HEAD or outside a repository. */
  gitBranch?: string | undefined;
  /** The repository's default branch outside CI (origin/HEAD), when known. */
  gitDefault?: string | undefined;
}

export interface BranchPlan {
  /** The branch whose tag is read first and written (when `write`). */
  own: string | undefined;
  /** The merge request's target or the default branch, read second. */
  fallback: string | undefined;
  write: boolean;
  reasons: string[];
}

/** Which branches' tags a job reads and writes (issue 20 item 3). */
export function cacheBranches(facts: BranchFacts): BranchPlan {
  const { env } = facts;
  const reasons: string[] = [];
  const flag = facts.flag?.trim() || undefined;
  if (isGitlabCi(env)) {
    const defaultBranch = env.CI_DEFAULT_BRANCH || undefined;
    if (env.CI_COMMIT_TAG && !flag) {
      reasons.push(`tag pipeline (CI_COMMIT_TAG=${env.CI_COMMIT_TAG}): reads the default branch's cache, writes none`);
      return { own: undefined, fallback: defaultBranch, write: false, reasons };
    }
    if (env.CI_MERGE_REQUEST_IID || env.CI_PIPELINE_SOURCE === 'merge_request_event') {
      const source = flag ?? env.CI_MERGE_REQUEST_SOURCE_BRANCH_NAME ?? env.CI_COMMIT_REF_NAME;
      const target = env.CI_MERGE_REQUEST_TARGET_BRANCH_NAME || defaultBranch;
      const sourceProject = env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID;
      const project = env.CI_MERGE_REQUEST_PROJECT_ID || env.CI_PROJECT_ID;
      if (sourceProject && project && sourceProject !== project) {
        // A fork's branch names are not this project's: its own tag could be another branch's.
        reasons.push(`merge request from a fork (project ${sourceProject}): reads the target branch's cache, writes none`);
        return { own: undefined, fallback: target, write: false, reasons };
      }
      reasons.push(`merge request pipeline: branch ${source ?? '(unknown)'}, falls back to the target branch ${target ?? '(unknown)'}`);
      return { own: source, fallback: target, write: source !== undefined, reasons };
    }
    const branch = flag ?? env.CI_COMMIT_BRANCH ?? env.CI_COMMIT_REF_NAME;
    reasons.push(`branch ${branch ?? '(unknown)'}${flag ? ' (--build-cache-branch)' : ''}, falls back to the default branch ${defaultBranch ?? '(unknown)'}`);
    return { own: branch, fallback: defaultBranch, write: branch !== undefined, reasons };
  }
  const defaultBranch = facts.gitDefault;
  const branch = flag ?? facts.gitBranch;
  if (!branch) {
    reasons.push(`detached HEAD and no --build-cache-branch: reads the default branch's cache${defaultBranch ? ` (${defaultBranch})` : ''}, writes none`);
    return { own: undefined, fallback: defaultBranch, write: false, reasons };
  }
  reasons.push(`branch ${branch}${flag ? ' (--build-cache-branch)' : ' (git)'}${defaultBranch ? `, falls back to the default branch ${defaultBranch}` : ''}`);
  return { own: branch, fallback: defaultBranch, write: true, reasons };
}

// ---- flags ----------------------------------------------------------------------------------

/** One build (a `build` command, or one bake target) as the cache flags need it. */
export interface CacheTarget {
  /** Bake target name; empty for `docker buildx build`. */
  name: string;
  context: string;
  dockerfile: string;
  target?: string | undefined;
  platforms: string[];
  /** The user's own cache flags for it (raw values); either one present means we add none. */
  cacheFrom: string[];
  cacheTo: string[];
  /** A bake target's image tags and whether it pushes (for an inline cache); a build's come from its command. */
  tags?: string[] | undefined;
  push?: boolean | undefined;
}

export interface CacheFlagInput {
  choice: CacheTypeChoice;
  branches: BranchPlan;
  mode: BuildCacheMode;
  /** `buildCache.key`; empty: derived per target. */
  key: string;
  /** Pinned BuildKit version (`v0.12.5`); undefined when the tag names none. */
  buildkitVersion: string | undefined;
  /** Type local: `<cache.dir>/build`. */
  localRoot?: string | undefined;
  /** Type local: keys whose directory holds a cache now (only those are read). */
  localExisting?: ReadonlySet<string> | undefined;
  /** Type local: suffix of this run's fresh export directory (`<key>.new-<suffix>`). */
  localSuffix?: string | undefined;
  /** Type inline: the build pushes (`--push` or an image output with push=true). */
  push?: boolean | undefined;
  /** Type inline: the image tags the build pushes (`-t`). */
  tags?: string[] | undefined;
}

export interface TargetCacheFlags {
  target: string;
  key: string;
  /** `--cache-from` values, in order. */
  from: string[];
  /** `--cache-to` values. */
  to: string[];
  /** Registry refs or directories read, and the one written, for the report. */
  reads: string[];
  writes: string | undefined;
  /** Type local: the fresh export directory and the one it replaces on success. */
  local?: { fresh: string; dir: string } | undefined;
  reasons: string[];
}

/** `image-manifest` needs BuildKit ≥ 0.12 (unknown versions are moving tags such as buildx-stable-1: current). */
export function supportsImageManifest(version: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return true;
  return Number(m[1]) > 0 || Number(m[2]) >= 12;
}

/** The cache flags for one build or bake target. */
export function cacheFlagsFor(target: CacheTarget, input: CacheFlagInput): TargetCacheFlags {
  const key = input.key || cacheKey(target);
  const out: TargetCacheFlags = { target: target.name, key, from: [], to: [], reads: [], writes: undefined, reasons: [] };
  const who = target.name ? `target ${target.name}` : 'the build';
  if (target.cacheFrom.length > 0 || target.cacheTo.length > 0) {
    const given = [target.cacheFrom.length ? '--cache-from' : '', target.cacheTo.length ? '--cache-to' : ''].filter(Boolean).join(' and ');
    out.reasons.push(`${who} sets its own ${given}: no cache flags added`);
    return out;
  }
  const { choice, branches } = input;
  switch (choice.type) {
    case 'off':
      return out;
    case 'registry': {
      const refOf = (branch: string): string => `${choice.ref}:${cacheTag(refSlug(branch), key)}`;
      const own = branches.own !== undefined && refSlug(branches.own) ? branches.own : undefined;
      const reads = [own, branches.fallback].filter((b): b is string => b !== undefined && refSlug(b) !== '').map(refOf);
      out.reads = [...new Set(reads)];
      out.from = out.reads.map((ref) => `type=registry,ref=${ref}`);
      if (branches.write && own !== undefined) {
        out.writes = refOf(own);
        const manifest = supportsImageManifest(input.buildkitVersion);
        const opts = [`type=registry`, `ref=${out.writes}`, `mode=${input.mode}`, ...(manifest ? ['image-manifest=true'] : []), 'oci-mediatypes=true', 'ignore-error=true'];
        out.to = [opts.join(',')];
        if (!manifest) out.reasons.push(`BuildKit ${input.buildkitVersion} predates image-manifest (0.12): the cache is written as BuildKit's own manifest list, which some registries (ECR, Quay, Artifactory) refuse`);
      }
      return out;
    }
    case 'local': {
      const root = input.localRoot ?? '';
      const dir = `${root}/${key}`;
      if (input.localExisting?.has(key)) {
        out.from = [`type=local,src=${dir}`];
        out.reads = [dir];
      }
      // Same rule as the registry tags: a tag pipeline, a fork or a detached HEAD only reads.
      if (branches.write) {
        const fresh = `${dir}.new-${input.localSuffix ?? 'run'}`;
        out.to = [`type=local,dest=${fresh},mode=${input.mode},ignore-error=true`];
        out.writes = dir;
        out.local = { fresh, dir };
      }
      return out;
    }
    case 'inline': {
      const tags = input.tags ?? [];
      if (!input.push) {
        out.reasons.push('inline cache travels inside the pushed image, and this build does not push: no cross-job cache');
        return out;
      }
      out.from = [...tags];
      out.reads = [...tags];
      out.to = ['type=inline'];
      out.writes = tags.length ? tags.join(', ') : 'the pushed image';
      return out;
    }
  }
}

/** The flag words to insert for a `build` command (`--cache-from X … --cache-to Y`). */
export function cacheFlagArgs(flags: Pick<TargetCacheFlags, 'from' | 'to'>): string[] {
  return [...flags.from.flatMap((v) => ['--cache-from', v]), ...flags.to.flatMap((v) => ['--cache-to', v])];
}

/**
 * The flag words for `docker buildx bake`: one `--set <target>.cache-from=<value>` per value;
 * buildx gathers repeated `--set`s of one list key into the list (BX `bake/bake.go` parseOverride).
 */
export function bakeCacheSetArgs(flags: TargetCacheFlags[]): string[] {
  return flags.flatMap((f) => [
    ...f.from.flatMap((v) => ['--set', `${f.target}.cache-from=${v}`]),
    ...f.to.flatMap((v) => ['--set', `${f.target}.cache-to=${v}`]),
  ]);
}

// ---- the driver ------------------------------------------------------------------------------

export interface DriverCacheInput {
  choice: CacheTypeChoice;
  driver: string;
  /** The daemon's image store, for the docker driver. */
  imageStore: 'containerd' | 'classic' | undefined;
}

/**
 * The type that can work on the chosen driver: the docker driver on the classic image store
 * exports only inline cache, which travels inside the pushed image.
 */
export function cacheTypeForDriver(input: DriverCacheInput): CacheTypeChoice {
  const { choice } = input;
  if (input.driver !== 'docker' || !exportsCache(choice.type) || input.imageStore === 'containerd') return choice;
  return {
    type: 'inline',
    ref: '',
    reason: `${choice.reason}; but the docker driver on the ${input.imageStore ?? 'unknown'} image store exports only inline cache, so the cache travels inside the pushed image`,
  };
}

// ---- the report after the build ----------------------------------------------------------------

export interface CacheReportInput {
  flags: Pick<TargetCacheFlags, 'reads' | 'writes' | 'to'>;
  exitCode: number;
  /** From BuildKit's record of the build; `why` when no record could be read. */
  steps: { cached: number; total: number } | { why: string };
  /** Errors of the cache-export steps from the build's recorded logs; `why` when unreadable. */
  exportErrors: string[] | { why: string };
}

/** `cache: 11 of 13 steps cached; read …:cache-main-1a2b3c4d; wrote …:cache-feature-x-1a2b3c4d`. */
export function formatCacheReport(input: CacheReportInput): string {
  const parts: string[] = [];
  if ('why' in input.steps) parts.push(`cached steps not known (${input.steps.why})`);
  else parts.push(`${input.steps.cached} of ${input.steps.total} steps cached`);
  if (input.flags.reads.length) parts.push(`read ${input.flags.reads.join(', ')}`);
  const { writes } = input.flags;
  if (writes !== undefined && input.flags.to.length) {
    if (input.exitCode !== 0) parts.push(`not written: the build failed (exit ${input.exitCode})`);
    else if (Array.isArray(input.exportErrors)) parts.push(input.exportErrors.length ? `not written: ${input.exportErrors.join('; ')}` : `wrote ${writes}`);
    else parts.push(`wrote ${writes} (not confirmed: ${input.exportErrors.why})`);
  } else parts.push('wrote nothing');
  return `cache: ${parts.join('; ')}`;
}
