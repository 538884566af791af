// Facts about the docker daemon and CLI context: reachable? which platform? which mirrors does
// dockerd itself use? And the GitLab DinD case, where TLS comes from the environment.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError } from '../errors.js';
import { GITLAB_DIND } from './dockerd-advice.js';
import { dockerConfigDir, shortHash } from '../state.js';
import { lastStderrLine, transcript, type DockerRunner } from './runner.js';

export interface DaemonFacts {
  serverVersion: string;
  /** `os/arch[/variant]` of the daemon, e.g. `linux/amd64`. */
  platform: string;
}

const UNREACHABLE_HINT = `start dockerd or point DOCKER_HOST at it; in GitLab CI add the ${GITLAB_DIND.service} service (and DOCKER_HOST=${GITLAB_DIND.dockerHost})`;

export async function inspectDaemon(runner: DockerRunner, signal?: AbortSignal): Promise<DaemonFacts> {
  const r = await runner.run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}'], {
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  const [serverVersion, platform] = r.stdout.trim().split(/\s+/);
  if (r.exitCode !== 0 || !serverVersion || !platform || platform === '/') {
    if (r.exitCode === -1 && /ENOENT|could not start/.test(r.stderr)) {
      throw new DockerError('the docker CLI was not found', { hint: 'install the docker CLI (docker-ce-cli or docker.io) and make sure it is on PATH', transcript: transcript(r) });
    }
    throw new DockerError(`docker is not reachable: ${lastStderrLine(r) || `exit code ${r.exitCode}`}`, { hint: UNREACHABLE_HINT, transcript: transcript(r) });
  }
  return { serverVersion, platform: normalisePlatform(platform) };
}

function normalisePlatform(platform: string): string {
  // dockerd reports Go's arch names; arm images are published as linux/arm/v7 and linux/arm64.
  return platform === 'linux/arm' ? 'linux/arm/v7' : platform;
}

/** dockerd's `registry-mirrors` (what the docker driver's embedded BuildKit uses). */
export async function daemonRegistryMirrors(runner: DockerRunner): Promise<string[]> {
  const r = await runner.run(['info', '--format', '{{json .RegistryConfig.Mirrors}}'], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) return [];
  try {
    const parsed: unknown = JSON.parse(r.stdout.trim() || 'null');
    return Array.isArray(parsed) ? parsed.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Which image store the daemon keeps images in. A fresh Docker 29 daemon (every `docker:29-dind`
 * job) uses containerd's (`/info` `DriverStatus` has `driver-type` = `io.containerd.snapshotter.v1`);
 * older daemons, and 29 with `--feature containerd-snapshotter=false`, the classic graph-driver
 * store. It decides what an image ID is (config digest vs manifest digest), whether the docker
 * exporter takes a manifest list, and whether the docker driver can export cache. Read from the
 * daemon, never guessed from its version.
 */
export type ImageStore = 'containerd' | 'classic';

export const CONTAINERD_SNAPSHOTTER = 'io.containerd.snapshotter.v1';

/** The store from `/info`'s `DriverStatus` pairs (`[["driver-type", "io.containerd.snapshotter.v1"], …]`). */
export function imageStoreFromDriverStatus(status: unknown): ImageStore {
  if (!Array.isArray(status)) return 'classic';
  return status.some((pair) => Array.isArray(pair) && pair[0] === 'driver-type' && pair[1] === CONTAINERD_SNAPSHOTTER) ? 'containerd' : 'classic';
}

/** The daemon's image store; `undefined` when the daemon could not be asked. */
export async function daemonImageStore(runner: DockerRunner, signal?: AbortSignal): Promise<ImageStore | undefined> {
  const r = await runner.run(['info', '--format', '{{json .DriverStatus}}'], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) return undefined;
  try {
    return imageStoreFromDriverStatus(JSON.parse(r.stdout.trim() || 'null'));
  } catch {
    return undefined;
  }
}

/** Identifies the docker endpoint in use, for the per-daemon lock. */
export function endpointKey(env: Record<string, string | undefined>): string {
  return env.DOCKER_HOST || (env.DOCKER_CONTEXT ? `context:${env.DOCKER_CONTEXT}` : 'default');
}

export interface TlsEnvironment {
  host: string;
  certPath: string;
}

/**
 * GitLab DinD: the `default` context gets its TLS material from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH,
 * which buildx refuses for a docker-container builder ("could not create a builder instance with
 * TLS data loaded from environment", buildx builder/builder.go since 2019). Returns the TLS
 * settings when that is the situation.
 */
export async function tlsFromEnvironment(env: Record<string, string | undefined>): Promise<TlsEnvironment | undefined> {
  const host = env.DOCKER_HOST?.trim();
  if (!host || !host.startsWith('tcp://')) return undefined;
  const verify = env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== '0';
  if (!verify && !env.DOCKER_CERT_PATH) return undefined;
  if ((await currentContextName(env)) !== 'default') return undefined;
  return { host, certPath: env.DOCKER_CERT_PATH || dockerConfigDir(env) };
}

/** The docker CLI's current context: DOCKER_CONTEXT, else config.json's currentContext, else `default`. */
export async function currentContextName(env: Record<string, string | undefined>): Promise<string> {
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT;
  try {
    const config = JSON.parse(await readFile(join(dockerConfigDir(env), 'config.json'), 'utf8')) as { currentContext?: string };
    return config.currentContext || 'default';
  } catch {
    return 'default'; // no config.json
  }
}

/** Name of the context buildx-bootstrap makes for a TLS-from-environment daemon. */
export function tlsContextName(tls: TlsEnvironment): string {
  return `buildx-bootstrap-${shortHash(`${tls.host}\n${tls.certPath}`, 10)}`;
}

/** Creates (or reuses) a docker context carrying the environment's TLS settings; returns its name. */
export async function ensureTlsContext(runner: DockerRunner, tls: TlsEnvironment): Promise<string> {
  const name = tlsContextName(tls);
  const exists = await runner.run(['context', 'inspect', name], { timeoutMs: 30_000 });
  if (exists.exitCode === 0) return name;
  const docker = [`host=${tls.host}`, `ca=${join(tls.certPath, 'ca.pem')}`, `cert=${join(tls.certPath, 'cert.pem')}`, `key=${join(tls.certPath, 'key.pem')}`].join(',');
  const created = await runner.run(['context', 'create', name, '--description', 'created by buildx-bootstrap for DOCKER_HOST with TLS from the environment', '--docker', docker], {
    timeoutMs: 30_000,
  });
  if (created.exitCode !== 0) {
    // A parallel run may have made it between our inspect and create.
    const again = await runner.run(['context', 'inspect', name], { timeoutMs: 30_000 });
    if (again.exitCode === 0) return name;
    throw new DockerError(`creating docker context ${name} failed: ${lastStderrLine(created)}`, {
      hint: `check DOCKER_CERT_PATH (${tls.certPath}) holds ca.pem, cert.pem and key.pem`,
      transcript: transcript(created),
    });
  }
  return name;
}
