// `create` (the default command) and prefix mode: bring up the pinned, mirror-configured builder,
// print its name (or run the command after `--` with BUILDX_BUILDER set). Start-up cost is module
// loading, so the full pipeline, the image bridge and the build rewrite load only when needed.
import type { CommandContext } from '../context.js';
import { decideDriver } from '../builder/driver.js';
import { runPrefixed } from '../builder/exec.js';
import { readRecord } from '../builder/bring-up.js';
import { tryFastReuse } from '../builder/fast-path.js';
import type { CreateState } from '../builder/full-create.js';
import { namedConfig } from '../builder/name.js';
import { withProxyDriverOpts } from '../builder/proxy.js';
import { makeCliRunner, makeRegistryAuth, makeRunner, pinFromLock } from '../builder/pipeline.js';
import type { Config } from '../config/schema.js';
import { startCacheLoad, startEarlyPull, type CacheLoad, type EarlyPull } from '../docker/engine-image.js';
import type { DockerRunner } from '../docker/runner.js';
import { isLockStale, readLockfile, type Lockfile } from '../resolve/lockfile.js';
import { parseImageRef } from '../registry/reference.js';
import type { DriverChoice } from '../builder/driver.js';

export async function run(ctx: CommandContext): Promise<number> {
  const raw = await ctx.loadConfig();
  const loaded = { ...raw, config: (await namedConfig(await withProxyDriverOpts(raw.config, ctx.io.env))).config };
  const runner = makeRunner(ctx);
  // First docker call of the run: a fresh daemon's `docker load` from cache.dir starts now, in
  // the docker CLI's process, so the tar streams while this one loads the rest of itself.
  const lock = await lockToBringUp(loaded.config, ctx.io);
  const preload = lock && startPreload(loaded.config, lock, makeCliRunner(ctx), runner, ctx.io);
  const driver = await decideDriver(ctx, loaded.config, runner);
  const state: CreateState = { loaded, runner, driver, preload };
  if (lock && !preload) state.earlyPull = startPull(ctx, loaded.config, lock, driver, runner);
  try {
    const fast = await tryFastReuse(ctx, loaded.config, driver, runner);
    if (fast) {
      state.builder = fast.builder;
      state.pin = pinFromLock(fast.lock, '');
    } else await (await import('../builder/full-create.js')).fullCreate(ctx, state);
    return await finish(ctx, state);
  } finally {
    // The per-run docker config (and every credential it held) ends with the run.
    await state.auth?.dispose();
  }
}

/**
 * The lockfile, when it applies and the builder is not on record with its digest (that is the
 * no-op re-run, which asks nothing): the engine image it pins is about to be made local.
 */
async function lockToBringUp(config: Config, io: CommandContext['io']): Promise<Lockfile | undefined> {
  const lock = await readLockfile(config.lockfile).catch(() => undefined);
  if (!lock || isLockStale(lock, config)) return undefined;
  if ((await readRecord(io.env, config.builder.name).catch(() => undefined))?.digest === lock.digest) return undefined;
  return lock;
}

/** The cached engine image's load, when cache.dir holds its tar. */
function startPreload(config: Config, lock: Lockfile, cli: DockerRunner, api: DockerRunner, io: CommandContext['io']): CacheLoad | undefined {
  if (!config.cache.dir) return undefined;
  const configs = [lock.config, ...Object.values(lock.platforms ?? {}).map((p) => p.config)].filter((c): c is string => !!c);
  return startCacheLoad(cli, config.cache.dir, lock.digest, configs, { timeoutMs: config.timeouts.bootstrap, signal: io.signal, inspector: api });
}

/**
 * The locked engine image's pull, when the builder runs on this daemon and the resolve has no
 * choice to make (no mirror, the lock's own registry): it starts now instead of after the facts.
 */
function startPull(ctx: CommandContext, config: Config, lock: Lockfile, driver: DriverChoice, runner: DockerRunner): EarlyPull | undefined {
  if (driver.driver !== 'docker-container' || config.builder.endpoint || config.mirrors.length || !config.upstream || lock.source !== config.buildkit.image) return undefined;
  const pin = pinFromLock(lock, '');
  const ids = [lock.config, lock.digest, ...Object.values(lock.platforms ?? {}).flatMap((p) => [p.config, p.manifest])].filter((d): d is string => !!d);
  return startEarlyPull(runner, pin, [...new Set(ids)], {
    timeoutMs: config.timeouts.bootstrap,
    signal: ctx.io.signal,
    // Its own credentials, as the pull after the resolve would send them; gone with the pull.
    registryAuth: async () => {
      const auth = await makeRegistryAuth(ctx, config);
      const header = await auth.engineAuthHeader(parseImageRef(pin.reference).registry);
      return { header, cliEnv: () => auth.childEnv(), dispose: () => auth.dispose() };
    },
  });
}

/** After the builder is there: bridge local images, then print its name or run the command. */
async function finish(ctx: CommandContext, state: CreateState): Promise<number> {
  const { io, log } = ctx;
  const builder = state.builder!;
  const driver = state.driver!;
  for (const w of driver.warnings) log.warn(w);
  if (ctx.args.exec) {
    // The build's registries get the credentials we know, for exactly the hosts BuildKit asks;
    // and before it runs, every image it pulls is looked up on the mirrors as BuildKit will.
    state.auth ??= await makeRegistryAuth(ctx, state.loaded!.config);
    if (driver.driver !== 'docker' && driver.registryImages.length) {
      const { preflightBuild } = await import('../builder/preflight.js');
      await preflightBuild(state.loaded!.config, driver.registryImages, { env: io.env, secrets: ctx.secrets, log, auth: state.auth, signal: io.signal });
    }
  }
  // Local-only images the build needs, handed to the container builder as OCI layouts. In prefix
  // mode they live only as long as the command; for plain create they stay with the builder's
  // files (removed by rm) so the printed --build-context flags keep working.
  const bridge = driver.bridges.length || ctx.args.exec ? await import('../builder/bridge.js') : undefined;
  const bridged = bridge?.bridgesFor(driver, io.env, builder, ctx.args.exec ? String(process.pid) : undefined);
  const written = bridged ? await bridge!.writeBridgedContexts(state.runner!, bridged, log) : undefined;
  if (ctx.args.exec) {
    for (const step of driver.load) log.info(`adding ${step.args.join(' ')}: ${step.reason}`);
    for (const note of driver.loadNotes) log.info(`not loaded: ${note}`);
    const cache = driver.request ? await (await import('../builder/build-cache.js')).prefixBuildCache(ctx, state) : undefined;
    let code = 1;
    let hold: { release(): Promise<void> } | undefined;
    try {
      // The cache registry's host gets the credentials we know too (e.g. a buildCache.ref elsewhere).
      for (const c of cache?.targets ?? []) for (const flag of [...c.from, ...c.to]) {
        const ref = /(?:^|,)ref=([^,]+)/.exec(flag)?.[1];
        if (ref && /(?:^|,)type=registry(?:,|$)/.test(flag)) state.auth!.addHost(ref);
      }
      const authEnv = await state.auth!.childEnv();
      hold = await holdForBuild(ctx, state);
      code = await runPrefixed(bridge!.prefixedCommand(ctx.args.exec, driver, builder, bridged, cache), builder, io, authEnv);
      return code;
    } finally {
      // After the build, at once: the hold goes, the bridged contexts go, the cache report is read.
      const after = await Promise.allSettled([hold?.release(), written?.remove(), cache?.finish(code)]);
      const failed = after.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }
  if (ctx.args.json) {
    ctx.result(
      JSON.stringify({
        builder,
        driver: driver.driver,
        reasons: driver.reasons,
        warnings: driver.warnings,
        image: state.pin?.reference ?? null,
        action: state.result?.decision.action ?? 'use',
        buildContexts: bridged?.flags ?? [],
      }),
    );
  } else {
    ctx.result(builder);
    if (bridged) log.info(`build with: ${bridged.flags.join(' ')}`);
  }
  return 0;
}


/**
 * A prefixed build on a builder whose container lives on this daemon holds it in the daemon
 * (src/docker/leases.ts) for as long as the command runs: a run of another configuration that
 * would remove the builder waits for it, and one already between its drain check and its removal
 * is waited for first — the build finishes on the old builder or starts on the new one.
 */
async function holdForBuild(ctx: CommandContext, state: CreateState): Promise<{ release(): Promise<void> } | undefined> {
  const config = state.loaded!.config;
  if (state.driver!.driver !== 'docker-container' || config.builder.endpoint) return undefined;
  const { acquireHold, lockLeaseMs, LeaseUnavailableError, LEASE_WAIT_MARGIN_MS } = await import('../docker/leases.js');
  // Long enough for the lock of a killed run to go stale.
  const waitMs = lockLeaseMs(config.timeouts) + LEASE_WAIT_MARGIN_MS;
  try {
    return await acquireHold(state.runner!, state.builder!, { log: ctx.log, timeoutMs: waitMs, signal: ctx.io.signal });
  } catch (error) {
    if (!(error instanceof LeaseUnavailableError)) throw error;
    ctx.log.warn(`${error.message}; the build runs without holding builder ${state.builder}`);
    return undefined;
  }
}
