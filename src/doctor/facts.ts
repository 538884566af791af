// The doctor's side effects: gathering facts through small injected functions (docker through the
// runner, registries through RegistryClient), every independent probe concurrently. Each probe's
// failure becomes a fact, not an exception — the doctor reports everything it can.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Config } from '../config/schema.js';
import { resolveCacheType } from '../driver/build-cache.js';
import { normalizeRegistryHost } from '../registry/credentials.js';
import { parseImageRef } from '../registry/reference.js';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import type { BuildxFacts } from '../docker/buildx.js';
import { detectBuildx } from '../docker/buildx.js';
import type { DaemonFacts } from '../docker/daemon.js';
import { daemonImageStore, daemonRegistryMirrors, inspectDaemon, tlsContextName, tlsFromEnvironment, type ImageStore } from '../docker/daemon.js';
import type { DockerRunner } from '../docker/runner.js';
import { isBxbError } from '../errors.js';
import { RegistryRequestError, type RegistryClient } from '../registry/types.js';
import { engineCandidates, type Candidate } from '../resolve/candidates.js';
import { lockDifferences, readLockfile } from '../resolve/lockfile.js';
import { directTag, parseVersionSpec, selectTag, type VersionSpec } from '../resolve/version-spec.js';
import type { BuildCacheFacts, BuildersFacts, CandidateFacts, DoctorFacts, LockFacts, Outcome, Problem, TlsFacts } from './checks.js';

/** The docker side, one small function each; the real ones come from `dockerProbes`. */
export interface DockerProbes {
  daemon(): Promise<DaemonFacts>;
  buildx(): Promise<BuildxFacts>;
  /** Endpoint of the current docker context (`unix:///…`, `tcp://…`), undefined when unknown. */
  endpoint(): Promise<string | undefined>;
  registryMirrors(): Promise<string[]>;
  /** The daemon's image store (`/info` DriverStatus); absent or undefined: not reported. */
  imageStore?: () => Promise<ImageStore | undefined>;
  contextExists(name: string): Promise<boolean>;
  /** Builders buildx-bootstrap made and their state volumes (given by the command; absent: not reported). */
  ourBuilders?: () => Promise<BuildersFacts>;
}

export function dockerProbes(runner: DockerRunner, signal?: AbortSignal): DockerProbes {
  const opts = { timeoutMs: 30_000, ...(signal ? { signal } : {}) };
  return {
    daemon: () => inspectDaemon(runner, signal),
    buildx: () => detectBuildx(runner, signal),
    endpoint: async () => {
      const r = await runner.run(['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}'], opts);
      const host = r.stdout.trim();
      return r.exitCode === 0 && host ? host : undefined;
    },
    registryMirrors: () => daemonRegistryMirrors(runner),
    imageStore: () => daemonImageStore(runner, signal),
    contextExists: async (name) => (await runner.run(['context', 'inspect', name], opts)).exitCode === 0,
  };
}

export interface GatherOptions {
  env: Record<string, string | undefined>;
  /** The configuration, or the (user) error loading it produced. */
  loaded: Outcome<LoadedConfig>;
  docker: DockerProbes;
  /** Registry clients per candidate (the real client with the user's credentials, or a test's). */
  clientFor: ((candidate: Candidate) => RegistryClient) | undefined;
  signal?: AbortSignal | undefined;
  now?: () => number;
}

/** A user-facing error (BxbError) as a fact; anything else is a bug and propagates. */
async function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (isBxbError(error)) return { ok: false, problem: { message: error.message, hint: error.hint } };
    throw error;
  }
}

export async function gatherDoctorFacts(opts: GatherOptions): Promise<DoctorFacts> {
  const now = opts.now ?? (() => performance.now());
  const loaded = opts.loaded.ok ? opts.loaded.value : undefined;
  const config = loaded?.config;

  const dockerSide = (async () => {
    const [daemon, buildx, dockerEndpoint, tls] = await Promise.all([
      settle(opts.docker.daemon()),
      settle(opts.docker.buildx()),
      opts.docker.endpoint().catch(() => undefined),
      tlsFacts(opts.env, opts.docker),
    ]);
    // `docker info` only means something once `docker version` reached the daemon.
    const [daemonMirrors, imageStore] = daemon.ok ? await Promise.all([opts.docker.registryMirrors(), opts.docker.imageStore?.().catch(() => undefined)]) : [undefined, undefined];
    const builders = daemon.ok && opts.docker.ourBuilders ? await settle(opts.docker.ourBuilders()) : undefined;
    return { daemon, buildx, dockerEndpoint, tls, daemonMirrors, imageStore, builders };
  })();

  const lockSide = config ? lockFacts(config.lockfile, config) : Promise.resolve(undefined);
  const registrySide = (async (): Promise<CandidateFacts[]> => {
    if (!config || !opts.clientFor) return [];
    const lock = await lockSide;
    // A lock that applies is checked as `create` would use it: its tag, its digest.
    const lockTag = lock?.state === 'present' && !lock.differences.length ? lock.lock.tag : undefined;
    const spec = parseVersionSpec(config.buildkit.version);
    const clientFor = opts.clientFor;
    return Promise.all(
      engineCandidates(config).map((c) => probeCandidate(clientFor(c), c, { spec, rootless: config.buildkit.rootless, lockTag, signal: opts.signal, now })),
    );
  })();

  const [docker, candidates, lock] = await Promise.all([dockerSide, registrySide, lockSide]);
  // Reported when prefix mode would use a cache; an unused one is not worth a line.
  let buildCache = config ? buildCacheFacts(config, opts.env) : undefined;
  if (buildCache?.type === 'off') buildCache = undefined;
  return {
    ...(buildCache ? { buildCache } : {}),
    config: opts.loaded.ok ? { ok: true, value: { file: opts.loaded.value.file, config: opts.loaded.value.config } } : opts.loaded,
    dockerEndpoint: docker.dockerEndpoint,
    daemon: docker.daemon,
    buildx: docker.buildx,
    dockerHost: opts.env.DOCKER_HOST?.trim() || undefined,
    tls: docker.tls,
    daemonMirrors: docker.daemonMirrors,
    ...(docker.imageStore ? { imageStore: docker.imageStore } : {}),
    ...(docker.builders ? { builders: docker.builders } : {}),
    candidates,
    lock,
  };
}

async function tlsFacts(env: Record<string, string | undefined>, docker: DockerProbes): Promise<TlsFacts | undefined> {
  const tls = await tlsFromEnvironment(env);
  if (!tls) return undefined;
  const contextName = tlsContextName(tls);
  const missingFiles = ['ca.pem', 'cert.pem', 'key.pem'].filter((f) => !existsSync(join(tls.certPath, f)));
  const contextExists = await docker.contextExists(contextName).catch(() => false);
  return { tls, contextName, contextExists, missingFiles };
}

async function lockFacts(file: string, config: LoadedConfig['config']): Promise<LockFacts> {
  try {
    const lock = await readLockfile(file);
    if (!lock) return { state: 'missing', file };
    return { state: 'present', file, lock, differences: lockDifferences(lock, config) };
  } catch (error) {
    if (!isBxbError(error)) throw error;
    const problem: Problem = { message: error.message, hint: error.hint };
    return { state: 'broken', file, problem };
  }
}

export interface ProbeOptions {
  spec: VersionSpec;
  rootless: boolean;
  /** The applicable lockfile's tag: checked instead of what the spec names. */
  lockTag: string | undefined;
  signal?: AbortSignal | undefined;
  now: () => number;
}

/**
 * One candidate, the way create would use it: ping (authenticating), the tag (the lock's, the
 * exact one, or the best match in the tag list for a range), then a HEAD of its manifest — a HEAD
 * does not count against Docker Hub's pull limit and carries the rate-limit headers.
 */
export async function probeCandidate(client: RegistryClient, c: Candidate, opts: ProbeOptions): Promise<CandidateFacts> {
  const start = opts.now();
  const facts: CandidateFacts = { label: c.label, registry: c.registry, repository: c.repository, kind: c.kind, origin: c.origin, ms: 0 };
  let stage: 'ping' | 'tags' | 'manifest' = 'ping';
  try {
    const ping = await client.ping(opts.signal);
    facts.authenticated = ping.authenticated;
    if (ping.rateLimit) facts.rateLimit = ping.rateLimit;
    let tag = opts.lockTag ?? directTag(opts.spec, { rootless: opts.rootless });
    if (tag === undefined) {
      stage = 'tags';
      const tags = await client.listTags(c.repository, opts.signal);
      tag = selectTag(opts.spec, tags, { rootless: opts.rootless });
      if (tag === undefined) {
        throw new RegistryRequestError('not-found', c.endpoint.host, `no${opts.rootless ? ' -rootless' : ''} tag satisfies ${opts.spec.spec} among ${tags.length} tags`);
      }
    }
    facts.tag = tag;
    stage = 'manifest';
    const manifest = await client.headManifest(c.repository, tag, opts.signal);
    facts.digest = manifest.digest;
    if (manifest.rateLimit) facts.rateLimit = manifest.rateLimit;
  } catch (error) {
    if (opts.signal?.aborted) throw error;
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim() || 'failed';
    facts.failure = { kind: error instanceof RegistryRequestError ? error.kind : 'error', stage, message };
  }
  facts.ms = Math.round(opts.now() - start);
  return facts;
}

/** Where prefix mode's build cache goes, and whether the docker config (what buildx's session hands BuildKit) has credentials for it. */
export function buildCacheFacts(config: Config, env: Record<string, string | undefined>): BuildCacheFacts {
  const choice = resolveCacheType(config.buildCache, env, config.cache.dir);
  if (choice.type !== 'registry') return { type: choice.type, where: choice.type === 'local' ? join(config.cache.dir, 'build') : '', reason: choice.reason };
  const host = normalizeRegistryHost(parseImageRef(choice.ref).registry);
  let found = false;
  try {
    const file = JSON.parse(readFileSync(join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json'), 'utf8')) as {
      auths?: Record<string, unknown>;
      credHelpers?: Record<string, unknown>;
      credsStore?: unknown;
    };
    const keys = [...Object.keys(file.auths ?? {}), ...Object.keys(file.credHelpers ?? {})].map(normalizeRegistryHost);
    found = keys.includes(host) || (typeof file.credsStore === 'string' && file.credsStore !== '');
  } catch {
    // no config.json: no credentials
  }
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(host);
  return { type: 'registry', where: choice.ref, reason: choice.reason, credentials: { host, found, loopback } };
}
