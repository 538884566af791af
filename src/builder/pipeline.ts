// The create pipeline, split so `plan` is the same pipeline without its last step:
// config → facts (docker, buildx, DinD, lockfile, registry answers) → pure decisions (engine
// image, driver, buildkitd.toml, argv, converge) → effects (only in create).
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../context.js';
import type { Config } from '../config/schema.js';
import type { LoadedConfig } from '../config/load.js';
import { checkPathMirrors, renderBuildkitdConfig } from '../buildkitd/render.js';
import { buildAppendNodeArgs, buildCreateArgs } from '../docker/buildx-args.js';
import { detectBuildx, type BuildxFacts } from '../docker/buildx.js';
import { endpointKey, ensureTlsContext, inspectDaemon, tlsContextName, tlsFromEnvironment, type DaemonFacts } from '../docker/daemon.js';
import type { DockerRunner } from '../docker/runner.js';
import type { RegistryAuth } from '../docker/registry-auth.js';
import { createDockerRunner } from '../docker/runner.js';
import { withEngineApi } from '../docker/engine/index.js';
import type { Lockfile } from '../resolve/lockfile.js';
import type { Resolution } from '../resolve/probe.js';
import { sha256 } from '../state.js';
import { configFilePath } from './bring-up.js';
import { withMarker } from './activity.js';
import type { BuilderSpec, ContainerDriver } from './converge.js';

export interface Facts {
  daemon: DaemonFacts;
  buildx: BuildxFacts;
  /** Docker context made (or to be made) for TLS-from-environment DinD. */
  tlsContext: string | undefined;
  /** Identifies the docker endpoint, for the per-daemon lock. */
  endpointKey: string;
}

/**
 * The run's registry credentials for docker and BuildKit (src/docker/registry-auth.ts): one
 * credential store, the same sources the resolve reads, for every host BuildKit will ask.
 */
export async function makeRegistryAuth(ctx: CommandContext, config: Config, dir?: string): Promise<RegistryAuth> {
  const [{ createCredentialStore }, { createRegistryAuth, buildCredentialHosts }] = await Promise.all([import('../registry/credentials.js'), import('../docker/registry-auth.js')]);
  const credentials = createCredentialStore({ env: ctx.io.env, secrets: ctx.secrets });
  return createRegistryAuth({ env: ctx.io.env, credentials, hosts: buildCredentialHosts(config, ctx.io.env), ...(dir ? { dir } : {}) });
}

export function makeRunner(ctx: CommandContext): DockerRunner {
  const onCommand = (c: string): void => ctx.log.debug(`$ ${ctx.secrets.redact(c)}`);
  return withEngineApi(createDockerRunner({ env: ctx.io.env, onCommand }), onCommand);
}

export async function gatherFacts(ctx: CommandContext, runner: DockerRunner, opts: { createContext: boolean }): Promise<Facts> {
  const early = startFacts(ctx, runner, opts);
  const [facts, buildx] = await Promise.all([early.facts, early.buildx]);
  return { ...facts, buildx };
}

/**
 * The facts, each asked once and all at once; the buildx version (a plugin start, the slowest)
 * comes as its own promise so the engine image can be made local while it is on its way.
 */
export function startFacts(ctx: CommandContext, runner: DockerRunner, opts: { createContext: boolean }): { facts: Promise<Omit<Facts, 'buildx'>>; buildx: Promise<BuildxFacts> } {
  const signal = ctx.io.signal;
  const buildx = detectBuildx(runner, signal);
  buildx.catch(() => undefined); // awaited later; not an unhandled rejection meanwhile
  const facts = (async () => {
    const [daemon, tls] = await Promise.all([inspectDaemon(runner, signal), tlsFromEnvironment(ctx.io.env)]);
    let tlsContext: string | undefined;
    if (tls) tlsContext = opts.createContext ? await ensureTlsContext(runner, tls) : tlsContextName(tls);
    return { daemon, tlsContext, endpointKey: endpointKey(ctx.io.env) };
  })();
  return { facts, buildx };
}

/** The engine image pinned for this run, from the lockfile or from the registries. */
export interface EnginePin {
  /** `host[/path]/repository:tag@digest` */
  reference: string;
  /** `host[/path]/repository:tag` */
  repoTag: string;
  tag: string;
  digest: string;
  /** Label of the registry it came from. */
  source: string;
  /** Config digest of this daemon's platform, when the lock knows it (the classic store's image ID). */
  expectedImageId: string | undefined;
  /** Manifest digest of this daemon's platform, when the lock knows it (a containerd-store image ID). */
  platformManifest: string | undefined;
  /** The daemon's platform. */
  platform: string;
  lock: Lockfile | undefined;
  /** Present when registries were asked. */
  resolution: Resolution | undefined;
}

/** What the lock says identifies the image on `platform`: its config and manifest digests. */
function identityFor(lock: Lockfile | undefined, platform: string): Pick<EnginePin, 'expectedImageId' | 'platformManifest' | 'platform'> {
  const pinned = lock?.platforms?.[platform];
  // A single-platform tag (lock.config, no index): its own digest is the manifest.
  return { expectedImageId: pinned?.config ?? lock?.config, platformManifest: pinned?.manifest ?? (lock?.config ? lock.digest : undefined), platform };
}

export function pinFromResolution(resolution: Resolution, lock: Lockfile | undefined, platform: string): EnginePin {
  return {
    reference: resolution.reference,
    repoTag: resolution.reference.replace(/@sha256:[a-f0-9]+$/, ''),
    tag: resolution.tag,
    digest: resolution.digest,
    source: resolution.source,
    ...identityFor(lock, platform),
    lock,
    resolution,
  };
}

/** A fresh lockfile pins the image without asking any registry. */
export function pinFromLock(lock: Lockfile, platform: string): EnginePin {
  const repoTag = `${lock.source}:${lock.tag}`;
  return {
    reference: `${repoTag}@${lock.digest}`,
    repoTag,
    tag: lock.tag,
    digest: lock.digest,
    source: lock.source,
    ...identityFor(lock, platform),
    lock,
    resolution: undefined,
  };
}

/** Resolves through the registries (honouring the lock's digest when there is one). */
export async function resolvePin(ctx: CommandContext, config: Config, lock: Lockfile | undefined, platform: string): Promise<EnginePin> {
  const { resolveFromConfig } = await import('../resolve/index.js');
  const resolution = await resolveFromConfig(
    { env: ctx.io.env, secrets: ctx.secrets, log: ctx.log, signal: ctx.io.signal },
    config,
    lock ? { tag: lock.tag, digest: lock.digest } : undefined,
  );
  return pinFromResolution(resolution, lock, platform);
}

/** The pinned BuildKit must understand the mirrors we write for it (path mirrors: >= v0.12). Exit 2. */
export function checkPinForMirrors(config: Config, pin: EnginePin): void {
  checkPathMirrors(config.mirrors, versionOfTag(pin.tag));
}

/** `v0.18.2` from `v0.18.2` / `v0.18.2-rootless`; undefined for tags that name no version. */
export function versionOfTag(tag: string): string | undefined {
  const m = /^(v\d+\.\d+\.\d+(?:-(?:rc|beta|alpha)\.?\d+)?)(?:-rootless)?$/.exec(tag);
  return m?.[1];
}

export interface BuildkitdConfigText {
  text: string;
  sha: string;
}

export async function renderConfigFor(config: Config): Promise<BuildkitdConfigText> {
  const base = config.buildkitd.config ? { text: await readFile(config.buildkitd.config, 'utf8'), file: config.buildkitd.config } : undefined;
  const text = renderBuildkitdConfig({ mirrors: config.mirrors, registries: config.registries, ...(base ? { base } : {}) });
  return { text, sha: text ? sha256(text) : '' };
}

export function builderSpec(config: Config, driver: ContainerDriver, image: string, digest: string, configSha: string, facts: Pick<Facts, 'tlsContext' | 'endpointKey'>): BuilderSpec {
  return {
    name: config.builder.name,
    driver,
    daemon: facts.endpointKey,
    endpoint: config.builder.endpoint || (driver === 'docker-container' ? (facts.tlsContext ?? '') : ''),
    image: driver === 'remote' ? '' : image,
    digest: driver === 'remote' ? '' : digest,
    driverOpts: config.builder.driverOpts,
    buildkitdFlags: driver === 'remote' ? [] : config.buildkitd.flags,
    configSha: driver === 'remote' ? '' : configSha,
    platforms: config.builder.platforms,
    nodes: config.builder.nodes,
  };
}

export function createArgsFor(spec: BuilderSpec, buildxVersion: string, env: Record<string, string | undefined>, timeouts: Config['timeouts']): string[] {
  return buildCreateArgs({
    buildxVersion,
    name: spec.name,
    driver: spec.driver,
    ...(spec.endpoint ? { endpoint: spec.endpoint } : {}),
    image: spec.image,
    // Marked as made by buildx-bootstrap (rm --stale, doctor); not part of the spec, so no drift.
    driverOpts: withMarker(spec.driver, spec.driverOpts),
    buildkitdFlags: spec.buildkitdFlags,
    ...(spec.configSha ? { configFile: configFilePath(env, spec.name) } : {}),
    platforms: spec.platforms,
    use: true,
    // One plugin call creates and boots (buildx >= 0.10, MIN_BUILDX); no `inspect --bootstrap` after.
    bootstrap: true,
    timeoutSeconds: Math.ceil(timeouts.bootstrap / 1000),
  });
}

/** One `buildx create --append` argv per extra node (`builder.nodes`). */
export function appendArgsFor(spec: BuilderSpec, buildxVersion: string, env: Record<string, string | undefined>): string[][] {
  return spec.nodes.map((node) =>
    buildAppendNodeArgs({
      buildxVersion,
      name: spec.name,
      driver: spec.driver,
      ...(node.name ? { node: node.name } : {}),
      endpoint: node.endpoint,
      image: spec.image,
      driverOpts: withMarker(spec.driver, { ...spec.driverOpts, ...node.driverOpts }),
      buildkitdFlags: spec.buildkitdFlags,
      ...(spec.configSha ? { configFile: configFilePath(env, spec.name) } : {}),
      platforms: node.platforms ?? [],
    }),
  );
}

export function describeSource(loaded: LoadedConfig): string {
  return loaded.file ?? 'defaults (no config file found)';
}
