// Property tests of what registries and credential helpers answer: headers (WWW-Authenticate,
// Link, rate limits, Content-Type), image references, and whole answers (status, headers, body of
// manifests, indexes, tag lists, tokens) through the real client over a scripted transport. A
// registry answer ends in a result or a one-line RegistryRequestError naming the registry (the
// resolver turns those into exit 3); a credential helper's answer in a credential or a warning.
import fc from 'fast-check';
import t from 'tap';
import { Secrets } from '../../src/io.js';
import { createRegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { bareMediaType, parseLinkNext, parseRateLimit, parseWwwAuthenticate } from '../../src/registry/headers.js';
import type { HttpRequest, HttpResponse, Transport } from '../../src/registry/exchange.js';
import { formatImageRef, parseImageRef } from '../../src/registry/reference.js';
import { MANIFEST_MEDIA_TYPES, RegistryRequestError } from '../../src/registry/types.js';
import { bytesAsText, hostileString, runs } from '../helpers/properties.js';

const HOST = 'mirror.test:5000';

t.test('header parsers take any header value (string or list) without throwing', async () => {
  const value = fc.oneof(hostileString(300), fc.array(hostileString(100), { maxLength: 4 }), fc.constant(undefined));
  const challengeish = fc
    .array(fc.oneof(fc.constantFrom('Bearer ', 'Basic ', 'realm=', 'service=', 'scope=', '"', '\\"', ',', ' ', '=', 'error="insufficient_scope"', 'https://auth.example/token'), hostileString(8)), { maxLength: 12 })
    .map((a) => a.join(''));
  const linkish = fc
    .array(fc.oneof(fc.constantFrom('<', '>', '; rel="next"', ';rel=next', ', ', '/v2/x/tags/list?last=a', 'http://other.example/v2/', 'javascript:alert(1)', '//evil.example/x', '%zz'), hostileString(8)), { maxLength: 10 })
    .map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(value, challengeish), fc.oneof(value, linkish), (auth, link) => {
      for (const c of parseWwwAuthenticate(auth)) if (typeof c.scheme !== 'string' || typeof c.params !== 'object') throw new Error('bad challenge');
      const next = parseLinkNext(link, `https://${HOST}/v2/x/tags/list`);
      if (next !== undefined && !(next instanceof URL)) throw new Error('Link is not a URL');
      parseRateLimit({ 'ratelimit-limit': typeof auth === 'string' ? auth : undefined, 'ratelimit-remaining': typeof link === 'string' ? link : undefined });
      bareMediaType(typeof auth === 'string' ? auth : undefined);
    }),
    runs(2000),
  );
});

t.test('image references: parse throws only Errors, and what parses formats back to itself', async () => {
  const refish = fc.oneof(
    hostileString(80),
    fc.tuple(fc.constantFrom('', 'docker.io/', 'localhost:5000/', 'Harbor.Corp/', '[::1]:5000/', '127.0.0.1/'), fc.constantFrom('moby/buildkit', 'alpine', 'a/b/c', 'UPPER', 'a__b', 'a..b', ''), fc.constantFrom('', ':v0.18.2', ':', ':latest', `@sha256:${'a'.repeat(64)}`, '@sha256:zz', `:${'x'.repeat(130)}`)).map((p) => p.join('')),
  );
  fc.assert(
    fc.property(refish, (input) => {
      let ref;
      try {
        ref = parseImageRef(input);
      } catch (e) {
        if (!(e instanceof Error) || e.constructor !== Error) throw e;
        return;
      }
      const again = parseImageRef(formatImageRef(ref));
      if (formatImageRef(again) !== formatImageRef(ref)) throw new Error(`${input}: not stable`);
    }),
    runs(2000),
  );
});

/** A transport answering every request with `answer` (a scripted registry, no sockets). */
function scripted(answer: (req: HttpRequest, n: number) => HttpResponse): Transport & { count(): number } {
  let n = 0;
  return {
    request: async (req) => answer(req, n++),
    close: () => undefined,
    count: () => n,
  };
}

function clientOver(transport: Transport) {
  const secrets = new Secrets();
  const env = { DOCKER_CONFIG: '/nonexistent-bxb-test' };
  return createRegistryClient({ host: HOST, http: true }, { credentials: createCredentialStore({ env, secrets }), secrets, env, timeoutMs: 1000, transport });
}

async function endsInRegistryError(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof RegistryRequestError)) throw e;
    if (e.host !== HOST || !e.message.startsWith(`${HOST}: `)) throw new Error(`error does not name the registry: ${e.message}`);
    if (e.message.includes('\n')) throw new Error(`not one line: ${JSON.stringify(e.message)}`);
  }
}

const mediaType = fc.oneof(fc.constantFrom(...MANIFEST_MEDIA_TYPES, 'application/json', 'text/plain', 'application/vnd.docker.distribution.manifest.v1+prettyjws', ''), hostileString(30));
const digestish = fc.oneof(fc.constantFrom(undefined, 'sha256:', `sha256:${'0'.repeat(64)}`, `sha512:${'0'.repeat(128)}`, 'md5:abc'), hostileString(20));
const headerValue = fc.oneof(hostileString(60), fc.constant(undefined));
const body = fc.oneof(
  bytesAsText(300).map((s) => Buffer.from(s)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
  fc.record({ schemaVersion: fc.constantFrom(2, 1, '2'), mediaType, manifests: fc.array(fc.record({ digest: digestish, mediaType, platform: fc.jsonValue({ maxDepth: 1 }) }), { maxLength: 3 }) }).map((v) => Buffer.from(JSON.stringify(v))),
  fc.record({ name: hostileString(10), tags: fc.oneof(fc.constant(null), fc.array(fc.oneof(hostileString(12), fc.integer(), fc.constant(null)), { maxLength: 5 })) }).map((v) => Buffer.from(JSON.stringify(v))),
  fc.record({ token: fc.oneof(hostileString(20), fc.integer()), access_token: hostileString(5), expires_in: fc.oneof(fc.integer(), fc.double(), hostileString(3)) }).map((v) => Buffer.from(JSON.stringify(v))),
);
const response: fc.Arbitrary<HttpResponse> = fc.record({
  status: fc.oneof(fc.constantFrom(200, 200, 200, 201, 204, 301, 302, 307, 401, 403, 404, 405, 429, 500, 503), fc.integer({ min: 0, max: 999 })),
  headers: fc.record({
    'content-type': mediaType,
    'docker-content-digest': digestish,
    'content-length': fc.oneof(fc.nat().map(String), hostileString(5)),
    'www-authenticate': fc.oneof(headerValue, fc.constantFrom('Bearer realm="http://127.0.0.1:1/token",service="s"', 'Basic realm="r"', 'Bearer realm="ftp://x/"', 'Bearer realm=""')),
    link: fc.oneof(headerValue, fc.constantFrom('</v2/x/tags/list?last=a>; rel="next"', '<http://elsewhere.test/v2/x/tags/list>; rel="next"', '</v2/x/tags/list>; rel="next"')),
    location: fc.oneof(headerValue, fc.constantFrom('/v2/x/manifests/a', 'http://127.0.0.2:1/blob', 'file:///etc/passwd')),
    'ratelimit-limit': headerValue,
    'retry-after': headerValue,
  }, { requiredKeys: [] }) as fc.Arbitrary<HttpResponse['headers']>,
  body,
});

t.test('any registry answer ends in a result or a one-line RegistryRequestError naming the registry', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(response, { minLength: 1, maxLength: 6 }), fc.constantFrom('v0.18.2', `sha256:${'0'.repeat(64)}`), async (answers, reference) => {
      const transport = scripted((_req, n) => answers[n % answers.length]!);
      const client = clientOver(transport);
      await endsInRegistryError(() => client.headManifest('moby/buildkit', reference));
      await endsInRegistryError(() => client.getManifest('moby/buildkit', reference));
      await endsInRegistryError(() => client.listTags('moby/buildkit'));
      await endsInRegistryError(() => client.ping());
      if (transport.count() > 4 * 40) throw new Error(`${transport.count()} requests for four calls: unbounded`);
    }),
    runs(400),
  );
});

t.test('Link pagination that loops or points elsewhere ends, and a 100k-tag list is read whole', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fc.nat(5).map((i) => `</v2/moby/buildkit/tags/list?page=${i}>; rel="next"`), fc.constant('<http://127.0.0.2:9/v2/moby/buildkit/tags/list>; rel="next"')), { minLength: 1, maxLength: 8 }), async (links) => {
      const transport = scripted((_req, n) => ({ status: 200, headers: { link: links[n % links.length] }, body: Buffer.from(JSON.stringify({ tags: [`t${n}`] })) }));
      await endsInRegistryError(() => clientOver(transport).listTags('moby/buildkit'));
      if (transport.count() > 7) throw new Error(`${transport.count()} pages for 6 distinct URLs`);
    }),
    runs(200),
  );
  const tags = Array.from({ length: 100_000 }, (_, i) => `v0.${i}.0`);
  const got = await clientOver(scripted(() => ({ status: 200, headers: {}, body: Buffer.from(JSON.stringify({ tags })) }))).listTags('moby/buildkit');
  t.equal(got.length, 100_000);
});

t.test('credential helper output of any shape is a credential or a warning, never an exception or a leaked secret', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ credsStore: 'fake', auths: { 'harbor.corp': { auth: '!!not base64' } } }) });
  let calls = 0;
  const helperOut = fc.oneof(
    bytesAsText(200),
    fc.record({ Username: fc.oneof(hostileString(10), fc.constant('<token>'), fc.integer()), Secret: fc.oneof(fc.constant('s3cr3t-value'), fc.integer(), fc.constant(null)), ServerURL: hostileString(10) }).map((v) => JSON.stringify(v)),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? ''),
  );
  await fc.assert(
    fc.asyncProperty(helperOut, fc.integer({ min: -1, max: 255 }), hostileString(100), async (stdout, code, stderr) => {
      const secrets = new Secrets();
      const store = createCredentialStore({
        env: { DOCKER_CONFIG: dir },
        secrets,
        runHelper: async () => {
          calls++;
          return { code, stdout, stderr: stderr.replace(/s3cr3t-value/g, '') };
        },
      });
      const credential = await store.get('harbor.corp');
      if (credential && 'password' in credential && typeof credential.password !== 'string') throw new Error('non-string password');
      for (const w of store.warnings()) if (w.includes('s3cr3t-value')) throw new Error(`secret in a warning: ${w}`);
    }),
    runs(400),
  );
  t.ok(calls >= 400, 'the helper was asked every time');
});
