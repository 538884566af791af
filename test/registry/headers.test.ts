import t from 'tap';
import { bareMediaType, parseLinkNext, parseRateLimit, parseWwwAuthenticate } from '../../src/registry/headers.js';

t.test('WWW-Authenticate challenges', async (t) => {
  const cases: [string | string[] | undefined, ReturnType<typeof parseWwwAuthenticate>][] = [
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:moby/buildkit:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:moby/buildkit:pull' } }],
    ],
    ['Basic realm="basic-realm"', [{ scheme: 'basic', params: { realm: 'basic-realm' } }]],
    // GitLab / Harbor style: spaces after commas, unquoted values, mixed-case names
    ['bearer Realm=https://gitlab.example.com/jwt/auth, Service=container_registry', [{ scheme: 'bearer', params: { realm: 'https://gitlab.example.com/jwt/auth', service: 'container_registry' } }]],
    // two challenges in one header (node joins repeated headers with ", ")
    [
      'Basic realm="r1", Bearer realm="https://a/token",service="s"',
      [
        { scheme: 'basic', params: { realm: 'r1' } },
        { scheme: 'bearer', params: { realm: 'https://a/token', service: 's' } },
      ],
    ],
    [['Basic realm="a"', 'Bearer realm="b"'], [{ scheme: 'basic', params: { realm: 'a' } }, { scheme: 'bearer', params: { realm: 'b' } }]],
    // scopes with several actions and escaped quotes
    ['Bearer realm="x",scope="repository:a/b:pull,push",error="insufficient_scope",note="say \\"hi\\""', [
      { scheme: 'bearer', params: { realm: 'x', scope: 'repository:a/b:pull,push', error: 'insufficient_scope', note: 'say "hi"' } },
    ]],
    ['Bearer', [{ scheme: 'bearer', params: {} }]],
    ['', []],
    [undefined, []],
  ];
  for (const [header, want] of cases) t.same(parseWwwAuthenticate(header), want, JSON.stringify(header));
  t.doesNotThrow(() => parseWwwAuthenticate('=,=,"unterminated'), 'garbage never throws or loops');
});

t.test('Link rel="next"', async (t) => {
  const base = new URL('https://r.example/v2/moby/buildkit/tags/list?n=100');
  const cases: [string | undefined, string | undefined][] = [
    ['</v2/moby/buildkit/tags/list?last=v0.9.0&n=100>; rel="next"', 'https://r.example/v2/moby/buildkit/tags/list?last=v0.9.0&n=100'],
    ['<https://r.example/v2/x/tags/list?last=b>; rel=next', 'https://r.example/v2/x/tags/list?last=b'],
    ['</a>; rel="prev", </b>; rel="next"', 'https://r.example/b'],
    ['</a>; title="x"; rel="next last"', 'https://r.example/a'],
    ['</a>; rel="prev"', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [header, want] of cases) t.equal(parseLinkNext(header, base)?.href, want, String(header));
});

t.test('Docker Hub rate-limit headers', async (t) => {
  t.same(parseRateLimit({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '20;w=21600', 'docker-ratelimit-source': '192.0.2.1' }), {
    limit: 100,
    remaining: 20,
    windowSeconds: 21600,
    source: '192.0.2.1',
  });
  t.same(parseRateLimit({ 'ratelimit-remaining': '7' }), { remaining: 7 });
  t.equal(parseRateLimit({ 'content-type': 'application/json' }), undefined, 'unlimited accounts get no headers');
});

t.test('media types lose their parameters', async (t) => {
  t.equal(bareMediaType('application/json; charset=utf-8'), 'application/json');
  t.equal(bareMediaType('Application/VND.OCI.image.index.v1+json'), 'application/vnd.oci.image.index.v1+json');
  t.equal(bareMediaType(undefined), '');
});
