// The real engines: docker-buildx and BuildKit's buildkitd/buildctl built with Go by
// scripts/build-test-engines.sh into a cache directory outside the repository. This module finds
// them, installs a real buildx as a CLI plugin, starts a dockerd that can run buildx's privileged
// BuildKit container on these machines (see runc-shim.sh), and assembles a real
// `moby/buildkit:<version>` engine image from the binaries.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import type { Test } from 'tap';
import { startDockerd, type Dockerd, type DockerdOptions, type TeardownHost } from './dockerd.js';
import { buildEngineImage, MEDIA, pushImage, writeTar, type Blob, type EngineImage, type PushTarget, type TarEntry } from './engine-image.js';
import { requireCondition } from './integration.js';
import { installPlugin } from './buildx.js';

export interface RealBuildx {
  version: string;
  /** The docker-buildx plugin binary. */
  plugin: string;
  /** The revision the build script stamped into it (its REVISION file): the commit, or the version where none was known. */
  revision: string | undefined;
}

export interface RealBuildkit {
  version: string;
  buildkitd: string;
  buildctl: string;
}

/** The current daemon built from source: dockerd 29 (moby v2), its containerd and runc. */
export interface RealDockerd29 {
  version: string;
  dockerd: string;
  /** Holds `containerd` and `containerd-shim-runc-v2`; first on the daemon's PATH. */
  containerdDir: string;
  /** runc ≥ 1.2 (time namespace), behind the capability shim. */
  runc: string;
}

export interface RealEngines {
  dir: string;
  /** Oldest first. */
  buildx: RealBuildx[];
  /** Oldest first. */
  buildkit: RealBuildkit[];
  /** Present when dockerd, containerd and runc were all built. */
  dockerd29?: RealDockerd29;
}

/**
 * The daemons the real-engine tests run on: Debian's dockerd 20.10 (classic store), and dockerd 29
 * with its default containerd image store or with `--feature containerd-snapshotter=false`.
 */
export type DaemonKind = 'dockerd-20.10' | 'dockerd-29-containerd' | 'dockerd-29-classic';
export const DAEMON_KINDS: readonly DaemonKind[] = ['dockerd-20.10', 'dockerd-29-containerd', 'dockerd-29-classic'];

/** The image store a daemon kind keeps images in (checked against /info when it starts). */
export function storeOf(kind: DaemonKind): 'containerd' | 'classic' {
  return kind === 'dockerd-29-containerd' ? 'containerd' : 'classic';
}

export function enginesDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BXB_ENGINES_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'buildx-bootstrap', 'engines');
}

/** The engines the build script finished (a `.complete` marker per tool and version). */
export function findEngines(env: NodeJS.ProcessEnv = process.env): RealEngines {
  const dir = enginesDir(env);
  const out: RealEngines = { dir, buildx: [], buildkit: [] };
  let text = '';
  try {
    text = readFileSync(join(dir, 'versions.env'), 'utf8');
  } catch {
    return out;
  }
  const list = (key: string): string[] => (new RegExp(`^${key}="?([^"\n]*)"?$`, 'm').exec(text)?.[1] ?? '').split(/\s+/).filter(Boolean);
  for (const version of list('BXB_BUILDX_VERSIONS')) {
    const d = join(dir, `buildx-${version}`);
    if (existsSync(join(d, '.complete')) && existsSync(join(d, 'docker-buildx'))) out.buildx.push({ version, plugin: join(d, 'docker-buildx'), revision: readRevision(d) });
  }
  for (const version of list('BXB_BUILDKIT_VERSIONS')) {
    const d = join(dir, `buildkit-${version}`);
    if (existsSync(join(d, '.complete'))) out.buildkit.push({ version, buildkitd: join(d, 'buildkitd'), buildctl: join(d, 'buildctl') });
  }
  const [dockerd, containerd, runc] = ['BXB_DOCKERD_VERSION', 'BXB_CONTAINERD_VERSION', 'BXB_RUNC_VERSION'].map((k) => list(k)[0]);
  if (dockerd && containerd && runc) {
    const parts = { dockerd: join(dir, `dockerd-${dockerd}`), containerd: join(dir, `containerd-${containerd}`), runc: join(dir, `runc-${runc}`) };
    if (Object.values(parts).every((d) => existsSync(join(d, '.complete')))) {
      out.dockerd29 = { version: dockerd, dockerd: join(parts.dockerd, 'dockerd'), containerdDir: parts.containerd, runc: join(parts.runc, 'runc') };
    }
  }
  return out;
}

function readRevision(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, 'REVISION'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

let cached: RealEngines | undefined;
function engines(): RealEngines {
  cached ??= findEngines();
  return cached;
}

/**
 * Returns the engines when both buildx versions and both BuildKit versions are built and the
 * Debian parts are installed; otherwise skips (fails under BXB_REQUIRE_INTEGRATION=1) and
 * returns undefined.
 */
export function requireEngines(t: Test): RealEngines | undefined {
  const e = engines();
  const ok = e.buildx.length >= 2 && e.buildkit.length >= 2;
  const missing = ['/usr/sbin/dockerd', '/usr/bin/runc', '/usr/bin/busybox', '/usr/bin/docker-registry'].filter((f) => !existsSync(f));
  if (!requireCondition(t, ok, `needs the real engines (run scripts/build-test-engines.sh; looked in ${e.dir})`)) return undefined;
  if (!requireCondition(t, missing.length === 0, `needs ${missing.join(', ')} (Debian packages docker.io, runc, busybox-static, docker-registry)`)) return undefined;
  return e;
}

export interface InstalledBuildx {
  version: string;
  dockerConfig: string;
  env: { DOCKER_CONFIG: string };
}

/**
 * True when `kind` can be started here (dockerd 29 needs the built dockerd, containerd and runc);
 * otherwise skips the test (fails it under BXB_REQUIRE_INTEGRATION=1).
 */
export function requireDaemon(t: Test, kind: DaemonKind): boolean {
  if (kind === 'dockerd-20.10') return true;
  return requireCondition(t, engines().dockerd29 !== undefined, `${kind} needs dockerd, containerd and runc built by scripts/build-test-engines.sh (looked in ${engines().dir})`);
}

/** Installs the real docker-buildx into a fresh DOCKER_CONFIG (or `dockerConfig`). */
export function installRealBuildx(t: TeardownHost, buildx: RealBuildx, opts: { dockerConfig?: string } = {}): InstalledBuildx {
  const dockerConfig = installPlugin(t, buildx.plugin, opts.dockerConfig);
  return { version: buildx.version, dockerConfig, env: { DOCKER_CONFIG: dockerConfig } };
}

const SHIM = resolve(dirname(fileURLToPath(import.meta.url)), 'runc-shim.sh');

/** The runtime name the test dockerd registers for the shim. */
export const SHIM_RUNTIME = 'bxb-runc';

export interface EngineDockerdOptions extends DockerdOptions {
  /** Which daemon (default Debian's dockerd 20.10, as before). */
  daemon?: DaemonKind;
}

export interface EngineDockerd extends Dockerd {
  daemon: DaemonKind;
  /** The image store the daemon reports (`/info` DriverStatus), checked to be the kind's. */
  imageStore: 'containerd' | 'classic';
  /**
   * From now on every container start on this daemon waits `seconds` in the runtime before
   * runc creates it (0 turns it off): a slow BuildKit bootstrap, on the real engines.
   */
  slowStart(seconds: number): void;
}

/**
 * A private dockerd (test/helpers/dockerd.ts) whose default runtime is runc-shim.sh, so the
 * privileged BuildKit container real buildx creates can start on these machines. Each daemon gets
 * its own wrapper of the shim, which carries the file its slowStart knob writes.
 */
export async function startEngineDockerd(t: TeardownHost, opts: EngineDockerdOptions = {}): Promise<EngineDockerd> {
  const kind = opts.daemon ?? 'dockerd-20.10';
  const dir = mkdtempSync(join(tmpdir(), 'bxb-runtime-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const slowFile = join(dir, 'slow-start');
  const wrapper = join(dir, 'runtime');
  const current = kind === 'dockerd-20.10' ? undefined : engines().dockerd29;
  if (kind !== 'dockerd-20.10' && !current) throw new Error(`${kind} is not built (scripts/build-test-engines.sh); guard the test with requireDaemon()`);
  const runc = current ? `BXB_SHIM_RUNC='${current.runc}' ` : '';
  writeFileSync(wrapper, `#!/bin/sh\n${runc}BXB_SHIM_SLOW_FILE='${slowFile}' exec '${SHIM}' "$@"\n`, { mode: 0o755 });
  const dockerd = await startDockerd(t, {
    ...opts,
    readyTimeoutMs: opts.readyTimeoutMs ?? (current ? 90_000 : 60_000),
    ...(current
      ? {
          dockerd: current.dockerd,
          // dockerd starts the containerd first on its PATH (and containerd its shim); the built
          // runc comes next, so dockerd's own BuildKit (docker driver) runs it too.
          pathPrefix: [current.containerdDir, dirname(current.runc), ...(opts.pathPrefix ?? [])],
        }
      : {}),
    extraArgs: [
      '--add-runtime',
      `${SHIM_RUNTIME}=${wrapper}`,
      '--default-runtime',
      SHIM_RUNTIME,
      ...(kind === 'dockerd-29-classic' ? ['--feature', 'containerd-snapshotter=false'] : []),
      ...(current ? ['--ip6tables=false'] : []),
      ...(opts.extraArgs ?? []),
    ],
  });
  const status = await dockerd.docker(['info', '--format', '{{json .DriverStatus}}']);
  const imageStore = /io\.containerd\.snapshotter\.v1/.test(status.stdout) ? 'containerd' : 'classic';
  if (imageStore !== storeOf(kind)) {
    await dockerd.stop();
    throw new Error(`${kind} came up with the ${imageStore} image store (DriverStatus ${status.stdout.trim()})`);
  }
  return {
    ...dockerd,
    daemon: kind,
    imageStore,
    slowStart(seconds) {
      if (seconds > 0) writeFileSync(slowFile, `${seconds}\n`);
      else rmSync(slowFile, { force: true });
    },
  };
}

// ---- the real engine image ----

const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'echo', 'mkdir', 'rm', 'cp', 'mv', 'sleep', 'env', 'true', 'false', 'test', 'grep', 'sed', 'head', 'tail', 'wc', 'ps', 'kill', 'id', 'uname', 'touch', 'tar', 'mount', 'umount', 'date', 'printf', 'find', 'stat', 'chmod', 'ln'];

/** The files of runc plus every shared library `ldd` lists, as [path in image, real file]. */
function runcWithLibraries(): [string, string][] {
  const runc = '/usr/bin/runc';
  const files: [string, string][] = [[runc, runc]];
  const out = execFileSync('ldd', [runc], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    // "libseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) files.push([m[1], realpathSync(m[1])]);
  }
  return files;
}

function dirsOf(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

interface RealLayer {
  diffId: string;
  gz: Buffer;
}

/**
 * One layer: buildkitd, buildctl, runc with its libraries, busybox with a few applets, and the
 * directories BuildKit expects. Cached beside the binaries (gzip of ~100 MB costs seconds).
 */
function realLayer(kit: RealBuildkit): RealLayer {
  const cacheDir = join(dirname(kit.buildkitd), 'image');
  const gzFile = join(cacheDir, 'layer.tar.gz');
  const idFile = join(cacheDir, 'diff-id');
  if (existsSync(gzFile) && existsSync(idFile)) return { gz: readFileSync(gzFile), diffId: readFileSync(idFile, 'utf8').trim() };

  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  const dir = (name: string, mode = 0o755): void => {
    if (seen.has(name)) return;
    seen.add(name);
    entries.push({ name, type: 'dir', mode });
  };
  const file = (name: string, from: string): void => {
    for (const d of dirsOf(`/${name}`)) dir(d);
    entries.push({ name, type: 'file', mode: 0o755, data: readFileSync(from) });
  };
  for (const d of ['bin', 'etc', 'etc/buildkit', 'usr', 'usr/bin', 'var', 'var/lib', 'var/lib/buildkit', 'run', 'proc', 'sys', 'dev', 'root']) dir(d);
  dir('tmp', 0o1777);
  file('usr/bin/buildkitd', kit.buildkitd);
  file('usr/bin/buildctl', kit.buildctl);
  for (const [inImage, real] of runcWithLibraries()) file(inImage.slice(1), real);
  file('bin/busybox', '/usr/bin/busybox');
  for (const applet of BUSYBOX_APPLETS) entries.push({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox' });
  entries.push({ name: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') });
  entries.push({ name: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from('root:x:0:\n') });

  const tar = writeTar(entries);
  const layer = { diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`, gz: gzipSync(tar, { level: 1 }) };
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${gzFile}.${process.pid}`;
  writeFileSync(tmp, layer.gz);
  renameSync(tmp, gzFile);
  writeFileSync(idFile, `${layer.diffId}\n`);
  return layer;
}

function blobOf(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

const realImages = new Map<string, EngineImage>();

/**
 * `moby/buildkit:<version>` as the release ships it: an OCI index whose linux/amd64 entry is the
 * real engine (the Go-built buildkitd) and whose linux/arm64 entry is the busybox stand-in (this
 * machine cannot run it anyway). Deterministic: the same binaries give the same digest.
 */
export function realEngineImage(kit: RealBuildkit): EngineImage {
  const hit = realImages.get(kit.version);
  if (hit) return hit;
  const layer = realLayer(kit);
  const layerBlob = blobOf(layer.gz, MEDIA.ociLayer);
  const config = {
    created: '2026-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Entrypoint: ['buildkitd'],
      Volumes: { '/var/lib/buildkit': {} },
      Labels: { 'org.opencontainers.image.version': kit.version },
    },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: '2026-01-01T00:00:00Z', created_by: `buildkitd ${kit.version} built with go install, runc and busybox from Debian` }],
  };
  const configBlob = blobOf(Buffer.from(JSON.stringify(config)), MEDIA.ociConfig);
  const manifest = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
        layers: [{ mediaType: layerBlob.mediaType, digest: layerBlob.digest, size: layerBlob.size }],
      }),
    ),
    MEDIA.ociManifest,
  );
  const standIn = buildEngineImage({ version: kit.version, platforms: ['linux/arm64'], index: false });
  const children: EngineImage['children'] = [
    { platform: { os: 'linux', architecture: 'amd64' }, manifest },
    { platform: { os: 'linux', architecture: 'arm64' }, manifest: standIn.manifest },
  ];
  const index = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: children.map((c) => ({ mediaType: c.manifest.mediaType, digest: c.manifest.digest, size: c.manifest.size, platform: c.platform })),
      }),
    ),
    MEDIA.ociIndex,
  );
  const image: EngineImage = { version: kit.version, manifest: index, digest: index.digest, children, blobs: [configBlob, layerBlob, ...standIn.blobs] };
  realImages.set(kit.version, image);
  return image;
}

/** Pushes the real engine image of `kit` as `repository:tag` for each tag (default `kit.version`). */
export async function pushRealEngineImage(
  target: PushTarget | string,
  kit: RealBuildkit,
  opts: { repository?: string; tags?: string[]; auth?: { username: string; password: string } } = {},
): Promise<EngineImage> {
  const image = realEngineImage(kit);
  await pushImage(target, opts.repository ?? 'moby/buildkit', opts.tags ?? [kit.version], image, opts.auth ? { auth: opts.auth } : {});
  return image;
}
