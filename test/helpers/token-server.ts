// A Docker-style token server (DIST@v2.8.2 docs/spec/auth/token.md) in front of a real
// docker-registry configured with `auth.token`: `GET /token?service=…&scope=…` with optional Basic
// credentials answers `{"token","access_token","expires_in","issued_at"}`, an RS256 JWT whose
// header carries the signing certificate in `x5c`. The registry verifies the chain against
// `rootcertbundle` (= that same self-signed certificate) and checks `iss`, `aud`, `exp`/`nbf` and
// the `access` claim (DIST@v2.8.2 registry/auth/token/token.go, accesscontroller.go).
import { randomUUID, sign } from 'node:crypto';
import { rmSync } from 'node:fs';
import { harnessTempDir, startHttpStub, type TeardownHost } from './net.js';
import { makeTokenSigningCert, pemToDerBase64 } from './tls.js';

export interface TokenServerOptions {
  /** `service` the registry expects (`auth.token.service`); becomes the JWT `aud`. */
  service?: string;
  issuer?: string;
  /** When set, a token is only issued for these Basic credentials (else 401). */
  users?: Record<string, string>;
  /** Issue tokens to requests without credentials (default: true when `users` is unset). */
  anonymous?: boolean;
  /** `expires_in` in the answer and the JWT lifetime; default 300 s. */
  expiresIn?: number;
  /** Omit `expires_in` from the answer (clients must default to 60 s). */
  omitExpiresIn?: boolean;
  /** Refresh (identity) tokens accepted by the OAuth2 `POST` grant, mapped to the user they stand for. */
  refreshTokens?: Record<string, string>;
  /** Which field carries the token: both (like Docker Hub), or only one. */
  tokenField?: 'both' | 'token' | 'access_token';
}

export interface TokenRequest {
  service: string | undefined;
  scopes: string[];
  /** Basic username presented, or the user a refresh token stands for. */
  username: string | undefined;
  method: string;
  status: number;
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT/token` — the registry's `auth.token.realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file for the registry's `auth.token.rootcertbundle`. */
  rootCertFile: string;
  /** Token requests answered so far (any status). */
  requests(): TokenRequest[];
}

export async function startTokenServer(t: TeardownHost, opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = harnessTempDir('bxb-token-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const signer = await makeTokenSigningCert(dir);
  const x5c = [pemToDerBase64(signer.cert)];
  const service = opts.service ?? 'bxb-test-registry';
  const issuer = opts.issuer ?? 'bxb-test-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const anonymous = opts.anonymous ?? !opts.users;
  const log: TokenRequest[] = [];

  const stub = await startHttpStub(t, (req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // GET carries service/scope in the query; the OAuth2 POST grant in a form body
    // (DIST@v2.8.2 docs/spec/auth/oauth.md).
    const params = req.method === 'POST' ? new URLSearchParams(body.toString('utf8')) : url.searchParams;
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const requestedService = params.get('service') ?? undefined;
    let basic = parseBasic(req.headers.authorization);
    const entry: TokenRequest = { service: requestedService, scopes, username: basic?.username, status: 200, method: req.method ?? 'GET' };
    log.push(entry);
    const reject = (status: number, message: string): void => {
      entry.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message }] }));
    };
    if (url.pathname !== '/token') return reject(404, 'not found');
    if (req.method === 'POST') {
      const refresh = params.get('refresh_token') ?? '';
      const user = params.get('grant_type') === 'refresh_token' ? opts.refreshTokens?.[refresh] : undefined;
      if (!user) return reject(401, 'invalid refresh token');
      entry.username = user;
      basic = { username: user, password: opts.users?.[user] ?? '' };
    } else if (basic) {
      if (!opts.users || opts.users[basic.username] !== basic.password) return reject(401, 'invalid username or password');
    } else if (!anonymous) {
      return reject(401, 'authentication required');
    }
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      sub: basic?.username ?? '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: scopes.flatMap(parseScope),
    };
    const header = { typ: 'JWT', alg: 'RS256', x5c };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), signer.key).toString('base64url');
    const token = `${signingInput}.${signature}`;
    const field = opts.tokenField ?? 'both';
    const answer: Record<string, unknown> = { issued_at: new Date(now * 1000).toISOString() };
    if (field !== 'access_token') answer.token = token;
    if (field !== 'token') answer.access_token = token;
    if (!opts.omitExpiresIn) answer.expires_in = expiresIn;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(answer));
  });

  return {
    realm: `${stub.url}/token`,
    service,
    issuer,
    rootCertFile: signer.certFile,
    requests: () => log.map((e) => ({ ...e, scopes: [...e.scopes] })),
  };
}

function b64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** `repository:moby/buildkit:pull,push` → one access entry granting what was asked. */
function parseScope(scope: string): { type: string; name: string; actions: string[] }[] {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return [];
  return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) }];
}
