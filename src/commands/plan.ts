// `plan`: the create pipeline without its effects. It asks docker and the registries (read-only)
// and shows the config source, the resolved image, the driver decision with its reasons, the
// buildkitd.toml, the exact buildx argv, and whether the builder would be reused or recreated.
// With `-- <command…>` it also shows what prefix mode would run: the bridged local images under
// their --build-context names, the rewritten command and what was added to it (--load, a bake's
// --set) with why; no layout is written, nothing runs.
import type { CommandContext } from '../context.js';
import { readRecord } from '../builder/bring-up.js';
import { decideConverge, type ConvergeAction } from '../builder/converge.js';
import { decideDriver, type DriverChoice } from '../builder/driver.js';
import { namedConfig } from '../builder/name.js';
import { withProxyDriverOpts } from '../builder/proxy.js';
import {
  appendArgsFor,
  builderSpec,
  checkPinForMirrors,
  createArgsFor,
  describeSource,
  gatherFacts,
  makeRunner,
  pinFromLock,
  renderConfigFor,
  resolvePin,
  versionOfTag,
  type EnginePin,
} from '../builder/pipeline.js';
import { inspectBuilder } from '../docker/buildx.js';
import { applicableLock } from '../resolve/index.js';
import { NoRegistryError } from '../errors.js';
import type { PreflightImage } from '../builder/preflight.js';

export async function run(ctx: CommandContext): Promise<number> {
  const raw = await ctx.loadConfig();
  const loaded = { ...raw, config: (await namedConfig(await withProxyDriverOpts(raw.config, ctx.io.env))).config };
  const { config } = loaded;
  const runner = makeRunner(ctx);
  const facts = await gatherFacts(ctx, runner, { createContext: false });
  const driver = await decideDriver(ctx, config, runner);
  let pin: EnginePin | undefined;
  let toml = { text: '', sha: '' };
  let argv: string[] = [];
  let appendArgv: string[][] = [];
  let converge: ConvergeAction | undefined;
  if (driver.driver !== 'docker') {
    if (driver.driver !== 'remote') {
      const lock = await applicableLock(config, ctx.log);
      // plan asks the registries even with a lock, so it shows the candidate that would serve now.
      // With no registry reachable, the lock still says what create would use; a registry serving
      // another digest for the locked tag is an error here as in create (exit 4).
      pin = lock
        ? await resolvePin(ctx, config, lock, facts.daemon.platform).catch((error: unknown) => {
            if (!(error instanceof NoRegistryError)) throw error;
            ctx.log.warn(`${error.message}; showing the locked image`);
            return pinFromLock(lock, facts.daemon.platform);
          })
        : await resolvePin(ctx, config, undefined, facts.daemon.platform);
      checkPinForMirrors(config, pin);
      toml = await renderConfigFor(config);
    }
    const spec = builderSpec(config, driver.driver, pin?.reference ?? '', pin?.digest ?? '', toml.sha, facts);
    argv = createArgsFor(spec, facts.buildx.version, ctx.io.env, config.timeouts);
    appendArgv = appendArgsFor(spec, facts.buildx.version, ctx.io.env);
    converge = decideConverge(spec, await inspectBuilder(runner, spec.name), await readRecord(ctx.io.env, spec.name));
  }
  // The build's images as BuildKit will find them on the mirrors (exit 3 under upstream: false).
  let images: PreflightImage[] = [];
  if (ctx.args.exec && driver.driver !== 'docker' && driver.registryImages.length) {
    const [{ preflightBuild }, { makeRegistryAuth }] = await Promise.all([import('../builder/preflight.js'), import('../builder/pipeline.js')]);
    const auth = await makeRegistryAuth(ctx, config);
    images = await preflightBuild(config, driver.registryImages, { env: ctx.io.env, secrets: ctx.secrets, log: ctx.log, auth, signal: ctx.io.signal });
  }
  const docker = [runner.binary, ...runner.globalArgs];
  const builder = driver.driver === 'docker' ? driver.contextBuilder : config.builder.name;
  // The layouts create would write and the command prefix mode would run; nothing is written.
  // A prefixed run's layouts go to a directory named after its process id, shown as `<pid>`.
  const bridge = driver.bridges.length || ctx.args.exec ? await import('../builder/bridge.js') : undefined;
  const bridged = bridge?.bridgesFor(driver, ctx.io.env, builder, ctx.args.exec ? '<pid>' : undefined);
  // The build cache flags prefix mode would add, with their reasons (nothing is locked or written).
  const bc = ctx.args.exec && driver.request ? await import('../builder/build-cache.js') : undefined;
  const cache = bc && (await bc.planBuildCache({
    config,
    env: ctx.io.env,
    cwd: ctx.io.cwd,
    request: driver.request,
    driver: driver.driver,
    runner,
    branchFlag: ctx.args.buildCacheBranch,
    buildkitVersion: versionOfTag(pin?.tag ?? ''),
    runId: '<pid>',
    ...bc.bakeCacheInput(driver.bake, ctx.io.cwd),
  }));
  const cacheArgs = bc?.addsCacheFlags(cache)
    ? { targets: cache.targets, ...(driver.request?.metadataFile === undefined ? { metadataFile: bc.metadataFileFor(ctx.io.env, builder, '<pid>') } : {}) }
    : undefined;
  const commandArgv = ctx.args.exec ? bridge!.prefixedCommand(ctx.args.exec, driver, builder, bridged, cacheArgs) : undefined;
  const out = {
    configSource: describeSource(loaded),
    docker: { server: facts.daemon.serverVersion, platform: facts.daemon.platform, buildx: facts.buildx.version, tlsContext: facts.tlsContext ?? null },
    image: pin ? { reference: pin.reference, tag: pin.tag, digest: pin.digest, source: pin.source, locked: Boolean(pin.lock) } : null,
    driver: { driver: driver.driver, reasons: driver.reasons, warnings: driver.warnings, bridges: bridged?.layouts ?? [] },
    builder,
    buildkitdToml: toml.text || null,
    argv: argv.length ? [...docker, ...argv] : null,
    appendArgv: appendArgv.map((a) => [...docker, ...a]),
    action: converge ? { action: converge.action, reasons: converge.reasons } : { action: 'use', reasons: [`the docker driver builder of context ${driver.contextBuilder}`] },
    command: commandArgv
      ? {
          argv: commandArgv,
          env: { BUILDX_BUILDER: builder },
          // What prefix mode adds so the result lands where docker build puts it, and why not where it does not.
          added: driver.load.map((step) => ({ args: step.args, reason: step.reason, ...(step.bakeTarget !== undefined ? { bakeTarget: step.bakeTarget } : {}) })),
          notLoaded: driver.loadNotes,
        }
      : null,
    images,
    buildCache: cache
      ? {
          type: cache.choice.type,
          reasons: cache.reasons,
          targets: cache.targets.map((c) => ({ target: c.target, key: c.key, cacheFrom: c.from, cacheTo: c.to, reads: c.reads, writes: c.writes ?? null })),
        }
      : null,
  };
  if (ctx.args.json) {
    ctx.result(JSON.stringify(out, null, 2));
    return 0;
  }
  const lines = [
    `config:   ${out.configSource}`,
    `docker:   ${out.docker.server} (${out.docker.platform}), buildx ${out.docker.buildx}${out.docker.tlsContext ? `, TLS context ${out.docker.tlsContext}` : ''}`,
    `image:    ${pin ? `${pin.reference} (from ${pin.source}${pin.lock ? ', locked' : ''})` : 'none (the docker driver uses the daemon’s BuildKit)'}`,
    `driver:   ${driver.driver}`,
    ...driver.reasons.map((r) => `          - ${r}`),
    ...driver.warnings.map((w) => `  warning: ${w}`),
    ...out.driver.bridges.map((b) => `          - local image ${b.ref} → ${bridgeFlag(driver, b)}`),
    `builder:  ${out.builder} — would ${out.action.action}: ${out.action.reasons.join('; ')}`,
    ...(out.argv ? [`command:  ${out.argv.map(quote).join(' ')}`] : []),
    ...out.appendArgv.map((a) => `          ${a.map(quote).join(' ')}`),
    ...(cache
      ? [
          `cache:    ${cache.choice.type}`,
          ...cache.reasons.map((r) => `          - ${r}`),
          ...cache.targets.flatMap((c) => {
            const who = c.target ? `target ${c.target} ` : '';
            return [...c.reads.map((r) => `          - ${who}reads ${r}`), ...(c.writes !== undefined && c.to.length ? [`          - ${who}writes ${c.writes}`] : [])];
          }),
        ]
      : []),
    ...(out.command ? [`runs:     BUILDX_BUILDER=${quote(builder)} ${out.command.argv.map(quote).join(' ')}`] : []),
    ...(out.command?.added ?? []).map((a) => `          - added ${a.args.map(quote).join(' ')}: ${a.reason}`),
    ...(out.command?.notLoaded ?? []).map((n) => `          - not loaded: ${n}`),
    ...images.map((i) => `pulls:    ${i.ref} ← ${i.servedBy ?? `${i.ref.split('/')[0]} itself (no mirror serves it)`}`),
    ...(toml.text ? ['buildkitd.toml:', ...toml.text.trimEnd().split('\n').map((l) => `  ${l}`)] : []),
  ];
  ctx.result(lines.join('\n'));
  return 0;
}

/** How a bridged image reaches the build: `--build-context`, or a bake's `--set <target>.contexts.…` for each target that needs it. */
function bridgeFlag(driver: Pick<DriverChoice, 'bake'>, b: { contextName: string; context: string }): string {
  if (!driver.bake) return `--build-context ${b.contextName}=${b.context}`;
  const targets = Object.entries(driver.bake.bridgedContexts).filter(([, names]) => names.includes(b.contextName)).map(([t]) => t);
  return targets.map((t) => `--set ${t}.contexts.${b.contextName}=${b.context}`).join(' ');
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
