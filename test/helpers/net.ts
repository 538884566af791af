// Loopback network fixtures for failure cases a real registry cannot produce on demand: a port
// nobody listens on, a server that accepts TCP and never answers, and small node:http stubs that
// answer 500/429/401/garbage. Real registry behaviour is tested against docker-registry
// (test/helpers/registry.ts); these stubs only stand in for broken mirrors.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { accessSync, constants, mkdtempSync, statSync } from 'node:fs';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the helpers need from a tap test: somewhere to register cleanup. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

let scratchRoot: string | undefined;

/**
 * A fresh temp dir for harness state (registry storage, certificates). Prefers tmpfs
 * (/dev/shm): seeding thousands of tags is ~20× faster there than on the VM's disk. The caller
 * removes it in teardown.
 */
export function harnessTempDir(prefix: string): string {
  if (scratchRoot === undefined) {
    scratchRoot = tmpdir();
    try {
      if (statSync('/dev/shm').isDirectory()) {
        accessSync('/dev/shm', constants.W_OK);
        scratchRoot = '/dev/shm';
      }
    } catch {
      // no tmpfs: the OS temp dir it is
    }
  }
  return mkdtempSync(join(scratchRoot, prefix));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('could not read the bound port');
  return address.port;
}

/**
 * A port with nothing listening: connecting to it is refused at once. The port was bound and
 * released, so it is very unlikely to be taken again within a test.
 */
export async function startRefusingPort(): Promise<{ port: number; host: string; url: string }> {
  const port = await freePort();
  return { port, host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
}

export interface Blackhole {
  port: number;
  host: string;
  url: string;
  /** TCP connections accepted so far. */
  connections(): number;
}

/** Accepts TCP connections and never sends a byte: the client's timeout must fire. */
export async function startBlackhole(t: TeardownHost): Promise<Blackhole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createNetServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    // Reads are consumed so the peer's writes never block; nothing is ever written back.
    socket.resume();
  });
  await listen(server);
  const port = boundPort(server);
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, connections: () => accepted };
}

export type StubHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

export interface HttpStub {
  port: number;
  host: string;
  url: string;
  /** `METHOD path` of every request, in arrival order. */
  requests(): string[];
  /** Headers of every request, in arrival order. */
  requestHeaders(): IncomingMessage['headers'][];
  /** How many TCP connections clients opened to it. */
  connections(): number;
}

/**
 * A node:http server on `address` (127.0.0.1 unless a test needs a second loopback host) answering with `handler`; used for misbehaving mirrors
 * (5xx, 429, 401 loops, malformed JSON, distribution-v3-style `Link` pagination).
 */
export async function startHttpStub(t: TeardownHost, handler: StubHandler, address = '127.0.0.1'): Promise<HttpStub> {
  const seen: string[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const server: Server = createHttpServer((req, res) => {
    seen.push(`${req.method ?? '?'} ${req.url ?? ''}`);
    headers.push(req.headers);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, res, Buffer.concat(chunks))).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(599);
        res.end(String(error));
      });
    });
  });
  server.keepAliveTimeout = 1000;
  let connections = 0;
  server.on('connection', () => connections++);
  await listen(server, address);
  const port = boundPort(server);
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port,
    host: `${address}:${port}`,
    url: `http://${address}:${port}`,
    requests: () => [...seen],
    requestHeaders: () => [...headers],
    connections: () => connections,
  };
}

/**
 * A TCP server on 127.0.0.1 that answers each connection, once its first bytes (the request)
 * arrive, with whatever `answer` writes: for framing lies node:http will not write. Returns
 * `127.0.0.1:PORT`.
 */
export async function startRawServer(t: TeardownHost, answer: (socket: Socket, request: Buffer) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (request: Buffer) => answer(socket, request));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `127.0.0.1:${boundPort(server)}`;
}

/** Answers every request with a registry-style JSON error (`{"errors":[…]}`). */
export function jsonErrorHandler(status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): StubHandler {
  return (_req, res) => {
    const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Docker-Distribution-Api-Version': 'registry/2.0',
      ...extraHeaders,
    });
    res.end(body);
  };
}

/** User-Agent of the harness's own requests; registries leave them out of `requests()`. */
export const HARNESS_USER_AGENT = 'bxb-test-harness/1';

export interface HarnessResponse {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/**
 * A plain node:http(s) request for the harness itself (readiness polls, pushes). Deliberately
 * independent of src/registry so a client bug cannot hide behind a harness that uses it.
 */
export async function harnessRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; ca?: string; timeoutMs?: number } = {},
): Promise<HarnessResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  return await new Promise<HarnessResponse>((resolve, reject) => {
    const req = send(
      target,
      {
        method: opts.method ?? 'GET',
        headers: {
          'User-Agent': HARNESS_USER_AGENT,
          ...(body ? { 'Content-Length': String(body.length) } : {}),
          ...opts.headers,
        },
        ...(opts.ca ? { ca: opts.ca } : {}),
        agent: false,
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`harness request to ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(server: { listen(port: number, host: string, cb: () => void): unknown; once(e: 'error', cb: (e: Error) => void): unknown }, address = '127.0.0.1'): Promise<void> {
  // Tests stay on loopback: any other address is a bug in the test.
  if (!/^127\.\d+\.\d+\.\d+$/.test(address)) throw new Error(`test servers listen on 127.0.0.0/8 only, not ${address}`);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
}

function boundPort(server: { address(): ReturnType<Server['address']> }): number {
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('could not read the bound port');
  return address.port;
}

/**
 * Forwards one buffered request (from a startHttpStub handler) to a real registry and streams its
 * answer back: stubs that fault only some requests (429 once, a corrupt blob, a stalled layer,
 * a denied push) pass the rest through.
 */
export function forwardTo(to: { url: string; host: string }, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const out = httpRequest(`${to.url}${req.url ?? '/'}`, { method: req.method, headers: { ...req.headers, host: to.host } }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  out.end(body);
}
