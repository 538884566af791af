// A runnable stand-in for the moby/buildkit engine image, built in memory without docker:
// busybox (Debian busybox-static) plus `buildkitd`/`buildctl` shell scripts that answer the way
// buildx expects (`buildkitd --version` → 4 fields, the 3rd being the version: BX
// driver/docker-container/driver.go `Version`). Images are pushed over the registry HTTP API, or
// written straight into a registry's storage dir when thousands of tags are needed.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { harnessRequest, type HarnessResponse } from './net.js';
import { writeTar, type TarEntry } from '../../src/image/tar.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export interface Platform {
  os: string;
  architecture: string;
}

export interface EngineImage {
  /** What `buildkitd --version` reports, e.g. `v0.18.2`. */
  version: string;
  /** The manifest a tag points at: an index/list when multi-platform, else a single manifest. */
  manifest: Blob;
  /** The tag's digest (= manifest.digest). */
  digest: string;
  /** Child manifests of an index (empty for a single-platform image), one per platform. */
  children: { platform: Platform; manifest: Blob }[];
  /** Configs and layers, deduplicated. */
  blobs: Blob[];
}

export interface EngineImageOptions {
  version: string;
  /** Revision field of `buildkitd --version`; default: a 40-hex value derived from the version. */
  revision?: string;
  /** Manifest flavour: OCI (default, like current moby/buildkit) or Docker schema 2. */
  format?: 'oci' | 'docker';
  /** Platforms; default the machine's own. Several → an index (OCI) or manifest list (Docker). */
  platforms?: string[];
  /** Force an index even for one platform (real buildkit releases are always indexes). */
  index?: boolean;
  /** Marks a variant (e.g. `rootless`) so its digest differs from the plain image. */
  flavour?: string;
  /** Adds a layer per platform with this many bytes of incompressible data (`/payload.bin`). */
  payloadBytes?: number;
  /** Adds a BuildKit-style attestation manifest (`unknown/unknown`) per platform to the index. */
  attestations?: boolean;
}

const FIXED_TIME = '2026-01-01T00:00:00Z';
const BUSYBOX_APPLETS = [
  'sh', 'ash', 'sleep', 'cat', 'echo', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'env', 'true', 'false', 'test', '[',
  'printf', 'ps', 'kill', 'id', 'uname', 'hostname', 'grep', 'sed', 'head', 'tail', 'wc', 'tar', 'wget', 'date', 'touch',
];

export function hostPlatform(): Platform {
  const architecture = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  return { os: 'linux', architecture };
}

function blob(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

// ---- tar: the product's own writer (src/image/tar.ts) ----

export { writeTar, type TarEntry };

// ---- image content ----

interface Layer {
  /** sha256 of the uncompressed tar (config `rootfs.diff_ids`). */
  diffId: string;
  gz: Buffer;
}

let baseLayer: Layer | undefined;

/** busybox, its applet links and the usual directories; shared by every tag (pushed once). */
function busyboxLayer(): Layer {
  if (baseLayer) return baseLayer;
  const busybox = readFileSync('/bin/busybox');
  const entries: TarEntry[] = [
    { name: 'bin', type: 'dir' },
    { name: 'bin/busybox', type: 'file', mode: 0o755, data: busybox },
    ...BUSYBOX_APPLETS.map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc', type: 'dir' },
    { name: 'etc/passwd', type: 'file', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n') },
    { name: 'etc/group', type: 'file', data: Buffer.from('root:x:0:\nuser:x:1000:\n') },
    { name: 'tmp', type: 'dir', mode: 0o1777 },
    { name: 'run', type: 'dir' },
    { name: 'root', type: 'dir', mode: 0o700 },
    { name: 'usr', type: 'dir' },
    { name: 'usr/bin', type: 'dir' },
    { name: 'var', type: 'dir' },
    { name: 'var/lib', type: 'dir' },
    { name: 'var/lib/buildkit', type: 'dir' },
  ];
  const tar = writeTar(entries);
  baseLayer = { diffId: sha256(tar), gz: gzipSync(tar, { level: 6 }) };
  return baseLayer;
}

export function defaultRevision(version: string): string {
  return createHash('sha1').update(`buildkit ${version}`).digest('hex');
}

/** The stand-in `buildkitd`: `--version` like the real one; otherwise stays up until stopped. */
export function buildkitdScript(version: string, revision: string): string {
  return [
    '#!/bin/sh',
    '# Stand-in for buildkitd in buildx-bootstrap tests (not BuildKit).',
    'for arg in "$@"; do',
    `  if [ "$arg" = "--version" ]; then echo "buildkitd github.com/moby/buildkit ${version} ${revision}"; exit 0; fi`,
    'done',
    'echo "$*" > /run/buildkitd.args',
    'echo "stand-in buildkitd ' + version + ' started with: $*" >&2',
    // PID 1 ignores SIGTERM unless it traps it; trap so `docker stop` is immediate.
    "trap 'exit 0' TERM INT",
    'while :; do sleep 3600 & wait $!; done',
    '',
  ].join('\n');
}

function buildctlScript(platforms: string): string {
  return [
    '#!/bin/sh',
    '# Stand-in for buildctl in buildx-bootstrap tests.',
    'if [ "$1" = "debug" ] && [ "$2" = "workers" ]; then',
    '  printf "%-32s%s\\n" ID PLATFORMS',
    `  printf "%-32s%s\\n" standinworker0000000000000000 "${platforms}"`,
    '  exit 0',
    'fi',
    // Running builds, as `--format {{json .}}` prints them (test/fixtures/history): a test starts a
    // "build" by writing one such line to /run/bxb-builds/<ref> (startStandInBuild) and ends it
    // by deleting the file.
    'if [ "$1" = "debug" ] && [ "$2" = "histories" ]; then',
    '  for f in /run/bxb-builds/*; do [ -f "$f" ] && cat "$f"; done',
    '  exit 0',
    'fi',
    'echo "buildctl stand-in: unsupported: $*" >&2',
    'exit 1',
    '',
  ].join('\n');
}

function versionLayer(version: string, revision: string, platform: Platform, flavour: string | undefined): Layer {
  const entries: TarEntry[] = [
    { name: 'usr', type: 'dir' },
    { name: 'usr/bin', type: 'dir' },
    { name: 'usr/bin/buildkitd', type: 'file', mode: 0o755, data: Buffer.from(buildkitdScript(version, revision)) },
    { name: 'usr/bin/buildctl', type: 'file', mode: 0o755, data: Buffer.from(buildctlScript(`${platform.os}/${platform.architecture}`)) },
    { name: 'etc', type: 'dir' },
    { name: 'etc/buildkit', type: 'dir' },
    { name: 'etc/bxb-standin', type: 'file', data: Buffer.from(`version=${version}\nflavour=${flavour ?? 'default'}\n`) },
  ];
  const tar = writeTar(entries);
  return { diffId: sha256(tar), gz: gzipSync(tar, { level: 6 }) };
}

function parsePlatform(text: string): Platform {
  const [os, architecture] = text.split('/');
  if (!os || !architecture) throw new Error(`bad platform "${text}" (want os/arch)`);
  return { os, architecture };
}

/** Builds the stand-in engine image for `version` (deterministic: same options → same digest). */
export function buildEngineImage(opts: EngineImageOptions): EngineImage {
  const format = opts.format ?? 'oci';
  const revision = opts.revision ?? defaultRevision(opts.version);
  const host = hostPlatform();
  const platforms = (opts.platforms ?? [`${host.os}/${host.architecture}`]).map(parsePlatform);
  const base = busyboxLayer();
  const blobs = new Map<string, Blob>();
  const children: EngineImage['children'] = [];
  const layerType = format === 'oci' ? MEDIA.ociLayer : MEDIA.dockerLayer;
  for (const platform of platforms) {
    const top = versionLayer(opts.version, revision, platform, opts.flavour);
    const config = {
      created: FIXED_TIME,
      architecture: platform.architecture,
      os: platform.os,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Entrypoint: ['buildkitd'],
        Volumes: { '/var/lib/buildkit': {} },
        Labels: { 'org.opencontainers.image.version': opts.version, 'dev.buildx-bootstrap.standin': 'true' },
      },
      rootfs: { type: 'layers', diff_ids: [base.diffId, top.diffId] },
      history: [
        { created: FIXED_TIME, created_by: 'busybox-static from the test machine' },
        { created: FIXED_TIME, created_by: `stand-in buildkitd ${opts.version}` },
      ],
    };
    const payload = opts.payloadBytes ? payloadLayer(`${opts.version} ${opts.flavour ?? ''} ${platform.os}/${platform.architecture}`, opts.payloadBytes) : undefined;
    if (payload) config.rootfs.diff_ids.push(payload.diffId);
    const configBlob = blob(Buffer.from(JSON.stringify(config)), format === 'oci' ? MEDIA.ociConfig : MEDIA.dockerConfig);
    const layers = [blob(base.gz, layerType), blob(top.gz, layerType), ...(payload ? [blob(payload.gz, layerType)] : [])];
    for (const b of [configBlob, ...layers]) blobs.set(b.digest, b);
    const manifestType = format === 'oci' ? MEDIA.ociManifest : MEDIA.dockerManifest;
    const manifest = {
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    children.push({ platform, manifest: blob(Buffer.from(JSON.stringify(manifest, null, 2)), manifestType) });
  }
  const attestationChildren: EngineImage['children'] = [];
  const wantIndex = opts.index ?? platforms.length > 1;
  if (!wantIndex) {
    const only = children[0]!;
    return { version: opts.version, manifest: only.manifest, digest: only.manifest.digest, children: [], blobs: [...blobs.values()] };
  }
  const indexType = format === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList;
  const entries: Record<string, unknown>[] = children.map((c) => ({
    mediaType: c.manifest.mediaType,
    digest: c.manifest.digest,
    size: c.manifest.size,
    platform: c.platform,
  }));
  if (opts.attestations) {
    // As BuildKit writes them: an OCI manifest whose layer is an in-toto statement, listed as
    // platform unknown/unknown with vnd.docker.reference.* annotations naming the image.
    for (const c of children) {
      const statement = blob(Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://slsa.dev/provenance/v0.2', subject: [{ name: 'stand-in', digest: { sha256: c.manifest.digest.slice(7) } }], predicate: {} })), 'application/vnd.in-toto+json');
      const cfg = blob(Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statement.digest] } })), MEDIA.ociConfig);
      blobs.set(statement.digest, statement);
      blobs.set(cfg.digest, cfg);
      const m = blob(
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size }, layers: [{ mediaType: statement.mediaType, digest: statement.digest, size: statement.size, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } }] })),
        MEDIA.ociManifest,
      );
      const platform = { os: 'unknown', architecture: 'unknown' };
      attestationChildren.push({ platform, manifest: m });
      entries.push({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform, annotations: { 'vnd.docker.reference.digest': c.manifest.digest, 'vnd.docker.reference.type': 'attestation-manifest' } });
    }
  }
  const index = { schemaVersion: 2, mediaType: indexType, manifests: entries };
  const top = blob(Buffer.from(JSON.stringify(index, null, 2)), indexType);
  return { version: opts.version, manifest: top, digest: top.digest, children: [...children, ...attestationChildren], blobs: [...blobs.values()] };
}

// ---- pushing over the registry API ----

export interface PushTarget {
  url: string;
  /** CA (PEM) for a TLS registry. */
  caCert?: string | undefined;
}

export interface PushOptions {
  auth?: { username: string; password: string };
}

/** A small session that answers Basic and Bearer challenges for the harness's own pushes. */
class PushSession {
  private authorization: string | undefined;

  constructor(
    private readonly target: PushTarget,
    private readonly repository: string,
    private readonly opts: PushOptions,
  ) {}

  async request(method: string, pathOrUrl: string, headers: Record<string, string> = {}, body?: Buffer): Promise<HarnessResponse> {
    const url = new URL(pathOrUrl, this.target.url).toString();
    const send = (): Promise<HarnessResponse> =>
      harnessRequest(url, {
        method,
        headers: { ...headers, ...(this.authorization ? { Authorization: this.authorization } : {}) },
        ...(body ? { body } : {}),
        ...(this.target.caCert ? { ca: this.target.caCert } : {}),
      });
    let res = await send();
    if (res.status === 401 && (await this.authenticate(String(res.headers['www-authenticate'] ?? '')))) res = await send();
    return res;
  }

  private async authenticate(challenge: string): Promise<boolean> {
    const basic = this.opts.auth ? `Basic ${Buffer.from(`${this.opts.auth.username}:${this.opts.auth.password}`).toString('base64')}` : undefined;
    if (/^basic/i.test(challenge)) {
      if (!basic || this.authorization === basic) return false;
      this.authorization = basic;
      return true;
    }
    if (/^bearer/i.test(challenge)) {
      const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
      if (!params.realm) return false;
      const realm = new URL(params.realm);
      if (params.service) realm.searchParams.set('service', params.service);
      realm.searchParams.set('scope', `repository:${this.repository}:pull,push`);
      const res = await harnessRequest(realm.toString(), { headers: basic ? { Authorization: basic } : {}, ...(this.target.caCert ? { ca: this.target.caCert } : {}) });
      if (res.status !== 200) return false;
      const answer = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
      const token = answer.token ?? answer.access_token;
      if (!token) return false;
      this.authorization = `Bearer ${token}`;
      return true;
    }
    return false;
  }
}

function expectStatus(res: HarnessResponse, ok: number[], what: string): void {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
}

async function pushBlob(session: PushSession, repository: string, b: Blob): Promise<void> {
  const head = await session.request('HEAD', `/v2/${repository}/blobs/${b.digest}`);
  if (head.status === 200) return;
  const start = await session.request('POST', `/v2/${repository}/blobs/uploads/`, { 'Content-Length': '0' });
  expectStatus(start, [202], `start upload of ${b.digest}`);
  const location = new URL(String(start.headers.location), 'http://placeholder');
  location.searchParams.set('digest', b.digest);
  const target = start.headers.location?.startsWith('http') ? location.toString() : `${location.pathname}${location.search}`;
  const put = await session.request('PUT', target, { 'Content-Type': 'application/octet-stream' }, b.data);
  expectStatus(put, [201], `upload of ${b.digest}`);
}

async function putManifest(session: PushSession, repository: string, reference: string, m: Blob): Promise<void> {
  const res = await session.request('PUT', `/v2/${repository}/manifests/${reference}`, { 'Content-Type': m.mediaType }, m.data);
  expectStatus(res, [201], `manifest ${repository}:${reference}`);
  const served = res.headers['docker-content-digest'];
  if (served && served !== m.digest) throw new Error(`registry stored ${repository}:${reference} as ${String(served)}, expected ${m.digest}`);
}

/** Pushes `image` under each of `tags` (blobs, child manifests, then the tag's manifest). */
export async function pushImage(target: PushTarget | string, repository: string, tags: string[], image: EngineImage, opts: PushOptions = {}): Promise<void> {
  const t = typeof target === 'string' ? { url: target } : target;
  const session = new PushSession(t, repository, opts);
  for (const b of image.blobs) await pushBlob(session, repository, b);
  for (const child of image.children) await putManifest(session, repository, child.manifest.digest, child.manifest);
  await putManifest(session, repository, image.digest, image.manifest);
  for (const tag of tags) await putManifest(session, repository, tag, image.manifest);
}

// ---- seeding through the storage layout ----

const V2 = ['docker', 'registry', 'v2'];

function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m?.[1]) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1];
}

function writeLink(file: string, digest: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, digest);
}

/**
 * Points `tags` of `repository` at an already-stored manifest by writing distribution's
 * filesystem layout directly (DIST@v2.8.2 registry/storage/paths.go: `_manifests/tags/<tag>/
 * current/link` and `…/index/sha256/<hex>/link`). The running registry reads these files on
 * each request (tags are not cached). 10,000 tags take ~1 s on tmpfs (the harness puts storage
 * in /dev/shm when it can) and several seconds on a slow disk.
 */
export function seedTags(target: { storageDir: string } | string, repository: string, tags: string[], digest: string): void {
  const storageDir = typeof target === 'string' ? target : target.storageDir;
  const hex = hexOf(digest);
  const tagsDir = join(storageDir, ...V2, 'repositories', repository, '_manifests', 'tags');
  mkdirSync(tagsDir, { recursive: true });
  // Plain mkdir per level instead of recursive: half the syscalls, and this loop is the cost.
  const ensure = (dir: string): void => {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  };
  for (const tag of tags) {
    const tagDir = join(tagsDir, tag);
    ensure(tagDir);
    ensure(join(tagDir, 'current'));
    writeFileSync(join(tagDir, 'current', 'link'), digest);
    ensure(join(tagDir, 'index'));
    ensure(join(tagDir, 'index', 'sha256'));
    ensure(join(tagDir, 'index', 'sha256', hex));
    writeFileSync(join(tagDir, 'index', 'sha256', hex, 'link'), digest);
  }
}

/** Stores `image` (blobs, manifests, tags) straight into a registry storage dir, no HTTP. */
export function writeImageToStorage(target: { storageDir: string } | string, repository: string, tags: string[], image: EngineImage): void {
  const storageDir = typeof target === 'string' ? target : target.storageDir;
  const repoDir = join(storageDir, ...V2, 'repositories', repository);
  const storeBlob = (b: Blob): void => {
    const hex = hexOf(b.digest);
    const dir = join(storageDir, ...V2, 'blobs', 'sha256', hex.slice(0, 2), hex);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data'), b.data);
  };
  for (const b of image.blobs) {
    storeBlob(b);
    writeLink(join(repoDir, '_layers', 'sha256', hexOf(b.digest), 'link'), b.digest);
  }
  for (const m of [...image.children.map((c) => c.manifest), image.manifest]) {
    storeBlob(m);
    writeLink(join(repoDir, '_manifests', 'revisions', 'sha256', hexOf(m.digest), 'link'), m.digest);
  }
  seedTags(storageDir, repository, tags, image.digest);
}

// ---- the usual BuildKit-like tag set ----

/** `v0.18.2`, `v0.19.0-rc1`, `v0.18.2-rootless` → the version buildkitd reports. */
export function versionForTag(tag: string): string | undefined {
  const m = /^(v\d+\.\d+\.\d+(?:-(?:rc|beta|alpha)\.?\d+)?)(?:-rootless|-ubuntu)?$/.exec(tag);
  return m?.[1];
}

export interface EngineTagSpec {
  /** Version buildkitd reports; default derived from the tag (required for e.g. buildx-stable-1). */
  version?: string;
  /** Several platforms → an index (default: linux/<host arch> + linux/arm64 or amd64, as an OCI index). */
  platforms?: string[];
  format?: 'oci' | 'docker';
  /** Single-platform manifest instead of an index. */
  single?: boolean;
}

export interface PushEngineTagsOptions {
  repository?: string;
  /** tag → spec (or just the version string). */
  tags: Record<string, EngineTagSpec | string>;
  auth?: { username: string; password: string };
}

export function defaultPlatforms(): string[] {
  const host = hostPlatform();
  const other = host.architecture === 'arm64' ? 'amd64' : 'arm64';
  return [`linux/${host.architecture}`, `linux/${other}`];
}

/** Builds the image for one tag spec; tags with the same spec share one digest (like retags). */
export function engineImageForTag(tag: string, spec: EngineTagSpec | string = {}): EngineImage {
  const s: EngineTagSpec = typeof spec === 'string' ? { version: spec } : spec;
  const version = s.version ?? versionForTag(tag);
  if (!version) throw new Error(`tag ${tag} does not name a version; give one (e.g. { version: 'v0.18.2' })`);
  return buildEngineImage({
    version,
    format: s.format ?? 'oci',
    platforms: s.single ? [`linux/${hostPlatform().architecture}`] : (s.platforms ?? defaultPlatforms()),
    index: !s.single,
    ...(tag.includes('rootless') ? { flavour: 'rootless' } : {}),
  });
}

/**
 * Pushes BuildKit-like tags, e.g. `{ 'v0.18.2': {}, 'v0.19.0-rc1': {}, 'v0.18.2-rootless': {},
 * 'buildx-stable-1': 'v0.18.2' }`, to `moby/buildkit` (default). Returns each tag's image.
 */
export async function pushEngineTags(target: PushTarget | string, opts: PushEngineTagsOptions): Promise<Record<string, EngineImage>> {
  const repository = opts.repository ?? 'moby/buildkit';
  const out: Record<string, EngineImage> = {};
  for (const [tag, spec] of Object.entries(opts.tags)) {
    const image = engineImageForTag(tag, spec);
    await pushImage(target, repository, [tag], image, opts.auth ? { auth: opts.auth } : {});
    out[tag] = image;
  }
  return out;
}

/** A layer holding `/payload.bin`: `bytes` of deterministic, incompressible data seeded by `seed`. */
function payloadLayer(seed: string, bytes: number): Layer {
  const key = createHash('sha256').update(seed).digest();
  const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
  const tar = writeTar([{ name: 'payload.bin', type: 'file', data }]);
  return { diffId: sha256(tar), gz: gzipSync(tar, { level: 1 }) };
}
