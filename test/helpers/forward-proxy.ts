// A small HTTP forward proxy on loopback for tests: absolute-form requests (`GET http://h:p/…`, what
// an HTTP_PROXY client sends for plain-HTTP targets) and CONNECT tunnels (HTTPS_PROXY). Whatever
// host a request names, the proxy connects to 127.0.0.1 on the named port — so a test can give a
// loopback registry a name that is not loopback to Go's proxy rules (which never proxy 127.0.0.1)
// while no packet leaves loopback. Every request is logged.
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { TeardownHost } from './net.js';

export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `METHOD target` per request, in order (`GET http://name:5000/v2/…`, `CONNECT name:443`). */
  log(): string[];
}

export async function startForwardProxy(t: TeardownHost): Promise<ForwardProxy> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form request expected');
      return;
    }
    log.push(`${req.method} ${target.href}`);
    const upstream = request(
      { host: '127.0.0.1', port: Number(target.port || 80), method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connection', (s) => sockets.add(s));
  server.on('connect', (req, client: Socket, head) => {
    log.push(`CONNECT ${req.url}`);
    const port = Number((req.url ?? '').split(':').pop());
    const upstream = connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    sockets.add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', close);
    client.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}`, log: () => [...log] };
}
