// The resolver as the commands use it (`resolve`, `lock`, `create`, `plan`): configuration in,
// pinned engine image out. Registry clients are made here from the real client unless a factory
// is injected.
import type { Config } from '../config/schema.js';
import type { Logger, Secrets } from '../io.js';
import type { RegistryClient } from '../registry/types.js';
import { engineCandidates, type Candidate } from './candidates.js';
import { isLockStale, lockDifferences, readLockfile, type Lockfile } from './lockfile.js';
import { resolveEngineImage, type Clock, type LockPin, type Resolution } from './probe.js';
import { parseVersionSpec } from './version-spec.js';

export type ClientFactory = (candidate: Candidate) => RegistryClient;

/** A factory plus what its credential lookups had to say (unreadable config, failing helper). */
export interface ClientSource {
  clientFor: ClientFactory;
  warnings(): string[];
}

export interface ResolveDeps {
  env: Record<string, string | undefined>;
  secrets: Secrets;
  log: Logger;
  signal?: AbortSignal | undefined;
  /** Injected in tests; default: the real registry client with the user's credentials. */
  clientFor?: ClientFactory;
  clock?: Clock;
}

let clientModules: Promise<[typeof import('../registry/client.js'), typeof import('../registry/credentials.js')]> | undefined;

/** Starts loading the registry client (e.g. while the configuration loads); start-up is module loading. */
export function preloadRegistryClient(): Promise<[typeof import('../registry/client.js'), typeof import('../registry/credentials.js')]> {
  clientModules ??= Promise.all([import('../registry/client.js'), import('../registry/credentials.js')]);
  return clientModules;
}

/** Real clients for every candidate, sharing one credential store (and its token cache). */
export async function createClientFactory(deps: Pick<ResolveDeps, 'env' | 'secrets' | 'clientFor'>, config: Pick<Config, 'timeouts'>): Promise<ClientSource> {
  if (deps.clientFor) return { clientFor: deps.clientFor, warnings: () => [] };
  const [{ createRegistryClient }, { createCredentialStore }] = await preloadRegistryClient();
  const credentials = createCredentialStore({ env: deps.env, secrets: deps.secrets });
  const clients = new Map<Candidate, RegistryClient>();
  const clientFor: ClientFactory = (candidate) => {
    let client = clients.get(candidate);
    if (!client) {
      client = createRegistryClient(candidate.endpoint, { credentials, secrets: deps.secrets, timeoutMs: config.timeouts.probe, env: deps.env });
      clients.set(candidate, client);
    }
    return client;
  };
  return { clientFor, warnings: () => credentials.warnings() };
}

/**
 * Resolves the engine image through the configured candidates. With `lock`, the locked tag is
 * checked (HEAD only) and must carry the locked digest (else LockMismatchError, exit 4).
 */
export async function resolveFromConfig(deps: ResolveDeps, config: Config, lock?: LockPin): Promise<Resolution> {
  const candidates = engineCandidates(config);
  const source = await createClientFactory(deps, config);
  const spec = parseVersionSpec(config.buildkit.version);
  const what = lock ? `${config.buildkit.image}:${lock.tag} (locked ${lock.digest.slice(0, 19)}…)` : `${config.buildkit.image} ${spec.spec}${config.buildkit.rootless ? ' rootless' : ''}`;
  deps.log.debug(`resolving ${what} from ${candidates.map((c) => c.label).join(', ') || 'no registry'}`);
  const resolving = resolveEngineImage({
    candidates,
    spec,
    rootless: config.buildkit.rootless,
    lock,
    timeouts: { probe: config.timeouts.probe, hedge: config.timeouts.hedge },
    clientFor: source.clientFor,
    ...(deps.clock ? { clock: deps.clock } : {}),
    signal: deps.signal,
    onReport: (_, r) => {
      if (r.outcome === 'failed') deps.log.info(`${r.label}: ${r.error ?? 'failed'} (${r.ms} ms)`);
      else deps.log.debug(`${r.label}: ${r.outcome} (${r.ms} ms)`);
    },
  });
  // Credential problems (unreadable config.json, failing helper) explain many auth failures.
  const resolution = await resolving.finally(() => {
    for (const w of source.warnings()) deps.log.warn(w);
  });
  deps.log.info(`resolved ${resolution.tag} (${resolution.digest}) from ${resolution.source}`);
  return resolution;
}

/**
 * The lockfile when it applies to the configuration; a stale one is reported and ignored (only
 * `lock --check` fails on it). A broken lockfile is a ConfigError.
 */
export async function applicableLock(config: Config, log: Logger): Promise<Lockfile | undefined> {
  const lock = await readLockfile(config.lockfile);
  if (!lock) return undefined;
  if (isLockStale(lock, config)) {
    log.warn(`${config.lockfile} does not match the configuration (${lockDifferences(lock, config).join('; ')}); resolving without it — run buildx-bootstrap lock`);
    return undefined;
  }
  return lock;
}

export type { Candidate } from './candidates.js';
export type { Lockfile } from './lockfile.js';
export type { CandidateReport, LockPin, Resolution } from './probe.js';
