// The transport's proxy rules, and proxies end to end: a loopback proxy stub in front of a
// registry known by a `.invalid` name, so nothing but the proxy can reach it.
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { Secrets } from '../../src/io.js';
import { createRegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { classifyNetworkError } from '../../src/registry/exchange.js';
import { proxyFor } from '../../src/registry/http.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';
import { startHttpStub } from '../helpers/net.js';
import { startRegistry } from '../helpers/registry.js';

t.test('which proxy applies (Go ProxyFromEnvironment rules, loopback never proxied)', async (t) => {
  const env = { HTTPS_PROXY: 'http://proxy.corp:3128', http_proxy: 'proxy.corp:8080', NO_PROXY: '.internal.example, harbor.corp:8443,*.svc' };
  const cases: [string, Record<string, string | undefined>, string | undefined][] = [
    ['https://registry-1.docker.io/v2/', env, 'http://proxy.corp:3128/'],
    ['http://mirror.example/v2/', env, 'http://proxy.corp:8080/'],
    ['https://a.internal.example/v2/', env, undefined],
    ['https://internal.example/v2/', env, undefined],
    ['https://notinternal.example/v2/', env, 'http://proxy.corp:3128/'],
    ['https://harbor.corp:8443/v2/', env, undefined],
    ['https://harbor.corp/v2/', env, 'http://proxy.corp:3128/'],
    ['https://x.svc/v2/', env, undefined],
    ['http://127.0.0.1:5000/v2/', env, undefined],
    ['http://localhost:5000/v2/', env, undefined],
    ['http://[::1]:5000/v2/', env, undefined],
    ['https://r.example/v2/', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }, 'http://upper:2/'],
    ['https://r.example/v2/', { https_proxy: 'http://lower:1', no_proxy: '*' }, undefined],
    ['https://r.example/v2/', {}, undefined],
  ];
  for (const [url, e, want] of cases) t.equal(proxyFor(new URL(url), e)?.href, want, `${url} ${JSON.stringify(e)}`);
});

t.test('network errors map onto failure kinds', async (t) => {
  const err = (code: string, message = code): Error => Object.assign(new Error(message), { code });
  t.equal(classifyNetworkError(err('ECONNREFUSED')).kind, 'refused');
  t.equal(classifyNetworkError(err('ENOTFOUND')).kind, 'dns');
  t.equal(classifyNetworkError(err('EAI_AGAIN')).kind, 'dns');
  t.equal(classifyNetworkError(err('ECONNRESET', 'socket hang up')).kind, 'reset');
  t.equal(classifyNetworkError(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE')).kind, 'tls');
  t.equal(classifyNetworkError(err('ERR_SSL_WRONG_VERSION_NUMBER')).kind, 'tls');
  t.equal(classifyNetworkError(err('HPE_INVALID_CONSTANT')).kind, 'protocol');
});

function client(host: string, env: Record<string, string | undefined>, extra: { http?: boolean; ca?: string } = {}) {
  const secrets = new Secrets();
  const fullEnv = { HOME: '/nonexistent', ...env };
  return createRegistryClient({ host, ...extra }, { credentials: createCredentialStore({ env: fullEnv, secrets }), secrets, env: fullEnv, timeoutMs: 5000 });
}

t.test('HTTP_PROXY carries plain-HTTP registry requests', async (t) => {
  const proxy = await startHttpStub(t, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-Api-Version': 'registry/2.0' });
    res.end(req.url?.endsWith('/tags/list') ? '{"name":"moby/buildkit","tags":["b","a"]}' : '{}');
  });
  const c = client('registry.invalid:5000', { HTTP_PROXY: proxy.url }, { http: true });
  t.teardown(() => c.close());
  t.same(await c.listTags('moby/buildkit'), ['a', 'b']);
  t.same(proxy.requests(), ['GET http://registry.invalid:5000/v2/moby/buildkit/tags/list'], 'absolute-form request to the proxy');
});

t.test('HTTPS_PROXY tunnels to a TLS registry with CONNECT (real registry behind it)', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const reg = await startRegistry(t, { tls: { dnsNames: ['registry.invalid'] } });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} } });
  const connects: string[] = [];
  const sockets = new Set<Socket>();
  const proxy = createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    // Every tunnel leads to the loopback registry, whatever name was asked for.
    const upstream = connect(reg.port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const c = client(`registry.invalid:${reg.port}`, { HTTPS_PROXY: `http://127.0.0.1:${port}` }, { ca: reg.caFile! });
  t.teardown(() => c.close());
  t.equal((await c.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  t.same(connects, [`registry.invalid:${reg.port}`]);

  const bypass = client(`registry.invalid:${reg.port}`, { HTTPS_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: 'registry.invalid' }, { ca: reg.caFile! });
  t.teardown(() => bypass.close());
  t.equal(bypass.baseUrl, `https://registry.invalid:${reg.port}`);
  t.equal(connects.length, 1, 'nothing else went through the proxy');
});
