// A world for real-engine tests: a private dockerd that can run buildx's privileged BuildKit
// container (engines.ts), an upstream registry standing in for Docker Hub and a mirror, the real
// engine image pushed into both, the real buildx plugin installed, and a project directory.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { DockerdOptions } from './dockerd.js';
import type { EngineImage } from './engine-image.js';
import {
  installRealBuildx,
  pushRealEngineImage,
  requireDaemon,
  startEngineDockerd,
  type DaemonKind,
  type EngineDockerd,
  type InstalledBuildx,
  type RealBuildkit,
  type RealBuildx,
  type RealEngines,
} from './engines.js';
import { startRegistry, type RunningRegistry } from './registry.js';
import type { CliResult } from './cli.js';

export interface RealWorld {
  dockerd: EngineDockerd;
  /** The daemon kind of `dockerd` (and of every daemon `startDockerd` starts). */
  daemon: DaemonKind;
  /** Another private daemon of the same kind (a fresh DinD job, a TLS DinD service). */
  startDockerd(t: Test, opts?: DockerdOptions): Promise<EngineDockerd>;
  upstream: RunningRegistry;
  mirror: RunningRegistry;
  buildx: InstalledBuildx;
  kit: RealBuildkit;
  /** The engine image as pushed (its index digest is what a lock pins). */
  image: EngineImage;
  /** Environment for runCli / the docker CLI: PATH, HOME, DOCKER_CONFIG, DOCKER_HOST. */
  env: Record<string, string | undefined>;
  /** A fresh project dir with `.buildx-bootstraprc.json` holding `config`. */
  project(config: Record<string, unknown>, files?: Record<string, string>): string;
  /** Runs the docker CLI (with the real buildx plugin) against this world's daemon. */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * BuildKit paired with each buildx: the oldest buildx drives the oldest BuildKit, the newest the
 * newest, so every test that runs on both buildx versions covers both engines too.
 */
export function pairs(e: RealEngines): { buildx: RealBuildx; kit: RealBuildkit }[] {
  return e.buildx.map((buildx, i) => ({ buildx, kit: e.buildkit[Math.min(i, e.buildkit.length - 1)]! }));
}

/** A buildx/BuildKit pair on one daemon kind: what a real-engine test runs on. */
export interface Setup {
  buildx: RealBuildx;
  kit: RealBuildkit;
  daemon: DaemonKind;
  /** `buildx v0.38.2 + BuildKit v0.34.2 on dockerd-29-containerd`, for test names. */
  label: string;
}

function setup(buildx: RealBuildx, kit: RealBuildkit, daemon: DaemonKind): Setup {
  return { buildx, kit, daemon, label: `buildx ${buildx.version} + BuildKit ${kit.version} on ${daemon}` };
}

/**
 * The real-engine tests' matrix across the three daemons, kept to four worlds for CI time (two
 * cores): both pairs on Debian's dockerd 20.10 as before; the newest pair on dockerd 29 with the
 * containerd store (a fresh `docker:29-dind`); the oldest pair on dockerd 29's classic store (an
 * old buildx and pin on a current runner). BXB_DAEMONS (comma-separated kinds) narrows the
 * matrix for a local run.
 */
export function daemonMatrix(e: RealEngines, env: NodeJS.ProcessEnv = process.env): Setup[] {
  const oldest = { buildx: e.buildx[0]!, kit: e.buildkit[0]! };
  const newest = { buildx: e.buildx[e.buildx.length - 1]!, kit: e.buildkit[e.buildkit.length - 1]! };
  const all = [
    ...pairs(e).map((p) => setup(p.buildx, p.kit, 'dockerd-20.10')),
    setup(newest.buildx, newest.kit, 'dockerd-29-containerd'),
    setup(oldest.buildx, oldest.kit, 'dockerd-29-classic'),
  ];
  const only = env.BXB_DAEMONS?.split(',').map((s) => s.trim()).filter(Boolean);
  return only?.length ? all.filter((s) => only.includes(s.daemon)) : all;
}

/** Skips (or fails under BXB_REQUIRE_INTEGRATION=1) when the setup's daemon is not built here. */
export function requireSetup(t: Test, s: Pick<Setup, 'daemon'>): boolean {
  return requireDaemon(t, s.daemon);
}

export function tempDir(t: Test, prefix = 'bxb-real-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A world on `pair.daemon` (default Debian's dockerd 20.10). */
export async function realWorld(t: Test, pair: { buildx: RealBuildx; kit: RealBuildkit; daemon?: DaemonKind }, opts: { dockerd?: DockerdOptions } = {}): Promise<RealWorld> {
  const daemon = pair.daemon ?? 'dockerd-20.10';
  const startDockerd = (tt: Test, o: DockerdOptions = {}): Promise<EngineDockerd> => startEngineDockerd(tt, { ...o, daemon });
  const [dockerd, upstream, mirror] = await Promise.all([startDockerd(t, opts.dockerd ?? {}), startRegistry(t), startRegistry(t)]);
  const image = await pushRealEngineImage(upstream, pair.kit);
  await pushRealEngineImage(mirror, pair.kit);
  const root = tempDir(t);
  const buildx = installRealBuildx(t, pair.buildx, { dockerConfig: join(root, 'docker-config') });
  const env = { PATH: process.env.PATH, HOME: root, ...buildx.env, ...dockerd.env };
  // The Go-built plugin answers, not the emulation: its version line carries the commit the build
  // script stamped (REVISION), which the emulation never prints (test/fake-buildx/util.mjs).
  const v = await dockerWith(env, ['buildx', 'version']);
  t.equal(v.stdout, `github.com/docker/buildx ${pair.buildx.version} ${pair.buildx.revision ?? '(no REVISION: rebuild with scripts/build-test-engines.sh)'}\n`, `the real buildx ${pair.buildx.version} plugin runs: it prints the version and revision stamped at its build`);
  let n = 0;
  return {
    dockerd,
    daemon,
    startDockerd,
    upstream,
    mirror,
    buildx,
    kit: pair.kit,
    image,
    env,
    project(config, files = {}) {
      const dir = join(root, `project-${n++}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify(config));
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      return dir;
    },
    docker: (args, o) => dockerWith(env, args, o),
  };
}

/** A new CI job: its own DinD service and client, sharing nothing with earlier jobs. */
export interface FreshJob {
  dockerd: EngineDockerd;
  buildx: InstalledBuildx;
  /** `env` given, then the fresh DOCKER_CONFIG (the real buildx plugin in it) and DOCKER_HOST. */
  env: Record<string, string | undefined>;
}

/**
 * A fresh daemon (`daemon`, default dockerd 20.10) and a fresh docker config with the real buildx
 * installed: no builder, no BuildKit state, no image and no credentials of an earlier job. What
 * carries over is only `env` (PATH, HOME, CI variables: the job's definition) and the registries
 * the test runs.
 */
export async function freshJob(t: Test, opts: { buildx: RealBuildx; daemon?: DaemonKind; env?: Record<string, string | undefined> }): Promise<FreshJob> {
  const dockerd = await startEngineDockerd(t, opts.daemon ? { daemon: opts.daemon } : {});
  const buildx = installRealBuildx(t, opts.buildx);
  return { dockerd, buildx, env: { PATH: process.env.PATH, ...opts.env, ...buildx.env, ...dockerd.env } };
}

export function dockerWith(
  env: Record<string, string | undefined>,
  args: string[],
  o: { input?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile('docker', args, { env: env as NodeJS.ProcessEnv, timeout: o.timeoutMs ?? 180_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (o.input !== undefined) p.stdin?.end(o.input);
    else p.stdin?.end();
  });
}

export function lastLine(r: CliResult): string {
  return r.stderr.trim().split('\n').pop() ?? '';
}

/** A prefixed command exited 0; on failure the message carries its last line and stderr's tail. */
export function exitsZero(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

/**
 * The build-cache tests' two-stage Dockerfile: the builder stage's RUN writes 16 random bytes
 * (busybox from the context), the final image holds them — equal values mean the stage came from
 * the cache.
 */
export const RANDOM_VALUE_DOCKERFILE = `FROM scratch AS builder
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 > /value"]
FROM scratch
COPY --from=builder /value /value
`;

/** A configuration for `w`: its pinned BuildKit through its mirror, builder `name` on the host network. */
export function worldConfig(w: RealWorld, name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: w.kit.version },
    mirrors: [{ host: w.mirror.host, for: w.upstream.host }],
    builder: { name, driverOpts: { network: 'host' } },
    ...extra,
  };
}
