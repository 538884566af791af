// Stand-ins for the two base images the repository's Dockerfile names (docker:<v>-cli and
// node:<v>-alpine<a>), assembled from this machine's files because Docker Hub is out of reach.
// Faithful where the Dockerfile and a CI job depend on them:
// - docker:<v>-cli: a shell (busybox) at /bin/sh and /usr/bin/env, a static docker CLI at
//   /usr/local/bin/docker (the machine's 28.x, not 29), the real Go-built buildx plugin at
//   /usr/local/libexec/docker/cli-plugins/docker-buildx, ENV DOCKER_TLS_CERTDIR=/certs with
//   /certs/client (1777), ENTRYPOINT ["docker-entrypoint.sh"] CMD ["sh"], and an entrypoint script
//   with the real one's decisions (an option or a docker subcommand runs docker; DOCKER_HOST
//   tcp://docker:2376 or :2375 when unset and no local socket; DOCKER_TLS_VERIFY and
//   DOCKER_CERT_PATH from $DOCKER_TLS_CERTDIR/client). Differs: its C library is Debian's glibc
//   (ld-linux, libc, libm, libdl, libpthread at Debian's paths) where the real one has Alpine's
//   musl; no git, openssh-client or compose plugin.
// - node:<v>-alpine<a>: the machine's Node (glibc, v20, not v24 on musl) at /usr/local/bin/node,
//   and the libraries `ldd` lists for it that the Dockerfile copies at the paths it copies them
//   from (/usr/lib/libstdc++.so.6, /usr/lib/libgcc_s.so.1); busybox and glibc for its own RUN
//   steps. No npm.
// - linux/arm64: the same paths, but every executable and library is a stub ELF header for
//   AArch64 carrying a marker text: this machine (no binfmt emulator) refuses to run it with
//   "exec format error", as it would a real arm64 binary, so a RUN on the target platform fails,
//   and the marker shows which platform's file an image ended up with.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { MEDIA, writeTar, type Blob, type EngineImage, type TarEntry } from './engine-image.js';

export const ARM64_MARKER = 'bxb stand-in for linux/arm64:';

export interface StandInParts {
  /** The real docker-buildx plugin (engines dir). */
  buildx: string;
  /** A static docker CLI; default /usr/local/bin/docker. */
  dockerCli?: string;
  /** Node binary; default this process's. */
  node?: string;
}

/** What differs between the two platforms' files: the real file, or the arm64 stub of it. */
type Arch = 'amd64' | 'arm64';

function elfStub(path: string): Buffer {
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = 2; // 64-bit
  h[5] = 1; // little endian
  h[6] = 1; // ELF version
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(183, 18); // EM_AARCH64
  h.writeUInt32LE(1, 20);
  h.writeBigUInt64LE(0x400000n, 24);
  h.writeUInt16LE(64, 52); // e_ehsize
  h.writeUInt16LE(56, 54); // e_phentsize
  h.writeUInt16LE(64, 58); // e_shentsize
  return Buffer.concat([h, Buffer.from(`${ARM64_MARKER} ${path}\n`)]);
}

/** `ldd` of a binary: [path it is loaded from, real file]. */
function sharedLibraries(binary: string): [string, string][] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: [string, string][] = [];
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push([m[1], realpathSync(m[1])]);
  }
  return libs;
}

const APPLETS = ['sh', 'ash', 'env', 'cat', 'echo', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'tar', 'gzip', 'gunzip', 'test', '[', 'true', 'false', 'grep', 'sed', 'head', 'tail', 'printf', 'id', 'uname', 'sleep', 'wc', 'readlink'];

class Files {
  readonly entries: TarEntry[] = [];
  private readonly dirs = new Set<string>();
  constructor(private readonly arch: Arch) {}

  dir(name: string, mode = 0o755): void {
    const parts = name.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.dirs.has(d)) continue;
      this.dirs.add(d);
      this.entries.push({ name: d, type: 'dir', mode: d === name ? mode : 0o755 });
    }
  }

  private parent(name: string): void {
    const cut = name.lastIndexOf('/');
    if (cut > 0) this.dir(name.slice(0, cut));
  }

  /** A binary or library: the real file on amd64, its stub on arm64. */
  binary(name: string, from: string, mode = 0o755): void {
    this.parent(name);
    this.entries.push({ name, type: 'file', mode, data: this.arch === 'amd64' ? readFileSync(from) : elfStub(`/${name}`) });
  }

  text(name: string, content: string, mode = 0o644): void {
    this.parent(name);
    this.entries.push({ name, type: 'file', mode, data: Buffer.from(content) });
  }

  link(name: string, target: string): void {
    this.parent(name);
    this.entries.push({ name, type: 'symlink', linkname: target });
  }
}

/** busybox, its applets and the C library every stand-in shares (glibc: see the header). */
function baseLayerFiles(arch: Arch, node: string): TarEntry[] {
  const f = new Files(arch);
  for (const d of ['etc', 'root', 'usr/bin', 'usr/lib', 'usr/local/bin', 'var', 'run', 'proc', 'sys', 'dev']) f.dir(d);
  f.dir('tmp', 0o1777);
  f.binary('bin/busybox', '/bin/busybox');
  for (const a of APPLETS) f.link(`bin/${a}`, 'busybox');
  f.link('usr/bin/env', '../../bin/busybox');
  f.text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  f.text('etc/group', 'root:x:0:\n');
  // docker:<v>-cli's Dockerfile checks this line exists (Go's resolver reads it); glibc reads it too.
  f.text('etc/nsswitch.conf', 'hosts: files dns\n');
  for (const [path, real] of sharedLibraries(node)) {
    if (/libstdc\+\+|libgcc_s/.test(path)) continue; // node's own, in the node stand-in
    f.binary(path.slice(1), real);
  }
  return f.entries;
}

/** The entrypoint script: the real one's decisions, in this harness's words (see the header). */
export const ENTRYPOINT_SCRIPT = `#!/bin/sh
# Stand-in for docker:<v>-cli's docker-entrypoint.sh in buildx-bootstrap tests.
set -eu
# An option (docker run IMAGE --version) or a docker subcommand (docker run IMAGE ps) runs docker.
case "\${1:-}" in -*) set -- docker "$@" ;; esac
if [ "$#" -gt 0 ] && [ "$1" != docker ] && docker help "$1" > /dev/null 2>&1; then set -- docker "$@"; fi
client_certs() {
  [ -n "\${DOCKER_TLS_CERTDIR:-}" ] && [ -s "$DOCKER_TLS_CERTDIR/client/ca.pem" ] && [ -s "$DOCKER_TLS_CERTDIR/client/cert.pem" ] && [ -s "$DOCKER_TLS_CERTDIR/client/key.pem" ]
}
# GitLab's docker service is reachable as "docker": TLS on 2376 when the client certificates are
# there (or TLS is asked for), plain on 2375 otherwise.
if [ -z "\${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ]; then
  if client_certs || [ -n "\${DOCKER_TLS_VERIFY:-}" ]; then export DOCKER_HOST=tcp://docker:2376; else export DOCKER_HOST=tcp://docker:2375; fi
fi
if [ -n "\${DOCKER_HOST:-}" ] && client_certs; then
  export DOCKER_TLS_VERIFY=1
  export DOCKER_CERT_PATH="$DOCKER_TLS_CERTDIR/client"
fi
exec "$@"
`;

function dockerCliLayerFiles(arch: Arch, parts: StandInParts): TarEntry[] {
  const f = new Files(arch);
  f.binary('usr/local/bin/docker', parts.dockerCli ?? '/usr/local/bin/docker');
  f.binary('usr/local/libexec/docker/cli-plugins/docker-buildx', parts.buildx);
  f.text('usr/local/bin/docker-entrypoint.sh', ENTRYPOINT_SCRIPT, 0o755);
  f.dir('certs', 0o1777);
  f.dir('certs/client', 0o1777);
  return f.entries;
}

function nodeLayerFiles(arch: Arch, node: string): TarEntry[] {
  const f = new Files(arch);
  f.binary('usr/local/bin/node', node);
  for (const [path, real] of sharedLibraries(node)) {
    const name = /libstdc\+\+\.so\.6$/.test(path) ? 'libstdc++.so.6' : /libgcc_s\.so\.1$/.test(path) ? 'libgcc_s.so.1' : undefined;
    if (name) f.binary(`usr/lib/${name}`, real, 0o644);
  }
  return f.entries;
}

interface Layer {
  diffId: string;
  gz: Buffer;
}

function layer(entries: TarEntry[]): Layer {
  const tar = writeTar(entries);
  return { diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`, gz: gzipSync(tar, { level: 1 }) };
}

function blobOf(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

export interface StandInPlatformImage {
  arch: Arch;
  config: Blob;
  layers: { blob: Blob; diffId: string }[];
  manifest: Blob;
}

export interface StandInImage {
  /** As the Dockerfile names it, e.g. `docker:29-cli`. */
  ref: string;
  platforms: StandInPlatformImage[];
  /** Both platforms as an OCI index, ready for pushImage. */
  index: EngineImage;
}

function platformImage(arch: Arch, layers: Layer[], config: Record<string, unknown>, history: string): StandInPlatformImage {
  const cfg = blobOf(
    Buffer.from(
      JSON.stringify({
        created: '2026-01-01T00:00:00Z',
        architecture: arch,
        os: 'linux',
        config,
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: history })),
      }),
    ),
    MEDIA.ociConfig,
  );
  const layerBlobs = layers.map((l) => ({ blob: blobOf(l.gz, MEDIA.ociLayer), diffId: l.diffId }));
  const manifest = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size },
        layers: layerBlobs.map((l) => ({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size })),
      }),
    ),
    MEDIA.ociManifest,
  );
  return { arch, config: cfg, layers: layerBlobs, manifest };
}

function withIndex(ref: string, platforms: StandInPlatformImage[]): StandInImage {
  const index = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: platforms.map((p) => ({ mediaType: p.manifest.mediaType, digest: p.manifest.digest, size: p.manifest.size, platform: { os: 'linux', architecture: p.arch } })),
      }),
    ),
    MEDIA.ociIndex,
  );
  const blobs = new Map<string, Blob>();
  for (const p of platforms) for (const b of [p.config, ...p.layers.map((l) => l.blob)]) blobs.set(b.digest, b);
  return {
    ref,
    platforms,
    index: {
      version: 'stand-in',
      manifest: index,
      digest: index.digest,
      children: platforms.map((p) => ({ platform: { os: 'linux', architecture: p.arch }, manifest: p.manifest })),
      blobs: [...blobs.values()],
    },
  };
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Both stand-ins for linux/amd64 and linux/arm64, named `refs.docker` and `refs.node`. */
export function buildStandIns(parts: StandInParts, refs: { docker: string; node: string }): { docker: StandInImage; node: StandInImage } {
  const node = parts.node ?? realpathSync(process.execPath);
  const docker: StandInPlatformImage[] = [];
  const nodeImages: StandInPlatformImage[] = [];
  for (const arch of ['amd64', 'arm64'] as const) {
    const base = layer(baseLayerFiles(arch, node));
    docker.push(
      platformImage(arch, [base, layer(dockerCliLayerFiles(arch, parts))], { Env: [PATH_ENV, 'DOCKER_TLS_CERTDIR=/certs'], Entrypoint: ['docker-entrypoint.sh'], Cmd: ['sh'] }, `stand-in for ${refs.docker}`),
    );
    nodeImages.push(platformImage(arch, [base, layer(nodeLayerFiles(arch, node))], { Env: [PATH_ENV], Cmd: ['node'] }, `stand-in for ${refs.node}`));
  }
  return { docker: withIndex(refs.docker, docker), node: withIndex(refs.node, nodeImages) };
}

/**
 * A `docker load` archive (the legacy docker-save layout: manifest.json, config, one gzipped
 * layer.tar per layer, which docker load decompresses) of one platform of `image`, tagged as its ref.
 */
export function writeLoadArchive(image: StandInImage, arch: Arch, file: string): void {
  const p = image.platforms.find((x) => x.arch === arch);
  if (!p) throw new Error(`${image.ref} has no ${arch} stand-in`);
  const hex = (d: string): string => d.slice('sha256:'.length);
  const entries: TarEntry[] = [
    { name: `${hex(p.config.digest)}.json`, type: 'file', data: p.config.data },
    ...p.layers.flatMap((l): TarEntry[] => [
      { name: hex(l.diffId), type: 'dir' },
      { name: `${hex(l.diffId)}/layer.tar`, type: 'file', data: l.blob.data },
    ]),
    {
      name: 'manifest.json',
      type: 'file',
      data: Buffer.from(JSON.stringify([{ Config: `${hex(p.config.digest)}.json`, RepoTags: [image.ref], Layers: p.layers.map((l) => `${hex(l.diffId)}/layer.tar`) }])),
    },
  ];
  writeFileSync(file, writeTar(entries));
}
