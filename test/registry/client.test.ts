// The registry client against real docker-registry 2.8.2 instances (test/helpers/registry.ts) and,
// only for failures a real registry cannot be made to produce, small node:http stubs.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Secrets } from '../../src/io.js';
import { createRegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { RegistryRequestError, type RegistryEndpoint } from '../../src/registry/types.js';
import { buildEngineImage, MEDIA, pushEngineTags, pushImage, seedTags } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';
import { jsonErrorHandler, startBlackhole, startHttpStub, startRefusingPort } from '../helpers/net.js';
import { failure } from '../helpers/registry-failure.js';
import { startRegistry } from '../helpers/registry.js';
import { makeCa } from '../helpers/tls.js';
import { startTokenServer } from '../helpers/token-server.js';

interface Setup {
  auths?: Record<string, { username: string; password: string }>;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  certsDir?: string;
}

const testDirs = new WeakMap<Test, string>();
/** A fresh directory under the test's testdir (t.testdir() itself re-creates one dir per test). */
function scratch(t: Test): string {
  let root = testDirs.get(t);
  if (!root) {
    root = t.testdir();
    testDirs.set(t, root);
  }
  return mkdtempSync(join(root, 'd-'));
}

/** A client as the CLI makes it: credentials from a DOCKER_CONFIG dir, a Secrets registry. */
function clientFor(t: Test, endpoint: RegistryEndpoint, setup: Setup = {}) {
  const dir = scratch(t);
  const auths = Object.fromEntries(
    Object.entries(setup.auths ?? {}).map(([host, c]) => [host, { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') }]),
  );
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
  const env = { DOCKER_CONFIG: dir, ...setup.env };
  const secrets = new Secrets();
  const credentials = createCredentialStore({ env, secrets });
  const opts: RegistryClientOptions = { credentials, secrets, env, timeoutMs: setup.timeoutMs ?? 5000, ...(setup.certsDir ? { certsDir: setup.certsDir } : {}) };
  const client = createRegistryClient(endpoint, opts);
  t.teardown(() => client.close());
  return { client, secrets, credentials, opts };
}

t.test('HEAD of a multi-platform OCI index returns the index digest, not a child', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} } });
  const image = images['v0.18.2']!;
  const { client } = clientFor(t, { host: reg.host });
  const info = await client.headManifest('moby/buildkit', 'v0.18.2');
  t.equal(info.digest, image.digest);
  t.equal(info.mediaType, MEDIA.ociIndex);
  t.equal(info.size, image.manifest.size);
  t.notOk(image.children.some((c) => c.manifest.digest === info.digest));
  const got = await client.getManifest('moby/buildkit', 'v0.18.2');
  t.equal(got.digest, image.digest);
  t.same(got.body, image.manifest.data);
  const byDigest = await client.headManifest('moby/buildkit', image.digest);
  t.equal(byDigest.digest, image.digest);
  await reg.settle();
  t.ok(reg.requestLog().every((l) => l.startsWith('HEAD') || l.startsWith('GET')), 'only reads');
});

t.test('HEAD of a Docker manifest list by tag returns the list digest (2.8 would substitute the amd64 child)', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  const images = await pushEngineTags(reg, { tags: { 'v0.17.1': { format: 'docker' } } });
  const { client } = clientFor(t, { host: reg.host });
  const info = await client.headManifest('moby/buildkit', 'v0.17.1');
  t.equal(info.mediaType, MEDIA.dockerList);
  t.equal(info.digest, images['v0.17.1']!.digest);
});

t.test('unknown tag and unknown repository are not-found errors naming the registry', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  await pushEngineTags(reg, { tags: { 'v0.18.2': {} } });
  const { client } = clientFor(t, { host: reg.host });
  const tag = await failure(client.headManifest('moby/buildkit', 'v9.9.9'));
  t.equal(tag.kind, 'not-found');
  t.equal(tag.status, 404);
  t.match(tag.message, `${reg.host}: moby/buildkit:v9.9.9 not found (404)`);
  const repo = await failure(client.listTags('nobody/here'));
  t.equal(repo.kind, 'not-found');
  t.match(repo.message, /NAME_UNKNOWN/);
});

t.test('tags from registry 2.8 (one unsorted answer, n= ignored) come back sorted and unique', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  const image = buildEngineImage({ version: 'v0.18.2' });
  await pushImage(reg, 'moby/buildkit', ['v0.18.2'], image);
  const tags = ['v0.9.0', 'v0.10.0', 'buildx-stable-1', 'v0.18.2-rootless', 'latest', 'v0.19.0-rc1', 'v0.1.0'];
  seedTags(reg, 'moby/buildkit', tags, image.digest);
  const { client } = clientFor(t, { host: reg.host });
  const listed = await client.listTags('moby/buildkit');
  t.same(listed, [...new Set([...tags, 'v0.18.2'])].sort());
  t.same(listed, [...listed].sort(), 'lexical order');
});

t.test('tags from a registry that paginates with Link (distribution v3 style) are all collected', async (t) => {
  // distribution v3 answers `?n=&last=` pages with `Link: </v2/<name>/tags/list?last=…&n=…>; rel="next"`
  // (DIST registry/handlers/tags.go); 2.8 cannot, so a stub plays v3 here.
  const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const stub = await startHttpStub(t, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const n = Number(url.searchParams.get('n') ?? 3);
    const last = url.searchParams.get('last');
    const start = last ? all.indexOf(last) + 1 : 0;
    const page = all.slice(start, start + n);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (start + n < all.length) headers.Link = `</v2/moby/buildkit/tags/list?last=${page[page.length - 1]}&n=${n}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: 'moby/buildkit', tags: page.reverse() }));
  });
  const { client } = clientFor(t, { host: stub.host });
  t.same(await client.listTags('moby/buildkit'), all);
  t.same(stub.requests(), [
    'GET /v2/moby/buildkit/tags/list',
    'GET /v2/moby/buildkit/tags/list?last=c&n=3',
    'GET /v2/moby/buildkit/tags/list?last=f&n=3',
  ]);
});

t.test('a Link to another host or a looping Link is a protocol error, not a hang or a credential leak', async (t) => {
  const other = await startHttpStub(t, (_req, res) => {
    res.end('{"tags":[]}');
  });
  const stub = await startHttpStub(t, (req, res) => {
    const loop = req.url?.includes('loop');
    res.writeHead(200, { Link: loop ? '</v2/loop/tags/list>; rel="next"' : `<${other.url}/v2/x/tags/list?last=a>; rel="next"` });
    res.end(JSON.stringify({ tags: ['a'] }));
  });
  const { client } = clientFor(t, { host: stub.host });
  const away = await failure(client.listTags('x'));
  t.equal(away.kind, 'protocol');
  t.match(away.message, 'Link points to another host');
  t.same(other.requests(), []);
  const loop = await failure(client.listTags('loop'));
  t.equal(loop.kind, 'protocol');
});

t.test('Basic auth: credentials from config.json work; a wrong password is an auth error without the password', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t, { basicAuth: { ci: 'Corr3ct-Horse' } });
  await pushEngineTags(reg, { tags: { 'v0.18.2': {} }, auth: { username: 'ci', password: 'Corr3ct-Horse' } });

  const good = clientFor(t, { host: reg.host }, { auths: { [reg.host]: { username: 'ci', password: 'Corr3ct-Horse' } } });
  t.same(await good.client.ping(), { authenticated: true });
  t.same(await good.client.listTags('moby/buildkit'), ['v0.18.2']);
  t.match((await good.client.headManifest('moby/buildkit', 'v0.18.2')).digest, /^sha256:/);

  const bad = clientFor(t, { host: reg.host }, { auths: { [reg.host]: { username: 'ci', password: 'Wr0ng-Horse-Battery' } } });
  const err = await failure(bad.client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(err.kind, 'auth');
  t.equal(err.status, 401);
  t.equal(
    err.message,
    `${reg.host}: authentication failed (401) — check the credentials for ${reg.host} in docker config.json / DOCKER_AUTH_CONFIG`,
  );
  t.notMatch(err.message, 'Wr0ng-Horse-Battery');
  t.notMatch(err.message, Buffer.from('ci:Wr0ng-Horse-Battery').toString('base64'));
  t.equal(bad.secrets.redact('x Wr0ng-Horse-Battery y'), 'x **** y', 'the password is registered for redaction');

  const none = clientFor(t, { host: reg.host });
  const anon = await failure(none.client.listTags('moby/buildkit'));
  t.equal(anon.kind, 'auth');
  t.match(anon.message, `no credentials for ${reg.host}`);
});

t.test('Bearer flow: token from the token server, reused across requests and clients of one store', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const ts = await startTokenServer(t, { users: { bob: 'T0ken-Pass-Word' } });
  const reg = await startRegistry(t, { tokenAuth: ts });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {}, 'v0.19.0': {} }, auth: { username: 'bob', password: 'T0ken-Pass-Word' } });
  const before = ts.requests().length;

  const { client, credentials, opts, secrets } = clientFor(t, { host: reg.host }, { auths: { [reg.host]: { username: 'bob', password: 'T0ken-Pass-Word' } } });
  t.same(await client.listTags('moby/buildkit'), ['v0.18.2', 'v0.19.0']);
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  t.equal((await client.headManifest('moby/buildkit', 'v0.19.0')).digest, images['v0.19.0']!.digest);
  const issued = ts.requests().slice(before);
  t.equal(issued.length, 1, 'one token for one scope');
  t.same(issued[0], { service: ts.service, scopes: ['repository:moby/buildkit:pull'], username: 'bob', status: 200, method: 'GET' });
  await reg.settle();
  t.equal(reg.requestLog().filter((l) => l.endsWith(' 401')).length, 1, 'only the first request met a challenge');

  const second = createRegistryClient({ host: reg.host }, { ...opts, credentials, secrets });
  await second.headManifest('moby/buildkit', 'v0.18.2');
  t.equal(ts.requests().length - before, 1, 'a second client of the same store reuses the token');
  second.close();

  const bad = clientFor(t, { host: reg.host }, { auths: { [reg.host]: { username: 'bob', password: 'Not-The-Pass' } } });
  const err = await failure(bad.client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(err.kind, 'auth');
  t.match(err.message, `${reg.host}: authentication failed at token server 127.0.0.1:`);
  t.notMatch(err.message, 'Not-The-Pass');

  const anon = clientFor(t, { host: reg.host });
  const anonErr = await failure(anon.client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(anonErr.kind, 'auth');
  t.match(anonErr.message, 'no credentials');
});

t.test('Bearer flow for anonymous pulls, token under access_token only, default lifetime', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const ts = await startTokenServer(t, { tokenField: 'access_token', omitExpiresIn: true });
  const reg = await startRegistry(t, { tokenAuth: ts });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} } });
  const { client } = clientFor(t, { host: reg.host });
  t.same(await client.ping(), { authenticated: false });
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  const scoped = ts.requests().filter((r) => r.scopes.includes('repository:moby/buildkit:pull') && r.username === undefined);
  t.equal(scoped.length, 1, 'token without expires_in is still reused (60 s default)');
});

t.test('an identity token from config.json is exchanged with the OAuth2 refresh grant', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const ts = await startTokenServer(t, { users: { bob: 'T0ken-Pass-Word' }, refreshTokens: { 'Refresh-Token-42': 'bob' } });
  const reg = await startRegistry(t, { tokenAuth: ts });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} }, auth: { username: 'bob', password: 'T0ken-Pass-Word' } });
  const dir = scratch(t);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: '', identitytoken: 'Refresh-Token-42' } } }));
  const env = { DOCKER_CONFIG: dir };
  const secrets = new Secrets();
  const client = createRegistryClient({ host: reg.host }, { credentials: createCredentialStore({ env, secrets }), secrets, env, timeoutMs: 5000 });
  t.teardown(() => client.close());
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  const last = ts.requests().at(-1)!;
  t.same(last, { service: ts.service, scopes: ['repository:moby/buildkit:pull'], username: 'bob', status: 200, method: 'POST' });
  t.equal(secrets.redact('Refresh-Token-42'), '****');
});

t.test('TLS: an unknown CA is a tls error with a hint; ca:, certs.d and NODE_EXTRA_CA_CERTS each fix it', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const reg = await startRegistry(t, { tls: true });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} } });
  const want = images['v0.18.2']!.digest;

  // A loopback host is plain HTTP unless it has a CA (or insecure: true): talking HTTP to the
  // TLS port fails, and not as a certificate problem.
  const plain = clientFor(t, { host: reg.host });
  t.equal(plain.client.baseUrl, `http://${reg.host}`);
  t.not((await failure(plain.client.ping())).kind, 'tls');

  const insecure = clientFor(t, { host: reg.host, insecure: true });
  t.equal(insecure.client.baseUrl, `https://${reg.host}`);
  t.equal((await insecure.client.headManifest('moby/buildkit', 'v0.18.2')).digest, want, 'insecure: true skips verification');

  const emptyCertsDir = scratch(t);
  const otherCa = await makeCa(scratch(t), 'other', 'some other CA');
  const wrongCa = otherCa.certFile;
  const bad = clientFor(t, { host: reg.host, ca: wrongCa }, { certsDir: emptyCertsDir });
  const err = await failure(bad.client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(err.kind, 'tls');
  t.match(err.message, `${reg.host}: TLS certificate not trusted`);
  t.match(err.message, `set ca: for this mirror or put the CA in /etc/docker/certs.d/${reg.host}/ca.crt`);

  const withCa = clientFor(t, { host: reg.host, ca: reg.caFile! });
  t.equal((await withCa.client.headManifest('moby/buildkit', 'v0.18.2')).digest, want);

  const certsDir = scratch(t);
  mkdirSync(join(certsDir, reg.host));
  writeFileSync(join(certsDir, reg.host, 'ca.crt'), reg.caCert!);
  const viaCertsD = clientFor(t, { host: reg.host, ca: wrongCa }, { certsDir });
  t.equal((await viaCertsD.client.headManifest('moby/buildkit', 'v0.18.2')).digest, want, 'certs.d/<host>/ca.crt is trusted too');

  const viaEnv = clientFor(t, { host: reg.host, ca: wrongCa }, { env: { NODE_EXTRA_CA_CERTS: reg.caFile } });
  t.equal((await viaEnv.client.headManifest('moby/buildkit', 'v0.18.2')).digest, want, 'NODE_EXTRA_CA_CERTS is kept next to a custom ca');

  const missing = clientFor(t, { host: reg.host, ca: join(emptyCertsDir, 'nope.crt') });
  const missingErr = await failure(missing.client.ping());
  t.equal(missingErr.kind, 'tls');
  t.match(missingErr.message, 'cannot read CA file');
});

t.test('a refused port fails as refused; a silent one as timeout within timeoutMs', async (t) => {
  const refused = await startRefusingPort();
  const r = clientFor(t, { host: refused.host });
  const e1 = await failure(r.client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(e1.kind, 'refused');
  t.equal(e1.message, `${refused.host}: connection refused (ECONNREFUSED)`);

  const hole = await startBlackhole(t);
  const b = clientFor(t, { host: hole.host }, { timeoutMs: 300 });
  const e2 = await failure(b.client.listTags('moby/buildkit'));
  t.equal(e2.kind, 'timeout');
  t.equal(e2.message, `${hole.host}: no answer within 300 ms`);
  t.equal(hole.connections(), 1);
});

t.test('an abort stops the request; an abort reason that is a RegistryRequestError is passed through', async (t) => {
  const hole = await startBlackhole(t);
  const { client } = clientFor(t, { host: hole.host }, { timeoutMs: 10_000 });
  const controller = new AbortController();
  const pending = failure(client.headManifest('moby/buildkit', 'v0.18.2', controller.signal));
  setTimeout(() => controller.abort(), 50);
  t.equal((await pending).kind, 'aborted');

  const timed = new AbortController();
  const reason = new RegistryRequestError('timeout', hole.host, `${hole.host}: no answer within 2000 ms`);
  const pending2 = failure(client.listTags('moby/buildkit', timed.signal));
  setTimeout(() => timed.abort(reason), 50);
  t.equal(await pending2, reason);

  const already = new AbortController();
  already.abort();
  t.equal((await failure(client.ping(already.signal))).kind, 'aborted');
});

t.test('broken mirrors: 500, 429 with quota headers, malformed tag list, 404 on /v2/, garbage', async (t) => {
  const server = await startHttpStub(t, jsonErrorHandler(500, 'UNKNOWN', 'boom'));
  const e500 = await failure(clientFor(t, { host: server.host }).client.headManifest('moby/buildkit', 'v1'));
  t.equal(e500.kind, 'server');
  t.equal(e500.status, 500);

  const limited = await startHttpStub(
    t,
    jsonErrorHandler(429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit.', {
      'ratelimit-limit': '100;w=21600',
      'ratelimit-remaining': '0;w=21600',
      'Retry-After': '3600',
    }),
  );
  const e429 = await failure(clientFor(t, { host: limited.host }).client.headManifest('moby/buildkit', 'v1'));
  t.equal(e429.kind, 'rate-limited');
  t.equal(e429.message, `${limited.host}: rate limited (429), retry after 3600 s; quota 100 per 6 h — use a mirror or log in`);
  const e429get = await failure(clientFor(t, { host: limited.host }).client.getManifest('moby/buildkit', 'v1'));
  t.match(e429get.message, 'rate limited (429 TOOMANYREQUESTS)', 'a GET answer names the registry error code');

  const malformed = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"name":"moby/buildkit","tags":["v0.1.0",');
  });
  const eJson = await failure(clientFor(t, { host: malformed.host }).client.listTags('moby/buildkit'));
  t.equal(eJson.kind, 'protocol');
  t.match(eJson.message, 'tag list is not valid JSON');

  const wrongShape = await startHttpStub(t, (_req, res) => {
    res.end('{"tags":[1,2]}');
  });
  t.equal((await failure(clientFor(t, { host: wrongShape.host }).client.listTags('x'))).kind, 'protocol');

  const notRegistry = await startHttpStub(t, (_req, res) => {
    res.writeHead(404);
    res.end('<html>nginx</html>');
  });
  const e404 = await failure(clientFor(t, { host: notRegistry.host }).client.ping());
  t.equal(e404.kind, 'protocol');
  t.match(e404.message, 'not a registry v2 API');

  const garbage = await startHttpStub(t, (req) => {
    req.socket.end('NOT HTTP AT ALL\r\n\r\n');
  });
  const eGarbage = await failure(clientFor(t, { host: garbage.host }).client.ping());
  t.ok(['protocol', 'reset'].includes(eGarbage.kind), `garbage answer → ${eGarbage.kind}`);

  const hangup = await startHttpStub(t, (req) => {
    req.socket.destroy();
  });
  t.equal((await failure(clientFor(t, { host: hangup.host }).client.ping())).kind, 'reset');
});

t.test('a 401 that keeps coming after credentials is an auth error after one retry', async (t) => {
  const stub = await startHttpStub(t, jsonErrorHandler(401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': 'Basic realm="x"' }));
  const { client } = clientFor(t, { host: stub.host }, { auths: { [stub.host]: { username: 'u', password: 'Secret-Value-1' } } });
  const err = await failure(client.headManifest('moby/buildkit', 'v1'));
  t.equal(err.kind, 'auth');
  t.equal(stub.requests().length, 2);
  t.match(String(stub.requestHeaders()[1]!.authorization), /^Basic /);

  const forbidden = await startHttpStub(t, jsonErrorHandler(403, 'DENIED', 'requested access to the resource is denied'));
  const e403 = await failure(clientFor(t, { host: forbidden.host }).client.headManifest('moby/buildkit', 'v1'));
  t.equal(e403.kind, 'auth');
  t.equal(e403.status, 403);
});

t.test('a cached bearer token the registry stops accepting is fetched anew, once', async (t) => {
  // One stub plays registry and token server; the token it accepts changes mid-test (revoked,
  // or expired early), as happens when a registry restarts with a new signing key.
  let accepted = 'token-1';
  const issued: string[] = [];
  const digest = `sha256:${'a'.repeat(64)}`;
  const stub = await startHttpStub(t, (req, res) => {
    if (req.url?.startsWith('/token')) {
      issued.push(accepted);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: accepted, expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== `Bearer ${accepted}`) {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${req.headers.host}/token",service="stub",scope="repository:moby/buildkit:pull"` });
      res.end();
      return;
    }
    res.writeHead(200, { 'Docker-Content-Digest': digest, 'Content-Type': MEDIA.ociIndex, 'Content-Length': '100' });
    res.end();
  });
  const { client } = clientFor(t, { host: stub.host });
  t.equal((await client.headManifest('moby/buildkit', 'v1')).digest, digest);
  t.same(issued, ['token-1']);
  accepted = 'token-2';
  t.equal((await client.headManifest('moby/buildkit', 'v1')).digest, digest, 'the refused token was dropped and a new one fetched');
  t.same(issued, ['token-1', 'token-2']);
  const heads = stub
    .requests()
    .map((line, i) => ({ line, authorization: stub.requestHeaders()[i]!.authorization ?? 'none' }))
    .filter((r) => r.line.startsWith('HEAD'));
  t.same(
    heads.map((r) => r.authorization),
    ['none', 'Bearer token-1', 'Bearer token-1', 'Bearer token-2'],
    'challenged, accepted; then sent up front, refused, and the new token accepted',
  );
});

t.test('Docker Hub rate-limit headers are recorded; a HEAD without a digest header falls back to hashing the GET body', async (t) => {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] }));
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const stub = await startHttpStub(t, (req, res) => {
    const withDigest = req.url?.includes('with-digest');
    res.writeHead(200, {
      'Content-Type': MEDIA.ociIndex,
      'Content-Length': String(body.length),
      ...(withDigest ? { 'Docker-Content-Digest': digest } : {}),
      'ratelimit-limit': '100;w=21600',
      'ratelimit-remaining': '76;w=21600',
      'docker-ratelimit-source': '192.0.2.1',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const { client } = clientFor(t, { host: stub.host });
  const withHeader = await client.headManifest('with-digest/x', 'v1');
  t.same(withHeader, { digest, mediaType: MEDIA.ociIndex, size: body.length, rateLimit: { limit: 100, remaining: 76, windowSeconds: 21600, source: '192.0.2.1' } });
  const hashed = await client.headManifest('no-digest/x', 'v1');
  t.equal(hashed.digest, digest);
  t.same(stub.requests(), ['HEAD /v2/with-digest/x/manifests/v1', 'HEAD /v2/no-digest/x/manifests/v1', 'GET /v2/no-digest/x/manifests/v1']);
  const accept = String(stub.requestHeaders()[0]!.accept);
  for (const type of [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest]) t.match(accept, type);
});

t.test('a manifest whose body does not match the served digest is refused', async (t) => {
  const stub = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': MEDIA.ociManifest, 'Docker-Content-Digest': `sha256:${'0'.repeat(64)}` });
    res.end('{"schemaVersion":2}');
  });
  const err = await failure(clientFor(t, { host: stub.host }).client.getManifest('x', 'v1'));
  t.equal(err.kind, 'protocol');
  t.match(err.message, 'does not match the manifest body');
});

t.test('a pull-through mirror answers with the upstream digest', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const upstream = await startRegistry(t);
  const images = await pushEngineTags(upstream, { tags: { 'v0.18.2': {} } });
  const mirror = await startRegistry(t, { proxy: { remoteUrl: upstream.url } });
  const { client } = clientFor(t, { host: mirror.host });
  t.equal((await client.headManifest('moby/buildkit', 'v0.18.2')).digest, images['v0.18.2']!.digest);
  t.same(await client.listTags('moby/buildkit'), ['v0.18.2']);
});

t.test('plain HTTP to a loopback registry that serves TLS says how to fix it', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const reg = await startRegistry(t, { tls: true });
  const { client } = clientFor(t, { host: reg.host });
  const err = await failure(client.headManifest('moby/buildkit', 'v0.18.2'));
  t.equal(err.kind, 'protocol');
  t.match(err.message, `${reg.host}: `);
  t.match(err.message, /if it serves HTTPS, give it a ca: \(or insecure: true\)/);
});
