// A small Docker Engine API client on node:http / node:https: unversioned paths (the daemon's own
// API version answers), JSON in and out, request and response bodies streamed for load and save.
// Loading it costs nothing beyond Node's own http modules — a docker library would cost several
// times `node -e 0` at start-up (measured in the issue: dockerode pulls in 56 packages).
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EngineEndpoint } from './endpoint.js';

export interface EngineRequest {
  method?: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  query?: Record<string, string>;
  /** Streamed as the request body. */
  body?: Readable;
  /** The body's length when known: sent as Content-Length instead of chunked encoding. */
  contentLength?: number;
  contentType?: string;
  /** Extra request headers (X-Registry-Auth). */
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

export interface EngineResponse {
  status: number;
  body: Buffer;
}

/** A failure to talk to the daemon at all (not an HTTP error status). */
export class EngineUnreachable extends Error {}

export interface EngineClient {
  readonly endpoint: EngineEndpoint;
  /** Sends a request and buffers the response. Throws EngineUnreachable when no answer came. */
  call(req: EngineRequest): Promise<EngineResponse>;
  /** Sends a request and streams a 2xx response body into `sink`; other statuses are buffered. */
  stream(req: EngineRequest, sink: Writable): Promise<EngineResponse>;
  /** JSON of a 2xx answer; `undefined` for 404. */
  json<T>(req: EngineRequest): Promise<T | undefined>;
}

/** The daemon's error text from a non-2xx answer (`{"message": "…"}`). */
export function engineMessage(res: EngineResponse): string {
  try {
    const parsed = JSON.parse(res.body.toString('utf8')) as { message?: string };
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON
  }
  return res.body.toString('utf8').trim() || `HTTP ${res.status}`;
}

/** node:https (and TLS) load only for a TLS endpoint: a unix socket needs neither. */
export async function createEngineClient(endpoint: EngineEndpoint): Promise<EngineClient> {
  const tls = endpoint.kind === 'tcp' ? endpoint.tls : undefined;
  const https = tls ? await import('node:https') : undefined;
  // Keep-alive: the facts of one run go over one or two connections (a TLS handshake each
  // otherwise). Idle sockets are unref'd by the agent, so they never hold the process open.
  const agent =
    https && tls
      ? new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.skipVerify })
      : new Agent({ keepAlive: true });
  const send = (req: EngineRequest, onResponse: (res: IncomingMessage) => Promise<EngineResponse>): Promise<EngineResponse> =>
    new Promise<EngineResponse>((resolve, reject) => {
      const qs = req.query ? `?${new URLSearchParams(req.query).toString()}` : '';
      const target =
        endpoint.kind === 'unix'
          ? { socketPath: endpoint.socketPath, host: 'docker' }
          : { host: endpoint.host, port: endpoint.port };
      const doRequest = https ? https.request : httpRequest;
      const headers: Record<string, string> = { ...req.headers };
      if (req.body) headers['Content-Type'] = req.contentType ?? 'application/octet-stream';
      if (req.body && req.contentLength !== undefined) headers['Content-Length'] = String(req.contentLength);
      let answered = false;
      const r = doRequest({ ...target, agent, method: req.method ?? 'GET', path: `${req.path}${qs}`, headers, ...(req.signal ? { signal: req.signal } : {}) }, (res) => {
        answered = true;
        onResponse(res).then(resolve, reject);
      });
      if (req.timeoutMs) r.setTimeout(req.timeoutMs, () => r.destroy(new Error(`timed out after ${req.timeoutMs} ms`)));
      r.on('error', (e) => reject(answered ? e : new EngineUnreachable(`${endpoint.label}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
      if (req.body) pipeline(req.body, r).catch((e: unknown) => r.destroy(e as Error));
      else r.end();
    });
  const buffer = async (res: IncomingMessage): Promise<EngineResponse> => {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
  };
  return {
    endpoint,
    call: (req) => send(req, buffer),
    stream: (req, sink) =>
      send(req, async (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) return buffer(res);
        await pipeline(res, sink);
        return { status, body: Buffer.alloc(0) };
      }),
    async json<T>(req: EngineRequest): Promise<T | undefined> {
      const res = await send(req, buffer);
      if (res.status === 404) return undefined;
      if (res.status < 200 || res.status >= 300) throw new Error(engineMessage(res));
      return JSON.parse(res.body.toString('utf8')) as T;
    },
  };
}
