// What can be known about a docker-container builder without starting buildx: its record in
// buildx's store (`$BUILDX_CONFIG` or `$DOCKER_CONFIG/buildx`, `instances/<lower-cased name>`,
// buildx store/store.go) and the state of its container on the daemon. A `buildx inspect` costs a
// plugin start and, for a running node, a round trip into BuildKit; these are a file read and one
// daemon call.
// Also every builder in the store with its last activity (`activity/<name>`, RFC 3339, written by
// buildx on create and on builds, BX store/store.go UpdateLastActivity), for rm --stale and doctor.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerConfigDir } from '../state.js';
import type { BuilderInfo, NodeInfo } from './parse.js';
import type { DockerRunner } from './runner.js';

interface StoreNode {
  Name?: string;
  Endpoint?: string;
  Platforms?: { os?: string; architecture?: string; variant?: string }[] | null;
  DriverOpts?: Record<string, string> | null;
  Flags?: string[] | null;
}

interface StoreInstance {
  Name?: string;
  Driver?: string;
  Nodes?: StoreNode[] | null;
}

export function buildxStoreDir(env: Record<string, string | undefined>): string {
  return env.BUILDX_CONFIG || join(dockerConfigDir(env), 'buildx');
}

/** The store's record of builder `name`: undefined when there is none, `unreadable` when it cannot be read as expected. */
export async function readBuildxInstance(env: Record<string, string | undefined>, name: string): Promise<StoreInstance | undefined | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(join(buildxStoreDir(env), 'instances', name.toLowerCase()), 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : 'unreadable';
  }
  try {
    const parsed = JSON.parse(text) as StoreInstance;
    return parsed && typeof parsed.Driver === 'string' && Array.isArray(parsed.Nodes) ? parsed : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export interface ContainerState {
  /** dockerd's `State.Status`: `created|running|paused|restarting|removing|exited|dead`. */
  status: string;
  /** Image ID the container runs. */
  image: string;
}

/** `buildx_buildkit_<node>`'s state on the current daemon; undefined when there is no such container. */
export async function inspectBuilderContainer(runner: DockerRunner, node: string, signal?: AbortSignal): Promise<ContainerState | undefined | 'unreadable'> {
  const r = await runner.run(['container', 'inspect', '--format', '{{.State.Status}} {{.Image}}', `buildx_buildkit_${node}`], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) return /no such container/i.test(r.stderr) ? undefined : 'unreadable';
  const [status, image] = r.stdout.trim().split(/\s+/);
  return status && image?.startsWith('sha256:') ? { status, image } : 'unreadable';
}

/**
 * The builder as `buildx inspect` would show it, for the fields the converge decision reads:
 * driver, nodes, each node's driver options and status (`running` when its container runs,
 * `stopped` when it exists, `inactive` when it does not — buildx driver/docker-container).
 * BuildKit's version is not known here; the caller checks the container's image instead.
 */
export function builderInfoFromStore(instance: StoreInstance, containers: (ContainerState | undefined)[]): BuilderInfo {
  const nodes: NodeInfo[] = (instance.Nodes ?? []).map((n, i) => {
    const c = containers[i];
    return {
      name: n.Name ?? '',
      endpoint: n.Endpoint ?? '',
      driverOpts: n.DriverOpts ?? {},
      status: !c ? 'inactive' : c.status === 'running' ? 'running' : 'stopped',
      flags: n.Flags ?? [],
      platforms: [],
      fixedPlatforms: (n.Platforms ?? []).map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/')),
      labels: {},
      gcPolicy: [],
      files: {},
    };
  });
  return { name: instance.Name ?? '', driver: instance.Driver ?? '', nodes };
}

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
