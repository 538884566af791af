// The no-op check without starting buildx: for a one-node docker-container builder on the current
// daemon, buildx's store record and the container's state say everything the converge decision
// reads, and the container's image ID — one of the lockfile's digests — proves it runs the
// pinned engine (stronger than the BuildKit version buildx would report). Anything this cannot
// answer (other drivers and endpoints, several nodes, an unreadable store, a lock without image
// IDs) returns undefined, and the caller asks buildx as before.
import { builderInfoFromStore, inspectBuilderContainer, readBuildxInstance } from '../docker/buildx-store.js';
import type { BuilderInfo } from '../docker/parse.js';
import type { DockerRunner } from '../docker/runner.js';
import type { Lockfile } from '../resolve/lockfile.js';
import type { BuilderSpec } from './converge.js';

export interface QuickBuilderState {
  /** As `buildx inspect` would show it (no BuildKit version); undefined: no such builder. */
  info: BuilderInfo | undefined;
  /** Its container runs one of the lockfile's image IDs. */
  runsPinned: boolean;
  /** The image ID its container runs, when there is one. */
  image?: string;
}

/**
 * Image IDs the pinned digest has on any platform and either image store: config digests (the
 * classic store's IDs), and the index and platform manifest digests (the containerd store names
 * an image by what it was pulled or loaded as). All are content digests of the pinned image, so
 * the store need not be asked. Empty when the lock knows no config (nothing to prove it with).
 */
export function pinnedImageIds(lock: Lockfile): Set<string> {
  const ids = new Set<string>();
  if (lock.config) ids.add(lock.config);
  for (const p of Object.values(lock.platforms ?? {})) {
    if (p.config) ids.add(p.config);
    if (p.manifest) ids.add(p.manifest);
  }
  if (ids.size) ids.add(lock.digest);
  return ids;
}

export async function readBuilderWithoutBuildx(
  runner: DockerRunner,
  env: Record<string, string | undefined>,
  spec: BuilderSpec,
  lock: Lockfile,
  opts: { tlsContext: string | undefined; signal?: AbortSignal | undefined },
): Promise<QuickBuilderState | undefined> {
  if (spec.driver !== 'docker-container' || spec.nodes.length) return undefined;
  // The builder must live on the daemon this process talks to: the current endpoint, or the
  // context made for it from the TLS environment.
  if (spec.endpoint && spec.endpoint !== opts.tlsContext) return undefined;
  const ids = pinnedImageIds(lock);
  if (!ids.size) return undefined;
  const instance = await readBuildxInstance(env, spec.name);
  if (instance === 'unreadable') return undefined;
  if (!instance) return { info: undefined, runsPinned: false };
  const node = instance.Nodes?.[0];
  if (instance.Nodes?.length !== 1 || !node?.Name) return undefined;
  const container = await inspectBuilderContainer(runner, node.Name, opts.signal);
  if (container === 'unreadable') return undefined;
  const info = builderInfoFromStore(instance, [container]);
  return container ? { info, runsPinned: ids.has(container.image), image: container.image } : { info, runsPinned: false };
}
