// The configuration schema (product.md, Configuration) and its validation. Pure: a raw value in,
// a typed partial config and every problem out, so a file, the environment and flags are each
// checked and reported with their own source.
import type { ConfigProblem } from '../errors.js';
import { isValidRegistryHost, isValidRepositoryPath, parseImageRef } from '../registry/reference.js';
import { parseVersionSpec } from '../resolve/version-spec.js';

export const DRIVERS = ['auto', 'docker', 'docker-container', 'kubernetes', 'remote'] as const;
export type DriverSetting = (typeof DRIVERS)[number];

/** `buildCache.type` (product.md §Build cache): `auto` picks registry, then local, then off. */
export const BUILD_CACHE_TYPES = ['auto', 'registry', 'local', 'inline', 'off'] as const;
export type BuildCacheType = (typeof BUILD_CACHE_TYPES)[number];
export const BUILD_CACHE_MODES = ['max', 'min'] as const;
export type BuildCacheMode = (typeof BUILD_CACHE_MODES)[number];

/** The cross-job build cache prefix mode adds to `docker buildx build|bake` (issue 20). */
export interface BuildCacheConfig {
  type: BuildCacheType;
  /** Registry cache repository (no tag); empty: `$CI_REGISTRY_IMAGE/cache` in GitLab CI, else none. */
  ref: string;
  mode: BuildCacheMode;
  /** Tag key; empty: 8 hex derived from Dockerfile path, --target and platforms. */
  key: string;
}

export interface MirrorConfig {
  /** `host[:port]` of the mirror. */
  host: string;
  /** Repository path prefix inside the mirror (`dockerhub-proxy`), empty for none. */
  path: string;
  /** The registry it mirrors, `docker.io` unless said. */
  for: string;
  /** Absolute path of a CA bundle for this mirror, empty for none. */
  ca: string;
  http: boolean;
  insecure: boolean;
  /** Where the mirror came from, for messages (`config`, `gitlab-dependency-proxy`). */
  origin?: string;
}

/** Extra per-registry BuildKit settings for builds (`registries:`). */
export interface RegistrySettings {
  mirrors?: string[];
  http?: boolean;
  insecure?: boolean;
  ca?: string[];
}

export interface NodeConfig {
  endpoint: string;
  name?: string;
  platforms?: string[];
  driverOpts?: Record<string, string>;
}

/** What a plain `create` builds, when it is not given by a prefixed buildx command (issue 4). */
export interface BuildConfig {
  dockerfile: string;
  context: string;
  platforms: string[];
  buildArgs: Record<string, string>;
  buildContexts: Record<string, string>;
  cacheTo: string[];
  target: string;
}

export interface Config {
  buildkit: { version: string; image: string; rootless: boolean };
  mirrors: MirrorConfig[];
  upstream: boolean;
  registries: Record<string, RegistrySettings>;
  buildkitd: { config: string; flags: string[] };
  builder: {
    name: string;
    driver: DriverSetting;
    platforms: string[];
    driverOpts: Record<string, string>;
    endpoint: string;
    nodes: NodeConfig[];
  };
  cache: { dir: string };
  buildCache: BuildCacheConfig;
  lockfile: string;
  /** Milliseconds. */
  /** `drain`: how long a drifted builder with running builds is waited for before giving up. */
  timeouts: { probe: number; hedge: number; bootstrap: number; drain: number };
  build?: BuildConfig;
  /** What `mirror` copies: these images, and the engine image unless `engine: false`. */
  mirror: { images: string[]; engine: boolean };
}

export function defaultConfig(): Config {
  return {
    buildkit: { version: 'buildx-stable-1', image: 'moby/buildkit', rootless: false },
    mirrors: [],
    upstream: true,
    registries: {},
    buildkitd: { config: '', flags: [] },
    // Empty name: derived from what defines the builder, `buildx-bootstrap-<hash>` (src/builder/name.ts).
    builder: { name: '', driver: 'auto', platforms: [], driverOpts: {}, endpoint: '', nodes: [] },
    cache: { dir: '' },
    buildCache: { type: 'auto', ref: '', mode: 'max', key: '' },
    lockfile: 'buildx-bootstrap.lock.json',
    timeouts: { probe: 2000, hedge: 250, bootstrap: 120_000, drain: 600_000 },
    mirror: { images: [], engine: true },
  };
}

// ---- durations ------------------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `250ms`, `2s`, `1m30s`, `1.5s`; a bare number is milliseconds. Returns undefined when invalid. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let seen = false;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    seen = true;
    if (re.lastIndex === text.length) return Math.round(total);
  }
  return seen && re.lastIndex === text.length ? Math.round(total) : undefined;
}

// ---- validation -----------------------------------------------------------------------------

/** A config layer: any subset of Config, already typed and checked. */
export type ConfigLayer = {
  [K in keyof Config]?: Config[K] extends unknown[] ? Config[K] : Config[K] extends object ? Partial<Config[K]> : Config[K];
};

type Problems = ConfigProblem[];

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `a ${typeof v}`;
}

class Checker {
  constructor(
    readonly source: string,
    readonly problems: Problems,
  ) {}

  add(path: string, message: string): void {
    this.problems.push({ path, message, source: this.source });
  }

  object(value: unknown, path: string, keys: readonly string[]): Record<string, unknown> | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.add(path, `expected a map, got ${typeName(value)}`);
      return undefined;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) this.add(join(path, key), `unknown key (known: ${keys.join(', ')})`);
    }
    return record;
  }

  string(value: unknown, path: string): string | undefined {
    if (typeof value === 'string') return value;
    this.add(path, `expected a string, got ${typeName(value)}`);
    return undefined;
  }

  boolean(value: unknown, path: string): boolean | undefined {
    if (typeof value === 'boolean') return value;
    this.add(path, `expected true or false, got ${typeName(value)}`);
    return undefined;
  }

  stringList(value: unknown, path: string): string[] | undefined {
    if (!Array.isArray(value)) {
      this.add(path, `expected a list of strings, got ${typeName(value)}`);
      return undefined;
    }
    let ok = true;
    value.forEach((item, i) => {
      if (typeof item !== 'string') {
        this.add(`${path}[${i}]`, `expected a string, got ${typeName(item)}`);
        ok = false;
      }
    });
    return ok ? (value as string[]) : undefined;
  }

  stringMap(value: unknown, path: string): Record<string, string> | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.add(path, `expected a map of strings, got ${typeName(value)}`);
      return undefined;
    }
    let ok = true;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else {
        this.add(join(path, k), `expected a string, got ${typeName(v)}`);
        ok = false;
      }
    }
    return ok ? out : undefined;
  }

  duration(value: unknown, path: string): number | undefined {
    const ms = parseDuration(value);
    if (ms === undefined) this.add(path, `invalid duration ${JSON.stringify(value)} (use e.g. 250ms, 2s, 1m30s)`);
    return ms;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function set<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

const TOP_KEYS = ['buildkit', 'mirrors', 'upstream', 'registries', 'buildkitd', 'builder', 'cache', 'buildCache', 'lockfile', 'timeouts', 'build', 'mirror'] as const;

/**
 * Checks one raw layer (a parsed file, or the layer built from the environment or flags).
 * Returns what is valid; every problem goes to `problems` with `source`.
 */
export function validateConfigLayer(raw: unknown, source: string, problems: Problems): ConfigLayer {
  const c = new Checker(source, problems);
  const layer: ConfigLayer = {};
  const top = c.object(raw, '', TOP_KEYS);
  if (!top) return layer;

  if (top.buildkit !== undefined) {
    const b = c.object(top.buildkit, 'buildkit', ['version', 'image', 'rootless']);
    if (b) {
      const out: Partial<Config['buildkit']> = {};
      if (b.version !== undefined) {
        const v = typeof b.version === 'number' ? String(b.version) : c.string(b.version, 'buildkit.version');
        if (v !== undefined) {
          try {
            parseVersionSpec(v);
            out.version = v;
          } catch (e) {
            c.add('buildkit.version', (e as Error).message);
          }
        }
      }
      if (b.image !== undefined) {
        const image = c.string(b.image, 'buildkit.image');
        if (image !== undefined) {
          try {
            const ref = parseImageRef(image);
            if (ref.tag || ref.digest) c.add('buildkit.image', `"${image}" must be a repository without tag or digest (set the version with buildkit.version)`);
            else out.image = image;
          } catch (e) {
            c.add('buildkit.image', (e as Error).message);
          }
        }
      }
      if (b.rootless !== undefined) set(out, 'rootless', c.boolean(b.rootless, 'buildkit.rootless'));
      layer.buildkit = out;
    }
  }

  if (top.mirrors !== undefined) {
    if (!Array.isArray(top.mirrors)) c.add('mirrors', `expected a list, got ${typeName(top.mirrors)}`);
    else {
      const mirrors: MirrorConfig[] = [];
      top.mirrors.forEach((item, i) => {
        const m = validateMirror(item, `mirrors[${i}]`, c);
        if (m) mirrors.push(m);
      });
      layer.mirrors = mirrors;
    }
  }

  if (top.upstream !== undefined) set(layer, 'upstream', c.boolean(top.upstream, 'upstream'));

  if (top.registries !== undefined) {
    const regs = c.object(top.registries, 'registries', Object.keys((top.registries as object) ?? {}));
    if (regs) {
      const out: Record<string, RegistrySettings> = {};
      for (const [host, value] of Object.entries(regs)) {
        const path = `registries.${host}`;
        if (!isValidRegistryHost(host)) c.add(path, `"${host}" is not a registry host[:port]`);
        const r = c.object(value, path, ['mirrors', 'http', 'insecure', 'ca']);
        if (!r) continue;
        const settings: RegistrySettings = {};
        if (r.mirrors !== undefined) set(settings, 'mirrors', c.stringList(r.mirrors, `${path}.mirrors`));
        if (r.http !== undefined) set(settings, 'http', c.boolean(r.http, `${path}.http`));
        if (r.insecure !== undefined) set(settings, 'insecure', c.boolean(r.insecure, `${path}.insecure`));
        if (r.ca !== undefined) set(settings, 'ca', typeof r.ca === 'string' ? [r.ca] : c.stringList(r.ca, `${path}.ca`));
        out[host] = settings;
      }
      layer.registries = out;
    }
  }

  if (top.buildkitd !== undefined) {
    const b = c.object(top.buildkitd, 'buildkitd', ['config', 'flags']);
    if (b) {
      const out: Partial<Config['buildkitd']> = {};
      if (b.config !== undefined) set(out, 'config', c.string(b.config, 'buildkitd.config'));
      if (b.flags !== undefined) set(out, 'flags', c.stringList(b.flags, 'buildkitd.flags'));
      layer.buildkitd = out;
    }
  }

  if (top.builder !== undefined) {
    const b = c.object(top.builder, 'builder', ['name', 'driver', 'platforms', 'driverOpts', 'endpoint', 'nodes']);
    if (b) {
      const out: Partial<Config['builder']> = {};
      if (b.name !== undefined) {
        const name = c.string(b.name, 'builder.name');
        if (name !== undefined) {
          if (!/^[a-zA-Z][a-zA-Z0-9.\-_]*$/.test(name)) c.add('builder.name', `invalid name "${name}": start with a letter; letters, digits and . _ - only`);
          else if (name === 'default') c.add('builder.name', '"default" is reserved by buildx for the docker driver builder');
          else out.name = name;
        }
      }
      if (b.driver !== undefined) {
        const driver = c.string(b.driver, 'builder.driver');
        if (driver !== undefined) {
          if ((DRIVERS as readonly string[]).includes(driver)) out.driver = driver as DriverSetting;
          else c.add('builder.driver', `"${driver}" is not one of ${DRIVERS.join(', ')}`);
        }
      }
      if (b.platforms !== undefined) set(out, 'platforms', platformList(b.platforms, 'builder.platforms', c));
      if (b.driverOpts !== undefined) set(out, 'driverOpts', c.stringMap(b.driverOpts, 'builder.driverOpts'));
      if (b.endpoint !== undefined) set(out, 'endpoint', c.string(b.endpoint, 'builder.endpoint'));
      if (b.nodes !== undefined) {
        if (!Array.isArray(b.nodes)) c.add('builder.nodes', `expected a list, got ${typeName(b.nodes)}`);
        else {
          const nodes: NodeConfig[] = [];
          b.nodes.forEach((item, i) => {
            const path = `builder.nodes[${i}]`;
            const n = c.object(item, path, ['endpoint', 'name', 'platforms', 'driverOpts']);
            if (!n) return;
            const endpoint = n.endpoint === undefined ? (c.add(`${path}.endpoint`, 'is required'), undefined) : c.string(n.endpoint, `${path}.endpoint`);
            if (endpoint === undefined) return;
            const node: NodeConfig = { endpoint };
            if (n.name !== undefined) set(node, 'name', c.string(n.name, `${path}.name`));
            if (n.platforms !== undefined) set(node, 'platforms', platformList(n.platforms, `${path}.platforms`, c));
            if (n.driverOpts !== undefined) set(node, 'driverOpts', c.stringMap(n.driverOpts, `${path}.driverOpts`));
            nodes.push(node);
          });
          out.nodes = nodes;
        }
      }
      layer.builder = out;
    }
  }

  if (top.cache !== undefined) {
    const b = c.object(top.cache, 'cache', ['dir']);
    if (b && b.dir !== undefined) layer.cache = { dir: c.string(b.dir, 'cache.dir') ?? '' };
  }

  if (top.buildCache !== undefined) {
    const b = c.object(top.buildCache, 'buildCache', ['type', 'ref', 'mode', 'key']);
    if (b) {
      const out: Partial<BuildCacheConfig> = {};
      if (b.type !== undefined) set(out, 'type', oneOf(b.type, 'buildCache.type', BUILD_CACHE_TYPES, c));
      if (b.mode !== undefined) set(out, 'mode', oneOf(b.mode, 'buildCache.mode', BUILD_CACHE_MODES, c));
      if (b.ref !== undefined) {
        const ref = c.string(b.ref, 'buildCache.ref');
        if (ref) {
          try {
            const parsed = parseImageRef(ref);
            if (parsed.tag || parsed.digest) c.add('buildCache.ref', `"${ref}" must be a repository without tag or digest (the tags are cache-<branch>-<key>)`);
            else out.ref = ref;
          } catch (e) {
            c.add('buildCache.ref', (e as Error).message);
          }
        } else if (ref === '') out.ref = '';
      }
      if (b.key !== undefined) {
        const key = c.string(b.key, 'buildCache.key');
        // It ends a tag (`cache-<branch>-<key>`, at most 128 characters) and a directory name.
        if (key !== undefined && key !== '' && !/^[a-z0-9][a-z0-9_.-]{0,39}$/.test(key)) c.add('buildCache.key', `"${key}" must be 1 to 40 of a-z, 0-9, _ . - (it ends the cache tag)`);
        else set(out, 'key', key);
      }
      layer.buildCache = out;
    }
  }

  if (top.lockfile !== undefined) set(layer, 'lockfile', c.string(top.lockfile, 'lockfile'));

  if (top.timeouts !== undefined) {
    const t = c.object(top.timeouts, 'timeouts', ['probe', 'hedge', 'bootstrap', 'drain']);
    if (t) {
      const out: Partial<Config['timeouts']> = {};
      for (const key of ['probe', 'hedge', 'bootstrap', 'drain'] as const) {
        if (t[key] !== undefined) set(out, key, c.duration(t[key], `timeouts.${key}`));
      }
      if (out.probe === 0) c.add('timeouts.probe', 'must be more than 0');
      layer.timeouts = out;
    }
  }

  if (top.build !== undefined) {
    const b = c.object(top.build, 'build', ['dockerfile', 'context', 'platforms', 'buildArgs', 'buildContexts', 'cacheTo', 'target']);
    if (b) {
      const out: BuildConfig = { dockerfile: 'Dockerfile', context: '.', platforms: [], buildArgs: {}, buildContexts: {}, cacheTo: [], target: '' };
      if (b.dockerfile !== undefined) set(out, 'dockerfile', c.string(b.dockerfile, 'build.dockerfile'));
      if (b.context !== undefined) set(out, 'context', c.string(b.context, 'build.context'));
      if (b.platforms !== undefined) set(out, 'platforms', platformList(b.platforms, 'build.platforms', c));
      if (b.buildArgs !== undefined) set(out, 'buildArgs', c.stringMap(b.buildArgs, 'build.buildArgs'));
      if (b.buildContexts !== undefined) set(out, 'buildContexts', c.stringMap(b.buildContexts, 'build.buildContexts'));
      if (b.cacheTo !== undefined) set(out, 'cacheTo', typeof b.cacheTo === 'string' ? [b.cacheTo] : c.stringList(b.cacheTo, 'build.cacheTo'));
      if (b.target !== undefined) set(out, 'target', c.string(b.target, 'build.target'));
      layer.build = out;
    }
  }

  if (top.mirror !== undefined) {
    const m = c.object(top.mirror, 'mirror', ['images', 'engine']);
    if (m) {
      const out: Partial<Config['mirror']> = {};
      if (m.images !== undefined) {
        const images = c.stringList(m.images, 'mirror.images');
        let ok = images !== undefined;
        images?.forEach((image, i) => {
          try {
            parseImageRef(image);
          } catch (e) {
            c.add(`mirror.images[${i}]`, (e as Error).message);
            ok = false;
          }
        });
        if (ok) set(out, 'images', images);
      }
      if (m.engine !== undefined) set(out, 'engine', c.boolean(m.engine, 'mirror.engine'));
      layer.mirror = out;
    }
  }

  return layer;
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[], c: Checker): T | undefined {
  const text = c.string(value, path);
  if (text === undefined) return undefined;
  if ((allowed as readonly string[]).includes(text)) return text as T;
  c.add(path, `"${text}" is not one of ${allowed.join(', ')}`);
  return undefined;
}

const PLATFORM = /^[a-z0-9_]+\/[a-z0-9_]+(?:\/[a-z0-9_.]+)?$/;

function platformList(value: unknown, path: string, c: Checker): string[] | undefined {
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : c.stringList(value, path);
  if (!list) return undefined;
  let ok = true;
  list.forEach((p, i) => {
    if (!PLATFORM.test(p)) {
      c.add(`${path}[${i}]`, `"${p}" is not a platform (os/arch[/variant], e.g. linux/arm64)`);
      ok = false;
    }
  });
  return ok ? list : undefined;
}

/** Accepts `{host, path?, for?, ca?, http?, insecure?}` or the short string `host[:port][/path]`. */
function validateMirror(item: unknown, path: string, c: Checker): MirrorConfig | undefined {
  const record: Record<string, unknown> | undefined =
    typeof item === 'string' ? splitMirror(item) : c.object(item, path, ['host', 'path', 'for', 'ca', 'http', 'insecure']);
  if (!record) return undefined;
  const before = c.problems.length;
  const mirror: MirrorConfig = { host: '', path: '', for: 'docker.io', ca: '', http: false, insecure: false };
  if (record.host === undefined) c.add(`${path}.host`, 'is required');
  else {
    const host = c.string(record.host, `${path}.host`);
    if (host !== undefined) {
      if (/^[a-z]+:\/\//i.test(host)) c.add(`${path}.host`, `"${host}" must be host[:port] without a scheme (use http: true for plain HTTP)`);
      else if (host.includes('/')) c.add(`${path}.host`, `"${host}" must be host[:port]; put the repository prefix in path`);
      else if (!isValidRegistryHost(host)) c.add(`${path}.host`, `"${host}" is not a valid host[:port]`);
      else mirror.host = host;
    }
  }
  if (record.path !== undefined) {
    const p = c.string(record.path, `${path}.path`);
    if (p !== undefined) {
      const trimmed = p.replace(/^\/+|\/+$/g, '');
      if (trimmed && !isValidRepositoryPath(trimmed)) c.add(`${path}.path`, `"${p}" is not a repository path prefix (lower-case components separated by /)`);
      else mirror.path = trimmed;
    }
  }
  if (record.for !== undefined) {
    const f = c.string(record.for, `${path}.for`);
    if (f !== undefined) {
      const normal = f === 'index.docker.io' || f === 'registry-1.docker.io' ? 'docker.io' : f;
      if (!isValidRegistryHost(normal)) c.add(`${path}.for`, `"${f}" is not a registry host[:port]`);
      else mirror.for = normal;
    }
  }
  if (record.ca !== undefined) set(mirror, 'ca', c.string(record.ca, `${path}.ca`));
  if (record.http !== undefined) set(mirror, 'http', c.boolean(record.http, `${path}.http`));
  if (record.insecure !== undefined) set(mirror, 'insecure', c.boolean(record.insecure, `${path}.insecure`));
  return c.problems.length === before ? mirror : undefined;
}

/** `host[:port][/path]` → `{host, path}`; used for the short mirror form, env and flags. */
export function splitMirror(text: string): Record<string, unknown> {
  const trimmed = text.trim().replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  if (/^[a-z]+:\/\//i.test(trimmed) || slash < 0) return { host: trimmed };
  return { host: trimmed.slice(0, slash), path: trimmed.slice(slash + 1) };
}
