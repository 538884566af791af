// Loading: cosmiconfig (module name `buildx-bootstrap`) or --config FILE, then BUILDX_BOOTSTRAP_*
// environment, then flags. Precedence defaults < file < environment < flags; every layer is
// validated on its own so each problem names where it came from.
import { isAbsolute, dirname, join, resolve as resolvePath } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { describeJsonError } from './json-error.js';
import {
  defaultConfig,
  splitMirror,
  validateConfigLayer,
  type Config,
  type ConfigLayer,
  type MirrorConfig,
} from './schema.js';

export const MODULE_NAME = 'buildx-bootstrap';

export interface LoadedConfig {
  config: Config;
  /** The config file used, or undefined when none was found. */
  file: string | undefined;
  /** Directory relative paths in the file resolve against (the file's, else the cwd). */
  root: string;
}

export interface LoadOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** --config FILE */
  configFile?: string | undefined;
  /** Raw layer from command-line flags (validated here with source `flags`). */
  flags?: Record<string, unknown>;
}

type EnvParser = (value: string) => unknown;
const bool: EnvParser = (v) => (/^(1|true|yes|on)$/i.test(v) ? true : /^(0|false|no|off)$/i.test(v) ? false : v);
const list = (v: string): string[] => v.split(/[\s,]+/).filter(Boolean);

/** BUILDX_BOOTSTRAP_<NAME> → key path in the config, with how to read the string. */
export const ENVIRONMENT: Record<string, { path: string[]; parse?: EnvParser }> = {
  VERSION: { path: ['buildkit', 'version'] },
  IMAGE: { path: ['buildkit', 'image'] },
  ROOTLESS: { path: ['buildkit', 'rootless'], parse: bool },
  MIRRORS: { path: ['mirrors'], parse: (v) => (list(v) as string[]).map(splitMirror) },
  UPSTREAM: { path: ['upstream'], parse: bool },
  BUILDKITD_CONFIG: { path: ['buildkitd', 'config'] },
  NAME: { path: ['builder', 'name'] },
  DRIVER: { path: ['builder', 'driver'] },
  PLATFORMS: { path: ['builder', 'platforms'], parse: list },
  ENDPOINT: { path: ['builder', 'endpoint'] },
  CACHE_DIR: { path: ['cache', 'dir'] },
  BUILD_CACHE: { path: ['buildCache', 'type'] },
  BUILD_CACHE_REF: { path: ['buildCache', 'ref'] },
  LOCKFILE: { path: ['lockfile'] },
  PROBE_TIMEOUT: { path: ['timeouts', 'probe'] },
  HEDGE: { path: ['timeouts', 'hedge'] },
  BOOTSTRAP_TIMEOUT: { path: ['timeouts', 'bootstrap'] },
  DRAIN_TIMEOUT: { path: ['timeouts', 'drain'] },
};
/** Variables with the prefix that are not config keys. */
const ENV_NON_CONFIG = new Set(['CONFIG', 'STATE_DIR']);
const ENV_PREFIX = 'BUILDX_BOOTSTRAP_';

export function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export function environmentLayer(env: Record<string, string | undefined>, problems: ConfigProblem[]): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const key = name.slice(ENV_PREFIX.length);
    if (ENV_NON_CONFIG.has(key)) continue;
    // Own keys only: BUILDX_BOOTSTRAP___proto__ must not find Object.prototype.
    const spec = Object.hasOwn(ENVIRONMENT, key) ? ENVIRONMENT[key] : undefined;
    if (!spec) {
      problems.push({ source: 'environment', path: name, message: `unknown variable (known: ${Object.keys(ENVIRONMENT).map((k) => ENV_PREFIX + k).join(', ')})` });
      continue;
    }
    setPath(raw, spec.path, spec.parse ? spec.parse(value) : value);
  }
  return raw;
}

function merge(base: Config, layer: ConfigLayer): Config {
  const out = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(layer)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current) && key !== 'registries'
        ? { ...current, ...value }
        : value;
  }
  return out as unknown as Config;
}

function absolutize(layer: ConfigLayer, root: string): ConfigLayer {
  const abs = (p: string): string => (p && !isAbsolute(p) ? resolvePath(root, p) : p);
  if (layer.mirrors) layer.mirrors = layer.mirrors.map((m) => ({ ...m, ca: abs(m.ca) }));
  if (layer.buildkitd?.config) layer.buildkitd.config = abs(layer.buildkitd.config);
  if (layer.cache?.dir) layer.cache.dir = abs(layer.cache.dir);
  if (layer.lockfile) layer.lockfile = abs(layer.lockfile);
  if (layer.registries) {
    for (const r of Object.values(layer.registries)) if (r?.ca) r.ca = r.ca.map(abs);
  }
  if (layer.build) {
    layer.build.context = abs(layer.build.context);
    layer.build.dockerfile = abs(layer.build.dockerfile);
  }
  return layer;
}

/** The GitLab Dependency Proxy as an implicit Docker Hub mirror after the configured ones. */
export function gitlabDependencyProxyMirror(env: Record<string, string | undefined>): MirrorConfig | undefined {
  const prefix = env.CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX?.trim();
  if (!prefix) return undefined;
  const { host, path } = splitMirror(prefix) as { host: string; path?: string };
  return { host, path: path ?? '', for: 'docker.io', ca: '', http: false, insecure: false, origin: 'gitlab-dependency-proxy' };
}

/** cosmiconfig 9's default search places for the module, in its order. */
export const SEARCH_PLACES = [
  'package.json',
  ...['', '.json', '.yaml', '.yml', '.js', '.ts', '.mjs', '.cjs'].map((ext) => `.${MODULE_NAME}rc${ext}`),
  ...['', '.json', '.yaml', '.yml', '.js', '.ts', '.mjs', '.cjs'].map((ext) => `.config/${MODULE_NAME}rc${ext}`),
  ...['.js', '.ts', '.mjs', '.cjs'].map((ext) => `${MODULE_NAME}.config${ext}`),
];

interface Found {
  file: string;
  /** Already read: the package.json key. */
  value?: unknown;
}

/**
 * cosmiconfig's `project` search, done without loading cosmiconfig: start-up cost is module
 * loading, and most runs have no config file or a JSON one. From cwd upwards, stopping at the
 * first directory with a package.json (the project root).
 */
function findConfigFile(cwd: string): Found | undefined {
  for (let dir = cwd; ; ) {
    for (const place of SEARCH_PLACES) {
      const file = join(dir, place);
      if (!existsSync(file)) continue;
      if (place !== 'package.json') return { file };
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        if (pkg[MODULE_NAME] !== undefined) return { file, value: pkg[MODULE_NAME] };
      } catch {
        // not ours to complain about: cosmiconfig would skip it too
      }
    }
    const parent = dirname(dir);
    if (existsSync(join(dir, 'package.json')) || parent === dir) return undefined;
    dir = parent;
  }
}

async function readConfigFile(opts: LoadOptions, problems: ConfigProblem[]): Promise<{ raw: unknown; file: string | undefined }> {
  const explicit = opts.configFile ?? opts.env.BUILDX_BOOTSTRAP_CONFIG;
  const found: Found | undefined = explicit ? { file: resolvePath(opts.cwd, explicit) } : findConfigFile(opts.cwd);
  if (!found) return { raw: undefined, file: undefined };
  const { file } = found;
  if (!existsSync(file)) {
    problems.push({ source: file, path: '', message: 'file not found' });
    return { raw: undefined, file };
  }
  if ('value' in found) return { raw: found.value, file };
  if (file.endsWith('.json')) {
    const text = readFileSync(file, 'utf8');
    if (!text.trim()) return { raw: {}, file };
    try {
      return { raw: JSON.parse(text) as unknown, file };
    } catch (error) {
      problems.push({ source: file, path: '', message: `cannot be parsed: ${describeJsonError(error, text)}` });
      return { raw: undefined, file };
    }
  }
  const mod = await import('cosmiconfig');
  // CommonJS module: bundled, its named exports sit on the default export.
  const cosmiconfig = mod.cosmiconfig ?? (mod as unknown as { default: typeof mod }).default.cosmiconfig;
  try {
    const result = await cosmiconfig(MODULE_NAME, { cache: false }).load(file);
    if (!result || result.isEmpty) return { raw: {}, file };
    return { raw: result.config, file };
  } catch (error) {
    const first = (error as Error).message.split('\n').map((l) => l.trim()).filter(Boolean);
    // cosmiconfig prefixes "YAML Error in <file>:" / "JSON Error in <file>:"; keep the parser's line.
    const message = first.find((l) => !/Error in /.test(l)) ?? first[0] ?? 'cannot be parsed';
    problems.push({ source: file, path: '', message: `cannot be parsed: ${message}` });
    return { raw: undefined, file };
  }
}

export async function loadConfig(opts: LoadOptions): Promise<LoadedConfig> {
  const problems: ConfigProblem[] = [];
  const { raw, file } = await readConfigFile(opts, problems);
  const root = file ? dirname(file) : opts.cwd;

  let config = defaultConfig();
  config.lockfile = resolvePath(root, config.lockfile);
  if (raw !== undefined) config = merge(config, absolutize(validateConfigLayer(raw, file ?? 'config file', problems), root));
  const envRaw = environmentLayer(opts.env, problems);
  if (Object.keys(envRaw).length) config = merge(config, absolutize(validateConfigLayer(envRaw, 'environment', problems), opts.cwd));
  if (opts.flags && Object.keys(opts.flags).length) config = merge(config, absolutize(validateConfigLayer(opts.flags, 'flags', problems), opts.cwd));

  for (const m of config.mirrors) {
    if (m.ca && !existsSync(m.ca)) problems.push({ source: file ?? 'configuration', path: `mirrors (${m.host})`, message: `CA file ${m.ca} not found` });
  }
  if (config.buildkitd.config && !existsSync(config.buildkitd.config)) {
    problems.push({ source: file ?? 'configuration', path: 'buildkitd.config', message: `file ${config.buildkitd.config} not found` });
  }
  if (problems.length) throw new ConfigError(problems);

  const proxy = gitlabDependencyProxyMirror(opts.env);
  if (proxy && !config.mirrors.some((m) => m.host === proxy.host && m.path === proxy.path)) config.mirrors = [...config.mirrors, proxy];
  return { config, file, root };
}
