// Renders the buildkitd.toml handed to `buildx create --buildkitd-config` (pure): the configured
// mirrors as BuildKit registry sections, the `registries:` settings, merged over the user's base file.
//
// BuildKit semantics this follows (BK util/resolver/resolver.go, util/resolver/config/config.go;
// buildx-facts §4):
// - a mirror is listed under the key of the registry it mirrors (`[registry."docker.io"]`), as
//   `host[:port][/path]` without a scheme; a path becomes a repository prefix (BuildKit >= v0.12);
// - a mirror does NOT inherit `http`/`insecure`/`ca` from that key: they are read from the mirror's
//   own `[registry."<mirror host:port>"]` section (moby/buildkit#6398), so each mirror that needs
//   them gets its own section;
// - loopback hosts are spoken to over plain HTTP without `http = true` (MatchLocalhost), so nothing
//   is written for them unless configured.
//
// Merge rule where several sources set the same registry key — sources in precedence order
// `mirrors:` (generated) > `registries:` > base file:
// - list keys (`mirrors`, `ca`, `tlsconfigdir`) are concatenated in that order, duplicates dropped
//   (first occurrence kept), so configured mirrors are tried before the base file's own;
// - scalar keys (`http`, `insecure`) take the value of the first source that sets one;
// - every other key (`keypair`, anything newer) comes from the base file untouched, as does every
//   key outside `[registry]` (`[worker.oci]`, `[log]`, `debug`, ...).
// Output is deterministic: registry keys sorted, fixed key order inside a section, smol-toml's
// stable formatting, one trailing newline. Comments of the base file are not carried over (buildx
// re-serializes the file anyway, buildx-facts §1.5).
import { dirname, isAbsolute, join } from 'node:path';
import { parse, stringify, TomlError } from 'smol-toml';
import type { MirrorConfig, RegistrySettings } from '../config/schema.js';
import { ConfigError, type ConfigProblem } from '../errors.js';

export interface RenderBuildkitdInput {
  /** In priority order; each is listed under `[registry."<for>"]`. */
  mirrors: MirrorConfig[];
  /** `registries:` from the configuration, keyed by `host[:port]`. */
  registries: Record<string, RegistrySettings>;
  /** The user's base file (`buildkitd.config`): its text and its path, for messages and relative paths. */
  base?: { text: string; file: string };
  /**
   * Maps a CA path from `mirrors:`/`registries:` to the absolute host path written to the file
   * (e.g. resolving it against the config file's directory). Identity when omitted.
   */
  resolvePath?: (path: string) => string;
}

/** Where the tool's own configuration comes from, for problems it reports. */
const CONFIG_SOURCE = 'configuration';

/** Keys of a registry section that are lists merged across sources. */
const LIST_KEYS = ['mirrors', 'ca', 'tlsconfigdir'] as const;
/** Keys of a registry section where the first source to set one wins. */
const SCALAR_KEYS = ['http', 'insecure'] as const;

type TomlTable = Record<string, unknown>;

interface RegistryLayer {
  mirrors?: string[];
  http?: boolean;
  insecure?: boolean;
  ca?: string[];
  tlsconfigdir?: string[];
}

/** `host[/path]` — the form BuildKit takes in a `mirrors` list. */
export function mirrorSpec(m: MirrorConfig): string {
  const path = m.path.replace(/^\/+|\/+$/g, '');
  return path ? `${m.host}/${path}` : m.host;
}

/** The first BuildKit that reads a mirror's path as a repository prefix (moby/buildkit e662e1df9). */
export const PATH_MIRROR_MIN_BUILDKIT = 'v0.12.0';

/** `[major, minor]` of `v0.11.6` / `0.11` / `v0.12.0-rc1`; undefined for tags that name no version. */
function majorMinor(version: string): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Path mirrors (`host/path`) with a BuildKit older than v0.12: it takes the whole string as a host
 * name, so the mirror is never used and every build pull goes elsewhere — a configuration error
 * (exit 2), naming each such mirror and the version that supports it. An unknown version passes.
 */
export function checkPathMirrors(mirrors: MirrorConfig[], buildkitVersion: string | undefined): void {
  const v = buildkitVersion ? majorMinor(buildkitVersion) : undefined;
  if (!v || v[0] > 0 || v[1] >= 12) return;
  const problems: ConfigProblem[] = mirrors
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => m.path.replace(/^\/+|\/+$/g, ''))
    .map(({ m, i }) => ({
      source: CONFIG_SOURCE,
      path: `mirrors[${i}]${m.origin && m.origin !== 'config' ? ` (${m.origin})` : ''}`,
      message: `${mirrorSpec(m)} is a path mirror; BuildKit ${buildkitVersion} would take it for a host name and never use it (path mirrors need BuildKit ${PATH_MIRROR_MIN_BUILDKIT} or newer)`,
    }));
  if (problems.length) {
    throw new ConfigError(problems, { hint: `pin buildkit.version to ${PATH_MIRROR_MIN_BUILDKIT} or newer, or give the mirror without a path (a host that serves Docker Hub at its root)` });
  }
}

/** True for the implicit GitLab Dependency Proxy mirror (product.md, Configuration). */
function isDependencyProxy(m: MirrorConfig): boolean {
  return m.origin === 'gitlab-dependency-proxy';
}

export function renderBuildkitdConfig(input: RenderBuildkitdInput): string {
  const problems: ConfigProblem[] = [];
  const resolve = input.resolvePath ?? ((p: string) => p);

  const base = input.base ? parseBase(input.base, problems) : {};
  const baseRegistries = takeBaseRegistries(base, input.base?.file ?? '', problems);

  // Layer 1: what the mirrors generate.
  const generated = new Map<string, RegistryLayer>();
  const layer = (map: Map<string, RegistryLayer>, key: string): RegistryLayer => {
    let entry = map.get(key);
    if (!entry) map.set(key, (entry = {}));
    return entry;
  };
  input.mirrors.forEach((m, i) => {
    const where = `mirrors[${i}]${m.origin && m.origin !== 'config' ? ` (${m.origin})` : ''}`;
    const forEntry = layer(generated, m.for);
    forEntry.mirrors = [...(forEntry.mirrors ?? []), mirrorSpec(m)];
    // The mirror's own section: only what was asked for, because BuildKit applies nothing from
    // the `for` registry to it (moby/buildkit#6398).
    if (m.http || m.insecure || m.ca) {
      const own = layer(generated, m.host);
      if (m.http) own.http = true;
      if (m.insecure) own.insecure = true;
      if (m.ca) own.ca = [...(own.ca ?? []), absolutePath(resolve(m.ca), `${where}.ca`, CONFIG_SOURCE, problems)];
    }
  });

  // Layer 2: `registries:`.
  const configured = new Map<string, RegistryLayer>();
  for (const host of Object.keys(input.registries)) {
    const r = input.registries[host]!;
    const entry: RegistryLayer = {};
    if (r.mirrors) entry.mirrors = [...r.mirrors];
    if (r.http !== undefined) entry.http = r.http;
    if (r.insecure !== undefined) entry.insecure = r.insecure;
    if (r.ca) entry.ca = r.ca.map((p, i) => absolutePath(resolve(p), `registries.${host}.ca[${i}]`, CONFIG_SOURCE, problems));
    configured.set(host, entry);
  }

  if (problems.length) {
    throw new ConfigError(problems, { hint: 'give CA files as absolute paths (buildx reads them from the host when it creates the builder)' });
  }

  const hosts = [...new Set([...generated.keys(), ...configured.keys(), ...Object.keys(baseRegistries)])].sort(compareKeys);
  const registry: TomlTable = {};
  for (const host of hosts) {
    const sources: RegistryLayer[] = [generated.get(host) ?? {}, configured.get(host) ?? {}, (baseRegistries[host] ?? {}) as RegistryLayer];
    const baseEntry = baseRegistries[host] ?? {};
    const section: TomlTable = {};
    for (const key of ['mirrors', 'http', 'insecure', 'ca', 'tlsconfigdir'] as const) {
      if ((LIST_KEYS as readonly string[]).includes(key)) {
        const lists = sources.map((s) => s[key as (typeof LIST_KEYS)[number]]).filter((l): l is string[] => Array.isArray(l));
        if (lists.length) section[key] = [...new Set(lists.flat())];
      } else {
        const first = sources.find((s) => s[key as (typeof SCALAR_KEYS)[number]] !== undefined);
        if (first) section[key] = first[key as (typeof SCALAR_KEYS)[number]];
      }
    }
    for (const [key, value] of Object.entries(baseEntry)) {
      if (!(key in section) && !(LIST_KEYS as readonly string[]).includes(key) && !(SCALAR_KEYS as readonly string[]).includes(key)) section[key] = value;
    }
    // A section with nothing in it tells BuildKit nothing; leaving it out keeps the file minimal.
    if (Object.keys(section).length) registry[host] = section;
  }

  const doc: TomlTable = {};
  let placed = false;
  for (const [key, value] of Object.entries(base)) {
    if (key === 'registry') {
      if (Object.keys(registry).length) doc.registry = registry;
      placed = true;
    } else doc[key] = value;
  }
  if (!placed && Object.keys(registry).length) doc.registry = registry;

  let body: string;
  try {
    body = stringify(doc).replace(/\n+$/, '');
  } catch (e) {
    // smol-toml parses keys and strings it cannot write back (lone UTF-16 surrogates from \uD800).
    const source = input.base?.file ?? CONFIG_SOURCE;
    throw new ConfigError([{ path: '', message: `cannot be written back as TOML: ${(e as Error).message}`, source }], { hint: `fix ${source}: it holds text that is not valid Unicode`, cause: e });
  }
  return `${header(input).join('\n')}\n${annotate(body, input.mirrors)}${body ? '\n' : ''}`;
}

function header(input: RenderBuildkitdInput): string[] {
  const lines = [
    '# Generated by buildx-bootstrap; rewritten on every run, do not edit.',
    '# buildx reads this file when it creates the builder and keeps its own copy: changes reach a',
    '# builder only when it is re-created.',
  ];
  const anyCa = input.mirrors.some((m) => m.ca) || Object.values(input.registries).some((r) => r.ca?.length);
  if (anyCa) {
    // buildx-facts §1.5: LoadConfigFiles reads every `ca` at create time, copies it into the
    // container under /etc/buildkit/certs/<host>/ and rewrites the path; so these must be host paths.
    lines.push('# CA paths are absolute paths on this host: buildx copies each file into the builder');
    lines.push('# (/etc/buildkit/certs/<host>/) at create time.');
  }
  return lines;
}

/** Comments before the registry sections that list a GitLab Dependency Proxy. */
function annotate(body: string, mirrors: MirrorConfig[]): string {
  const notes = new Map<string, string[]>();
  for (const m of mirrors) {
    if (!isDependencyProxy(m)) continue;
    const headerLine = `[registry.${tomlKey(m.for)}]`;
    const list = notes.get(headerLine) ?? [];
    // buildx-facts §9: a path mirror is valid BuildKit (>= v0.12) syntax, but whether the proxy
    // serves `library/` paths for builds is untested; BuildKit falls back to the next host on any
    // failed resolve, so listing it costs one request at worst.
    list.push(
      `# ${mirrorSpec(m)}: GitLab Dependency Proxy as a path mirror (BuildKit >= v0.12).`,
      '# Untested upstream for build pulls; BuildKit falls back to the next host when it fails.',
    );
    notes.set(headerLine, list);
  }
  if (!notes.size) return body;
  return body
    .split('\n')
    .flatMap((line) => [...(notes.get(line) ?? []), line])
    .join('\n');
}

/** smol-toml's key quoting (bare when `[A-Za-z0-9_-]+`, else a JSON string), to find its headers. */
function tomlKey(key: string): string {
  return /^[a-z0-9_-]+$/i.test(key) ? key : JSON.stringify(key);
}

/** Plain code-point order: the same on every machine and locale. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function absolutePath(path: string, where: string, source: string, problems: ConfigProblem[]): string {
  if (!isAbsolute(path)) problems.push({ path: where, message: `CA file "${path}" must be an absolute path`, source });
  return path;
}

function parseBase(base: { text: string; file: string }, problems: ConfigProblem[]): TomlTable {
  let table: TomlTable;
  try {
    // BigInt only where a number does not fit, so byte sizes (gckeepstorage) survive unchanged.
    table = parse(base.text, { integersAsBigInt: 'asNeeded', unsafeKeyBehaviour: 'throw' }) as TomlTable;
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigError([{ path: '', message: `invalid TOML at line ${e.line}, column ${e.column}: ${reason}`, source: base.file }], {
        hint: `fix the TOML syntax of ${base.file} (buildkitd.config), or remove buildkitd.config`,
        cause: e,
      });
    }
    problems.push({ path: '', message: `cannot read as TOML: ${(e as Error).message}`, source: base.file });
    throw new ConfigError(problems, { hint: `fix ${base.file} (buildkitd.config)`, cause: e });
  }
  const outOfRange = integersBeyondInt64(table);
  if (outOfRange.length) {
    throw new ConfigError(
      [...problems, ...outOfRange.map((o) => ({ path: o.path, message: `${o.value} is outside the signed 64-bit integers BuildKit reads`, source: base.file }))],
      { hint: `use a smaller value (sizes may also be strings such as "512MB") in ${base.file} (buildkitd.config)` },
    );
  }
  return table;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * BuildKit decodes buildkitd.toml with go-toml into int64 fields and refuses a larger integer
 * (BK cmd/buildkitd/config/load.go); smol-toml reads it as a BigInt, so it must be caught here
 * rather than when buildx loads the file at create time.
 */
function integersBeyondInt64(value: unknown, path = ''): { path: string; value: bigint }[] {
  if (typeof value === 'bigint') return value < INT64_MIN || value > INT64_MAX ? [{ path, value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => integersBeyondInt64(v, `${path}[${i}]`));
  if (isTable(value)) return Object.entries(value).flatMap(([k, v]) => integersBeyondInt64(v, path ? `${path}.${tomlKey(k)}` : tomlKey(k)));
  return [];
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * The base file's `[registry."<host>"]` sections, checked for the keys this module merges, with
 * relative paths made absolute against the base file's directory (buildx would resolve them
 * against its working directory, which is not where the user's file lives).
 */
function takeBaseRegistries(base: TomlTable, file: string, problems: ConfigProblem[]): Record<string, TomlTable> {
  const raw = base.registry;
  if (raw === undefined) return {};
  const fail = (path: string, message: string): never => {
    throw new ConfigError([...problems, { path, message, source: file }], { hint: `fix ${file} (buildkitd.config)` });
  };
  if (!isTable(raw)) return fail('registry', 'must be a table of [registry."<host>"] sections');
  const dir = isAbsolute(file) ? dirname(file) : '';
  const abs = (p: string): string => (isAbsolute(p) || !dir ? p : join(dir, p));
  const out: Record<string, TomlTable> = {};
  for (const [host, value] of Object.entries(raw)) {
    const at = `registry.${tomlKey(host)}`;
    if (!isTable(value)) return fail(at, 'must be a table');
    const entry: TomlTable = { ...value };
    for (const key of LIST_KEYS) {
      const list = entry[key];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) return fail(`${at}.${key}`, 'must be a list of strings');
      if (key !== 'mirrors') entry[key] = (list as string[]).map(abs);
    }
    for (const key of SCALAR_KEYS) {
      if (entry[key] !== undefined && typeof entry[key] !== 'boolean') fail(`${at}.${key}`, 'must be true or false');
    }
    if (Array.isArray(entry.keypair)) {
      entry.keypair = entry.keypair.map((pair: unknown) => {
        if (!isTable(pair)) return pair;
        const copy: TomlTable = { ...pair };
        for (const k of ['key', 'cert']) if (typeof copy[k] === 'string') copy[k] = abs(copy[k] as string);
        return copy;
      });
    }
    out[host] = entry;
  }
  return out;
}
