// A bake's targets as buildx itself evaluated them: the JSON of `docker buildx bake --print`
// (BX `commands/bake.go`, `bake/bake.go` `Target`), after HCL, compose or JSON files, variables,
// `--set`, `--push` and `--load` were applied. No bake file is parsed here. Pure.
//
// Two shapes are read: buildx up to 0.17 prints `output`, `cache-from`, `cache-to` and `attest`
// as CSV strings (`"type=docker"`); later versions print them as objects (`{"type": "docker"}`,
// BX `util/buildflags` `MarshalJSON`), `dest` being one more key.
import { UsageError } from '../errors.js';
import { hostPlatform, splitPlatforms } from '../dockerfile/platform.js';
import { buildContextName } from '../dockerfile/dockerfile.js';
import { cacheTargetOf, isRemoteContext, pushesImage, parseCacheSpec, parseOutputSpec, type BuildRequest, type BuildResultSpec, type ExportSpec } from './build-args.js';
import type { CacheTarget } from './build-cache.js';

export interface BakeTarget {
  /** The target's name (`--set <name>.…` addresses it). */
  name: string;
  /** The build context as printed (`.` when unset); a local path relative to the working directory, or a URL. */
  context: string;
  /** The Dockerfile as printed (`Dockerfile` when unset): relative to the context unless absolute; `cwd://` relative to the working directory. */
  dockerfile: string;
  /** `dockerfile-inline`: the Dockerfile's text, used instead of the file. */
  dockerfileInline?: string;
  /** The Dockerfile stage built (`target`). */
  target?: string;
  /** Normalised target platforms; empty: the builder's. */
  platforms: string[];
  tags: string[];
  outputs: ExportSpec[];
  cacheFrom: ExportSpec[];
  cacheTo: ExportSpec[];
  /** Build args with a value (`null` ones, unset in the environment, are left out as buildx does). */
  args: Record<string, string>;
  /** Named contexts (`contexts`), keyed as BuildKit looks them up. */
  contexts: Record<string, string>;
  /** An attestation that is not disabled (`attest`, `--sbom`, `--provenance`). */
  attestations: boolean;
  /** `call` other than `build` (`check`, `outline`, …). */
  call?: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** An object entry (`{"type": "registry", "ref": "…"}`) as the CSV flag value buildx would take. */
function objectEntry(entry: Json): { type: string; attrs: Record<string, string>; raw: string } {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) if (k !== 'type' && v !== undefined && v !== null) attrs[k] = String(v);
  const type = str(entry.type) ?? '';
  const raw = [`type=${type}`, ...Object.entries(attrs).map(([k, v]) => (/[",]/.test(v) ? `"${k}=${v.replace(/"/g, '""')}"` : `${k}=${v}`))].join(',');
  return { type, attrs, raw };
}

function exportEntries(v: unknown, key: string, parse: (raw: string) => ExportSpec[]): ExportSpec[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((entry) => {
    if (typeof entry === 'string') {
      try {
        return parse(entry);
      } catch (error) {
        throw new UsageError(`bake --print: ${key} "${entry}": ${(error as Error).message}`);
      }
    }
    return isObject(entry) ? [objectEntry(entry)] : [];
  });
}

function attested(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  return v.some((entry) => {
    if (typeof entry === 'string') return !/(^|,)\s*disabled=true\s*(,|$)/i.test(entry);
    return isObject(entry) && entry.disabled !== true && entry.disabled !== 'true';
  });
}

function contextKeys(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  for (const [name, value] of Object.entries(v)) {
    if (typeof value !== 'string') continue;
    let key = name;
    try {
      key = buildContextName(name);
    } catch {
      // kept as written; buildx would reject it
    }
    out[key] = value;
  }
  return out;
}

/**
 * The targets `docker buildx bake --print` printed, in name order. Throws a UsageError when the
 * text is not its JSON (naming what was wrong).
 */
export function readBakeTargets(printJson: string): BakeTarget[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(printJson);
  } catch (error) {
    throw new UsageError(`bake --print did not give JSON: ${(error as Error).message}`);
  }
  if (!isObject(parsed) || !isObject(parsed.target)) throw new UsageError('bake --print gave no "target" map');
  return Object.entries(parsed.target)
    .filter((e): e is [string, Json] => isObject(e[1]))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, t]) => {
      const args: Record<string, string> = {};
      if (isObject(t.args)) for (const [k, v] of Object.entries(t.args)) if (typeof v === 'string') args[k] = v;
      let platforms: string[];
      try {
        platforms = splitPlatforms(strings(t.platforms).flatMap((p) => p.split(',').map((x) => (x.trim() === 'local' ? hostPlatform() : x))));
      } catch (error) {
        throw new UsageError(`bake target ${name}: platforms: ${(error as Error).message}`);
      }
      const call = str(t.call)?.trim();
      const target: BakeTarget = {
        name,
        context: str(t.context) ?? '.',
        dockerfile: str(t.dockerfile) ?? 'Dockerfile',
        platforms,
        tags: strings(t.tags),
        outputs: exportEntries(t.output, 'output', (raw) => [parseOutputSpec(raw)]),
        cacheFrom: exportEntries(t['cache-from'], 'cache-from', (raw) => parseCacheSpec(raw, 'cache-from')),
        cacheTo: exportEntries(t['cache-to'], 'cache-to', (raw) => parseCacheSpec(raw, 'cache-to')),
        args,
        contexts: contextKeys(t.contexts),
        attestations: attested(t.attest),
      };
      const inline = str(t['dockerfile-inline']);
      if (inline !== undefined) target.dockerfileInline = inline;
      const stage = str(t.target);
      if (stage) target.target = stage;
      if (call && call.toLowerCase() !== 'build') target.call = call;
      return target;
    });
}

function joinPath(dir: string, name: string): string {
  if (dir === '' || dir === '.') return name;
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/**
 * One target as the build request the driver decision and the Dockerfile reader take (the same
 * shape a `docker buildx build` command gives). The Dockerfile path follows BX `bake/bake.go`
 * `toBuildOpt`: `cwd://` is relative to the working directory, a relative path to the context.
 */
export function bakeTargetRequest(t: BakeTarget): BuildRequest {
  const local = t.context.startsWith('cwd://') ? t.context.slice('cwd://'.length) : t.context;
  const remote = isRemoteContext(t.context);
  const dockerfile: BuildRequest['dockerfile'] = remote
    ? { kind: 'remote', path: t.dockerfile }
    : t.dockerfile.startsWith('cwd://')
      ? { kind: 'path', path: t.dockerfile.slice('cwd://'.length) }
      : { kind: 'path', path: t.dockerfile.startsWith('/') ? t.dockerfile : joinPath(local, t.dockerfile) };
  const req: BuildRequest = {
    kind: 'build',
    invocation: 'buildx',
    subcommandIndex: -1,
    dockerfile,
    context: remote ? { kind: 'remote', url: t.context } : { kind: 'local', path: local },
    buildArgs: { ...t.args },
    buildArgsFromEnv: [],
    buildContexts: { ...t.contexts },
    platforms: t.platforms,
    cacheTo: t.cacheTo,
    cacheFrom: t.cacheFrom.map((c) => c.raw),
    outputs: t.outputs,
    push: false,
    load: false,
    tags: t.tags,
    attestations: t.attestations,
    flags: [],
    warnings: [],
  };
  if (t.target) req.target = t.target;
  if (t.call) req.call = t.call;
  return req;
}

/** One target's result, for resultLoads: its outputs already hold what `--push`/`--load` set. */
export function bakeTargetResult(t: BakeTarget): BuildResultSpec {
  return {
    bakeTarget: t.name,
    tags: t.tags,
    outputs: t.outputs,
    push: false,
    load: false,
    platforms: t.platforms,
    attestations: t.attestations,
    ...(t.call !== undefined ? { call: t.call } : {}),
  };
}

/**
 * The targets as the build cache needs them (one key and one `--set <target>.cache-…` each), and
 * a note for each target that cannot have one: a remote context has no Dockerfile path to key on,
 * and a target whose `call` is not `build` (check, outline) exports nothing.
 * A target's own cache-from/cache-to (bake file or the user's `--set`) is in what --print printed.
 */
export function bakeCacheTargets(targets: BakeTarget[], cwd: string): { targets: CacheTarget[]; notes: string[] } {
  const out: CacheTarget[] = [];
  const notes: string[] = [];
  for (const t of targets) {
    if (t.call !== undefined) {
      notes.push(`target ${t.name} does not build (call ${t.call}): no cache flags added`);
      continue;
    }
    const req = bakeTargetRequest(t);
    const target = cacheTargetOf(req, cwd);
    // --print already folded --push into the outputs.
    if (target) out.push({ ...target, name: t.name, tags: t.tags, push: pushesImage(req) });
    else notes.push(`target ${t.name} has no local context to derive a cache key from: no cache flags added`);
  }
  return { targets: out, notes };
}
