// `mirror`'s core below the command: the job list (the engine image through the resolver, then
// `mirror.images` and the IMAGE arguments), one registry client per host sharing the user's
// credentials, and the copy of every job under one request bound.
import { setMaxListeners } from 'node:events';
import type { Config } from '../config/schema.js';
import { BxbError, ExitCode, NoRegistryError } from '../errors.js';
import type { Logger, Secrets } from '../io.js';
import type { RegistryClientHandle } from '../registry/client.js';
import type { RegistryEndpoint, RegistryPushClient } from '../registry/types.js';
import { engineCandidates, engineImage, mirrorCandidate } from '../resolve/candidates.js';
import { BlobBook, copyImage, CopyError, type CopyResult } from './copy.js';
import { DEFAULT_RETRY, Limiter, type RetryPolicy } from './retry.js';
import { engineJob, imageJobs, noTarget, parseTarget, targetFor, type MirrorJob } from './sources.js';

export interface MirrorDeps {
  env: Record<string, string | undefined>;
  secrets: Secrets;
  log: Logger;
  signal?: AbortSignal | undefined;
}

export interface MirrorRequest {
  to: string | undefined;
  images: string[];
}

/** Requests in flight at once to one registry host, across all images and blobs (a blob copy's
 * source GET rides on its target PUT's slot). Per host, as registries count: the re-run's
 * HEADs to the source and to the target all go at once. */
export const MAX_REQUESTS = 8;
/** Longest silence on one request (connect, answer, or mid-body) before it fails and is retried. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Every job, in order: the engine image first. Throws UsageError for an image with no target. */
export async function planJobs(deps: MirrorDeps, config: Config, req: MirrorRequest): Promise<MirrorJob[]> {
  const to = req.to === undefined ? undefined : parseTarget(req.to, config);
  // Usage errors first: no registry is asked anything when an image has nowhere to go.
  const images = imageJobs([...config.mirror.images, ...req.images], config, to);
  const jobs: MirrorJob[] = [];
  if (config.mirror.engine) {
    const image = engineImage(config);
    const target = targetFor(image, config, to);
    if (!target) throw noTarget(`${image.registry}/${image.repository}`, image.registry);
    // The resolver as it is, with every candidate but the target itself.
    const sources = { ...config, mirrors: config.mirrors.filter((m) => mirrorCandidate(m, image).label !== target.label) };
    // The resolver loads only when the engine image is copied (start-up is module loading).
    const { applicableLock, resolveFromConfig } = await import('../resolve/index.js');
    const lock = await applicableLock(config, deps.log);
    const resolution = await resolveFromConfig(deps, sources, lock ? { tag: lock.tag, digest: lock.digest } : undefined);
    const from = engineCandidates(sources).find((c) => c.label === resolution.source);
    if (!from) throw new NoRegistryError(`the engine image resolved from ${resolution.source}, which is not a source candidate`);
    jobs.push(engineJob({ ...image, tag: resolution.tag, digest: resolution.digest }, from, config, to));
  }
  for (const job of images) if (!jobs.some((j) => j.source === job.source && j.to.label === job.to.label)) jobs.push(job);
  return jobs;
}

/** Registry clients by endpoint, one credential store (and token cache) for all. */
export async function clientPool(deps: MirrorDeps): Promise<{ clientFor(endpoint: RegistryEndpoint): RegistryPushClient; close(): void; warnings(): string[] }> {
  const [{ createRegistryClient }, { createCredentialStore }] = await Promise.all([import('../registry/client.js'), import('../registry/credentials.js')]);
  const credentials = createCredentialStore({ env: deps.env, secrets: deps.secrets });
  const clients = new Map<string, RegistryClientHandle>();
  return {
    clientFor: (endpoint) => {
      const key = JSON.stringify([endpoint.host, !!endpoint.http, !!endpoint.insecure, endpoint.ca ?? '']);
      let client = clients.get(key);
      if (!client) {
        client = createRegistryClient(endpoint, { credentials, secrets: deps.secrets, timeoutMs: REQUEST_TIMEOUT_MS, env: deps.env });
        clients.set(key, client);
      }
      return client;
    },
    close: () => {
      for (const c of clients.values()) c.close();
    },
    warnings: () => credentials.warnings(),
  };
}

export interface JobRunner {
  run(job: MirrorJob, onProgress?: (r: CopyResult) => void): Promise<CopyResult>;
  close(): void;
}

export async function jobRunner(deps: MirrorDeps, jobs: MirrorJob[], opts: { dryRun: boolean; retry?: RetryPolicy }): Promise<JobRunner> {
  // Every request in flight listens on the run's signal (a few dozen at once is the design, not
  // a leak): no MaxListenersExceededWarning on stderr.
  if (deps.signal) setMaxListeners(0, deps.signal);
  const pool = await clientPool(deps);
  const limiters = new Map<string, Limiter>();
  const limiter = (host: string): Limiter => {
    let l = limiters.get(host);
    if (!l) limiters.set(host, (l = new Limiter(MAX_REQUESTS)));
    return l;
  };
  const book = new BlobBook();
  return {
    run: (job, onProgress) =>
      copyImage(job, {
        source: pool.clientFor(job.from.endpoint),
        target: pool.clientFor(job.to.endpoint),
        limiter,
        retry: opts.retry ?? DEFAULT_RETRY,
        book,
        mountFrom: jobs.filter((j) => j.to.endpoint.host === job.to.endpoint.host).map((j) => j.to.repository),
        dryRun: opts.dryRun,
        signal: deps.signal,
        ...(onProgress ? { onProgress } : {}),
        onRetry: (what, e, ms) => deps.log.debug(`${what}: ${e.message}; retrying in ${Math.round(ms)} ms`),
      }).catch((error: unknown) => {
        throw toBxbError(job, error);
      }),
    close: () => {
      for (const w of pool.warnings()) deps.log.warn(w);
      pool.close();
    },
  };
}

/** A source that cannot be read is exit 3; a target that refuses (auth, quota, immutable tag…) exit 1. */
export function toBxbError(job: MirrorJob, error: unknown): unknown {
  if (!(error instanceof CopyError)) return error;
  if (error.side === 'source') {
    return new NoRegistryError(`cannot read ${job.source}: ${error.message}`, {
      hint: 'check that the image exists and the credentials for that registry (docker config.json / DOCKER_AUTH_CONFIG)',
    });
  }
  return new BxbError(`push of ${job.to.label}${job.tag ? `:${job.tag}` : ''} failed: ${error.message}`, ExitCode.dockerFailed, {
    hint: 'check push rights (credentials with push scope), quota and tag immutability on the target registry',
  });
}
