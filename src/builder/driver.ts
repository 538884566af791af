// Glue between the create pipeline and the driver decision: what the build needs (from the
// prefixed buildx command or the `build:` config), what the local image store has, and the pure
// choice in src/driver/. Bridging local-only images into a container builder (OCI layouts) is an
// effect and happens in create, from the plan made here.
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { CommandContext } from '../context.js';
import { defaultConfig, type Config } from '../config/schema.js';
import { currentContextName, daemonImageStore, daemonRegistryMirrors } from '../docker/daemon.js';
import type { DockerRunner } from '../docker/runner.js';
import type { BuildRequest, BuildResultSpec, LoadStep } from '../driver/build-args.js';
import type { BakeTarget } from '../driver/bake-targets.js';
import type { BridgePlan } from '../driver/build-needs.js';
import type { Driver } from '../driver/choose-driver.js';
import type { DockerfileNeeds } from '../dockerfile/dockerfile.js';
import { UsageError } from '../errors.js';

export type { Driver } from '../driver/choose-driver.js';

export interface DriverChoice {
  driver: Driver;
  reasons: string[];
  warnings: string[];
  /** The docker driver's builder: named after the docker context (`default`). */
  contextBuilder: string;
  /** Local-only images to hand a container builder as `--build-context name=oci-layout://…`. */
  bridges: BridgePlan[];
  /** The analysed build (prefix mode or `build:`), when there is one. */
  request: BuildRequest | undefined;
  /** A bake's targets as buildx evaluated them (`bake --print`), with the bridged context names each needs. */
  bake?: { targets: BakeTarget[]; bridgedContexts: Record<string, string[]>; buildxVersion?: string };
  /** Arguments prefix mode adds so the result lands where `docker build` puts it, each with why. */
  load: LoadStep[];
  /** Results left where the command puts them although they would have been loaded, and why. */
  loadNotes: string[];
  /**
   * Images the build's BuildKit will pull from a registry (through the mirrors): every image the
   * Dockerfile names, but local-only and bridged ones (and, for the docker driver, ones the daemon
   * has). What the pre-flight checks (src/resolve/serving.ts).
   */
  registryImages: string[];
}

/** What only a builder we create can honour (the docker driver takes no BuildKit version or config). */
export function buildkitConfigReasons(config: Config): string[] {
  const reasons: string[] = [];
  const defaults = defaultConfig();
  // Name what the user set: an image alone keeps the default version, which they did not choose.
  if (config.buildkit.version !== defaults.buildkit.version) reasons.push(`buildkit.version pins BuildKit ${config.buildkit.version}`);
  if (config.buildkit.image !== defaults.buildkit.image) reasons.push(`buildkit.image is ${config.buildkit.image}`);
  if (config.buildkitd.config) reasons.push('buildkitd.config sets a BuildKit daemon config');
  if (config.buildkitd.flags.length) reasons.push('buildkitd.flags sets BuildKit daemon flags');
  return reasons;
}

/** One Dockerfile to read: a build command's, or one bake target's. */
interface Unit {
  request: BuildRequest;
  /** `dockerfile-inline` of a bake target. */
  inline?: string;
  /** The bake target, for messages. */
  bakeTarget?: string;
}

async function analyse(ctx: CommandContext, unit: Unit): Promise<DockerfileNeeds | undefined> {
  const [{ dockerfileToRead }, { analyzeDockerfile }] = await Promise.all([import('../driver/build-needs.js'), import('../dockerfile/dockerfile.js')]);
  const { request } = unit;
  const options = {
    buildArgs: request.buildArgs,
    ...(request.target ? { target: request.target } : {}),
    platforms: request.platforms,
    buildContexts: request.buildContexts,
  };
  const of = unit.bakeTarget === undefined ? '' : ` of bake target ${unit.bakeTarget}`;
  if (unit.inline !== undefined) return analyzeDockerfile(unit.inline, { file: `dockerfile-inline${of}`, ...options });
  const source = dockerfileToRead(request);
  if ('unreadable' in source) {
    ctx.log.info(`not analysing the build${of}: ${source.unreadable}`);
    return undefined;
  }
  const file = resolvePath(ctx.io.cwd, source.path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the Dockerfile${of} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: unit.bakeTarget === undefined ? 'check the -f/--file path and the build context of the command after --' : 'check the target\'s dockerfile and context in the bake file',
    });
  }
  return analyzeDockerfile(text, { file, ...options });
}

/** A bake's targets from `docker buildx bake --print`; undefined (with the reason logged) when they cannot be read. */
async function readBake(ctx: CommandContext, exec: string[]): Promise<BakeTarget[] | undefined> {
  const [{ bakePrintArgs, bakeUnreadable }, { readBakeTargets }, { printBake }] = await Promise.all([
    import('../driver/build-args.js'),
    import('../driver/bake-targets.js'),
    import('../docker/bake-print.js'),
  ]);
  const unreadable = bakeUnreadable(exec);
  if (unreadable) {
    ctx.log.info(`not analysing the bake: ${unreadable}; only the builder is set`);
    return undefined;
  }
  const printed = await printBake(bakePrintArgs(exec), ctx.io);
  if ('error' in printed) {
    // The bake itself will fail the same way, with buildx's own message.
    ctx.log.warn(`not analysing the bake: ${printed.error}; only the builder is set`);
    return undefined;
  }
  try {
    return readBakeTargets(printed.json);
  } catch (error) {
    ctx.log.warn(`not analysing the bake: ${(error as Error).message}; only the builder is set`);
    return undefined;
  }
}

/** Where loading is not ours to add: the user turned it off, or buildx loads by itself. */
function loadOff(ctx: CommandContext, config: Config): string | undefined {
  if (ctx.args.noLoad) return '--no-load';
  const opt = config.builder.driverOpts['default-load']?.trim().toLowerCase();
  if (opt === undefined) return undefined;
  return /^(false|0|f)$/.test(opt) ? 'builder.driverOpts.default-load is false' : 'builder.driverOpts.default-load is set: buildx loads it itself';
}

/** Which bridged images each bake target needs (by context name), and the buildx version when the flags for them depend on it. */
async function bakeBridges(
  runner: DockerRunner,
  driver: Driver,
  targets: BakeTarget[],
  dockerfiles: (DockerfileNeeds | undefined)[],
  bridges: BridgePlan[],
): Promise<NonNullable<DriverChoice['bake']>> {
  const bridged = new Map(bridges.map((b) => [b.ref, b.contextName]));
  const bridgedContexts: Record<string, string[]> = {};
  targets.forEach((t, i) => {
    const names = [...new Set((dockerfiles[i]?.images ?? []).flatMap((img) => (bridged.has(img.ref) ? [bridged.get(img.ref)!] : [])))];
    if (names.length) bridgedContexts[t.name] = names;
  });
  const bake: NonNullable<DriverChoice['bake']> = { targets, bridgedContexts };
  // Which bake flags the bridged layouts need depends on the buildx version (bakeAllowArgs).
  if (Object.keys(bridgedContexts).length && driver !== 'docker') bake.buildxVersion = (await (await import('../docker/buildx.js')).detectBuildx(runner)).version;
  return bake;
}

/** The result loading for these results; the daemon's image store is asked only when a manifest list would be loaded. */
async function planLoad(ctx: CommandContext, config: Config, runner: DockerRunner, driver: Driver, results: BuildResultSpec[]): Promise<Pick<DriverChoice, 'load' | 'loadNotes'>> {
  const { loadNeedsImageStore, resultLoads } = await import('../driver/build-args.js');
  const off = loadOff(ctx, config);
  const imageStore = loadNeedsImageStore(results, { ...(off !== undefined ? { off } : {}) }) ? await daemonImageStore(runner) : undefined;
  const loads = resultLoads(results, { driver, ...(off !== undefined ? { off } : {}), ...(imageStore ? { imageStore } : {}) });
  return { load: loads.steps, loadNotes: loads.notes };
}

export async function decideDriver(ctx: CommandContext, config: Config, runner: DockerRunner): Promise<DriverChoice> {
  const contextBuilder = await currentContextName(ctx.io.env);
  // The analysis modules load only when there is a build to analyse (start-up cost).
  const request = ctx.args.exec
    ? (await import('../driver/build-args.js')).parseBuildCommand(ctx.args.exec, ctx.io.env)
    : config.build
      ? (await import('../driver/build-needs.js')).buildRequestFromConfig(config.build)
      : undefined;
  const setting = config.builder.driver;
  if (!request) {
    const driver: Driver = setting === 'auto' ? 'docker-container' : setting;
    const reasons =
      setting === 'auto'
        ? ['no build to analyse: a docker-container builder runs the pinned BuildKit with the generated buildkitd.toml']
        : [`builder.driver is ${setting}`];
    return { driver, reasons, warnings: [], contextBuilder, bridges: [], request, load: [], loadNotes: [], registryImages: [] };
  }
  const [{ buildNeedsFrom, planBridges, mergeNeeds, mergeImages }, { chooseDriver, dockerDriverMirrorWarning }, { inspectLocalImages }] = await Promise.all([
    import('../driver/build-needs.js'),
    import('../driver/choose-driver.js'),
    import('../docker/images.js'),
  ]);
  // A bake in prefix mode: every target buildx would build, each with its own Dockerfile.
  const targets = request.kind === 'bake' && ctx.args.exec ? await readBake(ctx, ctx.args.exec) : undefined;
  const { bakeTargetRequest, bakeTargetResult } = targets ? await import('../driver/bake-targets.js') : { bakeTargetRequest: undefined, bakeTargetResult: undefined };
  const units: Unit[] = targets
    ? targets.map((t) => ({ request: bakeTargetRequest!(t), bakeTarget: t.name, ...(t.dockerfileInline !== undefined ? { inline: t.dockerfileInline } : {}) }))
    : [{ request }];
  const dockerfiles: (DockerfileNeeds | undefined)[] = [];
  for (const unit of units) dockerfiles.push(await analyse(ctx, unit));
  const images = await inspectLocalImages(runner, dockerfiles.flatMap((d) => (d?.images ?? []).map((i) => i.ref)));
  const storeWarnings = await (await import('./local-only.js')).settleLocalOnly(ctx, config, runner, images);
  const configReasons = buildkitConfigReasons(config);
  const needs = mergeNeeds(
    units.map((u, i) => {
      const dockerfile = dockerfiles[i];
      return buildNeedsFrom({ request: u.request, ...(dockerfile ? { dockerfile } : {}), facts: images, buildkitConfigReasons: configReasons });
    }),
  );
  // Prefix mode adds a cross-job cache; exporting it (registry, local) is what a container builder does.
  if (ctx.args.exec) {
    const [{ cacheWanted, bakeCacheInput }, { exportsCache }] = await Promise.all([import('./build-cache.js'), import('../driver/build-cache.js')]);
    const wanted = cacheWanted(config, ctx.io.env, request, targets ? bakeCacheInput({ targets }, ctx.io.cwd).bakeTargets : undefined);
    if (wanted && exportsCache(wanted.type)) needs.buildCache = `the build cache is exported across jobs (${wanted.reason}), which needs a container builder`;
  }
  const decision = chooseDriver({ setting, needs });
  const warnings = [...request.warnings, ...storeWarnings, ...decision.warnings];
  if (decision.driver === 'docker' && config.mirrors.length) {
    const warning = dockerDriverMirrorWarning(await daemonRegistryMirrors(runner), config.mirrors, ctx.io.env);
    if (warning) warnings.push(warning);
  }
  const allImages = mergeImages(dockerfiles.filter((d): d is DockerfileNeeds => d !== undefined));
  const bridges = planBridges(decision, allImages);
  const registryImages = [...new Set(allImages.images.map((i) => i.ref))].filter(
    (ref) => !images.get(ref)?.localOnly && !bridges.some((b) => b.ref === ref) && !(decision.driver === 'docker' && images.get(ref)?.present),
  );
  const choice: DriverChoice = { driver: decision.driver, reasons: decision.reasons, warnings, contextBuilder, bridges, request, load: [], loadNotes: [], registryImages };
  if (targets) choice.bake = await bakeBridges(runner, decision.driver, targets, dockerfiles, bridges);
  // Prefix mode with a container builder we give the command: the result lands in the local
  // image store as it would with docker build (issue 18). The user's own --builder is theirs.
  if (ctx.args.exec && decision.driver !== 'docker' && request.builder === undefined && (request.kind === 'build' || targets)) {
    Object.assign(choice, await planLoad(ctx, config, runner, decision.driver, targets ? targets.map((t) => bakeTargetResult!(t)) : [(await import('../driver/build-args.js')).buildResultOf(request)]));
  }
  return choice;
}
