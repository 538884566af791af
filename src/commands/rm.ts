// `rm`: remove the builder (store entry, container, state volume unless --keep-state) and the
// files buildx-bootstrap generated for it.
import type { CommandContext } from '../context.js';
import { acquireBuilderLock } from '../builder/lock.js';
import { removeBuilderFiles } from '../builder/bring-up.js';
import { makeRunner } from '../builder/pipeline.js';
import { removeBuilder } from '../docker/buildx.js';
import { endpointKey } from '../docker/daemon.js';

export async function run(ctx: CommandContext): Promise<number> {
  const { config } = await ctx.loadConfig();
  const name = config.builder.name;
  const runner = makeRunner(ctx);
  const env = ctx.io.env;
  const release = await acquireBuilderLock(env, endpointKey(env), name, { log: ctx.log, timeoutMs: config.timeouts.bootstrap, signal: ctx.io.signal });
  try {
    const removed = await removeBuilder(runner, name, { keepState: ctx.args.keepState });
    await removeBuilderFiles(env, name);
    ctx.log.info(removed ? `removed builder ${name}` : `builder ${name} did not exist; removed its generated files`);
  } finally {
    await release();
  }
  ctx.result(name);
  return 0;
}
