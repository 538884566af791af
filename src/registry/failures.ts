// How a failed registry exchange is worded: one line naming the host, what failed and what to do
// about it, secrets redacted, as a RegistryRequestError the resolver can rank (its kind) and
// retry (Retry-After). Pure functions of the answer or the transport error; the client
// (client.ts) throws what they return.
import type { Secrets } from '../io.js';
import { parseRateLimit } from './headers.js';
import { BODY_OVERRUN, BODY_TOO_LARGE, TransportError, UNTRUSTED_CERT_CODES, type HttpResponse } from './exchange.js';
import { RegistryRequestError, type RegistryFailureKind } from './types.js';

export interface FailureContext {
  host: string;
  /** `http://host` or `https://host`: a plain-HTTP endpoint's garbled answers hint at TLS. */
  baseUrl: string;
  /** The exchange deadline, named in a timeout. */
  timeoutMs: number;
  secrets: Secrets;
}

export function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` → `MANIFEST_UNKNOWN`. */
function registryErrorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown }[] };
    const code = parsed.errors?.[0]?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** `{"errors":[{"code":"DENIED","message":"quota exceeded"}]}` → `DENIED: quota exceeded`. */
export function registryErrorText(body: Buffer): string | undefined {
  try {
    const first = (JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] }).errors?.[0];
    if (typeof first?.code !== 'string') return undefined;
    return typeof first.message === 'string' && first.message ? `${first.code}: ${first.message}` : first.code;
  } catch {
    return undefined;
  }
}

/** `Retry-After`: seconds or an HTTP date. */
function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export function registryError(ctx: FailureContext, kind: RegistryFailureKind, detail: string, status?: number): RegistryRequestError {
  return new RegistryRequestError(kind, ctx.host, ctx.secrets.redact(oneLine(`${ctx.host}: ${detail}`, 400)), status);
}

/** The error for a non-2xx answer to `what` (a reference, `GET /v2/`, an upload), Retry-After kept. */
export function answerError(ctx: FailureContext, res: HttpResponse, what: string): RegistryRequestError {
  const { status } = res;
  const code = registryErrorCode(res.body);
  const codeText = code ? ` ${code}` : '';
  const retry = header(res, 'retry-after');
  let error: RegistryRequestError;
  if (status === 404) error = registryError(ctx, 'not-found', `${what} not found (404${codeText})`, status);
  else if (status === 429) {
    const rl = parseRateLimit(res.headers);
    const quota = rl?.limit !== undefined ? `; quota ${rl.limit}${rl.windowSeconds ? ` per ${rl.windowSeconds / 3600} h` : ''}` : '';
    error = registryError(ctx, 'rate-limited', `rate limited (429${codeText})${retry ? `, retry after ${oneLine(retry, 40)} s` : ''}${quota} — use a mirror or log in`, status);
  } else if (status >= 500) error = registryError(ctx, 'server', `server error (${status}${codeText}) for ${what}`, status);
  else error = registryError(ctx, 'protocol', `unexpected answer ${status}${codeText} for ${what}`, status);
  error.retryAfterMs = retryAfterMs(retry);
  return error;
}

/**
 * The error for an exchange that got no usable answer: refused, timed out, a TLS problem, an
 * answer over its cap. `via` names another host involved (a token server, a redirect target).
 */
export function networkError(ctx: FailureContext, error: unknown, via: string | undefined, maxBodyBytes?: number, viaWhat = 'token server'): RegistryRequestError {
  if (error instanceof RegistryRequestError) return error;
  const where = via ? `${viaWhat} ${via}: ` : '';
  const fail = (kind: RegistryFailureKind, detail: string): RegistryRequestError => registryError(ctx, kind, `${where}${detail}`);
  const plainHttp = ctx.baseUrl.startsWith('http:');
  if (!(error instanceof TransportError)) return fail('protocol', error instanceof Error ? error.message : String(error));
  if (error.code === BODY_TOO_LARGE) return fail('protocol', `answer larger than ${maxBodyBytes ?? 'the'} bytes allowed for it — refused (a broken mirror or proxy?)`);
  if (error.code === BODY_OVERRUN) return fail('protocol', 'answer longer than its Content-Length — refused (a broken mirror or proxy?)');
  if (error.kind === 'aborted') {
    // The resolver aborts losers and timed-out probes with a RegistryRequestError reason.
    if (error.reason instanceof RegistryRequestError) return error.reason;
    return fail('aborted', 'request aborted');
  }
  const code = error.code ? ` (${error.code})` : '';
  switch (error.kind) {
    case 'timeout':
      return fail('timeout', `no answer within ${ctx.timeoutMs} ms`);
    case 'refused':
      return fail('refused', `connection refused${code}`);
    case 'dns':
      return fail('dns', `host not found${code}`);
    case 'tls':
      if (error.code && UNTRUSTED_CERT_CODES.has(error.code)) {
        return fail('tls', `TLS certificate not trusted${code} — set ca: for this mirror or put the CA in /etc/docker/certs.d/${via ?? ctx.host}/ca.crt`);
      }
      if (error.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return fail('tls', `TLS certificate is not valid for this host name${code}`);
      if (error.code === 'CERT_HAS_EXPIRED') return fail('tls', `TLS certificate has expired${code}`);
      return fail('tls', `TLS handshake failed${code} — if it serves plain HTTP, set http: true for it`);
    case 'reset':
      return fail('reset', `connection reset${code}${plainHttp ? ' — if it serves HTTPS, give it a ca: (or drop http: true)' : ''}`);
    default:
      // Plain HTTP to a port that speaks TLS gets a garbled answer, not a TLS error.
      return fail(error.kind, `malformed HTTP answer${code}${plainHttp ? ' — if it serves HTTPS, give it a ca: (or insecure: true)' : ''}`);
  }
}
