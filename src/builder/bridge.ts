// Local-only images for a container builder: each is exported from the daemon as an OCI image
// layout and handed to the build as `--build-context <name>=oci-layout://<dir>:<tag>`, the name
// being what BuildKit's Dockerfile frontend looks the image up by (frontend/dockerui NamedContext).
// Where each layout goes and the command that uses it are decided first (pure, shown by `plan`);
// writing the layouts is the separate effect create runs.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../io.js';
import { checkPlatforms, exportOciLayout, layoutTagFor, ociLayoutContext } from '../docker/oci-layout.js';
import type { DockerRunner } from '../docker/runner.js';
import { bakeAllowArgs, bakeContextArgs, rewriteBuildCommand } from '../driver/build-args.js';
import type { BridgePlan } from '../driver/build-needs.js';
import type { TargetCacheFlags } from '../driver/build-cache.js';
import type { DriverChoice } from './driver.js';
import { builderDir } from '../state.js';

export interface BridgeLayout extends BridgePlan {
  /** `oci-layout://dir:tag` */
  context: string;
  tag: string;
}

export interface BridgedContexts {
  /** The directory every layout of this run is written to. */
  dir: string;
  layouts: BridgeLayout[];
  /** `--build-context` name → `oci-layout://dir:tag` */
  contexts: Record<string, string>;
  /** The same as `--build-context` flags, for printing. */
  flags: string[];
}

/**
 * Where the layouts live: with the builder's files for plain create (so the printed flags keep
 * working until rm), or in a per-run directory in prefix mode (removed after the command).
 */
export function bridgeDir(env: Record<string, string | undefined>, builder: string, prefixRun: string | undefined): string {
  return join(builderDir(env, builder), prefixRun === undefined ? 'contexts' : `contexts-${prefixRun}`);
}

/** The layouts and `--build-context` values for the bridged images, without writing anything. */
export function planBridgedContexts(bridges: BridgePlan[], dir: string): BridgedContexts {
  const layouts = bridges.map((b) => {
    const tag = layoutTagFor(b.ref);
    return { ...b, tag, context: ociLayoutContext(dir, tag) };
  });
  const contexts = Object.fromEntries(layouts.map((l) => [l.contextName, l.context]));
  return { dir, layouts, contexts, flags: layouts.map((l) => `--build-context=${l.contextName}=${l.context}`) };
}

/** This run's bridge plan; none when the docker driver builds (it sees the local images itself). */
export function bridgesFor(
  driver: Pick<DriverChoice, 'driver' | 'bridges'>,
  env: Record<string, string | undefined>,
  builder: string,
  prefixRun: string | undefined,
): BridgedContexts | undefined {
  return driver.driver !== 'docker' && driver.bridges.length > 0 ? planBridgedContexts(driver.bridges, bridgeDir(env, builder, prefixRun)) : undefined;
}

/**
 * The command prefix mode runs: a build command gets `--builder`, the bridged contexts (a bake's
 * per target, `--set <target>.contexts.<name>=…`), the build-cache flags (with the metadata file
 * the cache report reads) and the result loading; any other runs as given.
 */
export function prefixedCommand(
  exec: string[],
  driver: Pick<DriverChoice, 'request' | 'bake' | 'load'>,
  builder: string,
  bridged: BridgedContexts | undefined,
  cache: { targets: TargetCacheFlags[]; metadataFile?: string | undefined } = { targets: [] },
): string[] {
  if (!driver.request) return exec;
  const contexts = bridged?.contexts ?? {};
  const perTarget: Record<string, Record<string, string>> = {};
  for (const [target, names] of Object.entries(driver.bake?.bridgedContexts ?? {})) {
    const named = Object.fromEntries(names.flatMap((n) => (contexts[n] !== undefined ? [[n, contexts[n]]] : [])));
    if (Object.keys(named).length) perTarget[target] = named;
  }
  const bake = driver.request.kind === 'bake';
  const allow = bake && bridged && Object.keys(perTarget).length ? bakeAllowArgs([bridged.dir], driver.bake?.buildxVersion ?? '') : [];
  return rewriteBuildCommand(exec, {
    builder,
    addBuildContexts: bake ? {} : contexts,
    cache: cache.targets,
    ...(cache.metadataFile !== undefined ? { metadataFile: cache.metadataFile } : {}),
    add: [...allow, ...bakeContextArgs(perTarget), ...driver.load.flatMap((step) => step.args)],
  });
}

/** Writes the planned layouts; returns how to remove them (prefix mode, after the command). */
export async function writeBridgedContexts(runner: DockerRunner, planned: BridgedContexts, log: Logger): Promise<{ remove(): Promise<void> }> {
  await mkdir(planned.dir, { recursive: true });
  const remove = (): Promise<void> => rm(planned.dir, { recursive: true, force: true });
  try {
    for (const layout of planned.layouts) {
      log.info(`exporting local image ${layout.ref} as an OCI layout for the builder`);
      const written = await exportOciLayout(runner, layout.ref, planned.dir, layout.tag, layout.platforms);
      // A missing platform fails here, before the build starts, naming image and platform.
      if (layout.platforms.length) checkPlatforms(written.platforms, layout.platforms, layout.ref);
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { remove };
}
