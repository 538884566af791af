// The registry v2 client (contract: ./types.ts). Manifests are HEADed with every manifest media
// type in Accept so the tag's own digest comes back (registry 2.8 hides an OCI index from a
// client that does not accept it, and swaps a manifest list for its amd64 child by tag —
// DIST@v2.8.2 registry/handlers/manifests.go); tags are listed following `Link` (distribution v3,
// OCI) and also taken all at once, unsorted (2.8 ignores n/last); Basic and Bearer challenges are
// answered by authorizer.ts with the user's credentials, tokens cached per (realm, service, scope).
// Failures are worded by failures.ts.
//
// Scheme: `http: true` → plain HTTP. A loopback host → plain HTTP too unless it has a `ca:` (or
// `insecure: true`), which can only mean it serves TLS. dockerd instead tries HTTPS first and falls
// back to HTTP for "insecure" registries (127.0.0.0/8 by default); we do not, because a probe that
// doubles its round trips on every loopback mirror costs more than the rare loopback TLS
// registry, which says so with `ca:`. Everything else → HTTPS.
import type { Secrets } from '../io.js';
import { crypto } from '../lazy.cjs';
import { VERSION } from '../version.js';
import { TokenCache } from './auth.js';
import { Authorizer } from './authorizer.js';
import type { CredentialStore } from './credentials.js';
import { bareMediaType, parseLinkNext, parseRateLimit, parseWwwAuthenticate } from './headers.js';
import { answerError, header, networkError, oneLine, registryError, registryErrorText, type FailureContext } from './failures.js';
import type { HttpResponse, StreamRequest, StreamResponse, Transport } from './exchange.js';
import { createTransport } from './http.js';
import { digestHashName, endpointScheme, isValidDigest } from './reference.js';
import { resolveTls } from './tls.js';
import {
  MANIFEST_MEDIA_TYPES,
  type BlobInfo,
  type ManifestInfo,
  type RegistryPushClient,
  type UploadStart,
  type RateLimit,
  type RegistryClient,
  type RegistryEndpoint,
  type RegistryFailureKind,
} from './types.js';

export interface RegistryClientOptions {
  credentials: CredentialStore;
  secrets: Secrets;
  /** Deadline of each HTTP exchange (connect + full response). */
  timeoutMs: number;
  env: Record<string, string | undefined>;
  userAgent?: string;
  /** Root of docker's per-registry CA dirs; default /etc/docker/certs.d (tests point it elsewhere). */
  certsDir?: string;
  /** Bearer token cache; default the credential store's (shared by all its clients). */
  tokenCache?: TokenCache;
  /** Substitute transport (tests); default node:http/https with the endpoint's TLS settings. */
  transport?: Transport;
}

export interface RegistryClientHandle extends RegistryClient, RegistryPushClient {
  /** `http://host` or `https://host`. */
  readonly baseUrl: string;
  /** Closes idle keep-alive connections (they are unref'd, so this is only tidiness). */
  close(): void;
}

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const MAX_TAG_PAGES = 10_000;
// Answers are held in memory, so each kind has a cap well above anything real (a BuildKit index is
// a few KiB; Docker Hub's biggest tag lists are a few MiB) and a lying mirror is cut off there.
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
const TAG_PAGE_MAX_BYTES = 16 * 1024 * 1024;
const PING_MAX_BYTES = 64 * 1024;
/** Go's net/http follows 10 redirects; registries use one (blob/manifest storage on another host). */
const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

interface ExchangeOptions {
  accept?: string;
  /** Token scope, e.g. `repository:moby/buildkit:pull`; none for `/v2/`. */
  scope?: string;
  signal?: AbortSignal | undefined;
  maxBodyBytes?: number;
  body?: Buffer;
  headers?: Record<string, string>;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT';

function sha256(body: Buffer): string {
  return `sha256:${crypto().createHash('sha256').update(body).digest('hex')}`;
}

/** The body's digest in `digest`'s algorithm; undefined for an algorithm we cannot compute. */
function digestLike(digest: string, body: Buffer): string | undefined {
  const algorithm = digestHashName(digest);
  return algorithm ? `${algorithm}:${crypto().createHash(algorithm).update(body).digest('hex')}` : undefined;
}

class Client implements RegistryClientHandle {
  readonly endpoint: RegistryEndpoint;
  readonly baseUrl: string;
  private readonly host: string;
  private readonly userAgent: string;
  private readonly failures: FailureContext;
  private readonly auth: Authorizer;
  private transportValue: Transport | undefined;

  constructor(
    endpoint: RegistryEndpoint,
    private readonly opts: RegistryClientOptions,
  ) {
    this.endpoint = { ...endpoint };
    this.host = endpoint.host;
    this.baseUrl = `${endpointScheme(endpoint)}://${endpoint.host}`;
    this.userAgent = opts.userAgent ?? `buildx-bootstrap/${VERSION}`;
    this.failures = { host: this.host, baseUrl: this.baseUrl, timeoutMs: opts.timeoutMs, secrets: opts.secrets };
    this.auth = new Authorizer({
      failures: this.failures,
      credentials: opts.credentials,
      tokens: opts.tokenCache ?? opts.credentials.tokens ?? new TokenCache(),
      userAgent: this.userAgent,
      transport: () => this.transport(),
    });
    if (opts.transport) this.transportValue = opts.transport;
  }

  close(): void {
    this.transportValue?.close();
  }

  // ---- the contract ----

  async ping(signal?: AbortSignal): Promise<{ authenticated: boolean; rateLimit?: RateLimit }> {
    const { res, authenticated } = await this.exchange('GET', '/v2/', { signal, maxBodyBytes: PING_MAX_BYTES });
    if (res.status === 404) this.fail('protocol', 'not a registry v2 API (GET /v2/ answered 404)', 404);
    this.expectOk(res, 'GET /v2/');
    const rateLimit = parseRateLimit(res.headers);
    return rateLimit ? { authenticated, rateLimit } : { authenticated };
  }

  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestInfo> {
    const { res } = await this.exchange('HEAD', this.manifestPath(repository, reference), { accept: ACCEPT, scope: pullScope(repository), signal });
    if (res.status === 405 || res.status === 501) {
      // HEAD not supported (rare proxies): GET gives the same answer.
      const { body: _body, ...info } = await this.getManifest(repository, reference, signal);
      return info;
    }
    this.expectOk(res, refText(repository, reference));
    const digest = header(res, 'docker-content-digest');
    if (!digest || !isValidDigest(digest) || header(res, 'content-length') === undefined) {
      // No (usable) Docker-Content-Digest or size: take both from the body.
      const { body: _body, ...info } = await this.getManifest(repository, reference, signal);
      return info;
    }
    const info: ManifestInfo = {
      digest,
      mediaType: bareMediaType(header(res, 'content-type')),
      size: Number(header(res, 'content-length') ?? 0),
    };
    const rateLimit = parseRateLimit(res.headers);
    if (rateLimit) info.rateLimit = rateLimit;
    return info;
  }

  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestInfo & { body: Buffer }> {
    const { res } = await this.exchange('GET', this.manifestPath(repository, reference), {
      accept: ACCEPT,
      scope: pullScope(repository),
      signal,
      maxBodyBytes: MANIFEST_MAX_BYTES,
    });
    this.expectOk(res, refText(repository, reference));
    const computed = sha256(res.body);
    const served = header(res, 'docker-content-digest');
    // The digest is what gets pinned: one the body does not hash to (or that we cannot check) is refused.
    if (served && isValidDigest(served) && digestLike(served, res.body) !== served) {
      this.fail('protocol', `${refText(repository, reference)}: served digest ${served} does not match the manifest body (${computed})`, res.status);
    }
    const expected = isValidDigest(reference) ? reference : undefined;
    if (expected && digestLike(expected, res.body) !== expected) {
      this.fail('protocol', `${repository}@${expected}: the registry served a manifest with digest ${computed}`, res.status);
    }
    let mediaType = bareMediaType(header(res, 'content-type'));
    if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain') {
      try {
        const parsed = JSON.parse(res.body.toString('utf8')) as { mediaType?: unknown };
        if (typeof parsed.mediaType === 'string') mediaType = parsed.mediaType;
      } catch {
        this.fail('protocol', `${refText(repository, reference)}: manifest is not JSON`, res.status);
      }
    }
    const info: ManifestInfo & { body: Buffer } = { digest: served && isValidDigest(served) ? served : computed, mediaType, size: res.body.length, body: res.body };
    const rateLimit = parseRateLimit(res.headers);
    if (rateLimit) info.rateLimit = rateLimit;
    return info;
  }

  async listTags(repository: string, signal?: AbortSignal): Promise<string[]> {
    const base = new URL(this.baseUrl);
    let url: URL = new URL(`/v2/${repository}/tags/list`, base);
    const seen = new Set<string>();
    const tags = new Set<string>();
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      seen.add(url.href);
      const { res } = await this.exchange('GET', url, { scope: pullScope(repository), signal, maxBodyBytes: TAG_PAGE_MAX_BYTES });
      this.expectOk(res, `${repository} tag list`);
      for (const tag of this.parseTagPage(res, repository)) tags.add(tag);
      const next = parseLinkNext(res.headers.link, url);
      if (!next) return [...tags].sort();
      // Never follow a Link to another origin: our credentials would go with it.
      if (next.origin !== base.origin) this.fail('protocol', `${repository} tag list: Link points to another host (${next.host})`);
      if (seen.has(next.href)) this.fail('protocol', `${repository} tag list: pagination repeats a page`);
      url = next;
    }
    this.fail('protocol', `${repository} tag list: more than ${MAX_TAG_PAGES} pages`);
  }

  // ---- pushing (mirror) ----

  async headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<BlobInfo> {
    const { res } = await this.exchange('HEAD', `/v2/${repository}/blobs/${digest}`, { scope: pushScope(repository), signal });
    if (res.status === 404) return { exists: false };
    this.expectOk(res, `blob ${repository}@${digest}`);
    const size = header(res, 'content-length');
    return size === undefined ? { exists: true } : { exists: true, size: Number(size) };
  }

  async openBlob(repository: string, blob: { digest: string; size?: number }, signal?: AbortSignal): Promise<{ size: number | undefined; body: StreamResponse['body'] }> {
    const { digest } = blob;
    let url = new URL(`/v2/${repository}/blobs/${digest}`, this.baseUrl);
    const o: ExchangeOptions = { scope: pullScope(repository), signal };
    let authorization = await this.auth.upFront(o.scope, o.signal);
    const seen = new Set<string>();
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === new URL(this.baseUrl).origin;
      const headers: Record<string, string> = { 'User-Agent': this.userAgent };
      if (authorization && sameOrigin) headers.Authorization = authorization.header;
      const res = await this.openStream({ method: 'GET', url, headers, signal, expect: blob });
      if ((res.status === 401 || res.status === 403) && sameOrigin && hop === 0) {
        res.body.resume();
        if (res.status === 403) this.auth.refused(res.status, authorization);
        authorization = await this.auth.answer(parseWwwAuthenticate(res.headers['www-authenticate']), o.scope, o.signal, res.status);
        continue;
      }
      // Registries on object storage (S3, Docker Hub's CDN) send blob reads elsewhere; our
      // credentials never follow to another origin.
      const next = this.redirectTarget(res.status, header(res, 'location'), url, seen, hop);
      if (next) {
        res.body.resume();
        url = next;
        continue;
      }
      if (res.status !== 200) {
        const body = await drain(res.body);
        this.expectOk({ status: res.status, headers: res.headers, body }, `blob ${repository}@${digest}`);
      }
      const length = header(res, 'content-length');
      return { size: length === undefined ? undefined : Number(length), body: res.body };
    }
  }

  async startUpload(repository: string, mount?: { digest: string; from: string }, signal?: AbortSignal): Promise<UploadStart> {
    const query = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
    const scope = mount && mount.from !== repository ? `${pushScope(repository)} ${pullScope(mount.from)}` : pushScope(repository);
    const { res } = await this.exchange('POST', `/v2/${repository}/blobs/uploads/${query}`, { scope, signal, headers: { 'Content-Length': '0' } });
    if (res.status === 201 && mount) return { mounted: true };
    this.expectOk(res, `upload to ${repository}`);
    const location = header(res, 'location');
    if (res.status !== 202 || !location) this.fail('protocol', `upload to ${repository}: answer ${res.status} without a Location`, res.status);
    const url = new URL(location, this.baseUrl);
    if (url.origin !== new URL(this.baseUrl).origin) this.fail('protocol', `upload to ${repository}: Location points to another host (${url.host})`);
    return { mounted: false, location: url };
  }

  async finishUpload(location: URL, digest: string, size: number, body: import('node:stream').Readable, signal?: AbortSignal): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const scope = pushScope(/^\/v2\/(.+)\/blobs\/uploads\//.exec(url.pathname)?.[1] ?? '');
    // The upload was started with this scope a moment ago, so the authorization is known: a
    // streamed body cannot be sent twice to answer a challenge.
    const authorization = await this.auth.upFront(scope, signal);
    const headers: Record<string, string> = { 'User-Agent': this.userAgent, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) };
    if (authorization) headers.Authorization = authorization.header;
    const res = await this.openStream({ method: 'PUT', url, headers, upload: body, signal });
    const answer = await drain(res.body);
    if (res.status === 401 || res.status === 403) this.auth.refused(res.status, authorization);
    this.expectOk({ status: res.status, headers: res.headers, body: answer }, `upload of ${digest}`);
  }

  async putManifest(repository: string, reference: string, mediaType: string, body: Buffer, signal?: AbortSignal): Promise<string> {
    const { res } = await this.exchange('PUT', this.manifestPath(repository, reference), {
      scope: pushScope(repository),
      signal,
      body,
      headers: { 'Content-Type': mediaType },
    });
    this.expectOk(res, `manifest ${refText(repository, reference)}`);
    return header(res, 'docker-content-digest') ?? sha256(body);
  }

  private async openStream(req: Omit<StreamRequest, 'idleTimeoutMs'>): Promise<StreamResponse> {
    const transport = this.transport();
    if (!transport.open) this.fail('protocol', 'this transport cannot stream blobs');
    try {
      return await transport.open({ ...req, idleTimeoutMs: this.opts.timeoutMs });
    } catch (error) {
      throw networkError(this.failures, error, undefined);
    }
  }

  // ---- plumbing ----

  private manifestPath(repository: string, reference: string): string {
    return `/v2/${repository}/manifests/${reference}`;
  }

  private parseTagPage(res: HttpResponse, repository: string): string[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body.toString('utf8'));
    } catch {
      this.fail('protocol', `${repository} tag list is not valid JSON`, res.status);
    }
    const list = (parsed as { tags?: unknown } | null)?.tags;
    if (list === null || list === undefined) return []; // an empty page (OCI allows null)
    if (!Array.isArray(list) || !list.every((t): t is string => typeof t === 'string')) {
      this.fail('protocol', `${repository} tag list has no "tags" array of strings`, res.status);
    }
    return list;
  }

  private fail(kind: RegistryFailureKind, detail: string, status?: number): never {
    throw registryError(this.failures, kind, detail, status);
  }

  /** Throws the right RegistryRequestError for any non-2xx answer. */
  private expectOk(res: HttpResponse, what: string): void {
    if (res.status >= 200 && res.status < 300) return;
    throw answerError(this.failures, res, what);
  }

  private transport(): Transport {
    if (this.transportValue) return this.transportValue;
    let tls;
    try {
      tls = resolveTls(this.endpoint, { env: this.opts.env, ...(this.opts.certsDir ? { certsDir: this.opts.certsDir } : {}) });
    } catch (error) {
      this.fail('tls', `${(error as Error).message} — fix ca: for this mirror`);
    }
    this.transportValue = createTransport({ env: this.opts.env, tls: { ...(tls.ca ? { ca: tls.ca } : {}), rejectUnauthorized: tls.rejectUnauthorized } });
    return this.transportValue;
  }

  /**
   * One HTTP exchange, following redirects (registries send blobs and sometimes manifests to
   * storage on another host) up to MAX_REDIRECTS. The Authorization header goes only to the
   * registry's own origin, never to a host a redirect names: it was issued for this registry.
   * Uploads (PUT/POST/PATCH) do not follow redirects. Network failures become RegistryRequestError.
   */
  private async send(method: Method, start: URL, headers: Record<string, string>, o: ExchangeOptions): Promise<{ res: HttpResponse; url: URL }> {
    const origin = new URL(this.baseUrl).origin;
    const seen = new Set<string>();
    let url = start;
    for (let hop = 0; ; hop++) {
      const sent = url.origin === origin ? headers : withoutAuthorization(headers);
      let res: HttpResponse;
      try {
        res = await this.transport().request({
          method,
          url,
          headers: sent,
          ...(o.body ? { body: o.body } : {}),
          timeoutMs: this.opts.timeoutMs,
          signal: o.signal,
          ...(o.maxBodyBytes ? { maxBodyBytes: o.maxBodyBytes } : {}),
        });
      } catch (error) {
        throw networkError(this.failures, error, url.origin === origin ? undefined : url.host, o.maxBodyBytes, 'redirect target');
      }
      // Only reads follow redirects: an upload's body is not sent twice.
      const next = method === 'GET' || method === 'HEAD' ? this.redirectTarget(res.status, header(res, 'location'), url, seen, hop) : undefined;
      if (!next) return { res, url };
      url = next;
    }
  }

  /**
   * Where a redirect answer points, or undefined when the answer is not one. Refuses what a
   * broken or hostile mirror can send: an invalid or non-http(s) location, a loop, a chain longer
   * than MAX_REDIRECTS. `seen` carries the chain's URLs between hops.
   */
  private redirectTarget(status: number, location: string | undefined, url: URL, seen: Set<string>, hop: number): URL | undefined {
    if (!REDIRECT_STATUSES.has(status) || !location) return undefined;
    seen.add(url.href);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      this.fail('protocol', `redirect to an invalid location (${oneLine(location, 80)})`, status);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') this.fail('protocol', `redirect to a ${next.protocol} URL`, status);
    if (seen.has(next.href)) this.fail('protocol', `redirect loop at ${next.host}${next.pathname}`, status);
    if (hop + 1 >= MAX_REDIRECTS) this.fail('protocol', `more than ${MAX_REDIRECTS} redirects`, status);
    return next;
  }

  /**
   * A request with authentication: the scheme learnt from an earlier challenge is used up front
   * (saving the 401 round trip); a 401 is answered once with fresh authorization.
   */
  private async exchange(method: Method, target: string | URL, o: ExchangeOptions): Promise<{ res: HttpResponse; authenticated: boolean }> {
    const url = typeof target === 'string' ? new URL(target, this.baseUrl) : target;
    let authorization = await this.auth.upFront(o.scope, o.signal);
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { 'User-Agent': this.userAgent, ...o.headers };
      if (o.accept) headers.Accept = o.accept;
      if (authorization) headers.Authorization = authorization.header;
      const { res, url: answered } = await this.send(method, url, headers, o);
      if (res.status !== 401 && res.status !== 403) return { res, authenticated: authorization?.withCredentials ?? false };
      if (answered.origin !== url.origin) {
        this.fail('auth', `redirected to ${answered.host}, which asks for authentication (${res.status}); credentials for ${this.host} are not sent to another host`, res.status);
      }
      if (res.status === 403 || round > 0) this.auth.refused(res.status, authorization, registryErrorText(res.body));
      this.auth.forget(authorization);
      const next = await this.auth.answer(parseWwwAuthenticate(res.headers['www-authenticate']), o.scope, o.signal, res.status);
      if (authorization && next.header === authorization.header) this.auth.refused(res.status, authorization);
      authorization = next;
    }
  }
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { Authorization: _dropped, ...rest } = headers;
  return rest;
}

function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

async function drain(body: AsyncIterable<Buffer>, max = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < max) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).subarray(0, max);
}

function refText(repository: string, reference: string): string {
  return isValidDigest(reference) ? `${repository}@${reference}` : `${repository}:${reference}`;
}

/** A client for one registry host. Nothing is contacted until a method is called. */
export function createRegistryClient(endpoint: RegistryEndpoint, opts: RegistryClientOptions): RegistryClientHandle {
  return new Client(endpoint, opts);
}
