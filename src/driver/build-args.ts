// Reads a prefixed build command (`docker buildx build|bake …`, `docker build …`) the way the
// docker CLI and buildx's cobra/pflag flag sets read it, so the driver decision can see what the
// build needs and the command can be rewritten with `--builder`/`--build-context` without touching
// a single user argument.
//
// Flag tables follow BX `commands/build.go` (`buildCmd`, `commonBuildFlags`), `commands/bake.go`,
// `commands/root.go` (persistent `--builder`, `-D/--debug`) and CLI `cli/flags/options.go`
// (global docker flags). Value parsing follows BX `util/buildflags/{export,cache,context}.go`.
// Bake files are read by buildx itself (`bake --print`, src/driver/bake-targets.ts); here a bake
// command's own flags are read, and the per-target `--set` values are written.
import { posix } from 'node:path';
import { UsageError } from '../errors.js';
import { buildContextName } from '../dockerfile/dockerfile.js';
import { hostPlatform, splitPlatforms } from '../dockerfile/platform.js';
import { csvFields } from '../dockerfile/csv.js';
import { semver } from '../lazy.cjs';
import { bakeCacheSetArgs, cacheFlagArgs, type CacheTarget, type TargetCacheFlags } from './build-cache.js';

export type DockerfileSource =
  /** A local file (as given: relative paths are relative to the working directory). */
  | { kind: 'path'; path: string }
  /** `-f -`: read from stdin by buildx; not available to us. */
  | { kind: 'stdin' }
  /** Inside a remote (git/HTTP) context or a context tar from stdin: not readable locally. */
  | { kind: 'remote'; path?: string }
  /** `bake`: the Dockerfiles are named by the bake file. */
  | { kind: 'none' };

export type ContextSource =
  | { kind: 'local'; path: string }
  /** `-`: a tar or a Dockerfile on stdin. */
  | { kind: 'stdin' }
  /** A git or HTTP(S) URL. */
  | { kind: 'remote'; url: string }
  | { kind: 'missing' };

export interface ExportSpec {
  /** `registry`, `inline`, `local`, `gha`, `image`, `docker`, `oci`, `tar`, … */
  type: string;
  attrs: Record<string, string>;
  /** The flag value as given. */
  raw: string;
}

export interface BuildRequest {
  kind: 'build' | 'bake';
  /**
   * `buildx`: `docker [global flags] buildx [--builder X] build|b|bake|f …` or the plugin binary;
   * `docker-build`: `docker build|builder build|image build …`, which the CLI hands to buildx only
   * from CLI 23.0 on (CLI `cmd/docker/builder.go`); CLI 20.10 runs its legacy builder, which knows
   * neither `--builder` nor `--build-context`.
   */
  invocation: 'buildx' | 'docker-build';
  /** Index in argv of the subcommand token (`build`, `b`, `bake`, `f`); flags go right after it. */
  subcommandIndex: number;
  dockerfile: DockerfileSource;
  context: ContextSource;
  /** `--build-arg K=V`, and `--build-arg K` resolved from the environment when set there. */
  buildArgs: Record<string, string>;
  /** Keys given as `--build-arg K` (value taken from the environment, dropped when unset). */
  buildArgsFromEnv: string[];
  /** `--build-context name=value`, keyed by the normalised name BuildKit looks up. */
  buildContexts: Record<string, string>;
  /** Normalised target platforms (`--platform`, repeatable and comma lists; `DOCKER_DEFAULT_PLATFORM`). */
  platforms: string[];
  cacheTo: ExportSpec[];
  cacheFrom: string[];
  /** `--output`/`-o` entries; `--push`/`--load` are reported separately. */
  outputs: ExportSpec[];
  push: boolean;
  load: boolean;
  /** `-t/--tag` values, as given. */
  tags: string[];
  /** `--call`/`--print` naming something else than a build (`check`, `outline`, …), or `--check`. */
  call?: string;
  /** `--metadata-file` given by the user. */
  metadataFile?: string;
  /** `--attest`, `--sbom`, `--provenance` with a value other than false. */
  attestations: boolean;
  target?: string;
  /** `--builder` given by the user (before or after the subcommand). It wins over ours. */
  builder?: string;
  /** Build flags given by the user, in order, as `--name` (for messages and `plan`). */
  flags: string[];
  /** Things we could not read with certainty (unknown flags, extra positionals). */
  warnings: string[];
}

// ---- flag tables ---------------------------------------------------------------------------

/** Docker CLI global flags that take a value (CLI `cli/flags/options.go`). */
const DOCKER_GLOBAL_VALUE = new Set(['--config', '-c', '--context', '-H', '--host', '-l', '--log-level', '--tlscacert', '--tlscert', '--tlskey']);
const DOCKER_GLOBAL_BOOL = new Set(['-D', '--debug', '--tls', '--tlsverify', '-v', '--version', '-h', '--help']);

/** buildx root persistent flags (BX `commands/root.go` `rootFlags`). */
const BUILDX_ROOT_VALUE = new Set(['builder']);
const BUILDX_ROOT_BOOL = new Set(['debug']);

const BUILD_VALUE = new Set([
  'add-host', 'allow', 'annotation', 'build-arg', 'cache-from', 'cache-to', 'cgroup-parent', 'build-context', 'file',
  'iidfile', 'label', 'network', 'no-cache-filter', 'output', 'platform', 'policy', 'secret', 'shm-size', 'ssh', 'tag',
  'target', 'ulimit', 'resource', 'attest', 'sbom', 'provenance', 'call', 'print', 'memory', 'memory-swap', 'cpu-shares',
  'cpu-period', 'cpu-quota', 'cpuset-cpus', 'cpuset-mems', 'isolation', 'security-opt', 'progress', 'metadata-file',
  ...BUILDX_ROOT_VALUE,
]);
const BUILD_BOOL = new Set(['load', 'push', 'quiet', 'compress', 'squash', 'rm', 'force-rm', 'no-cache', 'pull', 'check', ...BUILDX_ROOT_BOOL]);
const BUILD_SHORT: Record<string, string> = { f: 'file', o: 'output', t: 'tag', q: 'quiet', m: 'memory', c: 'cpu-shares', D: 'debug' };

const BAKE_VALUE = new Set(['file', 'sbom', 'provenance', 'policy', 'set', 'var', 'call', 'allow', 'list', 'progress', 'metadata-file', ...BUILDX_ROOT_VALUE]);
const BAKE_BOOL = new Set(['load', 'push', 'check', 'print', 'list-targets', 'list-variables', 'no-cache', 'pull', ...BUILDX_ROOT_BOOL]);
const BAKE_SHORT: Record<string, string> = { f: 'file', D: 'debug' };

interface FlagSet {
  value: Set<string>;
  bool: Set<string>;
  short: Record<string, string>;
}
const BUILD_FLAGS: FlagSet = { value: BUILD_VALUE, bool: BUILD_BOOL, short: BUILD_SHORT };
const BAKE_FLAGS: FlagSet = { value: BAKE_VALUE, bool: BAKE_BOOL, short: BAKE_SHORT };

function isDockerBinary(arg0: string): 'docker' | 'plugin' | undefined {
  const base = arg0.split(/[\\/]/).pop() ?? '';
  if (/^docker(\.exe)?$/i.test(base)) return 'docker';
  if (/^docker-buildx(\.exe)?$/i.test(base)) return 'plugin';
  return undefined;
}

// ---- command recognition --------------------------------------------------------------------

interface Located {
  kind: 'build' | 'bake';
  invocation: BuildRequest['invocation'];
  subcommandIndex: number;
  /** `--builder` given between `buildx` and the subcommand. */
  rootBuilder?: string;
}

/** Skips docker global flags from `start`; returns the index of the first non-flag or argv.length. */
function skipGlobalFlags(argv: string[], start: number): number {
  let i = start;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--') return i + 1;
    if (!a.startsWith('-') || a === '-') return i;
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (DOCKER_GLOBAL_VALUE.has(name)) {
      i += a.includes('=') ? 1 : 2;
    } else if (DOCKER_GLOBAL_BOOL.has(name)) {
      i += 1;
    } else if (/^-[a-zA-Z]{2,}$/.test(a)) {
      // A cluster such as `-Dl warn`: the last letter may take the next word.
      const last = `-${a[a.length - 1]}`;
      i += DOCKER_GLOBAL_VALUE.has(last) ? 2 : 1;
    } else if (/^-[cHl].+/.test(a)) {
      i += 1; // -Hunix:///x
    } else {
      i += 1; // unknown global flag: assume no value, as the next word decides the command anyway
    }
  }
  return i;
}

function locate(argv: string[]): Located | undefined {
  const bin = argv[0] === undefined ? undefined : isDockerBinary(argv[0]);
  if (!bin) return undefined;
  if (bin === 'plugin') return locateAfterBuildx(argv, 1);
  const i = skipGlobalFlags(argv, 1);
  const cmd = argv[i];
  if (cmd === 'buildx') return locateAfterBuildx(argv, i + 1);
  if (cmd === 'build') return { kind: 'build', invocation: 'docker-build', subcommandIndex: i };
  if ((cmd === 'builder' || cmd === 'image') && argv[i + 1] === 'build') {
    return { kind: 'build', invocation: 'docker-build', subcommandIndex: i + 1 };
  }
  return undefined;
}

function locateAfterBuildx(argv: string[], start: number): Located | undefined {
  let i = start;
  let rootBuilder: string | undefined;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--builder') {
      rootBuilder = argv[i + 1];
      i += 2;
    } else if (a.startsWith('--builder=')) {
      rootBuilder = a.slice('--builder='.length);
      i += 1;
    } else if (a === '-D' || a === '--debug' || a.startsWith('--debug=')) {
      i += 1;
    } else {
      break;
    }
  }
  const cmd = argv[i];
  const base = { invocation: 'buildx' as const, subcommandIndex: i, ...(rootBuilder !== undefined ? { rootBuilder } : {}) };
  if (cmd === 'build' || cmd === 'b') return { kind: 'build', ...base };
  if (cmd === 'bake' || cmd === 'f') return { kind: 'bake', ...base };
  return undefined;
}

/** True when argv is a build or bake command this module understands. */
export function isBuildCommand(argv: string[]): boolean {
  return locate(argv) !== undefined;
}

// ---- value parsing --------------------------------------------------------------------------

export { csvFields };

function parseKeyValues(fields: string[], flag: string, raw: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 0) throw new UsageError(`${flag} "${raw}": invalid value "${field}", expected key=value`, { hint: `see docker buildx build --help for the ${flag} syntax` });
    attrs[field.slice(0, eq).trim().toLowerCase()] = field.slice(eq + 1);
  }
  return attrs;
}

/** One `--cache-to`/`--cache-from` value (BX `util/buildflags/cache.go`): a bare ref means registry. */
export function parseCacheSpec(raw: string, flag = '--cache-to'): ExportSpec[] {
  let fields: string[];
  try {
    fields = csvFields(raw);
  } catch (e) {
    throw new UsageError(`${flag} "${raw}": ${(e as Error).message}`);
  }
  if (!raw.includes('=')) return fields.filter(Boolean).map((ref) => ({ type: 'registry', attrs: { ref }, raw }));
  const attrs = parseKeyValues(fields, flag, raw);
  const type = attrs.type ?? '';
  delete attrs.type;
  if (!type) throw new UsageError(`${flag} "${raw}": type required`, { hint: `e.g. ${flag} type=registry,ref=registry.example/app:cache` });
  return [{ type, attrs, raw }];
}

/** One `--output`/`-o` value (BX `util/buildflags/export.go`): a bare path is `local`, `-` is `tar`. */
export function parseOutputSpec(raw: string): ExportSpec {
  let fields: string[];
  try {
    fields = csvFields(raw);
  } catch (e) {
    throw new UsageError(`--output "${raw}": ${(e as Error).message}`);
  }
  if (fields.length === 1 && fields[0] === raw && !raw.startsWith('type=')) {
    return raw === '-' ? { type: 'tar', attrs: { dest: '-' }, raw } : { type: 'local', attrs: { dest: raw }, raw };
  }
  const attrs = parseKeyValues(fields, '--output', raw);
  const type = attrs.type ?? '';
  delete attrs.type;
  if (!type) throw new UsageError(`--output "${raw}": type is required`, { hint: 'e.g. --output type=registry or --output type=local,dest=out' });
  return { type, attrs, raw };
}

/**
 * buildx sends a URL context to BuildKit instead of reading it (BX `util/urlutil/urlutil.go`
 * `IsRemoteURL`: HTTP(S) URLs and git references such as `git@host:repo`, `git://…`,
 * `github.com/o/r`, `…​.git#ref`).
 */
export function isRemoteContext(value: string): boolean {
  if (/^https?:\/\//i.test(value)) return true;
  if (/^(git|ssh|git\+ssh):\/\//i.test(value)) return true;
  if (/^[\w.-]+@[\w.-]+:/.test(value)) return true;
  if (/^github\.com\//.test(value)) return true;
  return false;
}

function parseBoolValue(value: string | undefined): boolean {
  if (value === undefined) return true;
  return !/^(false|0|f|no)$/i.test(value.trim());
}

// ---- the parser -----------------------------------------------------------------------------

interface Flag {
  name: string;
  value?: string;
  /** argv index of the flag token. */
  index: number;
}

interface Scan {
  flags: Flag[];
  positionals: { value: string; index: number }[];
  unknown: string[];
}

/** Reads pflag-style arguments after the subcommand: interspersed flags, `--` ends them. */
function scanArgs(argv: string[], start: number, set: FlagSet): Scan {
  const flags: Flag[] = [];
  const positionals: { value: string; index: number }[] = [];
  const unknown: string[] = [];
  let i = start;
  const needValue = (name: string, idx: number): string => {
    const v = argv[idx + 1];
    if (v === undefined) {
      throw new UsageError(`flag ${name.length === 1 ? `-${name}` : `--${name}`} in the build command needs a value`, {
        hint: 'fix the build command after `--`',
      });
    }
    return v;
  };
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--') {
      for (let j = i + 1; j < argv.length; j++) positionals.push({ value: argv[j]!, index: j });
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (set.value.has(name)) {
        if (eq >= 0) {
          flags.push({ name, value: a.slice(eq + 1), index: i });
          i += 1;
        } else {
          flags.push({ name, value: needValue(name, i), index: i });
          i += 2;
        }
      } else {
        if (!set.bool.has(name)) unknown.push(`--${name}`);
        flags.push(eq < 0 ? { name, index: i } : { name, value: a.slice(eq + 1), index: i });
        i += 1;
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // Shorthand cluster: bool letters, then at most one value letter taking the rest or the next word.
      let consumedNext = false;
      for (let k = 1; k < a.length; k++) {
        const letter = a[k]!;
        const name = set.short[letter];
        if (name === undefined) {
          unknown.push(`-${letter}`);
          continue;
        }
        if (set.value.has(name)) {
          let rest = a.slice(k + 1);
          if (rest.startsWith('=')) rest = rest.slice(1);
          if (rest) {
            flags.push({ name, value: rest, index: i });
          } else {
            flags.push({ name, value: needValue(letter, i), index: i });
            consumedNext = true;
          }
          break;
        }
        flags.push({ name, index: i });
      }
      i += consumedNext ? 2 : 1;
      continue;
    }
    positionals.push({ value: a, index: i });
    i += 1;
  }
  return { flags, positionals, unknown };
}

/**
 * Reads a build command. Returns undefined when argv is not `docker buildx build|b|bake|f`,
 * `docker build`, `docker builder build`, `docker image build` or the buildx plugin binary.
 * `env` supplies `--build-arg K` values and `DOCKER_DEFAULT_PLATFORM` (buildx reads both).
 * Throws a UsageError for a flag missing its value or a malformed `--output`/`--cache-to`.
 */
export function parseBuildCommand(argv: string[], env: Record<string, string | undefined> = {}): BuildRequest | undefined {
  const loc = locate(argv);
  if (!loc) return undefined;
  const scan = scanArgs(argv, loc.subcommandIndex + 1, loc.kind === 'build' ? BUILD_FLAGS : BAKE_FLAGS);
  const warnings = scan.unknown.map((f) => `unknown build flag ${f}: assumed to take no value`);

  const req: BuildRequest = {
    kind: loc.kind,
    invocation: loc.invocation,
    subcommandIndex: loc.subcommandIndex,
    dockerfile: { kind: 'none' },
    context: { kind: 'missing' },
    buildArgs: {},
    buildArgsFromEnv: [],
    buildContexts: {},
    platforms: [],
    cacheTo: [],
    cacheFrom: [],
    outputs: [],
    push: false,
    load: false,
    tags: [],
    attestations: false,
    flags: scan.flags.map((f) => `--${f.name}`),
    warnings,
  };
  if (loc.rootBuilder !== undefined) req.builder = loc.rootBuilder;

  let file: string | undefined;
  const platformValues: string[] = [];
  for (const f of scan.flags) {
    const v = f.value;
    switch (f.name) {
      case 'builder':
        if (v !== undefined) req.builder = v;
        break;
      case 'push':
        req.push = parseBoolValue(v);
        break;
      case 'load':
        req.load = parseBoolValue(v);
        break;
      case 'file':
        if (loc.kind === 'build') file = v;
        break;
      case 'metadata-file':
        if (v !== undefined) req.metadataFile = v;
        break;
      case 'sbom':
      case 'provenance':
        // `--provenance=false` / `--sbom=false` (or `disabled=true`) switch them off; anything else asks for one.
        if (loc.kind === 'build' && v !== undefined && !/^(false|0)$/i.test(v.trim()) && !/(^|,)disabled=true(,|$)/i.test(v)) req.attestations = true;
        break;
      case 'attest':
        if (v !== undefined && !/(^|,)disabled=true(,|$)/i.test(v)) req.attestations = true;
        break;
      case 'call':
      case 'print':
        if (loc.kind === 'bake' && f.name === 'print') {
          if (parseBoolValue(v)) req.call = 'print';
        } else if (v !== undefined && v.trim() !== '' && v.trim().toLowerCase() !== 'build') {
          // build's `--print` is the older name of `--call` (buildx 0.12–0.14).
          req.call = v.trim();
        }
        break;
      case 'check':
        if (parseBoolValue(v)) req.call = 'check';
        break;
      case 'list':
      case 'list-targets':
      case 'list-variables':
        if (loc.kind === 'bake' && (v === undefined || f.name === 'list' || parseBoolValue(v))) req.call = 'list';
        break;
      default:
        break;
    }
    if (loc.kind !== 'build' || v === undefined) continue;
    switch (f.name) {
      case 'build-arg': {
        const eq = v.indexOf('=');
        if (eq >= 0) {
          req.buildArgs[v.slice(0, eq)] = v.slice(eq + 1);
        } else if (v) {
          req.buildArgsFromEnv.push(v);
          const fromEnv = env[v];
          // buildx drops `--build-arg K` when K is not set in its environment.
          if (fromEnv !== undefined) req.buildArgs[v] = fromEnv;
        }
        break;
      }
      case 'build-context': {
        const eq = v.indexOf('=');
        if (eq < 1) throw new UsageError(`--build-context "${v}": expected name=value`, { hint: 'e.g. --build-context alpine=docker-image://alpine:3.20' });
        const name = v.slice(0, eq);
        let key = name;
        try {
          key = buildContextName(name);
        } catch {
          req.warnings.push(`--build-context name "${name}" is not an image reference; buildx will reject it`);
        }
        req.buildContexts[key] = v.slice(eq + 1);
        break;
      }
      case 'platform':
        platformValues.push(v);
        break;
      case 'cache-to':
        req.cacheTo.push(...parseCacheSpec(v, '--cache-to'));
        break;
      case 'cache-from':
        req.cacheFrom.push(v);
        break;
      case 'output':
        req.outputs.push(parseOutputSpec(v));
        break;
      case 'target':
        req.target = v;
        break;
      case 'tag':
        req.tags.push(v);
        break;
      default:
        break;
    }
  }

  if (loc.kind === 'build') {
    if (platformValues.length === 0 && env.DOCKER_DEFAULT_PLATFORM) platformValues.push(env.DOCKER_DEFAULT_PLATFORM);
    try {
      req.platforms = splitPlatforms(platformValues.flatMap((p) => p.split(',').map((x) => (x.trim() === 'local' ? hostPlatform() : x))));
    } catch (e) {
      throw new UsageError(`--platform: ${(e as Error).message}`, { hint: 'use os/arch[/variant], e.g. --platform linux/amd64,linux/arm64' });
    }
    if (scan.positionals.length > 1) {
      req.warnings.push(`build takes one context argument, got ${scan.positionals.length}: ${scan.positionals.map((p) => p.value).join(' ')}`);
    }
    const ctx = scan.positionals[0]?.value;
    if (ctx === undefined) req.context = { kind: 'missing' };
    else if (ctx === '-') req.context = { kind: 'stdin' };
    else if (isRemoteContext(ctx)) req.context = { kind: 'remote', url: ctx };
    else req.context = { kind: 'local', path: ctx };

    if (file === '-') {
      req.dockerfile = { kind: 'stdin' };
    } else if (req.context.kind === 'remote' || req.context.kind === 'stdin') {
      // The file name is resolved inside the remote context / stdin tar, not on this machine.
      req.dockerfile = file !== undefined ? { kind: 'remote', path: file } : { kind: 'remote' };
    } else if (file !== undefined) {
      req.dockerfile = { kind: 'path', path: file };
    } else if (req.context.kind === 'local') {
      req.dockerfile = { kind: 'path', path: joinPath(req.context.path, 'Dockerfile') };
    } else {
      req.dockerfile = { kind: 'none' };
    }
  }
  return req;
}

function joinPath(dir: string, name: string): string {
  if (dir === '' || dir === '.') return name;
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

// ---- rewriting ------------------------------------------------------------------------------

export interface RewriteOptions {
  /** Added as `--builder X` unless the user already chose one (theirs wins). */
  builder?: string;
  /** name → value (e.g. `oci-layout:///tmp/x:alpine`), added as `--build-context name=value`. */
  addBuildContexts: Record<string, string>;
  /**
   * Further arguments, added after `--builder`, `--build-context` and the cache flags: a bake's `--allow` for the
   * bridged layouts (bakeAllowArgs) and per-target contexts (bakeContextArgs), then the result
   * loading (loadArgs).
   */
  add?: string[];
  /**
   * Cache flags (src/driver/build-cache.ts): for `build` the one entry's `--cache-from`/`--cache-to`,
   * for `bake` a `--set <target>.cache-from|to=…` per value and target.
   */
  cache?: TargetCacheFlags[];
  /** `--metadata-file FILE` to add (the report after the build reads the build's ref from it). */
  metadataFile?: string;
}

/**
 * Inserts `--builder X`, `--build-context name=value`, the cache flags and `add` right after the subcommand token;
 * every user argument stays unchanged and in order. A bake takes its contexts per target
 * (bakeContextArgs in `add`), so build contexts for the whole command are refused there.
 */
export function rewriteBuildCommand(argv: string[], opts: RewriteOptions): string[] {
  const loc = locate(argv);
  if (!loc) throw new Error(`not a build command: ${argv.join(' ')}`);
  const req = parseBuildCommand(argv);
  const insert: string[] = [];
  if (opts.builder !== undefined && req?.builder === undefined) insert.push('--builder', opts.builder);
  const contexts = Object.entries(opts.addBuildContexts);
  if (contexts.length > 0 && loc.kind === 'bake') {
    throw new UsageError('cannot add build contexts to the whole of `docker buildx bake`: they are set per target', {
      hint: 'this is a bug in buildx-bootstrap: bake contexts go through --set <target>.contexts.<name>=…',
    });
  }
  for (const [name, value] of contexts) insert.push('--build-context', `${name}=${value}`);
  const cache = opts.cache ?? [];
  if (loc.kind === 'bake') insert.push(...bakeCacheSetArgs(cache));
  else for (const flags of cache) insert.push(...cacheFlagArgs(flags));
  if (opts.metadataFile !== undefined && req?.metadataFile === undefined) insert.push('--metadata-file', opts.metadataFile);
  insert.push(...(opts.add ?? []));
  return [...argv.slice(0, loc.subcommandIndex + 1), ...insert, ...argv.slice(loc.subcommandIndex + 1)];
}

/** Pushes its result: `--push`, or an image/registry output with `push=true`. */
export function pushesImage(req: Pick<BuildRequest, 'push' | 'outputs'>): boolean {
  return req.push || req.outputs.some((o) => (o.type === 'registry' || (o.type === 'image' && /^(true|1)$/i.test(o.attrs.push ?? ''))));
}

/**
 * The build as the cache flags need it (`docker buildx build` only; bake targets come from
 * `bake --print`). The key uses the Dockerfile's path relative to the context, so the same build
 * started from another directory gets the same key.
 */
export function cacheTargetOf(req: BuildRequest, cwd: string): CacheTarget | undefined {
  if (req.kind !== 'build' || req.context.kind !== 'local' || req.dockerfile.kind !== 'path') return undefined;
  return {
    name: '',
    context: posix.resolve(cwd, req.context.path),
    dockerfile: posix.resolve(cwd, req.dockerfile.path),
    target: req.target,
    platforms: req.platforms,
    cacheFrom: req.cacheFrom,
    cacheTo: req.cacheTo.map((c) => c.raw),
  };
}

// ---- bake: the command that reads the targets, and per-target settings ----------------------

/**
 * The user's bake command with `--print` after the subcommand: buildx evaluates the bake files
 * (HCL, compose, JSON, variables, `--set`, `--push`/`--load`) and prints the targets as JSON
 * without building (and without a builder, BX `commands/bake.go`, for local bake files).
 */
export function bakePrintArgs(argv: string[]): string[] {
  const loc = locate(argv);
  if (!loc || loc.kind !== 'bake') throw new Error(`not a bake command: ${argv.join(' ')}`);
  return [...argv.slice(0, loc.subcommandIndex + 1), '--print', ...argv.slice(loc.subcommandIndex + 1)];
}

/**
 * Why the targets of a bake command cannot be read with `bake --print`, if they cannot: the
 * definition comes from stdin (reading it would take it from the build) or from a remote URL
 * (buildx needs a builder to fetch it), or the command does not build (`--print`, `--list`).
 */
export function bakeUnreadable(argv: string[]): string | undefined {
  const req = parseBuildCommand(argv);
  if (!req || req.kind !== 'bake') return 'not a bake command';
  if (req.call === 'print' || req.call === 'list') return `the bake command does not build (--${req.call})`;
  const loc = locate(argv)!;
  const scan = scanArgs(argv, loc.subcommandIndex + 1, BAKE_FLAGS);
  if (scan.flags.some((f) => f.name === 'file' && f.value === '-')) return 'the bake definition comes from stdin (-f -)';
  const first = scan.positionals[0]?.value;
  if (first !== undefined && isRemoteContext(first)) return 'the bake definition is remote (a git or HTTP URL)';
  return undefined;
}

/**
 * `--allow=fs.read=<dir>` for the directory the bridged layouts are in: bake checks that every
 * local path a target reads is under the working directory or allowed (an error from buildx 0.20,
 * a warning in 0.19, BX `bake/entitlements.go`); `--allow` exists on bake from buildx 0.17.
 */
export function bakeAllowArgs(dirs: string[], buildxVersion: string): string[] {
  const v = semver().coerce(buildxVersion)?.version;
  if (dirs.length === 0 || !v || semver().lt(v, '0.17.0')) return [];
  return [...new Set(dirs)].map((d) => `--allow=fs.read=${d}`);
}

/** `--set <target>.contexts.<name>=<value>` for each target's bridged images (BX bake `--set`). */
export function bakeContextArgs(contexts: Record<string, Record<string, string>>): string[] {
  return Object.entries(contexts).flatMap(([target, named]) => Object.entries(named).flatMap(([name, value]) => ['--set', `${target}.contexts.${name}=${value}`]));
}

// ---- where the result lands ------------------------------------------------------------------

/** What one build leaves behind: a build command, or one bake target as `bake --print` gives it. */
export interface BuildResultSpec {
  /** The bake target; absent for a build command. */
  bakeTarget?: string;
  tags: string[];
  outputs: Pick<ExportSpec, 'type' | 'attrs'>[];
  /** `--push` given (any value): the user decided where the result goes. */
  push: boolean;
  /** `--load` given (any value): the same. */
  load: boolean;
  platforms: string[];
  attestations: boolean;
  /** A call other than a build (`check`, `outline`, …): nothing is exported. */
  call?: string;
}

/** The result of a build command, for resultLoads. */
export function buildResultOf(req: BuildRequest): BuildResultSpec {
  return {
    tags: req.tags,
    outputs: req.outputs,
    push: req.flags.includes('--push'),
    load: req.flags.includes('--load'),
    platforms: req.platforms,
    attestations: req.attestations,
    ...(req.call !== undefined ? { call: req.call } : {}),
  };
}

export interface LoadContext {
  /** The driver of the builder we chose and give the command (`docker-container`, …). */
  driver: string;
  /** Why loading is not ours to add: `--no-load`, `builder.driverOpts.default-load …`. */
  off?: string;
  /** The daemon's image store; undefined when not known (not asked, or no answer). */
  imageStore?: 'containerd' | 'classic';
}

/** One set of arguments added so the result lands in the local image store, and why. */
export interface LoadStep {
  bakeTarget?: string;
  args: string[];
  reason: string;
}

/** The arguments that load one result: `--load` for a build; `--set <t>.output=type=docker` for a bake target (bake's `--load` would replace every target's own outputs). */
export function loadArgs(result: Pick<BuildResultSpec, 'bakeTarget'>): string[] {
  return result.bakeTarget === undefined ? ['--load'] : ['--set', `${result.bakeTarget}.output=type=docker`];
}

function unloaded(result: BuildResultSpec): boolean {
  return result.call === undefined && result.tags.length > 0 && !result.push && !result.load && result.outputs.length === 0;
}

/** What makes a result a manifest list, which the classic image store cannot load; empty when nothing does. */
function manifestListCause(result: BuildResultSpec): string {
  if (result.platforms.length > 1) return `it builds ${result.platforms.length} platforms (${result.platforms.join(', ')})`;
  if (result.attestations) return 'it asks for attestations (SBOM/provenance)';
  return '';
}

/**
 * True when some result would be loaded as a manifest list (several platforms, attestations):
 * only then does the daemon's image store matter, so only then is it asked.
 */
export function loadNeedsImageStore(results: BuildResultSpec[], ctx: Pick<LoadContext, 'off'>): boolean {
  return ctx.off === undefined && results.some((r) => unloaded(r) && manifestListCause(r) !== '');
}

const what = (r: BuildResultSpec): string => `${r.bakeTarget === undefined ? 'the build' : `bake target ${r.bakeTarget}`} (${r.tags.join(', ')})`;

/**
 * The rule of issue 18: with a container builder we chose, a result that is tagged and has no
 * `--push`, `--load` or `--output` would stay in the builder's cache only, where `docker build`
 * (and the docker driver) leaves it in the local image store, so it is loaded there. An explicit
 * output is never second-guessed; `off` turns the rule off. On the classic image store a manifest
 * list (several platforms, attestations) cannot be loaded: that is a UsageError before the build,
 * naming the ways out, instead of buildx's late "docker exporter does not currently support
 * exporting manifest lists" (BX `build/opt.go`).
 */
export function resultLoads(results: BuildResultSpec[], ctx: LoadContext): { steps: LoadStep[]; notes: string[] } {
  const pending = results.filter(unloaded);
  if (ctx.off !== undefined) {
    return { steps: [], notes: pending.map((r) => `${what(r)} names no output and stays in the builder's cache: ${ctx.off}`) };
  }
  const refused = ctx.imageStore === 'classic' ? pending.filter((r) => manifestListCause(r) !== '') : [];
  if (refused.length > 0) {
    const dest = (r: BuildResultSpec): string => `${r.bakeTarget ?? (r.tags[0] ?? 'image').replace(/[^\w.-]+/g, '-')}.tar`;
    const [first] = refused as [BuildResultSpec];
    const fixes =
      first.bakeTarget === undefined
        ? `push it (--push), write it to a file (--output type=oci,dest=${dest(first)}), or run dockerd with the containerd image store`
        : `push it (--set ${first.bakeTarget}.output=type=registry or --push), write it to a file (--set ${first.bakeTarget}.output=type=oci,dest=${dest(first)}), or run dockerd with the containerd image store`;
    throw new UsageError(
      `${refused.map((r) => `${what(r)} is tagged and names no output, so it would be loaded into the local image store, but ${manifestListCause(r)}`).join('; ')}, and the daemon's classic image store cannot load a manifest list`,
      { hint: `${fixes}; --no-load keeps the result in the build cache only` },
    );
  }
  const steps = pending.map((r) => ({
    ...(r.bakeTarget !== undefined ? { bakeTarget: r.bakeTarget } : {}),
    args: loadArgs(r),
    reason: `${what(r)} is tagged and names no output: the ${ctx.driver} builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does`,
  }));
  return { steps, notes: [] };
}
