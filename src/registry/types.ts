// The registry client's contract, shared by src/registry (implementation) and src/resolve
// (hedged probing, lockfile). Implementation: src/registry/client.ts.

/** Every manifest media type; the registry must be able to answer with the tag's own manifest. */
import type { Readable } from 'node:stream';
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/** A registry credential: a user and password, or an identity (refresh) token. */
export type Credential = { username: string; password: string } | { identityToken: string; username?: string };

/** How to reach one registry host. */
export interface RegistryEndpoint {
  /** `host[:port]` (the API host: `registry-1.docker.io` for docker.io). */
  host: string;
  /** Plain HTTP. Only honoured for loopback hosts or when configured (`http: true`). */
  http?: boolean;
  /** HTTPS without certificate verification (`insecure: true`). */
  insecure?: boolean;
  /** Extra CA bundle file for this host (mirror `ca:`). */
  ca?: string;
}

export interface RateLimit {
  limit?: number;
  remaining?: number;
  /** Window in seconds (`;w=21600`). */
  windowSeconds?: number;
  source?: string;
}

export interface ManifestInfo {
  /** The tag's own digest: `Docker-Content-Digest`, else sha256 of the body. */
  digest: string;
  mediaType: string;
  size: number;
  rateLimit?: RateLimit;
}

export type RegistryFailureKind =
  | 'refused' // ECONNREFUSED: costs milliseconds
  | 'reset' // ECONNRESET / socket hang up
  | 'dns' // ENOTFOUND / EAI_AGAIN
  | 'timeout' // no answer within the timeout
  | 'tls' // certificate or handshake failure
  | 'auth' // 401/403 after credentials were tried (or none available)
  | 'not-found' // 404: repository or tag unknown
  | 'rate-limited' // 429
  | 'server' // 5xx
  | 'protocol' // malformed answer (bad JSON, not a v2 registry, unexpected status)
  | 'aborted'; // cancelled by the caller (a higher-priority candidate won)

/** One failed registry request. `message` is one line and never contains a secret. */
export class RegistryRequestError extends Error {
  readonly kind: RegistryFailureKind;
  readonly host: string;
  readonly status: number | undefined;
  /** `Retry-After` of a 429/503 answer, in milliseconds. */
  retryAfterMs: number | undefined;

  constructor(kind: RegistryFailureKind, host: string, message: string, status?: number) {
    super(message);
    this.name = 'RegistryRequestError';
    this.kind = kind;
    this.host = host;
    this.status = status;
  }
}

export interface RegistryClient {
  readonly endpoint: RegistryEndpoint;
  /** `HEAD /v2/<repo>/manifests/<ref>` with every media type in Accept (falls back to GET when the digest header is missing). */
  headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestInfo>;
  /** `GET` of a manifest; body included. */
  getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestInfo & { body: Buffer }>;
  /** All tags, following `Link` pagination when the registry sends it; sorted by the client. */
  listTags(repository: string, signal?: AbortSignal): Promise<string[]>;
  /** `GET /v2/`; resolves when the registry answers as a v2 registry (authenticating if needed). */
  ping(signal?: AbortSignal): Promise<{ authenticated: boolean; rateLimit?: RateLimit }>;
}

/** A blob's presence in a repository (`HEAD /v2/<repo>/blobs/<digest>`). */
export interface BlobInfo {
  exists: boolean;
  size?: number;
}

/** Where a started upload stands: mounted from another repository, or waiting for its bytes. */
export type UploadStart = { mounted: true } | { mounted: false; location: URL };

/**
 * What `mirror` needs besides reading: blob reads as streams, uploads (with cross-repository
 * mount) and manifest pushes. Push calls ask for `pull,push` on the repository.
 */
export interface RegistryPushClient extends RegistryClient {
  headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<BlobInfo>;
  /**
   * `GET` of a blob as a stream (a redirect to storage is followed without credentials). The body
   * is checked against the digest (and `size`, when given): bytes that are not the blob end it
   * with an error before its last piece is passed on.
   */
  openBlob(repository: string, blob: { digest: string; size?: number }, signal?: AbortSignal): Promise<{ size: number | undefined; body: Readable }>;
  /** `POST /v2/<repo>/blobs/uploads/`, with `?mount=<digest>&from=<repo>` when `mountFrom` is given. */
  startUpload(repository: string, mount?: { digest: string; from: string }, signal?: AbortSignal): Promise<UploadStart>;
  /** Completes an upload with one `PUT <location>?digest=…` carrying the streamed body. */
  finishUpload(location: URL, digest: string, size: number, body: Readable, signal?: AbortSignal): Promise<void>;
  /** `PUT /v2/<repo>/manifests/<reference>`; resolves with the digest the registry reports. */
  putManifest(repository: string, reference: string, mediaType: string, body: Buffer, signal?: AbortSignal): Promise<string>;
}
