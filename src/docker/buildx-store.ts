// buildx's own store on disk (buildx-facts §1.7, BX store/store.go): `$BUILDX_CONFIG` or
// `$DOCKER_CONFIG/buildx`, with `instances/<name>` (JSON, one per builder, every node's driver
// options) and `activity/<name>` (RFC 3339 time of the last build or create, BX
// store/store.go UpdateLastActivity). Read-only here: changes go through `docker buildx`.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerConfigDir } from '../state.js';

export interface StoredNode {
  name: string;
  endpoint: string;
  driverOpts: Record<string, string>;
}

export interface StoredBuilder {
  name: string;
  driver: string;
  nodes: StoredNode[];
  /** Last build or create buildx recorded (the instance file's time when there is no activity record). */
  lastActivity: Date | undefined;
}

export function buildxStoreDir(env: Record<string, string | undefined>): string {
  return env.BUILDX_CONFIG || join(dockerConfigDir(env), 'buildx');
}

/** One `instances/<name>` file; undefined when it is not a builder record. */
export function parseInstance(text: string): Omit<StoredBuilder, 'lastActivity'> | undefined {
  let raw: { Name?: unknown; Driver?: unknown; Nodes?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch {
    return undefined;
  }
  if (typeof raw.Name !== 'string' || typeof raw.Driver !== 'string') return undefined;
  const nodes = Array.isArray(raw.Nodes) ? (raw.Nodes as { Name?: unknown; Endpoint?: unknown; DriverOpts?: unknown }[]) : [];
  return {
    name: raw.Name,
    driver: raw.Driver,
    nodes: nodes.map((n) => ({
      name: typeof n.Name === 'string' ? n.Name : '',
      endpoint: typeof n.Endpoint === 'string' ? n.Endpoint : '',
      driverOpts: n.DriverOpts && typeof n.DriverOpts === 'object' ? (n.DriverOpts as Record<string, string>) : {},
    })),
  };
}

/** Every builder in buildx's store, with its last activity. */
export async function listStoredBuilders(env: Record<string, string | undefined>): Promise<StoredBuilder[]> {
  const dir = buildxStoreDir(env);
  let files: string[];
  try {
    files = (await readdir(join(dir, 'instances'))).filter((f) => !f.startsWith('.'));
  } catch {
    return [];
  }
  const out: StoredBuilder[] = [];
  for (const file of files.sort()) {
    const path = join(dir, 'instances', file);
    const parsed = parseInstance(await readFile(path, 'utf8').catch(() => ''));
    if (!parsed) continue;
    out.push({ ...parsed, lastActivity: await lastActivity(dir, file, path) });
  }
  return out;
}

async function lastActivity(dir: string, file: string, instancePath: string): Promise<Date | undefined> {
  const text = await readFile(join(dir, 'activity', file), 'utf8').catch(() => '');
  const when = new Date(text.trim());
  if (text && !Number.isNaN(when.getTime())) return when;
  return stat(instancePath).then((s) => s.mtime).catch(() => undefined);
}
