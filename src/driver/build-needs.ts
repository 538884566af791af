// Glue between the pieces of issue 4, kept pure so `plan` can show it: a build described either
// by a prefixed command or by the config's `build:` section → what to analyse → BuildNeeds for
// chooseDriver → which local images to bridge, under which `--build-context` names and tags.
import type { BuildConfig } from '../config/schema.js';
import type { LocalImageFact } from '../docker/images.js';
import { parseCacheSpec, type BuildRequest } from './build-args.js';
import type { BuildNeeds, DriverDecision, ImageFact } from './choose-driver.js';
import { buildContextName, type DockerfileNeeds, type NeededImage } from '../dockerfile/dockerfile.js';
import { splitPlatforms } from '../dockerfile/platform.js';

/** The config's `build:` section as the same shape a prefixed command gives. */
export function buildRequestFromConfig(build: BuildConfig): BuildRequest {
  const contexts: Record<string, string> = {};
  for (const [name, value] of Object.entries(build.buildContexts)) {
    let key = name;
    try {
      key = buildContextName(name);
    } catch {
      // kept as written; buildx would reject it
    }
    contexts[key] = value;
  }
  const req: BuildRequest = {
    kind: 'build',
    invocation: 'buildx',
    subcommandIndex: -1,
    dockerfile: build.dockerfile === '-' ? { kind: 'stdin' } : { kind: 'path', path: build.dockerfile },
    context: { kind: 'local', path: build.context },
    buildArgs: { ...build.buildArgs },
    buildArgsFromEnv: [],
    buildContexts: contexts,
    platforms: splitPlatforms(build.platforms),
    cacheTo: build.cacheTo.flatMap((c) => parseCacheSpec(c, 'build.cacheTo')),
    cacheFrom: [],
    outputs: [],
    push: false,
    load: false,
    tags: [],
    attestations: false,
    flags: [],
    warnings: [],
  };
  if (build.target) req.target = build.target;
  return req;
}

/**
 * Where the Dockerfile to analyse is, or why there is none we can read (stdin, remote context,
 * bake). The caller reads the file and passes its text to analyzeDockerfile.
 */
export function dockerfileToRead(req: BuildRequest): { path: string } | { unreadable: string } {
  switch (req.dockerfile.kind) {
    case 'path':
      return { path: req.dockerfile.path };
    case 'stdin':
      return { unreadable: 'the Dockerfile comes from stdin (-f -)' };
    case 'remote':
      return { unreadable: req.context.kind === 'stdin' ? 'the build context comes from stdin' : 'the Dockerfile is inside a remote (git/URL) context' };
    case 'none':
      return { unreadable: req.kind === 'bake' ? 'the bake targets could not be read; only the builder is set' : 'the build command names no context' };
  }
}

/**
 * BuildNeeds for chooseDriver. `facts` is keyed by NeededImage.ref (what inspectLocalImages was
 * asked with). `buildkitConfigReasons` lists explicit BuildKit settings (pinned version,
 * buildkitd.config, buildkitd.flags); empty when none.
 */
export function buildNeedsFrom(input: {
  request: BuildRequest;
  dockerfile?: Pick<DockerfileNeeds, 'images'>;
  facts: ReadonlyMap<string, LocalImageFact>;
  buildkitConfigReasons: string[];
}): BuildNeeds {
  const { request, dockerfile, facts } = input;
  const images = (dockerfile?.images ?? []).map((i) => ({ ref: i.ref, localOnly: facts.get(i.ref)?.localOnly === true }));
  const needs: BuildNeeds = {
    platforms: request.platforms,
    cacheTo: request.cacheTo.map((c) => c.type),
    needsBuildkitConfig: input.buildkitConfigReasons.length > 0,
    outputs: request.outputs,
    attestations: request.attestations,
    images,
  };
  if (input.buildkitConfigReasons.length > 0) needs.buildkitConfigReasons = input.buildkitConfigReasons;
  return needs;
}

export interface BridgePlan {
  /** Normalised image reference to `docker save`. */
  ref: string;
  /** `--build-context` name BuildKit's frontend looks it up by. */
  contextName: string;
  /** Platforms the build needs it for (check with checkPlatforms after export). */
  platforms: string[];
}

/** For each image the decision bridges, the context name and platforms to use. */
export function planBridges(decision: DriverDecision, dockerfile: Pick<DockerfileNeeds, 'images'> | undefined): BridgePlan[] {
  const byRef = new Map((dockerfile?.images ?? []).map((i) => [i.ref, i]));
  return decision.bridge.map((ref) => {
    const image = byRef.get(ref);
    return { ref, contextName: image?.contextName ?? buildContextName(ref), platforms: image?.platforms ?? [] };
  });
}

/**
 * A bake: the needs of every target as one build's, so one builder serves them all. Platforms are
 * the largest set a target builds, cache exports, outputs and images are the union (an image with
 * every platform any target needs it for), attestations any target's.
 */
export function mergeNeeds(all: BuildNeeds[]): BuildNeeds {
  const images = new Map<string, ImageFact>();
  for (const n of all) for (const i of n.images) images.set(i.ref, { ref: i.ref, localOnly: (images.get(i.ref)?.localOnly ?? false) || i.localOnly });
  const first = all[0];
  const merged: BuildNeeds = {
    platforms: all.reduce<string[]>((most, n) => (n.platforms.length > most.length ? n.platforms : most), []),
    cacheTo: [...new Set(all.flatMap((n) => n.cacheTo))],
    needsBuildkitConfig: all.some((n) => n.needsBuildkitConfig),
    outputs: all.flatMap((n) => n.outputs ?? []),
    attestations: all.some((n) => n.attestations === true),
    images: [...images.values()],
  };
  if (first?.buildkitConfigReasons) merged.buildkitConfigReasons = first.buildkitConfigReasons;
  return merged;
}

/** The images of several Dockerfiles as one list: one entry per reference, with every platform any of them needs. */
export function mergeImages(all: Pick<DockerfileNeeds, 'images'>[]): Pick<DockerfileNeeds, 'images'> {
  const byRef = new Map<string, NeededImage>();
  for (const d of all) {
    for (const i of d.images) {
      const seen = byRef.get(i.ref);
      byRef.set(i.ref, seen ? { ...seen, platforms: [...new Set([...seen.platforms, ...i.platforms])], uses: [...seen.uses, ...i.uses] } : i);
    }
  }
  return { images: [...byRef.values()] };
}
