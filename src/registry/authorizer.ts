// Who the client is to one registry: the Authorization header of each exchange. The scheme the
// registry asked for (Basic, or Bearer with its realm and service) is remembered, so later
// exchanges send authorization up front and skip the 401 round trip; bearer tokens come from the
// shared TokenCache or the token server, one fetch per (realm, service, scope, account) at a
// time; credentials never go to a plain-HTTP token realm elsewhere. Refusals are worded for the
// user (which credentials, where to put them).
import { basicAuthorization, fetchToken, TOKEN_MAX_BYTES, type TokenCache, tokenCacheKey, TokenError } from './auth.js';
import type { CredentialStore } from './credentials.js';
import { networkError, oneLine, registryError, type FailureContext } from './failures.js';
import type { Challenge } from './headers.js';
import type { Transport } from './exchange.js';
import { isLoopbackHost } from './reference.js';
import type { Credential, RegistryFailureKind } from './types.js';

export interface Authorization {
  header: string;
  /** Built from the user's credentials (not an anonymous token). */
  withCredentials: boolean;
  /** The token's key in the cache, for a bearer token. */
  cacheKey?: string;
}

export interface AuthorizerOptions {
  failures: FailureContext;
  credentials: CredentialStore;
  tokens: TokenCache;
  userAgent: string;
  /** The client's transport (token servers are asked over it, with the registry's TLS settings). */
  transport: () => Transport;
}

type Scheme = { kind: 'basic' } | { kind: 'bearer'; realm: string; service: string | undefined };

export class Authorizer {
  private scheme: Scheme | undefined;
  private credential: Promise<Credential | undefined> | undefined;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly o: AuthorizerOptions) {}

  /** What to send before any challenge: from the scheme an earlier answer asked for, else nothing. */
  async upFront(scope: string | undefined, signal: AbortSignal | undefined): Promise<Authorization | undefined> {
    const scheme = this.scheme;
    if (!scheme) return undefined;
    if (scheme.kind === 'basic') return this.basic();
    return await this.bearer(scheme.realm, scheme.service, scope, signal);
  }

  /** The authorization answering a 401's challenges (WWW-Authenticate), remembered for later. */
  async answer(challenges: Challenge[], scope: string | undefined, signal: AbortSignal | undefined, status: number): Promise<Authorization> {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.scheme = { kind: 'bearer', realm: bearer.params.realm!, service: bearer.params.service };
      return await this.bearer(bearer.params.realm!, bearer.params.service, bearer.params.scope ?? scope, signal);
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = { kind: 'basic' };
      const basic = await this.basic();
      if (basic) return basic;
      this.refused(status, undefined);
    }
    this.fail('auth', `authentication required (${status}) with no usable challenge (WWW-Authenticate: ${challenges.map((c) => c.scheme).join(', ') || 'none'})`, status);
  }

  /** A refused token leaves the cache, so the next answer fetches a fresh one. */
  forget(authorization: Authorization | undefined): void {
    if (authorization?.cacheKey) this.o.tokens.delete(authorization.cacheKey);
  }

  /** Throws the error for a 401/403 answered to `authorization` (`reason`: the registry's words). */
  refused(status: number, authorization: Authorization | undefined, reason?: string): never {
    const { host } = this.o.failures;
    // A 403 with credentials is often not about them: a push quota, an immutable tag, a
    // read-only robot account; the registry's own words say which.
    if (authorization?.withCredentials && status === 403 && reason) {
      this.fail('auth', `denied (403 ${oneLine(reason, 160)}) — check the rights of the credentials for ${host}`, status);
    }
    if (authorization?.withCredentials) {
      this.fail('auth', `authentication failed (${status}) — check the credentials for ${host} in docker config.json / DOCKER_AUTH_CONFIG`, status);
    }
    this.fail('auth', `authentication required (${status}) — no credentials for ${host}; add them to docker config.json / DOCKER_AUTH_CONFIG`, status);
  }

  private fail(kind: RegistryFailureKind, detail: string, status?: number): never {
    throw registryError(this.o.failures, kind, detail, status);
  }

  private getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.o.credentials.get(this.o.failures.host);
    return this.credential;
  }

  private async basic(): Promise<Authorization | undefined> {
    const credential = await this.getCredential();
    if (!credential || !('password' in credential)) return undefined;
    return { header: basicAuthorization(credential.username, credential.password), withCredentials: true };
  }

  private async bearer(realm: string, service: string | undefined, scope: string | undefined, signal: AbortSignal | undefined): Promise<Authorization> {
    const credential = await this.getCredential();
    const account = !credential ? 'anonymous' : 'identityToken' in credential ? 'identity-token' : `user:${credential.username}`;
    const key = `${tokenCacheKey(realm, service, scope)}|${account}`;
    const cached = this.o.tokens.get(key);
    const withCredentials = credential !== undefined;
    if (cached) return { header: `Bearer ${cached}`, withCredentials, cacheKey: key };
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchTokenFor(realm, service, scope, credential, signal, key);
      this.inflight.set(key, pending);
      pending.then(
        () => this.inflight.delete(key),
        () => this.inflight.delete(key),
      );
    }
    return { header: `Bearer ${await pending}`, withCredentials, cacheKey: key };
  }

  private async fetchTokenFor(realm: string, service: string | undefined, scope: string | undefined, credential: Credential | undefined, signal: AbortSignal | undefined, key: string): Promise<string> {
    const { host, baseUrl, timeoutMs, secrets } = this.o.failures;
    let realmHost = realm;
    try {
      realmHost = new URL(realm).host;
    } catch {
      // fetchToken reports the bad realm
    }
    if (credential && /^http:/i.test(realm) && !isLoopbackHost(realmHost) && !(realmHost === host && baseUrl.startsWith('http:'))) {
      this.fail('auth', `token realm ${realmHost} is plain HTTP; credentials for ${host} are not sent over it — the registry's WWW-Authenticate must name an https:// realm`);
    }
    try {
      const issued = await fetchToken(this.o.transport(), { realm, service, scope, credential, timeoutMs, signal, userAgent: this.o.userAgent });
      secrets.add(issued.token);
      this.o.tokens.set(key, issued.token, issued.expiresInSeconds);
      return issued.token;
    } catch (error) {
      if (error instanceof TokenError) {
        if (error.kind === 'auth') {
          if (credential) this.fail('auth', `authentication failed at token server ${realmHost} (${error.status}) — check the credentials for ${host} in docker config.json / DOCKER_AUTH_CONFIG`, error.status);
          this.fail('auth', `token server ${realmHost} requires credentials (${error.status}) — no credentials for ${host}; add them to docker config.json / DOCKER_AUTH_CONFIG`, error.status);
        }
        this.fail(error.kind, `token server ${realmHost}: ${error.message}`, error.status);
      }
      throw networkError(this.o.failures, error, realmHost, TOKEN_MAX_BYTES);
    }
  }
}
