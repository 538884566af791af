// Self-checks of the real-registry harness: if these fail, every registry test is suspect.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { buildEngineImage, MEDIA, pushEngineTags, pushImage, seedTags, writeImageToStorage } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';
import { harnessRequest } from '../helpers/net.js';
import { startRegistry } from '../helpers/registry.js';
import { startTokenServer } from '../helpers/token-server.js';

const run = promisify(execFile);
const ALL_TYPES = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

t.test('a plain registry answers /v2/ and counts only non-harness requests', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  t.match(reg.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await harnessRequest(`${reg.url}/v2/`, { headers: { 'User-Agent': 'some-client' } });
  t.equal(r.status, 200);
  t.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  await reg.settle();
  t.equal(reg.requests(), 1);
  t.same(reg.requestLog(), ['GET /v2/ 200']);
  await reg.stop();
  await t.rejects(harnessRequest(`${reg.url}/v2/`, { timeoutMs: 2000 }), 'stopped registry no longer answers');
});

t.test('htpasswd Basic auth accepts the bcrypt line the harness writes', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t, { basicAuth: { alice: 'wonder-land-9' } });
  const anon = await harnessRequest(`${reg.url}/v2/`);
  t.equal(anon.status, 401);
  t.match(String(anon.headers['www-authenticate']), /^Basic realm="basic-realm"/);
  t.equal((await harnessRequest(`${reg.url}/v2/`, { headers: { Authorization: basic('alice', 'wonder-land-9') } })).status, 200);
  t.equal((await harnessRequest(`${reg.url}/v2/`, { headers: { Authorization: basic('alice', 'wrong') } })).status, 401);
});

t.test('a TLS registry is trusted with its CA and only with it', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const reg = await startRegistry(t, { tls: true });
  t.match(reg.url, /^https:/);
  t.ok(reg.caFile);
  t.equal((await harnessRequest(`${reg.url}/v2/`, { ca: reg.caCert })).status, 200);
  await t.rejects(harnessRequest(`${reg.url}/v2/`), /self[- ]signed|unable to (get|verify)/i);
});

t.test('token auth: the registry accepts JWTs from the token server', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const ts = await startTokenServer(t, { users: { bob: 'builder-pass' } });
  const reg = await startRegistry(t, { tokenAuth: ts });
  const anon = await harnessRequest(`${reg.url}/v2/moby/buildkit/tags/list`);
  t.equal(anon.status, 401);
  t.equal(
    anon.headers['www-authenticate'],
    `Bearer realm="${ts.realm}",service="${ts.service}",scope="repository:moby/buildkit:pull"`,
  );
  const denied = await harnessRequest(`${ts.realm}?service=${ts.service}&scope=repository:moby/buildkit:pull`);
  t.equal(denied.status, 401, 'anonymous token requests are refused when users are configured');
  await pushEngineTags({ url: reg.url }, { tags: { 'v0.18.2': {} }, auth: { username: 'bob', password: 'builder-pass' } });
  const tok = await harnessRequest(`${ts.realm}?service=${ts.service}&scope=repository:moby/buildkit:pull`, { headers: { Authorization: basic('bob', 'builder-pass') } });
  const token = (JSON.parse(tok.body.toString()) as { token: string }).token;
  const list = await harnessRequest(`${reg.url}/v2/moby/buildkit/tags/list`, { headers: { Authorization: `Bearer ${token}` } });
  t.equal(list.status, 200);
  t.same(JSON.parse(list.body.toString()), { name: 'moby/buildkit', tags: ['v0.18.2'] });
  const other = await harnessRequest(`${reg.url}/v2/other/repo/tags/list`, { headers: { Authorization: `Bearer ${token}` } });
  t.equal(other.status, 401, 'a token is scoped to its repository');
});

t.test('a pushed multi-platform OCI index is served with its own digest and type', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  const image = buildEngineImage({ version: 'v0.18.2', platforms: ['linux/amd64', 'linux/arm64'] });
  t.equal(image.manifest.mediaType, MEDIA.ociIndex);
  t.equal(image.children.length, 2);
  await pushImage(reg, 'moby/buildkit', ['v0.18.2'], image);
  const head = await harnessRequest(`${reg.url}/v2/moby/buildkit/manifests/v0.18.2`, { method: 'HEAD', headers: { Accept: ALL_TYPES } });
  t.equal(head.status, 200);
  t.equal(head.headers['content-type'], MEDIA.ociIndex);
  t.equal(head.headers['docker-content-digest'], image.digest);
  const get = await harnessRequest(`${reg.url}/v2/moby/buildkit/manifests/v0.18.2`, { headers: { Accept: ALL_TYPES } });
  t.equal(`sha256:${createHash('sha256').update(get.body).digest('hex')}`, image.digest, 'digest is the hash of the index body');
  t.not(image.digest, image.children[0]!.manifest.digest);
  const withoutIndexType = await harnessRequest(`${reg.url}/v2/moby/buildkit/manifests/v0.18.2`, {
    method: 'HEAD',
    headers: { Accept: `${MEDIA.ociManifest}, ${MEDIA.dockerManifest}` },
  });
  t.equal(withoutIndexType.status, 404, 'registry 2.8 hides an OCI index from clients that do not accept it');
});

t.test('the stand-in engine image is valid for skopeo and its buildkitd reports the tag version', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'skopeo', 'tar'])) return;
  const reg = await startRegistry(t);
  const images = await pushEngineTags(reg, {
    tags: { 'v0.18.2': {}, 'v0.19.0-rc1': {}, 'v0.18.2-rootless': {}, 'buildx-stable-1': 'v0.18.2', 'v0.17.0': { single: true, format: 'docker' } },
  });
  t.equal(images['buildx-stable-1']!.digest, images['v0.18.2']!.digest, 'a retag shares the digest');
  t.not(images['v0.18.2-rootless']!.digest, images['v0.18.2']!.digest);
  t.equal(images['v0.17.0']!.manifest.mediaType, MEDIA.dockerManifest);
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/moby/buildkit:v0.19.0-rc1`], { timeout: 30_000 });
  const info = JSON.parse(stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
  t.equal(info.Digest, images['v0.19.0-rc1']!.digest);
  t.equal(info.Os, 'linux');
  t.equal(info.Layers.length, 2);

  // Unpack the host platform's layers and run the stand-in buildkitd as buildx would.
  const dir = t.testdir();
  const root = join(dir, 'rootfs');
  mkdirSync(root);
  await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/moby/buildkit:v0.19.0-rc1`, `dir:${join(dir, 'img')}`], { timeout: 60_000 });
  const child = images['v0.19.0-rc1']!.children[0]!;
  const manifest = JSON.parse(child.manifest.data.toString()) as { layers: { digest: string }[] };
  for (const layer of manifest.layers) await run('tar', ['-xzf', join(dir, 'img', layer.digest.slice(7)), '-C', root]);
  const version = await run(join(root, 'usr/bin/buildkitd'), ['--version']);
  const fields = version.stdout.trim().split(/\s+/);
  t.equal(fields.length, 4, 'buildx requires exactly four fields');
  t.equal(fields[2], 'v0.19.0-rc1');
  t.match(fields[3]!, /^[0-9a-f]{40}$/);
  const workers = await run(join(root, 'usr/bin/buildctl'), ['debug', 'workers']);
  t.match(workers.stdout, /PLATFORMS\n\S+\s+linux\//);
  const bb = await run(join(root, 'bin/busybox'), ['echo', 'ok']);
  t.equal(bb.stdout, 'ok\n');
});

t.test('10,000 tags seeded through the storage layout are listed and resolvable', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const reg = await startRegistry(t);
  const image = buildEngineImage({ version: 'v0.18.2' });
  writeImageToStorage(reg, 'moby/buildkit', ['v0.18.2'], image);
  const tags = Array.from({ length: 10_000 }, (_, i) => `v1.${Math.floor(i / 100)}.${i % 100}`);
  seedTags(reg, 'moby/buildkit', tags, image.digest);
  const list = await harnessRequest(`${reg.url}/v2/moby/buildkit/tags/list?n=10`);
  t.equal(list.status, 200);
  t.equal(list.headers.link, undefined, '2.8 sends no Link header');
  const names = (JSON.parse(list.body.toString()) as { tags: string[] }).tags;
  t.equal(names.length, 10_001, '2.8 ignores n= and answers every tag at once');
  const head = await harnessRequest(`${reg.url}/v2/moby/buildkit/manifests/v1.99.99`, { method: 'HEAD', headers: { Accept: ALL_TYPES } });
  t.equal(head.status, 200);
  t.equal(head.headers['docker-content-digest'], image.digest);
});

t.test('a pull-through cache serves the upstream image and the upstream sees the requests', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const upstream = await startRegistry(t);
  const images = await pushEngineTags(upstream, { tags: { 'v0.18.2': {} } });
  const mirror = await startRegistry(t, { proxy: { remoteUrl: upstream.url } });
  const head = await harnessRequest(`${mirror.url}/v2/moby/buildkit/manifests/v0.18.2`, { method: 'HEAD', headers: { Accept: ALL_TYPES } });
  t.equal(head.status, 200);
  t.equal(head.headers['docker-content-digest'], images['v0.18.2']!.digest);
  await upstream.settle();
  t.ok(upstream.requests() > 0, `upstream log: ${upstream.requestLog().join(', ')}`);
});

t.test('a TLS registry with Basic auth takes pushes through the harness', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const reg = await startRegistry(t, { tls: true, basicAuth: { ci: 'ci-password-1' } });
  const images = await pushEngineTags(reg, { tags: { 'v0.18.2': {} }, auth: { username: 'ci', password: 'ci-password-1' } });
  const head = await harnessRequest(`${reg.url}/v2/moby/buildkit/manifests/v0.18.2`, {
    method: 'HEAD',
    ca: reg.caCert,
    headers: { Accept: ALL_TYPES, Authorization: basic('ci', 'ci-password-1') },
  });
  t.equal(head.headers['docker-content-digest'], images['v0.18.2']!.digest);
});
