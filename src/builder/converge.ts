// Converge decision (pure): reuse an existing builder when it matches what this run wants,
// otherwise say exactly what drifted. What buildx shows is not enough on its own — it rewrites the
// TOML (go-toml v1 vs v2 by version, buildx util/confutil) and adds flags of its own
// (`--allow-insecure-entitlement=network.host` since v0.13) — so a record of what we created is
// kept beside the generated config and compared, and the visible image is checked against it.
import type { NodeConfig } from '../config/schema.js';
import type { BuilderInfo } from '../docker/parse.js';

export type ContainerDriver = 'docker-container' | 'kubernetes' | 'remote';

/** Everything that defines a builder this tool makes; recorded as state.json after creation. */
export interface BuilderSpec {
  name: string;
  driver: ContainerDriver;
  /** Context name or URL; empty for the current docker endpoint. */
  endpoint: string;
  /** The docker endpoint this run talks to (DOCKER_HOST / context), so a changed daemon is drift. */
  daemon: string;
  /** The `image=` reference handed to buildx (empty for remote). */
  image: string;
  /** Pinned digest of the engine image (empty for remote). */
  digest: string;
  driverOpts: Record<string, string>;
  buildkitdFlags: string[];
  /** sha256 of the generated buildkitd.toml (empty when none is passed, e.g. remote). */
  configSha: string;
  platforms: string[];
  nodes: NodeConfig[];
}

export type ConvergeAction =
  | { action: 'create'; reasons: string[] }
  | { action: 'reuse'; reasons: string[]; start: boolean }
  | { action: 'recreate'; reasons: string[] };

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)));
}

export function decideConverge(desired: BuilderSpec, existing: BuilderInfo | undefined, recorded: BuilderSpec | undefined): ConvergeAction {
  if (!existing) return { action: 'create', reasons: [`builder ${desired.name} does not exist`] };
  const drift: string[] = [];
  if (existing.driver !== desired.driver) drift.push(`driver ${existing.driver} → ${desired.driver}`);
  if (!recorded) {
    drift.push('it was not created by buildx-bootstrap (no record of its engine image and config)');
    return { action: 'recreate', reasons: drift };
  }
  const node = existing.nodes[0];
  const shownImage = node?.driverOpts.image;
  if (desired.image && shownImage !== undefined && shownImage !== recorded.image) {
    drift.push(`engine image was changed outside buildx-bootstrap (${shownImage})`);
  }
  // The same digest handed over by another name (pulled by digest, or a cache-loaded copy under its
  // local alias) is the same engine: the container's image ID is verified after bootstrap.
  if (recorded.digest !== desired.digest) drift.push(`engine image ${short(recorded.digest)} → ${short(desired.digest)}`);
  if (recorded.configSha !== desired.configSha) drift.push('buildkitd.toml changed (mirrors, registries or base config)');
  if (!same(recorded.buildkitdFlags, desired.buildkitdFlags)) drift.push(`buildkitd flags [${recorded.buildkitdFlags.join(' ')}] → [${desired.buildkitdFlags.join(' ')}]`);
  if (!same([...recorded.platforms].sort(), [...desired.platforms].sort())) drift.push(`platforms [${recorded.platforms.join(',')}] → [${desired.platforms.join(',')}]`);
  if (!same(sortedRecord(recorded.driverOpts), sortedRecord(desired.driverOpts))) drift.push('driver options changed');
  if ((recorded.daemon ?? '') !== desired.daemon) drift.push(`docker endpoint ${recorded.daemon || '(unknown)'} → ${desired.daemon}`);
  if (recorded.endpoint !== desired.endpoint) drift.push(`endpoint ${recorded.endpoint || '(current docker)'} → ${desired.endpoint || '(current docker)'}`);
  if (!same(recorded.nodes, desired.nodes)) drift.push('extra nodes changed');
  if (existing.nodes.length !== 1 + desired.nodes.length) drift.push(`has ${existing.nodes.length} node(s), expected ${1 + desired.nodes.length}`);
  if (drift.length) return { action: 'recreate', reasons: drift };
  const start = existing.nodes.some((n) => n.status !== 'running');
  return { action: 'reuse', reasons: [start ? 'matches; starting its stopped node' : 'matches the configuration'], start };
}

function short(digest: string): string {
  return digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '(none)';
}
