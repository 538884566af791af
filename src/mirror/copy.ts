// Copies one image, whole, from a source registry to a target: the tag's manifest or index, every
// child manifest (platforms and attestations), every config and layer blob, so the target's digest
// equals the source's. Children before parents: blobs, then manifests, then the index by tag in
// one PUT, so no reader sees a tag whose content is missing; a killed run leaves at most
// untagged blobs and manifests, which the next run finds (HEAD) and skips.
//
// Requests to the source on a re-run: one manifest HEAD (Docker Hub does not count HEADs against
// the pull limit), none for the engine image, whose HEAD the resolver has just made. Blobs stream
// source → target, checked against their digest by the registry client, never held in memory.
// The manifest parser and the digest check (node:crypto) load only when something is copied: a
// re-run that finds every image in place is start-up plus HEADs, and module loading is most of it.
import type { Descriptor } from '../docker/oci-image.js';
import { TransportError } from '../registry/exchange.js';
import { RegistryRequestError, type RegistryPushClient } from '../registry/types.js';
import { withRetry, type Limiter, type RetryPolicy } from './retry.js';
import type { MirrorJob } from './sources.js';

export type Side = 'source' | 'target';

/** A failure attributed to the source (exit 3) or the target (exit 1). */
export class CopyError extends Error {
  constructor(
    readonly side: Side,
    readonly host: string,
    message: string,
    readonly registryError?: RegistryRequestError,
  ) {
    super(message);
    this.name = 'CopyError';
  }
}

export interface CopyResult {
  source: string;
  target: string;
  digest: string;
  platforms: string[];
  blobs: { copied: number; mounted: number; skipped: number };
  bytes: number;
  ms: number;
  /** Whether the source was asked for a manifest (a GET, counted by Docker Hub). */
  manifestRequested: boolean;
  upToDate: boolean;
  dryRun: boolean;
}

/** Shared by every image of a run: blob work in flight, and which target repositories hold which blobs. */
export class BlobBook {
  readonly inflight = new Map<string, Promise<'copied' | 'mounted' | 'skipped'>>();
  /** Uploads in flight by (target host, digest): a second repository waits, then mounts. */
  readonly uploading = new Map<string, Promise<unknown>>();
  private readonly holders = new Map<string, string>();

  holder(targetHost: string, digest: string, except: string): string | undefined {
    const repo = this.holders.get(`${targetHost} ${digest}`);
    return repo && repo !== except ? repo : undefined;
  }

  record(targetHost: string, digest: string, repository: string): void {
    this.holders.set(`${targetHost} ${digest}`, repository);
  }
}

export interface CopyDeps {
  source: RegistryPushClient;
  target: RegistryPushClient;
  /** The request bound of a registry host (a blob copy counts against its target's). */
  limiter(host: string): Limiter;
  retry: RetryPolicy;
  book: BlobBook;
  /** Other repositories of this run on the same target registry: where a mount may find a blob. */
  mountFrom: string[];
  dryRun: boolean;
  signal?: AbortSignal | undefined;
  onProgress?(result: CopyResult): void;
  onRetry?(what: string, error: RegistryRequestError, delayMs: number): void;
}

export async function copyImage(job: MirrorJob, deps: CopyDeps): Promise<CopyResult> {
  const started = Date.now();
  const { source, target, signal } = deps;
  const fromRepo = job.from.repository;
  const toRepo = job.to.repository;
  const targetHost = job.to.endpoint.host;
  const result: CopyResult = {
    source: job.source,
    target: `${job.to.label}${job.tag ? `:${job.tag}` : ''}`,
    digest: '',
    platforms: [],
    blobs: { copied: 0, mounted: 0, skipped: 0 },
    bytes: 0,
    ms: 0,
    manifestRequested: false,
    upToDate: false,
    dryRun: deps.dryRun,
  };
  const progress = (): void => deps.onProgress?.(result);

  /** One registry operation: bounded, retried, its failure attributed to a side. */
  const op = <T>(side: Side, what: string, fn: () => Promise<T>): Promise<T> =>
    deps
      .limiter(side === 'source' ? job.from.endpoint.host : targetHost)
      .run(() => withRetry(fn, deps.retry, signal, (e, ms) => deps.onRetry?.(what, e, ms)))
      .catch((error: unknown) => {
        throw attribute(error, side, side === 'source' ? job.from.endpoint.host : targetHost, what);
      });
  const targetHas = async (reference: string): Promise<string | undefined> => {
    try {
      return (await op('target', `${result.target}`, () => target.headManifest(toRepo, reference, signal))).digest;
    } catch (error) {
      if (error instanceof CopyError && error.registryError?.kind === 'not-found') return undefined;
      throw error;
    }
  };

  // HEAD first, on both sides at once: when the target holds the source's digest, nothing else
  // is asked.
  const targetRef = job.tag ?? job.digest;
  const inTarget = targetRef ? targetHas(targetRef) : undefined;
  inTarget?.catch(() => undefined); // awaited below, after the source has answered
  // The engine image's digest comes from the resolver, which just asked this source for it.
  const head = job.digestFromSource && job.digest ? { digest: job.digest } : await op('source', job.source, () => source.headManifest(fromRepo, job.reference, signal));
  if (job.digest && head.digest !== job.digest) {
    throw new CopyError('source', job.from.endpoint.host, `${job.from.label}:${job.reference} is ${head.digest} at the source, not ${job.digest}`);
  }
  result.digest = head.digest;
  const existing = await (inTarget ?? targetHas(head.digest));
  if (existing === head.digest || deps.dryRun) {
    result.upToDate = existing === head.digest;
    result.ms = Date.now() - started;
    return result;
  }

  const { isAttestation, manifestBlobs, parseManifest, platformText } = await import('../docker/oci-image.js');
  const counted = new Set<string>();
  const copyBlob = async (d: Descriptor): Promise<void> => {
    const key = `${targetHost} ${toRepo} ${d.digest}`;
    let work = deps.book.inflight.get(key);
    if (!work) {
      work = transferBlob(d);
      deps.book.inflight.set(key, work);
    }
    const outcome = await work;
    // A blob shared by two platforms of this image counts once.
    if (counted.has(d.digest)) return;
    counted.add(d.digest);
    result.blobs[outcome]++;
    progress();
  };

  const transferBlob = async (d: Descriptor): Promise<'copied' | 'mounted' | 'skipped'> => {
    const present = await op('target', `blob ${d.digest}`, () => target.headBlob(toRepo, d.digest, signal));
    if (present.exists) {
      deps.book.record(targetHost, d.digest, toRepo);
      return 'skipped';
    }
    // The same blob on its way into another repository of this registry (a base layer shared by
    // several images): wait for it and mount it, rather than sending the bytes twice.
    const uploadKey = `${targetHost} ${d.digest}`;
    const elsewhere = deps.book.uploading.get(uploadKey);
    if (elsewhere) await elsewhere.catch(() => undefined);
    // A mount attempt costs nothing extra: when the blob is not there, the answer (202) is the
    // upload session the copy needs anyway.
    const from = deps.book.holder(targetHost, d.digest, toRepo) ?? deps.mountFrom.find((r) => r !== toRepo);
    const transfer = op('target', `blob ${d.digest}`, async () => {
      const upload = await target.startUpload(toRepo, from ? { digest: d.digest, from } : undefined, signal);
      if (upload.mounted) return 'mounted' as const;
      // The body is checked against the digest as it streams, its last piece held back until the
      // check passes: a source serving other bytes fails the upload before it can commit.
      const blob = await source.openBlob(fromRepo, d, signal).catch((error: unknown) => {
        throw attribute(error, 'source', job.from.endpoint.host, `blob ${d.digest}`);
      });
      let sourceFailure: unknown;
      blob.body.on('error', (error) => (sourceFailure ??= error));
      try {
        await target.finishUpload(upload.location, d.digest, d.size, blob.body, signal);
      } catch (error) {
        const failure = sourceFailure ?? blob.body.errored;
        blob.body.destroy();
        if (failure) throw attribute(failure, 'source', job.from.endpoint.host, `blob ${d.digest}`);
        throw error;
      }
      result.bytes += d.size;
      return 'copied' as const;
    });
    if (!elsewhere) {
      deps.book.uploading.set(uploadKey, transfer);
      void transfer.then(
        () => deps.book.uploading.delete(uploadKey),
        () => deps.book.uploading.delete(uploadKey),
      );
    }
    const outcome = await transfer;
    deps.book.record(targetHost, d.digest, toRepo);
    return outcome;
  };

  /** Copies a manifest's content, then the manifest itself (by digest, or by tag at the top). */
  const copyManifest = async (digest: string, putAs: string | undefined): Promise<void> => {
    if (putAs === undefined && (await targetHas(digest)) === digest) return; // copied by an earlier run
    result.manifestRequested = true;
    const got = await op('source', `${job.from.label}@${digest}`, () => source.getManifest(fromRepo, digest, signal));
    let parsed;
    try {
      parsed = parseManifest(got.body, got.mediaType);
    } catch (error) {
      throw new CopyError('source', job.from.endpoint.host, `${job.from.label}@${digest}: ${(error as Error).message}`);
    }
    if (parsed.kind === 'index') {
      if (putAs !== undefined) result.platforms = parsed.manifests.filter((m) => m.platform && !isAttestation(m)).map((m) => platformText(m.platform!));
      await Promise.all(parsed.manifests.map((m) => copyManifest(m.digest, undefined)));
    } else {
      await Promise.all(manifestBlobs(parsed).map(copyBlob));
    }
    await op('target', `manifest ${digest}`, () => target.putManifest(toRepo, putAs ?? digest, got.mediaType || parsed.mediaType, got.body, signal));
  };

  await copyManifest(head.digest, job.tag ?? head.digest);
  result.ms = Date.now() - started;
  progress();
  return result;
}

function attribute(error: unknown, side: Side, host: string, what: string): unknown {
  if (error instanceof CopyError) return error;
  if (error instanceof RegistryRequestError) return new CopyError(side, error.host || host, error.message, error);
  if (error instanceof TransportError) {
    // A source stream that broke mid-body (reset, stall): as retryable as a failed request.
    return new CopyError(side, host, `${host}: ${what}: ${error.message}`, new RegistryRequestError(error.kind, host, `${host}: ${error.message}`));
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CopyError(side, host, `${host}: ${what}: ${message}`);
}
