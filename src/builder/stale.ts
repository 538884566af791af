// `rm --stale`: remove the builders buildx-bootstrap made that nobody used for a while — never one
// with a running build, and never one it cannot check. Builders with the default name pile up on
// shared daemons (one per configuration), which is what this cleans.
import type { Logger } from '../io.js';
import { inspectBuilder, removeBuilder } from '../docker/buildx.js';
import { listStoredBuilders, type StoredBuilder } from '../docker/buildx-store.js';
import { describeBuilds, formatAge } from '../docker/history.js';
import type { DockerRunner } from '../docker/runner.js';
import { builderActivity, MARKER_OPT } from './activity.js';
import { readRecord, removeBuilderFiles } from './bring-up.js';
import { acquireBuilderLock } from './lock.js';
import { lockLeaseMs } from '../docker/leases.js';

/** Made by buildx-bootstrap: the marker driver option, or our record of it (remote builders carry no marker). */
export function isOurs(builder: StoredBuilder, recorded: boolean): boolean {
  return recorded || builder.nodes.some((n) => MARKER_OPT in n.driverOpts);
}

export interface StaleChoice {
  /** Unused for longer than the limit: removed when idle. */
  stale: StoredBuilder[];
  /** Used recently: kept. */
  recent: StoredBuilder[];
}

/** Pure: which of our builders have been unused for at least `olderThanMs` at `now`. */
export function chooseStale(ours: StoredBuilder[], now: number, olderThanMs: number): StaleChoice {
  const stale: StoredBuilder[] = [];
  const recent: StoredBuilder[] = [];
  for (const b of ours) {
    const age = b.lastActivity ? now - b.lastActivity.getTime() : Infinity;
    (age >= olderThanMs ? stale : recent).push(b);
  }
  return { stale, recent };
}

/** Every builder in buildx's store that buildx-bootstrap made. */
export async function listOurBuilders(env: Record<string, string | undefined>): Promise<StoredBuilder[]> {
  const all = await listStoredBuilders(env);
  const ours: StoredBuilder[] = [];
  for (const b of all) if (isOurs(b, (await readRecord(env, b.name)) !== undefined)) ours.push(b);
  return ours;
}

export interface StaleResult {
  removed: string[];
  kept: { name: string; reason: string }[];
}

export async function removeStaleBuilders(input: {
  runner: DockerRunner;
  env: Record<string, string | undefined>;
  log: Logger;
  endpointKey: string;
  olderThanMs: number;
  lockTimeoutMs: number;
  now?: number;
  signal?: AbortSignal | undefined;
}): Promise<StaleResult> {
  const { runner, env, log } = input;
  const now = input.now ?? Date.now();
  const { stale, recent } = chooseStale(await listOurBuilders(env), now, input.olderThanMs);
  const result: StaleResult = { removed: [], kept: recent.map((b) => ({ name: b.name, reason: `used ${formatAge(now - b.lastActivity!.getTime())} ago` })) };
  for (const b of stale) {
    // Under the builder's lock: a run of the same configuration is not bringing it up meanwhile.
    const release = await acquireBuilderLock(env, input.endpointKey, b.name, {
      log,
      timeoutMs: input.lockTimeoutMs,
      signal: input.signal,
      daemon: b.driver === 'docker-container' ? { runner, holdMs: lockLeaseMs({ bootstrap: input.lockTimeoutMs }) } : undefined,
    });
    try {
      let info;
      try {
        info = await inspectBuilder(runner, b.name, { signal: input.signal });
      } catch (error) {
        result.kept.push({ name: b.name, reason: `cannot inspect it: ${(error as Error).message}` });
        continue;
      }
      if (info) {
        const activity = await builderActivity(runner, info, input.signal);
        if (!activity.known) {
          result.kept.push({ name: b.name, reason: `cannot tell whether builds run on it (${activity.why})` });
          continue;
        }
        if (activity.active.length) {
          result.kept.push({ name: b.name, reason: `${activity.active.length} build(s) running: ${describeBuilds(activity.active, now)}` });
          continue;
        }
      }
      await removeBuilder(runner, b.name);
      await removeBuilderFiles(env, b.name);
      result.removed.push(b.name);
      log.info(`removed builder ${b.name} (unused for ${b.lastActivity ? formatAge(now - b.lastActivity.getTime()) : 'an unknown time'})`);
    } finally {
      await release();
    }
  }
  for (const k of result.kept) log.info(`kept builder ${k.name}: ${k.reason}`);
  return result;
}

export interface OurBuildersUsage {
  names: string[];
  /** State volumes of their nodes found on this daemon, and their total size (undefined when `docker system df` failed). */
  volumes: number;
  volumeBytes: number | undefined;
  /** Leases held in this daemon now (src/docker/leases.ts): locks, and holds of prefixed builds. */
  leases: { locks: number; holds: number } | undefined;
}

/** For `doctor`: how many builders this tool made, and how much space their state volumes take. */
export async function ourBuildersUsage(runner: DockerRunner, env: Record<string, string | undefined>, signal?: AbortSignal): Promise<OurBuildersUsage> {
  const ours = await listOurBuilders(env);
  const { volumeUsage } = await import('../docker/volumes.js');
  const usage = ours.length ? await volumeUsage(runner, signal) : new Map<string, number>();
  let volumes = 0;
  let bytes = 0;
  for (const node of ours.flatMap((b) => b.nodes)) {
    const size = usage?.get(`buildx_buildkit_${node.name}_state`);
    if (size !== undefined) (volumes++, (bytes += size));
  }
  const { listLeases } = await import('../docker/leases.js');
  const leases = await listLeases(runner, undefined, signal).catch(() => undefined);
  const count = leases && { locks: leases.filter((l) => l.kind === 'lock').length, holds: leases.filter((l) => l.kind === 'hold').length };
  return { names: ours.map((b) => b.name), volumes, volumeBytes: usage ? bytes : undefined, leases: count };
}
