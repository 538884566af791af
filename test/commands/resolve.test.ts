// `buildx-bootstrap resolve` end to end, in-process, against real docker-registry instances on
// loopback: what a user sees on stdout/stderr and the exit code. The "upstream" stands in for
// Docker Hub: buildkit.image names it, mirrors are `for` it.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { makeCa } from '../helpers/tls.js';
import { jsonErrorHandler, startBlackhole, startHttpStub, startRefusingPort } from '../helpers/net.js';
import { pushEngineTags, pushImage, seedTags, engineImageForTag, type EngineImage } from '../helpers/engine-image.js';

const REPO = 'moby/buildkit';

if (requireBinaries(t, ['docker-registry', 'openssl', 'busybox'])) {
  const upstream = await startRegistry(t);
  const images = await pushEngineTags(upstream.url, {
    tags: {
      'v0.17.3': {},
      'v0.18.1': {},
      'v0.18.2': {},
      'v0.18.2-rootless': {},
      'v0.18.2-ubuntu': {},
      'v0.19.0-rc1': {},
      'v0.19.0-rc1-rootless': {},
      'buildx-stable-1': 'v0.18.2',
      'buildx-stable-1-rootless': 'v0.18.2',
    },
  });
  const image = `${upstream.host}/${REPO}`;
  const ref = (tag: string, img: EngineImage = images[tag]!, at = image): string => `${at}:${tag}@${img.digest}`;

  /** A project dir with a config file and a private DOCKER_CONFIG/HOME (no real credentials). */
  const project = (t: Test, config: Record<string, unknown>, dockerConfig?: unknown): { cwd: string; env: Record<string, string | undefined> } => {
    const cwd = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify(config, null, 2) });
    const docker = join(cwd, '.docker');
    mkdirSync(docker);
    if (dockerConfig) writeFileSync(join(docker, 'config.json'), JSON.stringify(dockerConfig));
    return { cwd, env: { PATH: process.env.PATH, HOME: cwd, DOCKER_CONFIG: docker } };
  };
  const run = (p: { cwd: string; env: Record<string, string | undefined> }, ...argv: string[]): Promise<CliResult> => runCli(['resolve', ...argv], p);
  const json = (r: CliResult): { reference: string; tag: string; digest: string; source: string; candidates: { label: string; outcome: string; error: string | null; ms: number }[] } =>
    JSON.parse(r.stdout);
  const fast = { probe: '1500ms', hedge: '100ms' };

  t.test('an exact version prints one line: registry/repository:tag@digest', async (t) => {
    const r = await run(project(t, { buildkit: { version: 'v0.18.2', image } }));
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${ref('v0.18.2')}\n`);
    t.equal(images['v0.18.2']!.manifest.mediaType, 'application/vnd.oci.image.index.v1+json', 'the digest is the OCI index, not a platform child');
  });

  t.test('--json: reference, tag, digest, source and every candidate with outcome and time', async (t) => {
    const refusing = await startRefusingPort();
    const r = await run(project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: refusing.host, for: upstream.host }] }), '--json');
    t.equal(r.code, 0, r.stderr);
    const out = json(r);
    t.same(Object.keys(out), ['reference', 'tag', 'digest', 'source', 'candidates']);
    t.equal(out.reference, ref('v0.18.2'));
    t.equal(out.tag, 'v0.18.2');
    t.equal(out.digest, images['v0.18.2']!.digest);
    t.equal(out.source, image);
    t.same(out.candidates.map((c) => [c.label, c.outcome]), [[`${refusing.host}/${REPO}`, 'failed'], [image, 'ok']]);
    t.match(out.candidates[0]!.error, /refused/i);
    t.equal(out.candidates[1]!.error, null);
    for (const c of out.candidates) t.type(c.ms, 'number');
  });

  t.test('a range falls back past every kind of dead mirror to the upstream', async (t) => {
    const refusing = await startRefusingPort();
    const blackhole = await startBlackhole(t);
    const v2ok = (res: import('node:http').ServerResponse): void => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-Api-Version': 'registry/2.0' });
      res.end('{}');
    };
    const s500 = await startHttpStub(t, jsonErrorHandler(500, 'UNKNOWN', 'internal error'));
    const s429 = await startHttpStub(t, jsonErrorHandler(429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit.'));
    const s401 = await startHttpStub(t, jsonErrorHandler(401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': 'Basic realm="basic-realm"' }));
    const garbage = await startHttpStub(t, (req, res) => {
      if (req.url === '/v2/') return v2ok(res);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"name":"moby/buildkit","tags":[');
    });
    const empty = await startRegistry(t); // a registry that has never heard of moby/buildkit: 404
    const mirrors = [refusing.host, blackhole.host, s500.host, s429.host, s401.host, garbage.host, empty.host];
    const p = project(t, { buildkit: { version: '^0.18', image }, mirrors: mirrors.map((host) => ({ host, for: upstream.host })), timeouts: fast });
    const r = await run(p, '--json');
    t.equal(r.code, 0, r.stderr);
    const out = json(r);
    t.equal(out.reference, ref('v0.18.2'), 'the highest final 0.18 release, from the upstream');
    t.same(
      out.candidates.map((c) => c.outcome),
      [...mirrors.map(() => 'failed'), 'ok'],
    );
    const errors = out.candidates.map((c) => c.error ?? '');
    t.match(errors[0], /refused/i, 'refused');
    t.match(errors[1], /1500 ms|timed out|timeout|no answer/i, 'blackhole: given up within probe');
    t.match(errors[2], /500/, '5xx');
    t.match(errors[3], /429|rate|too many/i, '429');
    t.match(errors[4], /401|auth|credential/i, '401');
    t.match(errors[5], /json|malformed|parse|invalid|unexpected/i, 'malformed tag list');
    t.match(errors[6], /404|not found|unknown/i, '404');
    for (const e of errors.slice(0, -1)) t.notMatch(e, /\n/, 'one line each');
    t.ok(blackhole.connections() >= 1, 'the blackhole was really tried');
    // The same candidates' failures are reported on stderr, not stdout.
    t.match(r.stderr, new RegExp(`${s500.host}/${REPO}: `));
  });

  t.test('an exact tag missing from a mirror (404) falls back; the mirror that has it wins', async (t) => {
    const empty = await startRegistry(t);
    const partial = await startRegistry(t);
    await pushImage(partial.url, REPO, ['v0.18.2'], images['v0.18.2']!);
    const p = project(t, { buildkit: { version: 'v0.18.1', image }, mirrors: [empty.host, partial.host].map((host) => ({ host, for: upstream.host })), timeouts: fast });
    const r = await run(p, '--json');
    t.equal(r.code, 0, r.stderr);
    t.same(json(r).candidates.map((c) => c.outcome), ['failed', 'failed', 'ok'], 'v0.18.1 only upstream');
    const p2 = project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [empty.host, partial.host].map((host) => ({ host, for: upstream.host })), timeouts: fast });
    const r2 = await run(p2);
    t.equal(r2.code, 0, r2.stderr);
    t.equal(r2.stdout, `${ref('v0.18.2', images['v0.18.2'], `${partial.host}/${REPO}`)}\n`, 'the mirror wins over the upstream');
  });

  t.test('a pull-through cache (proxy.remoteurl) in front of the upstream serves the image', async (t) => {
    const cache = await startRegistry(t, { proxy: { remoteUrl: upstream.url } });
    for (const version of ['v0.18.2', '^0.18']) {
      const r = await run(project(t, { buildkit: { version, image }, mirrors: [{ host: cache.host, for: upstream.host }] }));
      t.equal(r.code, 0, r.stderr);
      t.equal(r.stdout, `${ref('v0.18.2', images['v0.18.2'], `${cache.host}/${REPO}`)}\n`, version);
    }
  });

  t.test('a mirror with a path prefix is addressed as host/path/repository', async (t) => {
    const harbor = await startRegistry(t);
    await pushImage(harbor.url, `dockerhub-proxy/${REPO}`, ['v0.18.2'], images['v0.18.2']!);
    const r = await run(project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: harbor.host, path: 'dockerhub-proxy', for: upstream.host }] }));
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${harbor.host}/dockerhub-proxy/${REPO}:v0.18.2@${images['v0.18.2']!.digest}\n`);
  });

  t.test('upstream: false never sends a request to the upstream', async (t) => {
    const own = await startRegistry(t);
    await pushImage(own.url, REPO, ['v0.18.2'], images['v0.18.2']!);
    const refusing = await startRefusingPort();
    await upstream.settle();
    const before = upstream.requests();

    const ok = await run(project(t, { buildkit: { version: '^0.18', image }, upstream: false, mirrors: [{ host: refusing.host, for: upstream.host }, { host: own.host, for: upstream.host }] }), '--json');
    t.equal(ok.code, 0, ok.stderr);
    t.equal(json(ok).source, `${own.host}/${REPO}`);
    t.same(json(ok).candidates.map((c) => c.label), [`${refusing.host}/${REPO}`, `${own.host}/${REPO}`], 'the upstream is not even a candidate');

    const none = await run(project(t, { buildkit: { version: 'v0.18.2', image }, upstream: false, mirrors: [{ host: refusing.host, for: upstream.host }] }));
    t.equal(none.code, 3);
    t.notMatch(none.stderr, `${upstream.host}/`);

    await upstream.settle();
    t.equal(upstream.requests(), before, 'zero requests reached the upstream');
  });

  t.test('prerelease and rootless rules', async (t) => {
    const cases: [Record<string, unknown>, string][] = [
      [{ version: '^0.18' }, 'v0.18.2'],
      [{ version: '*' }, 'v0.18.2'],
      [{ version: '^0.19' }, ''],
      [{ version: '^0.19.0-rc1' }, 'v0.19.0-rc1'],
      [{ version: '^0.18', rootless: true }, 'v0.18.2-rootless'],
      [{ version: '^0.19.0-rc1', rootless: true }, 'v0.19.0-rc1-rootless'],
      [{ version: 'buildx-stable-1', rootless: true }, 'buildx-stable-1-rootless'],
      [{ version: 'v0.18.2', rootless: true }, 'v0.18.2-rootless'],
      [{ version: '~0.17.0', rootless: true }, ''],
    ];
    for (const [buildkit, tag] of cases) {
      const r = await run(project(t, { buildkit: { ...buildkit, image }, timeouts: fast }));
      const what = JSON.stringify(buildkit);
      if (tag) {
        t.equal(r.code, 0, `${what}: ${r.stderr}`);
        t.equal(r.stdout, `${ref(tag)}\n`, what);
      } else {
        t.equal(r.code, 3, what);
        t.match(r.stderr, /no registry could serve/, what);
        t.match(r.stderr, /no (-rootless )?tag satisfies/, what);
      }
    }
  });

  t.test('a range over a 10,000-tag repository', async (t) => {
    const bulk = await startRegistry(t);
    const base = engineImageForTag('v1.0.0', { single: true });
    const rootless = engineImageForTag('v1.0.0-rootless', { single: true });
    await pushImage(bulk.url, REPO, ['v1.0.0'], base);
    await pushImage(bulk.url, REPO, ['v1.0.0-rootless'], rootless);
    const plain: string[] = [];
    const flavoured: string[] = [];
    for (let minor = 0; minor < 50; minor++) {
      for (let patch = 0; patch < 50; patch++) {
        plain.push(`v1.${minor}.${patch}`, `v1.${minor}.${patch}-rc1`, `v1.${minor}.${patch}-ubuntu`);
        flavoured.push(`v1.${minor}.${patch}-rootless`);
      }
    }
    seedTags(bulk, REPO, plain, base.digest);
    seedTags(bulk, REPO, flavoured, rootless.digest);
    t.equal(plain.length + flavoured.length, 10_000);
    const bulkImage = `${bulk.host}/${REPO}`;
    const r = await run(project(t, { buildkit: { version: '^1.20', image: bulkImage } }));
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${bulkImage}:v1.49.49@${base.digest}\n`);
    const r2 = await run(project(t, { buildkit: { version: '~1.7.3', image: bulkImage, rootless: true } }));
    t.equal(r2.code, 0, r2.stderr);
    t.equal(r2.stdout, `${bulkImage}:v1.7.49-rootless@${rootless.digest}\n`);
  });

  t.test('no registry can serve it: exit 3 listing every candidate and what to do', async (t) => {
    const refusing = await startRefusingPort();
    const empty = await startRegistry(t);
    const r = await run(project(t, { buildkit: { version: 'v0.18.9', image }, mirrors: [refusing.host, empty.host].map((host) => ({ host, for: upstream.host })), timeouts: fast }));
    t.equal(r.code, 3);
    t.equal(r.stdout, '');
    const last = r.stderr.trim().split('\n').pop()!;
    t.match(last, /^buildx-bootstrap: no registry could serve the engine image v0\.18\.9: /);
    for (const label of [`${refusing.host}/${REPO}`, `${empty.host}/${REPO}`, image]) t.ok(last.includes(label), label);
    t.match(last, /mirrors.*upstream.*--probe-timeout/);
  });

  t.test('wrong credentials: the message names the registry; the password appears nowhere', async (t) => {
    const password = 'hunter2-very-secret';
    const locked = await startRegistry(t, { basicAuth: { ci: 'the-right-one' } });
    await pushImage(locked.url, REPO, ['v0.18.2'], images['v0.18.2']!, { auth: { username: 'ci', password: 'the-right-one' } });
    const auth = Buffer.from(`ci:${password}`).toString('base64');
    const p = project(t, { buildkit: { version: 'v0.18.2', image }, upstream: false, mirrors: [{ host: locked.host, for: upstream.host }] }, { auths: { [locked.host]: { auth } } });
    for (const argv of [[], ['--json'], ['--debug']]) {
      const r = await run(p, ...argv);
      t.equal(r.code, 3, argv.join(' '));
      t.match(r.stderr, locked.host);
      t.match(r.stderr, /401|auth|credential|unauthori/i);
      for (const out of [r.stdout, r.stderr]) {
        t.notOk(out.includes(password), 'no password');
        t.notOk(out.includes(auth), 'no auth string');
      }
    }
    const good = project(t, { buildkit: { version: 'v0.18.2', image }, upstream: false, mirrors: [{ host: locked.host, for: upstream.host }] }, { auths: { [locked.host]: { auth: Buffer.from('ci:the-right-one').toString('base64') } } });
    const ok = await run(good);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout, `${ref('v0.18.2', images['v0.18.2'], `${locked.host}/${REPO}`)}\n`);
  });

  t.test('a TLS mirror whose certificate comes from an unknown CA fails clearly, and works with its ca:', async (t) => {
    const secure = await startRegistry(t, { tls: true });
    await pushImage({ url: secure.url, caCert: secure.caCert }, REPO, ['v0.18.2'], images['v0.18.2']!);
    // On loopback the client speaks plain HTTP unless a CA (or insecure) is configured, so the
    // unknown-CA case is a ca: that did not sign the registry's certificate (e.g. a stale bundle).
    const mirror = { host: secure.host, for: upstream.host };
    const p = project(t, {});
    const other = await makeCa(p.cwd, 'other-ca', 'some other CA');
    writeFileSync(join(p.cwd, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { version: 'v0.18.2', image }, upstream: false, mirrors: [{ ...mirror, ca: other.certFile }] }));
    const bad = await run(p);
    t.equal(bad.code, 3);
    t.equal(bad.stdout, '');
    t.match(bad.stderr, secure.host);
    t.match(bad.stderr, /certificate|TLS|self.signed|issuer/i);
    const good = await run(project(t, { buildkit: { version: 'v0.18.2', image }, upstream: false, mirrors: [{ ...mirror, ca: secure.caFile }] }));
    t.equal(good.code, 0, good.stderr);
    t.equal(good.stdout, `${ref('v0.18.2', images['v0.18.2'], `${secure.host}/${REPO}`)}\n`);
  });

  t.test('invalid configuration files: exit 2 listing every problem, no registry contacted', async (t) => {
    await upstream.settle();
    const before = upstream.requests();
    const dir = t.testdir({
      '.buildx-bootstraprc.yaml': [
        'buildkit:',
        '  version: "^^0.18"',
        `  image: ${image}:v0.18.2`,
        '  colour: blue',
        'mirrors:',
        '  - host: https://harbor.example',
        '  - host: harbor.example',
        '    path: Upper/Case',
        'upstream: maybe',
        'timeouts: { probe: soon }',
        '',
      ].join('\n'),
      broken: { '.buildx-bootstraprc.json': '{"buildkit": {"version": "v0.18.2",}' },
    });
    const env = { PATH: process.env.PATH, HOME: dir };
    const r = await runCli(['resolve'], { cwd: dir, env });
    t.equal(r.code, 2);
    t.equal(r.stdout, '');
    const line = r.stderr.trim();
    t.equal(line.split('\n').length, 1, 'one line');
    for (const key of ['buildkit.version', 'buildkit.image', 'buildkit.colour', 'mirrors[0].host', 'mirrors[1].path', 'upstream', 'timeouts.probe']) t.ok(line.includes(key), key);
    t.match(line, /\.buildx-bootstraprc\.yaml/);
    t.match(line, /7 problems/);

    const b = await runCli(['resolve'], { cwd: join(dir, 'broken'), env });
    t.equal(b.code, 2);
    t.match(b.stderr, /\.buildx-bootstraprc\.json: cannot be parsed/);
    await upstream.settle();
    t.equal(upstream.requests(), before);
  });
}

