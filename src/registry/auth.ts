// Registry authentication: Basic headers and the Docker token flow (DIST@v2.8.2
// docs/spec/auth/token.md, docs/spec/auth/oauth.md): `GET <realm>?service=…&scope=…` with Basic
// credentials (or anonymously), or a `POST` refresh-token grant when the user has an identity
// token; the answer's `token` (else `access_token`) is cached per (realm, service, scope) for
// `expires_in` seconds (60 when absent, as the spec says).
import type { HttpResponse, Transport } from './exchange.js';
import type { Credential, RegistryFailureKind } from './types.js';

export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;
/** A token answer is a few KiB (Docker Hub's JWTs ~1 KiB); anything past this is refused. */
export const TOKEN_MAX_BYTES = 1024 * 1024;
/** Tokens are dropped this long before they expire, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 5_000;

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export function tokenCacheKey(realm: string, service: string | undefined, scope: string | undefined): string {
  return JSON.stringify([realm, service ?? '', scope ?? '']);
}

/** Bearer tokens by (realm, service, scope). Lives in a credential store or client, never global. */
export class TokenCache {
  private readonly entries = new Map<string, { token: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(key: string, token: string, expiresInSeconds: number): void {
    const lifetimeMs = Math.max(0, expiresInSeconds * 1000 - EXPIRY_MARGIN_MS);
    this.entries.set(key, { token, expiresAt: this.now() + lifetimeMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** A token request that failed; the client words it for the user. */
export class TokenError extends Error {
  readonly kind: RegistryFailureKind;
  readonly status: number | undefined;

  constructor(kind: RegistryFailureKind, message: string, status?: number) {
    super(message);
    this.name = 'TokenError';
    this.kind = kind;
    this.status = status;
  }
}

export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scope: string | undefined;
  credential: Credential | undefined;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  userAgent: string;
}

export interface IssuedToken {
  token: string;
  expiresInSeconds: number;
}

/** Fetches one token from `realm`. Throws TokenError (HTTP answers) or TransportError (network). */
export async function fetchToken(transport: Transport, req: TokenRequest): Promise<IssuedToken> {
  let url: URL;
  try {
    url = new URL(req.realm);
  } catch {
    throw new TokenError('protocol', `token realm "${req.realm}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TokenError('protocol', `token realm scheme ${url.protocol} is not http(s)`);
  const headers: Record<string, string> = { 'User-Agent': req.userAgent, Accept: 'application/json' };
  let res: HttpResponse;
  if (req.credential && 'identityToken' in req.credential) {
    // OAuth2 refresh-token grant (docs/spec/auth/oauth.md), as docker does for identity tokens.
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: req.credential.identityToken, client_id: 'buildx-bootstrap' });
    if (req.service) form.set('service', req.service);
    if (req.scope) form.set('scope', req.scope);
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    res = await transport.request({ method: 'POST', url, headers, body: form.toString(), timeoutMs: req.timeoutMs, signal: req.signal, maxBodyBytes: TOKEN_MAX_BYTES });
  } else {
    if (req.service) url.searchParams.set('service', req.service);
    for (const scope of (req.scope ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope);
    if (req.credential) headers.Authorization = basicAuthorization(req.credential.username, req.credential.password);
    res = await transport.request({ method: 'GET', url, headers, timeoutMs: req.timeoutMs, signal: req.signal, maxBodyBytes: TOKEN_MAX_BYTES });
  }
  if (res.status === 401 || res.status === 403) throw new TokenError('auth', `token server refused the credentials (${res.status})`, res.status);
  if (res.status === 429) throw new TokenError('rate-limited', 'token server rate limit (429)', res.status);
  if (res.status >= 500) throw new TokenError('server', `token server error ${res.status}`, res.status);
  if (res.status !== 200) throw new TokenError('protocol', `token server answered ${res.status}`, res.status);
  let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    answer = JSON.parse(res.body.toString('utf8')) as typeof answer;
  } catch {
    throw new TokenError('protocol', 'token server answered something that is not JSON', res.status);
  }
  const token = typeof answer.token === 'string' && answer.token ? answer.token : typeof answer.access_token === 'string' ? answer.access_token : '';
  if (!token) throw new TokenError('protocol', 'token server answer has no token', res.status);
  const expires = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : DEFAULT_TOKEN_LIFETIME_SECONDS;
  return { token, expiresInSeconds: expires };
}
