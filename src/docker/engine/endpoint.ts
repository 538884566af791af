// Where the Docker Engine API is, worked out the way the docker CLI does (docker/cli
// cli/command/cli.go `resolveContextName`, cli/flags/options.go): DOCKER_CONTEXT wins, then
// DOCKER_HOST (the `default` context), then config.json's currentContext. The `default` context
// is DOCKER_HOST or /var/run/docker.sock with TLS from DOCKER_TLS_VERIFY/DOCKER_TLS/DOCKER_CERT_PATH;
// any other context is its meta.json endpoint and its TLS files in the context store.
// Returns undefined where only the CLI can reach the daemon (ssh://, npipe://, anything unknown).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { currentContextName } from '../daemon.js';
import { dockerConfigDir, sha256 } from '../../state.js';

export type EngineEndpoint =
  | { kind: 'unix'; socketPath: string; label: string }
  | { kind: 'tcp'; host: string; port: number; tls?: EngineTls | undefined; label: string };

export interface EngineTls {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  /** DOCKER_TLS without DOCKER_TLS_VERIFY, or a context's SkipTLSVerify. */
  skipVerify: boolean;
}

const DEFAULT_SOCKET = '/var/run/docker.sock';

interface ContextMeta {
  Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch {
    return undefined;
  }
}

/** Parses `unix:///path` / `tcp://host:port`; undefined for what only the CLI can reach. */
export function parseDockerHost(host: string, tls?: EngineTls): EngineEndpoint | undefined {
  if (host.startsWith('unix://')) return { kind: 'unix', socketPath: host.slice('unix://'.length), label: host };
  if (!host.startsWith('tcp://')) return undefined;
  let url: URL;
  try {
    url = new URL(host.replace(/^tcp:/, 'http:'));
  } catch {
    return undefined;
  }
  const port = url.port ? Number(url.port) : tls ? 2376 : 2375;
  return { kind: 'tcp', host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, tls, label: host };
}

async function tlsFiles(dir: string, skipVerify: boolean): Promise<EngineTls> {
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readOptional(join(dir, f))));
  return { ca, cert, key, skipVerify };
}

export async function resolveEngineEndpoint(env: Record<string, string | undefined>): Promise<EngineEndpoint | undefined> {
  const name = env.DOCKER_CONTEXT || (env.DOCKER_HOST ? 'default' : await currentContextName(env));
  if (name === 'default') {
    const host = env.DOCKER_HOST?.trim() || `unix://${DEFAULT_SOCKET}`;
    const verify = Boolean(env.DOCKER_TLS_VERIFY);
    const tls = verify || Boolean(env.DOCKER_TLS) ? await tlsFiles(env.DOCKER_CERT_PATH || dockerConfigDir(env), !verify) : undefined;
    return parseDockerHost(host, tls);
  }
  const id = sha256(name);
  let meta: ContextMeta;
  try {
    meta = JSON.parse(await readFile(join(dockerConfigDir(env), 'contexts', 'meta', id, 'meta.json'), 'utf8')) as ContextMeta;
  } catch {
    return undefined; // unknown context: the CLI says what is wrong with it
  }
  const docker = meta.Endpoints?.docker;
  if (!docker?.Host) return undefined;
  const tlsDir = join(dockerConfigDir(env), 'contexts', 'tls', id, 'docker');
  const tls = docker.Host.startsWith('tcp://') ? await tlsFiles(tlsDir, docker.SkipTLSVerify ?? false) : undefined;
  // A tcp context with no TLS files and no skip flag is plain HTTP (docker/cli context/docker/load.go).
  const useTls = tls && (tls.ca || tls.cert || tls.skipVerify) ? tls : undefined;
  return parseDockerHost(docker.Host, useTls);
}
