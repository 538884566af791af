// The registry transport: one HTTP exchange on node:http/https (not global fetch: loading undici
// costs ~2× a bare node start-up on these machines, see issue 2), with a deadline covering
// connect + complete response, an AbortSignal, TLS settings per registry and HTTP(S)_PROXY /
// NO_PROXY. Failures become TransportError with a RegistryFailureKind; the client words them.
// Blob streams to and from a plain-HTTP registry reached without a proxy go over bare sockets
// instead (./raw-http.ts); what that reader does not frame comes back here.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent as HttpsAgent } from 'node:https';
import { BODY_OVERRUN, BODY_TOO_LARGE, classifyNetworkError, TransportError, type HttpRequest, type HttpResponse, type StreamRequest, type StreamResponse, type TlsSettings, type Transport } from './exchange.js';
import type { RawPool } from './raw-http.js';
import { isLoopbackHost } from './reference.js';

export interface TransportOptions {
  env: Record<string, string | undefined>;
  tls: TlsSettings;
}

const DEFAULT_MAX_BODY = 32 * 1024 * 1024;

/**
 * Which proxy URL applies to `url`, following Go's net/http ProxyFromEnvironment (what dockerd
 * and buildx use): HTTPS_PROXY/https_proxy for https, HTTP_PROXY/http_proxy for http, upper
 * case first; NO_PROXY entries are host names (suffix match at a label boundary, leading `.` or
 * `*.` allowed), optional `:port`, or `*`. Loopback is never proxied: a proxy cannot reach the
 * caller's own 127.0.0.1, so sending loopback through it is never what anyone means (curl
 * would; Go would not).
 */
export function proxyFor(url: URL, env: Record<string, string | undefined>): URL | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isLoopbackHost(host)) return undefined;
  const https = url.protocol === 'https:';
  const raw = https ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? '';
  const port = url.port || (https ? '443' : '80');
  for (const rawEntry of noProxy.split(/[\s,]+/)) {
    const entry = rawEntry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return undefined;
    let name = entry;
    let entryPort: string | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.endsWith(']') && (m[1]!.includes('.') || !m[1]!.includes(':'))) {
      name = m[1]!;
      entryPort = m[2];
    }
    name = name.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
    if (entryPort && entryPort !== port) continue;
    const h = host.toLowerCase();
    if (h === name || h.endsWith(`.${name}`)) return undefined;
  }
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    return undefined;
  }
}

type AgentLike = RequestOptions['agent'];
type Send = typeof httpRequest;

// node:https (and the TLS stack under it) is loaded on the first https exchange only: a plain-HTTP
// mirror (the loopback and in-cluster case) never pays for it.
let httpsModule: Promise<typeof import('node:https')> | undefined;
const loadHttps = (): Promise<typeof import('node:https')> => (httpsModule ??= import('node:https'));
// Blob streams only (mirror): no other command loads the bare-socket carrier or the digest check.
let rawModule: Promise<typeof import('./raw-http.js')> | undefined;
const loadRaw = (): Promise<typeof import('./raw-http.js')> => (rawModule ??= import('./raw-http.js'));
let digestCheckModule: Promise<typeof import('./digest-check.js')> | undefined;
const loadDigestCheck = (): Promise<typeof import('./digest-check.js')> => (digestCheckModule ??= import('./digest-check.js'));

export function createTransport(opts: TransportOptions): Transport {
  // Passing `ca` to a TLS connection *replaces* node's store, so a custom bundle is node's root
  // certificates + the extra ones; node:tls is loaded for that only when an https exchange needs it.
  const { rejectUnauthorized, ca: extraCa } = opts.tls;
  type TargetTls = { ca?: string[]; rejectUnauthorized: boolean };
  let tlsValue: Promise<TargetTls> | undefined;
  const tlsOptions = (): Promise<TargetTls> =>
    (tlsValue ??= extraCa?.length ? import('node:tls').then(({ rootCertificates }) => ({ ca: [...rootCertificates, ...extraCa], rejectUnauthorized })) : Promise.resolve({ rejectUnauthorized }));
  let httpAgent: HttpAgent | undefined;
  let httpsAgent: HttpsAgent | undefined;
  const proxyAgents = new Map<string, Promise<AgentLike>>();
  let rawPool: RawPool | undefined;

  /**
   * The agent, request function and target TLS options for `url`, direct or through the proxy
   * that applies. The TLS options go on each request too: https-proxy-agent takes the target's
   * TLS settings from the request options (its constructor options are for the proxy connection).
   */
  const routeFor = async (url: URL): Promise<{ agent: AgentLike; send: Send; tls: object }> => {
    if (url.protocol !== 'https:') return { agent: await agentFor(url, undefined), send: httpRequest, tls: {} };
    const [{ request: send, Agent }, tls] = await Promise.all([loadHttps(), tlsOptions()]);
    return { agent: await agentFor(url, { Agent, tls }), send, tls };
  };

  /** `https`: node:https's Agent and the target's TLS options, for an https URL. */
  const agentFor = async (url: URL, https: { Agent: typeof HttpsAgent; tls: TargetTls } | undefined): Promise<AgentLike> => {
    const proxy = proxyFor(url, opts.env);
    if (!proxy) {
      if (https) return (httpsAgent ??= new https.Agent({ keepAlive: true, ...https.tls }));
      return (httpAgent ??= new HttpAgent({ keepAlive: true }));
    }
    const key = `${https ? 'https' : 'http'} ${proxy.href}`;
    let agent = proxyAgents.get(key);
    if (!agent) {
      // Loaded only when a proxy applies: most runs never pay for these modules.
      agent = https
        ? import('https-proxy-agent').then(({ HttpsProxyAgent }) => new HttpsProxyAgent(proxy, { keepAlive: true }))
        : import('http-proxy-agent').then(({ HttpProxyAgent }) => new HttpProxyAgent(proxy, { keepAlive: true }));
      proxyAgents.set(key, agent);
    }
    return await agent;
  };

  const request = async (req: HttpRequest): Promise<HttpResponse> => {
    const { signal } = req;
    if (signal?.aborted) throw new TransportError('aborted', 'aborted', undefined, signal.reason);
    const { agent, send, tls: tlsForTarget } = await routeFor(req.url);
    const maxBody = req.maxBodyBytes ?? DEFAULT_MAX_BODY;
    return await new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const fail = (error: TransportError): void => {
        finish(() => reject(error));
        clientRequest.destroy();
      };
      const onAbort = (): void => fail(new TransportError('aborted', 'aborted', undefined, signal?.reason));
      const timer = setTimeout(() => fail(new TransportError('timeout', `no answer within ${req.timeoutMs} ms`, 'ETIMEDOUT')), req.timeoutMs);
      const headers: Record<string, string> = { ...req.headers };
      if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));
      let response: IncomingMessage | undefined;
      const clientRequest = send(req.url, { method: req.method, headers, agent, ...tlsForTarget }, (res) => {
        response = res;
        const chunks: Buffer[] = [];
        let size = 0;
        const tooLarge = (): void => {
          fail(new TransportError('protocol', `response larger than ${maxBody} bytes`, BODY_TOO_LARGE));
          res.destroy();
        };
        // A declared length over the cap is refused before a byte is read; a lying one is cut off
        // when the count passes the cap, so memory never grows past it either way.
        if (Number(res.headers['content-length'] ?? 0) > maxBody) {
          tooLarge();
          return;
        }
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBody) {
            tooLarge();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })));
        res.on('error', (error) => {
          const { kind, code } = classifyNetworkError(error);
          fail(new TransportError(kind, error.message, code));
        });
        res.on('aborted', () => fail(new TransportError('reset', 'connection closed mid-response', 'ECONNRESET')));
      });
      clientRequest.on('error', (error) => {
        const { kind, code } = classifyNetworkError(error);
        // llhttp reports bytes after a complete body (res.complete) before the body's 'end': refused.
        // Not for a 4xx: Go's TLS server answers plain HTTP with a bodied `400` (even to HEAD),
        // and that one is worded as a TLS port by the client.
        if (response?.complete && (response.statusCode ?? 0) < 400 && code?.startsWith('HPE_')) fail(new TransportError('protocol', `bytes past the declared end of the answer (${code})`, BODY_OVERRUN));
        else fail(new TransportError(kind, error.message, code));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      // The signal may have fired while the agent (a proxy module) was loading.
      if (signal?.aborted) onAbort();
      else clientRequest.end(req.body);
    });
  };

  const open = async (req: StreamRequest): Promise<StreamResponse> => {
    const { signal } = req;
    if (signal?.aborted) throw new TransportError('aborted', 'aborted', undefined, signal.reason);
    if (req.url.protocol === 'http:' && !proxyFor(req.url, opts.env)) {
      const raw = await loadRaw();
      const answer = await raw.rawOpen(req, (rawPool ??= new raw.RawPool()));
      if (answer) return answer;
    }
    const check = req.expect ? await loadDigestCheck() : undefined;
    const { agent, send, tls: tlsForTarget } = await routeFor(req.url);
    return await new Promise<StreamResponse>((resolve, reject) => {
      let answered = false;
      const clientRequest = send(req.url, { method: req.method, headers: req.headers, agent, ...tlsForTarget });
      const fail = (error: TransportError): void => {
        signal?.removeEventListener('abort', onAbort);
        if (!answered) reject(error);
        clientRequest.destroy(error);
        req.upload?.destroy();
      };
      const onAbort = (): void => fail(new TransportError('aborted', 'aborted', undefined, signal?.reason));
      // An idle timeout, not a total one: a large layer may take long, a stalled one must not.
      clientRequest.setTimeout(req.idleTimeoutMs, () => fail(new TransportError('timeout', `no data for ${req.idleTimeoutMs} ms`, 'ETIMEDOUT')));
      clientRequest.on('response', (res) => {
        answered = true;
        res.on('close', () => signal?.removeEventListener('abort', onAbort));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: check && req.expect && res.statusCode === 200 ? checked(res, check.verifyingStream(req.expect.digest, req.expect.size)) : res });
      });
      clientRequest.on('error', (error) => {
        if (error instanceof TransportError) return fail(error);
        const { kind, code } = classifyNetworkError(error);
        fail(new TransportError(kind, error.message, code));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!req.upload) clientRequest.end();
      else {
        req.upload.on('error', (error) => fail(error instanceof TransportError ? error : new TransportError('protocol', error.message)));
        req.upload.pipe(clientRequest);
      }
    });
  };

  return {
    request,
    open,
    close: () => {
      rawPool?.close();
      httpAgent?.destroy();
      httpsAgent?.destroy();
      for (const agent of proxyAgents.values()) void agent.then((a) => (a as { destroy?: () => void } | undefined)?.destroy?.(), () => undefined);
    },
  };
}

/** `res` through a digest check (what raw-http.ts does in its read loop). */
function checked(res: IncomingMessage, out: Readable & NodeJS.WritableStream): Readable {
  res.on('error', (error) => out.destroy(error));
  out.on('close', () => {
    if (!res.complete) res.destroy(); // the reader gave up: stop the download
  });
  return res.pipe(out);
}
