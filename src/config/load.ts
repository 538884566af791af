// Loading: cosmiconfig (module name `buildx-bootstrap`) or --config FILE, then BUILDX_BOOTSTRAP_*
// environment, then flags. Precedence defaults < file < environment < flags; every layer is
// validated on its own so each problem names where it came from.
import { isAbsolute, dirname, resolve as resolvePath } from 'node:path';
import { existsSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../errors.js';
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
  LOCKFILE: { path: ['lockfile'] },
  PROBE_TIMEOUT: { path: ['timeouts', 'probe'] },
  HEDGE: { path: ['timeouts', 'hedge'] },
  BOOTSTRAP_TIMEOUT: { path: ['timeouts', 'bootstrap'] },
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
    const spec = ENVIRONMENT[key];
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

async function readConfigFile(opts: LoadOptions, problems: ConfigProblem[]): Promise<{ raw: unknown; file: string | undefined }> {
  const mod = await import('cosmiconfig');
  // CommonJS module: bundled, its named exports sit on the default export.
  const cosmiconfig = mod.cosmiconfig ?? (mod as unknown as { default: typeof mod }).default.cosmiconfig;
  const explorer = cosmiconfig(MODULE_NAME, { searchStrategy: 'project', cache: false });
  const explicit = opts.configFile ?? opts.env.BUILDX_BOOTSTRAP_CONFIG;
  const file = explicit ? resolvePath(opts.cwd, explicit) : undefined;
  if (file && !existsSync(file)) {
    problems.push({ source: file, path: '', message: 'file not found' });
    return { raw: undefined, file };
  }
  try {
    const result = file ? await explorer.load(file) : await explorer.search(opts.cwd);
    if (!result) return { raw: undefined, file: undefined };
    if (result.isEmpty) return { raw: {}, file: result.filepath };
    return { raw: result.config, file: result.filepath };
  } catch (error) {
    const e = error as Error & { filepath?: string };
    const where = e.filepath ?? file ?? 'config file';
    const first = e.message.split('\n').map((l) => l.trim()).filter(Boolean);
    // cosmiconfig prefixes "YAML Error in <file>:" / "JSON Error in <file>:"; keep the parser's line.
    const message = first.find((l) => !/Error in /.test(l)) ?? first[0] ?? 'cannot be parsed';
    problems.push({ source: where, path: '', message: `cannot be parsed: ${message}` });
    return { raw: undefined, file: where };
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
