// What a registry exchange is, whatever carries it: requests and answers (buffered or streamed),
// the transport interface the client is written against, and transport failures with the kind
// the client words them by. The carriers: ./http.ts (node:http/https) and ./raw-http.ts (bare
// sockets, plain-HTTP blob streams).
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RegistryFailureKind } from './types.js';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  url: URL;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Deadline for connect + full response. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Larger bodies fail as `protocol` (a misbehaving server must not exhaust memory). */
  maxBodyBytes?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A streamed exchange (blob copies): the body goes up as a stream, the answer comes back as one. */
export interface StreamRequest {
  method: 'GET' | 'PUT';
  url: URL;
  headers: Record<string, string>;
  /** Streamed request body (Content-Length is the caller's). */
  upload?: Readable;
  /**
   * GET of content by digest: a 200 answer's body is checked against it, and ends with an error
   * (its last bytes held back, see ./digest-check.ts) when the bytes are not what was asked for.
   */
  expect?: { digest: string; size?: number | undefined } | undefined;
  /** Longest silence (connect, headers or between chunks) before the exchange fails as `timeout`. */
  idleTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface StreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body; consume or destroy it. */
  body: Readable;
}

/** The transport interface the client is written against (tests may substitute it). */
export interface Transport {
  request(req: HttpRequest): Promise<HttpResponse>;
  /** Streamed exchange; resolves when the answer's headers arrive (mirror's blob copies). */
  open?(req: StreamRequest): Promise<StreamResponse>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

export class TransportError extends Error {
  readonly kind: RegistryFailureKind;
  /** Node/OpenSSL error code, e.g. ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
  readonly code: string | undefined;
  /** The abort reason when the caller's signal fired. */
  readonly reason: unknown;

  constructor(kind: RegistryFailureKind, message: string, code?: string, reason?: unknown) {
    super(message);
    this.name = 'TransportError';
    this.kind = kind;
    this.code = code;
    this.reason = reason;
  }
}

export interface TlsSettings {
  /** Extra trusted CAs (PEM), added to node's root certificates for every https exchange. */
  ca?: string[];
  /** false only for `insecure: true`. */
  rejectUnauthorized: boolean;
}


/** TransportError code of an answer over its cap (declared or counted). */
export const BODY_TOO_LARGE = 'EBODYTOOLARGE';
/** TransportError code of bytes past the declared end of an answer (not a TLS port: the headers parsed). */
export const BODY_OVERRUN = 'EBODYOVERRUN';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);

/** Certificate-trust failures (as opposed to handshake/protocol ones). */
export const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

/** Maps a node socket/TLS error onto a failure kind. */
export function classifyNetworkError(error: unknown): { kind: RegistryFailureKind; code: string | undefined } {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') return { kind: 'refused', code };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL') return { kind: 'refused', code };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') return { kind: 'dns', code };
  if (code === 'ETIMEDOUT') return { kind: 'timeout', code };
  if ((code && (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) || /SSL routines|certificate/i.test(message)) {
    return { kind: 'tls', code };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message)) return { kind: 'reset', code: code ?? 'ECONNRESET' };
  if (code === 'HPE_INVALID_CONSTANT' || code?.startsWith('HPE_')) return { kind: 'protocol', code };
  return { kind: 'reset', code };
}
