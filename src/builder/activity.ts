// Never pull a builder out from under a running build. Before a drifted builder is removed (and
// before `rm` removes one) BuildKit's own record of active builds is asked (src/docker/history.ts);
// a busy builder is waited for up to `timeouts.drain`, then the run gives up naming the builds.
import { DockerError, InterruptedError } from '../errors.js';
import type { Logger } from '../io.js';
import { buildxActiveBuilds, containerActiveBuilds, describeBuilds, formatAge, type ActiveBuild, type BuildActivity } from '../docker/history.js';
import type { BuilderInfo } from '../docker/parse.js';
import type { DockerRunner } from '../docker/runner.js';
import { describeLease, liveHolds } from '../docker/leases.js';
import { pause } from '../pause.js';

/** Marker driver option on every builder this tool creates: buildx keeps it in its store and on the container. */
export const MARKER_OPT = 'env.BUILDX_BOOTSTRAP';

/** Driver options with the marker added, for the drivers that pass `env.*` (docker-container, kubernetes). */
export function withMarker(driver: string, driverOpts: Record<string, string>): Record<string, string> {
  return driver === 'docker-container' || driver === 'kubernetes' ? { ...driverOpts, [MARKER_OPT]: '1' } : driverOpts;
}

/**
 * Running builds on every node of a builder. docker-container: the prefixed builds' holds on it,
 * and `buildctl` inside each running `buildx_buildkit_<node>` container (any buildx version); kubernetes: `buildx history ls`
 * (buildx ≥ 0.23); remote: removing the builder only forgets it, BuildKit keeps running, so it
 * counts as idle.
 */
export async function builderActivity(runner: DockerRunner, info: BuilderInfo, signal?: AbortSignal): Promise<BuildActivity> {
  if (info.driver === 'remote') return { known: true, active: [] };
  if (info.driver !== 'docker-container') return buildxActiveBuilds(runner, info.name, { signal });
  // Prefixed builds hold the builder in the daemon from before they start (src/docker/leases.ts):
  // counted even before BuildKit has seen them.
  const active: ActiveBuild[] = (await liveHolds(runner, info.name, signal)).map((hold) => ({ ref: describeLease(hold), startedAt: undefined }));
  for (const node of info.nodes) {
    if (node.status !== 'running') continue; // a stopped or never-started node runs nothing
    // Endpoint: a docker context name, or the daemon's own URL for the default context.
    const context = node.endpoint && !node.endpoint.includes('://') ? node.endpoint : undefined;
    const r = await containerActiveBuilds(runner, `buildx_buildkit_${node.name}`, { context, signal });
    if (!r.known) return r;
    active.push(...r.active);
  }
  return { known: true, active };
}

export interface DrainInput {
  runner: DockerRunner;
  log: Logger;
  info: BuilderInfo;
  /** Why the builder has to go (drift reasons), for the messages. */
  why: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Poll interval (default 2s). */
  pollMs?: number;
  now?: () => number;
}

/**
 * Returns once no build runs on the builder (at once when none does); throws a DockerError (exit 1)
 * naming the builder and the builds still running when `timeoutMs` passes first. When BuildKit
 * cannot tell (before 0.11, no exec into the builder), warns and returns: the old behaviour.
 */
export async function drainBuilder(input: DrainInput): Promise<void> {
  const { runner, log, info } = input;
  const now = input.now ?? Date.now;
  const started = now();
  const limit = formatAge(input.timeoutMs);
  let lastTold = 0;
  for (;;) {
    const activity = await builderActivity(runner, info, input.signal);
    if (!activity.known) {
      log.warn(`cannot tell whether builds run on builder ${info.name}: ${activity.why}`);
      return;
    }
    if (!activity.active.length) {
      if (lastTold) log.info(`builds on builder ${info.name} have finished after ${formatAge(now() - started)}`);
      return;
    }
    const elapsed = now() - started;
    const builds = describeBuilds(activity.active, now());
    if (elapsed >= input.timeoutMs) {
      throw new DockerError(`builder ${info.name} must be recreated (${input.why}) but ${activity.active.length} build(s) still run on it after ${limit}: ${builds}`, {
        hint: 'a builder is never recreated under a running build: rerun when they end, raise timeouts.drain (--drain-timeout), or use another builder.name',
      });
    }
    if (!lastTold || now() - lastTold >= 30_000) {
      log.info(`waiting for ${activity.active.length} build(s) on builder ${info.name} to finish before recreating it (${formatAge(elapsed)} of up to ${limit}): ${builds}`);
      lastTold = now();
    }
    if (input.signal?.aborted) throw new InterruptedError(input.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
    await pause(Math.min(input.pollMs ?? 2000, Math.max(1, input.timeoutMs - elapsed)), input.signal);
  }
}

