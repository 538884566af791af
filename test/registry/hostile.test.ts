// The real registry client (src/registry/client.ts over src/registry/http.ts) against registries
// and mirrors that lie: bodies longer or shorter than declared, bodies that never end, redirect
// loops, redirects to other hosts, digests that do not match, token realms elsewhere. Each ends in
// a result or a one-line RegistryRequestError naming the registry (exit 3 once the resolver has
// no candidate left), and credentials never reach a host they were not issued for. Every server
// is on loopback: 127.0.0.1 is the registry, 127.0.0.2 "another host".
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Secrets } from '../../src/io.js';
import { createRegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { startHttpStub, startRawServer } from '../helpers/net.js';
import { failure } from '../helpers/registry-failure.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
const digestOf = (body: Buffer, algorithm = 'sha256'): string => `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
const USER = { username: 'ci', password: 'pa55-word-secret' };
const BASIC = `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}`;

function clientFor(t: Test, host: string, opts: { auth?: boolean; timeoutMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-hostile-'));
  const auths = opts.auth ? { [host]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString('base64') } } : {};
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
  const env = { DOCKER_CONFIG: dir };
  const secrets = new Secrets();
  const client = createRegistryClient({ host }, { credentials: createCredentialStore({ env, secrets }), secrets, env, timeoutMs: opts.timeoutMs ?? 5000 });
  t.teardown(() => client.close());
  return client;
}

function head(status: string, headers: Record<string, string | number>): string {
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

t.test('a body longer or shorter than its Content-Length is refused, naming the registry, not mistaken for a TLS port', async (t) => {
  const junk = Buffer.from('{"this is":"not part of the manifest"}'.repeat(100));
  const answer = (close: boolean) => Buffer.concat([
    Buffer.from(head('200 OK', { 'Content-Type': OCI_INDEX, 'Docker-Content-Digest': digestOf(MANIFEST), 'Content-Length': MANIFEST.length, ...(close ? { Connection: 'close' } : {}) })),
    MANIFEST,
    junk,
  ]);
  for (const close of [false, true]) {
    const host = await startRawServer(t, (socket) => (close ? socket.end(answer(true)) : socket.write(answer(false))));
    const e = await failure(clientFor(t, host).getManifest('moby/buildkit', 'v0.18.2'));
    t.equal(e.kind, 'protocol', `Connection: ${close ? 'close' : 'keep-alive'}`);
    t.equal(e.host, host);
    t.match(e.message, `${host}: answer longer than its Content-Length — refused`);
    t.notMatch(e.message, 'HTTPS', 'no hint about TLS: the headers parsed fine');
  }
  const short = await startRawServer(t, (socket) => {
    socket.end(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Type': OCI_INDEX, 'Content-Length': MANIFEST.length + 100 })), MANIFEST]));
  });
  const e = await failure(clientFor(t, short).getManifest('moby/buildkit', 'v0.18.2'));
  t.equal(e.kind, 'reset');
  t.match(e.message, `${short}: connection reset`);
});

t.test('a body that never ends: the per-request timeout holds', async (t) => {
  const stub = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"name":"moby/buildkit","tags":["v0.1');
    // …and nothing more, ever (the stub's teardown closes the connection).
  });
  const e = await failure(clientFor(t, stub.host, { timeoutMs: 400 }).listTags('moby/buildkit'));
  t.equal(e.kind, 'timeout');
  t.match(e.message, `${stub.host}: no answer within 400 ms`);
});

t.test('answers over their cap are refused with the registry named, whether the length is declared or not', async (t) => {
  // Declared: a 10 GB manifest is refused from its headers, before a byte is read.
  const declared = await startRawServer(t, (socket) => {
    socket.write(head('200 OK', { 'Content-Type': OCI_INDEX, 'Content-Length': 10 * 1024 ** 3 }));
    socket.write(MANIFEST);
  });
  const big = await failure(clientFor(t, declared).getManifest('moby/buildkit', 'v0.18.2'));
  t.equal(big.kind, 'protocol');
  t.match(big.message, `${declared}: answer larger than ${4 * 1024 * 1024} bytes allowed for it — refused`);

  // Undeclared (chunked) and endless: a tag list streamed faster than the timeout is cut off at its cap.
  let sent = 0;
  const endless = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"tags":[');
    const chunk = `${'"v0.0.0-aaaaaaaaaaaaaaaaaaaaaaaa",'.repeat(2000)}`;
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('error', () => undefined);
    pump();
  });
  const stream = await failure(clientFor(t, endless.host, { timeoutMs: 30_000 }).listTags('moby/buildkit'));
  t.equal(stream.kind, 'protocol');
  t.match(stream.message, `${endless.host}: answer larger than ${16 * 1024 * 1024} bytes allowed for it`);
  t.ok(sent < 64 * 1024 * 1024, 'the server was stopped soon after the cap, not drained');

  // A token answer has its own cap (1 MiB).
  const tokens = await startHttpStub(t, (req, res) => {
    if (req.url?.startsWith('/token')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: 'x'.repeat(2 * 1024 * 1024) }));
      return;
    }
    res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="reg"` });
    res.end();
  });
  const token = await failure(clientFor(t, tokens.host).headManifest('moby/buildkit', 'v1'));
  t.equal(token.kind, 'protocol');
  t.match(token.message, `${tokens.host}: token server ${tokens.host}: answer larger than ${1024 * 1024} bytes`);
});

t.test('redirect loops and endless redirect chains end in a bounded error', async (t) => {
  const loop = await startHttpStub(t, (req, res) => {
    const next = req.url?.endsWith('/a') ? '/v2/x/manifests/b' : '/v2/x/manifests/a';
    res.writeHead(302, { Location: next });
    res.end();
  });
  const e = await failure(clientFor(t, loop.host).getManifest('x', 'a'));
  t.equal(e.kind, 'protocol');
  t.match(e.message, `${loop.host}: redirect loop at ${loop.host}/v2/x/manifests/a`);
  t.equal(loop.requests().length, 2, 'each URL asked once');

  const chain = await startHttpStub(t, (req, res) => {
    res.writeHead(307, { Location: `${req.url}x` });
    res.end();
  });
  const c = await failure(clientFor(t, chain.host).headManifest('x', 'v1'));
  t.equal(c.kind, 'protocol');
  t.match(c.message, 'more than 10 redirects');
  t.equal(chain.requests().length, 10);

  const odd = await startHttpStub(t, (_req, res) => {
    res.writeHead(302, { Location: 'file:///etc/passwd' });
    res.end();
  });
  t.match((await failure(clientFor(t, odd.host).getManifest('x', 'v1'))).message, 'redirect to a file: URL');
});

t.test('a redirect to another host is followed, and the registry credentials never go with it', async (t) => {
  const storage = await startHttpStub(
    t,
    (req, res) => {
      if (req.url === '/challenge') {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="storage"' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': OCI_INDEX, 'Docker-Content-Digest': digestOf(MANIFEST) });
      res.end(req.method === 'HEAD' ? undefined : MANIFEST);
    },
    '127.0.0.2',
  );
  // Basic: the registry asks for credentials, then sends the manifest to storage on 127.0.0.2.
  const basic = await startHttpStub(t, (req, res) => {
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="registry"' });
      res.end();
      return;
    }
    res.writeHead(307, { Location: req.url?.includes('challenge') ? `${storage.url}/challenge` : `${storage.url}/blobs/manifest?sig=abc` });
    res.end();
  });
  const client = clientFor(t, basic.host, { auth: true });
  const got = await client.getManifest('moby/buildkit', 'v0.18.2');
  t.same(got.body, MANIFEST);
  t.equal(got.digest, digestOf(MANIFEST));
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, digestOf(MANIFEST), 'HEAD follows too');
  t.ok(basic.requestHeaders().some((h) => h.authorization === BASIC), 'the registry got the credentials');
  // GET, HEAD, and the GET a HEAD without Content-Length falls back to.
  t.same(
    storage.requestHeaders().map((h) => h.authorization),
    [undefined, undefined, undefined],
    'the other host got neither the Basic credentials nor anything else',
  );
  // The other host asks for credentials itself: refused, not answered with the registry's.
  const asks = await failure(client.getManifest('moby/buildkit', 'challenge'));
  t.equal(asks.kind, 'auth');
  t.match(asks.message, `redirected to ${storage.host}, which asks for authentication (401); credentials for ${basic.host} are not sent to another host`);
  t.notOk(storage.requestHeaders().some((h) => h.authorization), 'still no credentials on the other host');

  // Bearer: the token is for the registry, not for where it redirects.
  const bearer = await startHttpStub(t, (req, res) => {
    if (req.url?.startsWith('/token')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: 'registry-token-secret' }));
      return;
    }
    if (req.headers.authorization !== 'Bearer registry-token-secret') {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="reg"` });
      res.end();
      return;
    }
    res.writeHead(302, { Location: `${storage.url}/blobs/manifest` });
    res.end();
  });
  const before = storage.requestHeaders().length;
  t.same((await clientFor(t, bearer.host, { auth: true }).getManifest('moby/buildkit', 'v1')).body, MANIFEST);
  t.same(storage.requestHeaders().slice(before).map((h) => h.authorization), [undefined]);
});

t.test('a Docker-Content-Digest that does not match the body is refused, in any algorithm', async (t) => {
  const other = Buffer.from('{"schemaVersion":2,"manifests":[{"digest":"sha256:evil"}]}');
  for (const served of [digestOf(other), digestOf(other, 'sha512'), `sha512:${'0'.repeat(128)}`]) {
    const stub = await startHttpStub(t, (_req, res) => {
      res.writeHead(200, { 'Content-Type': OCI_INDEX, 'Docker-Content-Digest': served });
      res.end(MANIFEST);
    });
    const e = await failure(clientFor(t, stub.host).getManifest('moby/buildkit', 'v0.18.2'));
    t.equal(e.kind, 'protocol', served);
    t.match(e.message, `${stub.host}: moby/buildkit:v0.18.2: served digest ${served} does not match the manifest body (${digestOf(MANIFEST)})`);
  }
  // …and a sha512 one that does match is taken as served.
  const good = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': OCI_INDEX, 'Docker-Content-Digest': digestOf(MANIFEST, 'sha512') });
    res.end(MANIFEST);
  });
  t.equal((await clientFor(t, good.host).getManifest('moby/buildkit', 'v0.18.2')).digest, digestOf(MANIFEST, 'sha512'));
  // Asked by digest, served something else: refused whatever the headers say.
  const byDigest = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': OCI_INDEX });
    res.end(other);
  });
  const wanted = digestOf(MANIFEST);
  const e = await failure(clientFor(t, byDigest.host).getManifest('moby/buildkit', wanted));
  t.match(e.message, `moby/buildkit@${wanted}: the registry served a manifest with digest ${digestOf(other)}`);
});

t.test('a token realm on another host gets the credentials, the registry only the token', async (t) => {
  const auth = await startHttpStub(
    t,
    (req, res) => {
      const ok = req.headers.authorization === BASIC;
      res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(ok ? JSON.stringify({ token: 'issued-token-secret', expires_in: 300 }) : '{}');
    },
    '127.0.0.2',
  );
  const registry = await startHttpStub(t, (req, res) => {
    if (req.headers.authorization !== 'Bearer issued-token-secret') {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${auth.url}/token",service="registry.test"` });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': OCI_INDEX, 'Docker-Content-Digest': digestOf(MANIFEST), 'Content-Length': MANIFEST.length });
    res.end(req.method === 'HEAD' ? undefined : MANIFEST);
  });
  const info = await clientFor(t, registry.host, { auth: true }).headManifest('moby/buildkit', 'v0.18.2');
  t.equal(info.digest, digestOf(MANIFEST));
  t.same(auth.requestHeaders().map((h) => h.authorization), [BASIC], 'the realm named by WWW-Authenticate got the credentials once');
  t.notOk(registry.requestHeaders().some((h) => h.authorization?.startsWith('Basic')), 'the registry never saw the password');
  t.match(auth.requests()[0], /^GET \/token\?service=registry\.test&scope=repository%3Amoby%2Fbuildkit%3Apull$/);
});

t.test('credentials are refused over plain HTTP to a realm that is not loopback', async (t) => {
  const registry = await startHttpStub(t, (_req, res) => {
    res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="http://auth.registry.invalid/token",service="registry.test"' });
    res.end();
  });
  const e = await failure(clientFor(t, registry.host, { auth: true }).headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(e.kind, 'auth');
  t.match(e.message, `${registry.host}: token realm auth.registry.invalid is plain HTTP; credentials for ${registry.host} are not sent over it`);
  t.notMatch(e.message, USER.password);
  // Without credentials there is nothing to protect: the anonymous token request is attempted
  // (and fails on the name, which does not resolve — no packet leaves the machine).
  const anon = await failure(clientFor(t, registry.host).headManifest('moby/buildkit', 'v0.18.2'));
  t.not(anon.kind, 'auth');
  t.match(anon.message, 'token server auth.registry.invalid');
});
