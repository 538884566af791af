// Glue between the create pipeline and the driver decision: what the build needs (from the
// prefixed buildx command or the `build:` config), what the local image store has, and the pure
// choice in src/driver/. Bridging local-only images into a container builder (OCI layouts) is an
// effect and happens in create, from the plan made here.
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { CommandContext } from '../context.js';
import { defaultConfig, type Config } from '../config/schema.js';
import { currentContextName, daemonRegistryMirrors } from '../docker/daemon.js';
import type { DockerRunner } from '../docker/runner.js';
import type { BuildRequest } from '../driver/build-args.js';
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

async function analyse(ctx: CommandContext, request: BuildRequest): Promise<DockerfileNeeds | undefined> {
  const [{ dockerfileToRead }, { analyzeDockerfile }] = await Promise.all([import('../driver/build-needs.js'), import('../dockerfile/dockerfile.js')]);
  const source = dockerfileToRead(request);
  if ('unreadable' in source) {
    ctx.log.info(`not analysing the build: ${source.unreadable}`);
    return undefined;
  }
  const file = resolvePath(ctx.io.cwd, source.path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the Dockerfile ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'check the -f/--file path and the build context of the command after --',
    });
  }
  return analyzeDockerfile(text, {
    file,
    buildArgs: request.buildArgs,
    ...(request.target ? { target: request.target } : {}),
    platforms: request.platforms,
    buildContexts: request.buildContexts,
  });
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
    return { driver, reasons, warnings: [], contextBuilder, bridges: [], request, registryImages: [] };
  }
  const [{ buildNeedsFrom, planBridges }, { chooseDriver, dockerDriverMirrorWarning }, { inspectLocalImages }] = await Promise.all([
    import('../driver/build-needs.js'),
    import('../driver/choose-driver.js'),
    import('../docker/images.js'),
  ]);
  const dockerfile = await analyse(ctx, request);
  const images = await inspectLocalImages(runner, (dockerfile?.images ?? []).map((i) => i.ref));
  const storeWarnings = await (await import('./local-only.js')).settleLocalOnly(ctx, config, runner, images);
  const needs = buildNeedsFrom({ request, ...(dockerfile ? { dockerfile } : {}), facts: images, buildkitConfigReasons: buildkitConfigReasons(config) });
  // Prefix mode adds a cross-job cache; exporting it (registry, local) is what a container builder does.
  if (ctx.args.exec) {
    const [{ cacheWanted }, { exportsCache }] = await Promise.all([import('./build-cache.js'), import('../driver/build-cache.js')]);
    const wanted = cacheWanted(config, ctx.io.env, request);
    if (wanted && exportsCache(wanted.type)) needs.buildCache = `the build cache is exported across jobs (${wanted.reason}), which needs a container builder`;
  }
  const decision = chooseDriver({ setting, needs });
  const warnings = [...request.warnings, ...storeWarnings, ...decision.warnings];
  if (decision.driver === 'docker' && config.mirrors.length) {
    const warning = dockerDriverMirrorWarning(await daemonRegistryMirrors(runner), config.mirrors, ctx.io.env);
    if (warning) warnings.push(warning);
  }
  const bridges = planBridges(decision, dockerfile);
  const registryImages = (dockerfile?.images ?? [])
    .map((i) => i.ref)
    .filter((ref) => !images.get(ref)?.localOnly && !bridges.some((b) => b.ref === ref) && !(decision.driver === 'docker' && images.get(ref)?.present));
  return { driver: decision.driver, reasons: decision.reasons, warnings, contextBuilder, bridges, request, registryImages };
}
