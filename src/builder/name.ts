// Builders are keyed by configuration: unless `builder.name` is set, the name is
// `buildx-bootstrap-<hash>` of exactly what defines the builder, so jobs with different
// configurations on one shared daemon each get their own builder and never recreate another's
// (a recreate kills the builds running on it).
//
// The hash covers (and nothing else — README "Builder names"):
//   driver (auto counts as docker-container: the only builder auto ever creates),
//   buildkit.image + buildkit.version (the spec as written, not the digest it resolves to, so the
//   name is known before any registry is asked) + buildkit.rootless,
//   the generated buildkitd.toml (mirrors, registries, base config), buildkitd.flags,
//   builder.platforms, builder.driverOpts, builder.endpoint, builder.nodes.
// For `remote` only driverOpts, endpoint, platforms and nodes count (buildx passes nothing else).
// Stable across runs and machines: keys and sets in canonical order, and every absolute file path
// (CA files in the TOML, remote cacert/cert/key) replaced by the sha256 of the file's content.
import { readFile } from 'node:fs/promises';
import type { Config, NodeConfig } from '../config/schema.js';
import { sha256 } from '../state.js';

export const NAME_PREFIX = 'buildx-bootstrap';

export interface BuilderIdentity {
  driver: 'docker-container' | 'kubernetes' | 'remote';
  image: string;
  version: string;
  rootless: boolean;
  /** The generated buildkitd.toml with file paths replaced by content hashes ('' when none). */
  buildkitdToml: string;
  buildkitdFlags: string[];
  platforms: string[];
  driverOpts: Record<string, string>;
  endpoint: string;
  nodes: NodeConfig[];
}

/** Canonical JSON: object keys sorted at every level, so equal identities hash equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/** `buildx-bootstrap-<8 hex>`: a pure function of the identity. */
export function defaultBuilderName(identity: BuilderIdentity): string {
  const platformsSorted = (p: string[] | undefined) => (p ? [...p].sort() : p);
  const normal = {
    v: 1,
    ...identity,
    platforms: platformsSorted(identity.platforms),
    nodes: identity.nodes.map((n) => ({ ...n, platforms: platformsSorted(n.platforms) })),
  };
  return `${NAME_PREFIX}-${sha256(JSON.stringify(canonical(normal))).slice(0, 8)}`;
}

export type FileHasher = (path: string) => Promise<string | undefined>;

const hashFile: FileHasher = async (path) => {
  try {
    return `sha256:${sha256((await readFile(path)).toString('binary'))}`;
  } catch {
    return undefined;
  }
};

async function replacePaths(text: string, hasher: FileHasher): Promise<string> {
  const paths = [...new Set([...text.matchAll(/(["'])(\/[^"'\n]+)\1/g)].map((m) => m[2]!))];
  let out = text;
  for (const p of paths) {
    const h = await hasher(p);
    if (h) out = out.split(p).join(h);
  }
  return out;
}

/** The identity of the builder `config` asks for; `buildkitdToml` is the rendered config text. */
export async function builderIdentity(config: Config, buildkitdToml: string, hasher: FileHasher = hashFile): Promise<BuilderIdentity> {
  const driver = config.builder.driver === 'kubernetes' || config.builder.driver === 'remote' ? config.builder.driver : 'docker-container';
  const remote = driver === 'remote';
  const opts = async (o: Record<string, string> | undefined) => {
    if (!o) return o;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(o)) out[k] = v.startsWith('/') ? ((await hasher(v)) ?? v) : v;
    return out;
  };
  const nodes: NodeConfig[] = [];
  for (const n of config.builder.nodes) {
    const driverOpts = await opts(n.driverOpts);
    nodes.push({ ...n, ...(driverOpts ? { driverOpts } : {}) });
  }
  return {
    driver,
    image: remote ? '' : config.buildkit.image,
    version: remote ? '' : config.buildkit.version,
    rootless: remote ? false : config.buildkit.rootless,
    buildkitdToml: remote || !buildkitdToml ? '' : await replacePaths(buildkitdToml, hasher),
    buildkitdFlags: remote ? [] : config.buildkitd.flags,
    platforms: config.builder.platforms,
    driverOpts: (await opts(config.builder.driverOpts)) ?? {},
    endpoint: config.builder.endpoint,
    nodes,
  };
}

/**
 * `config` with `builder.name` filled in: kept as given when the user set it, else derived.
 * `renderToml` renders the buildkitd.toml the builder would get (injected: the caller has it).
 */
export async function withBuilderName(config: Config, renderToml: () => Promise<string>, hasher?: FileHasher): Promise<{ config: Config; derived: boolean }> {
  if (config.builder.name) return { config, derived: false };
  const identity = await builderIdentity(config, config.builder.driver === 'remote' ? '' : await renderToml(), hasher);
  return { config: { ...config, builder: { ...config.builder, name: defaultBuilderName(identity) } }, derived: true };
}

/** `withBuilderName` with the toml this run would render. */
export async function namedConfig(config: Config): Promise<{ config: Config; derived: boolean }> {
  const { renderConfigFor } = await import('./pipeline.js');
  return withBuilderName(config, async () => (await renderConfigFor(config)).text);
}
