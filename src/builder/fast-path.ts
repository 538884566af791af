// The no-op re-run, without the full pipeline: with a lockfile that applies, the pinned digest,
// the generated config and the recorded builder all agree, and the builder runs the pinned engine,
// there is nothing to do — no docker version probe, no registry, no image check. What the builder
// runs is read from buildx's store and the container (quick-state.ts) where that can tell, else
// from one `buildx inspect`. Anything else (or any doubt) falls through to the full create.
import type { CommandContext } from '../context.js';
import type { Config } from '../config/schema.js';
import { inspectBuilder } from '../docker/buildx.js';
import { endpointKey, tlsContextName, tlsFromEnvironment } from '../docker/daemon.js';
import type { DockerRunner } from '../docker/runner.js';
import { isLockStale, readLockfile, type Lockfile } from '../resolve/lockfile.js';
import { makeCurrent, readRecord } from './bring-up.js';
import { readBuilderWithoutBuildx } from './quick-state.js';
import { decideConverge } from './converge.js';
import type { DriverChoice } from './driver.js';
import { builderSpec, renderConfigFor, versionOfTag } from './pipeline.js';

export interface FastReuse {
  builder: string;
  lock: Lockfile;
}

export async function tryFastReuse(ctx: CommandContext, config: Config, driver: DriverChoice, runner: DockerRunner): Promise<FastReuse | undefined> {
  if (driver.driver !== 'docker-container' && driver.driver !== 'kubernetes') return undefined;
  const env = ctx.io.env;
  const lock = await readLockfile(config.lockfile).catch(() => undefined);
  if (!lock || isLockStale(lock, config)) return undefined;
  const recorded = await readRecord(env, config.builder.name);
  if (!recorded || recorded.digest !== lock.digest) return undefined;
  const toml = await renderConfigFor(config);
  const tls = await tlsFromEnvironment(env);
  const spec = builderSpec(config, driver.driver, recorded.image, lock.digest, toml.sha, {
    tlsContext: tls ? tlsContextName(tls) : undefined,
    endpointKey: endpointKey(env),
  });
  // Without buildx when the store and the container can tell (src/builder/quick-state.ts).
  const quick = await readBuilderWithoutBuildx(runner, env, spec, lock, { tlsContext: tls ? tlsContextName(tls) : undefined, signal: ctx.io.signal });
  const info = quick ? quick.info : await inspectBuilder(runner, spec.name, { signal: ctx.io.signal }).catch(() => undefined);
  const decision = decideConverge(spec, info, recorded);
  if (decision.action !== 'reuse' || decision.start) return undefined;
  const expected = versionOfTag(lock.tag);
  if (quick ? !quick.runsPinned : expected && info?.nodes[0]?.buildkitVersion !== expected) return undefined;
  await makeCurrent({ runner, env, log: ctx.log, name: spec.name });
  ctx.log.info(`reusing builder ${spec.name}: it runs the locked ${lock.tag} (${lock.digest.slice(0, 19)}…) with the current config`);
  return { builder: spec.name, lock };
}
