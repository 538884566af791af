// What `mirror` copies where (pure): each source image and its target under the resolver's own
// mapping, `host[:port][/path]/<repository>:<tag>`, so that after a run the mirror configuration
// used for pulling finds exactly what was copied.
import type { Config, MirrorConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { mirrorCandidate, upstreamCandidate, type Candidate } from '../resolve/candidates.js';
import { formatImageRef, isValidRegistryHost, isValidRepositoryPath, parseImageRef, type ImageRef } from '../registry/reference.js';
import { splitMirror } from '../config/schema.js';

export interface MirrorJob {
  /** What the user named, normalised: `docker.io/library/docker:27-cli`. */
  source: string;
  from: Candidate;
  /** Tag, else the digest, to read at the source. */
  reference: string;
  /** The digest the source must have (an `@digest` image, or the locked engine digest). */
  digest?: string;
  /** The source answered `digest` for `reference` moments ago (the resolver's HEAD): not asked again. */
  digestFromSource?: boolean;
  to: Candidate;
  /** Tag to set in the target; none for an `@digest`-only image. */
  tag?: string;
  engine: boolean;
}

/** `--to HOST[:PORT][/PATH]` as a mirror entry, with the settings configured for that host. */
export function parseTarget(text: string, config: Pick<Config, 'mirrors' | 'registries'>): MirrorConfig {
  const raw = splitMirror(text) as { host?: string; path?: string };
  const host = raw.host ?? '';
  const path = raw.path ?? '';
  if (!host || !isValidRegistryHost(host) || /^[a-z]+:\/\//i.test(text)) {
    throw new UsageError(`--to "${text}" is not a registry HOST[:PORT][/PATH]`, { hint: 'e.g. --to registry.corp.example/dockerhub' });
  }
  if (path && !isValidRepositoryPath(path)) throw new UsageError(`--to "${text}": invalid path "${path}"`, { hint: 'lower-case letters, digits and . _ - / only' });
  const known = config.mirrors.find((m) => m.host === host);
  const settings = config.registries[host];
  return {
    host,
    path,
    for: '',
    ca: known?.ca || settings?.ca?.[0] || '',
    http: known?.http ?? settings?.http ?? false,
    insecure: known?.insecure ?? settings?.insecure ?? false,
  };
}

/**
 * Where `image` goes: `--to`, else the first configured mirror whose `for` is its registry
 * (GitLab's Dependency Proxy is read-only and never a target).
 */
export function targetFor(image: ImageRef, config: Pick<Config, 'mirrors'>, to: MirrorConfig | undefined): Candidate | undefined {
  const mirror = to ?? config.mirrors.find((m) => m.for === image.registry && m.origin !== 'gitlab-dependency-proxy');
  return mirror ? mirrorCandidate(mirror, image) : undefined;
}

export function noTarget(source: string, registry: string): UsageError {
  return new UsageError(`no mirror to copy ${source} into: no configured mirror is for ${registry}`, {
    hint: `add a mirror with for: ${registry} to the configuration, or give --to HOST[/PATH]`,
  });
}

/** The jobs for `mirror.images` and the IMAGE arguments (the engine image is added by the caller). */
export function imageJobs(images: string[], config: Pick<Config, 'mirrors' | 'registries'>, to: MirrorConfig | undefined): MirrorJob[] {
  const jobs: MirrorJob[] = [];
  const seen = new Set<string>();
  for (const text of images) {
    let ref: ImageRef;
    try {
      ref = parseImageRef(text);
    } catch (error) {
      throw new UsageError(`invalid image "${text}": ${(error as Error).message}`, { hint: 'write IMAGE as name[:tag] or name@sha256:…, e.g. docker:27-cli' });
    }
    if (!ref.tag && !ref.digest) ref.tag = 'latest';
    const source = formatImageRef(ref);
    if (seen.has(source)) continue;
    seen.add(source);
    const target = targetFor(ref, config, to);
    if (!target) throw noTarget(source, ref.registry);
    const job: MirrorJob = {
      source,
      from: upstreamCandidate(ref, config.registries),
      reference: ref.digest ?? ref.tag!,
      to: target,
      engine: false,
    };
    if (ref.digest) job.digest = ref.digest;
    if (ref.tag) job.tag = ref.tag;
    jobs.push(job);
  }
  return jobs;
}

/** The engine image's job, once the resolver has chosen the source and tag. */
export function engineJob(image: ImageRef & { tag: string; digest: string }, from: Candidate, config: Pick<Config, 'mirrors'>, to: MirrorConfig | undefined): MirrorJob {
  const source = formatImageRef({ registry: image.registry, repository: image.repository, tag: image.tag });
  const target = targetFor(image, config, to);
  if (!target) throw noTarget(source, image.registry);
  return { source, from, reference: image.tag, digest: image.digest, digestFromSource: true, to: target, tag: image.tag, engine: true };
}

/** `host/repository:tag` of a job's target. */
export function targetText(job: MirrorJob): string {
  return `${job.to.label}${job.tag ? `:${job.tag}` : ''}`;
}
