// `rm`: remove the builder (store entry, container, state volume unless --keep-state) and the
// files buildx-bootstrap generated for it — not while a build runs on it, unless --force.
// `rm --stale [--older-than 7d]`: remove every idle builder this tool made that was unused that long.
import type { CommandContext } from '../context.js';
import { builderActivity } from '../builder/activity.js';
import { acquireBuilderLock } from '../builder/lock.js';
import { lockLeaseMs } from '../docker/leases.js';
import { removeBuilderFiles } from '../builder/bring-up.js';
import { namedConfig } from '../builder/name.js';
import { withProxyDriverOpts } from '../builder/proxy.js';
import { makeRunner } from '../builder/pipeline.js';
import { parseDuration } from '../config/schema.js';
import { inspectBuilder, removeBuilder } from '../docker/buildx.js';
import { endpointKey } from '../docker/daemon.js';
import { describeBuilds } from '../docker/history.js';
import { DockerError, UsageError } from '../errors.js';

export const DEFAULT_STALE_AGE = '7d';

export async function run(ctx: CommandContext): Promise<number> {
  if (ctx.args.stale) return runStale(ctx);
  const { config } = await namedConfig(await withProxyDriverOpts((await ctx.loadConfig()).config, ctx.io.env));
  const name = config.builder.name;
  const runner = makeRunner(ctx);
  const env = ctx.io.env;
  // The daemon lease too when the builder's container is on this daemon: prefixed builds hold it.
  const onThisDaemon = (config.builder.driver === 'auto' || config.builder.driver === 'docker-container') && !config.builder.endpoint;
  const release = await acquireBuilderLock(env, endpointKey(env), name, {
    log: ctx.log,
    timeoutMs: config.timeouts.bootstrap,
    signal: ctx.io.signal,
    daemon: onThisDaemon ? { runner, holdMs: lockLeaseMs({ bootstrap: config.timeouts.bootstrap }) } : undefined,
  });
  try {
    const info = await inspectBuilder(runner, name, { signal: ctx.io.signal });
    if (info) {
      const activity = await builderActivity(runner, info, ctx.io.signal);
      if (!activity.known) ctx.log.warn(`cannot tell whether builds run on builder ${name}: ${activity.why}`);
      else if (activity.active.length && !ctx.args.force) {
        throw new DockerError(`builder ${name} was not removed: ${activity.active.length} build(s) run on it: ${describeBuilds(activity.active, Date.now())}`, {
          hint: 'wait for them to finish, or rm --force to remove it anyway (those builds fail)',
        });
      } else if (activity.active.length) ctx.log.warn(`removing builder ${name} under ${activity.active.length} running build(s) (--force)`);
    }
    const removed = info ? await removeBuilder(runner, name, { keepState: ctx.args.keepState }) : false;
    await removeBuilderFiles(env, name);
    ctx.log.info(removed ? `removed builder ${name}` : `builder ${name} did not exist; removed its generated files`);
  } finally {
    await release();
  }
  ctx.result(name);
  return 0;
}

async function runStale(ctx: CommandContext): Promise<number> {
  const olderThan = ctx.args.olderThan ?? DEFAULT_STALE_AGE;
  const olderThanMs = parseDuration(olderThan);
  if (olderThanMs === undefined) throw new UsageError(`invalid --older-than "${olderThan}"`, { hint: 'use a duration such as 7d, 36h or 90m' });
  const { config } = await ctx.loadConfig();
  const env = ctx.io.env;
  const { removeStaleBuilders } = await import('../builder/stale.js');
  const result = await removeStaleBuilders({
    runner: makeRunner(ctx),
    env,
    log: ctx.log,
    endpointKey: endpointKey(env),
    olderThanMs,
    lockTimeoutMs: config.timeouts.bootstrap,
    signal: ctx.io.signal,
  });
  if (ctx.args.json) ctx.result(JSON.stringify(result));
  else if (result.removed.length) ctx.result(result.removed.join('\n'));
  ctx.log.info(`rm --stale: ${result.removed.length} removed, ${result.kept.length} kept`);
  return 0;
}
