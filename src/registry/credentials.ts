// Registry credentials the way docker finds them (CLI cli/config/configfile/file.go,
// cli/config/credentials/native_store.go; protocol in docker-credential-helpers
// client/client.go): `$DOCKER_CONFIG/config.json` (`credHelpers[host]`, then `credsStore`, then
// `auths`), `DOCKER_AUTH_CONFIG` (a config.json-style document; docker CLI ≥ 28.3 layers it over
// the configured store), and GitLab CI's job variables. Every secret found is registered with
// Secrets so that no output can show it.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Secrets } from '../io.js';
import { TokenCache } from './auth.js';
import { DOCKER_HUB_AUTH_KEY } from './reference.js';
import type { Credential } from './types.js';

export type { Credential } from './types.js';

/**
 * Where a credential came from, by source, never by value. `docker-config`: the docker CLI and
 * buildx find it themselves in the same config; `ours`: only we know it (the environment, or an
 * `auths` entry docker would not read because a helper answers for the host).
 */
export interface CredentialSource {
  kind: 'docker-config' | 'ours';
  /** `config.json auths`, `credHelpers (docker-credential-pass)`, `DOCKER_AUTH_CONFIG`, `CI_REGISTRY_USER/PASSWORD`, … */
  label: string;
  /** The docker-credential helper the user's config routes this host to, when one does. */
  helper?: string;
}

export interface FoundCredential {
  credential: Credential;
  source: CredentialSource;
}

export interface CredentialStore {
  /** Credentials for a registry API host (`host[:port]`; any Docker Hub alias works). */
  get(host: string): Promise<Credential | undefined>;
  /** The same lookup, with where the credential came from. */
  find(host: string): Promise<FoundCredential | undefined>;
  /** The credential helper the user's docker config routes `host` to (credHelpers[host], else credsStore). */
  helperFor(host: string): string | undefined;
  /** Bearer tokens, shared by every client made with this store. */
  readonly tokens: TokenCache;
  /** Problems met while looking (unreadable config, failing helper); secrets removed. */
  warnings(): string[];
}

export interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `program args` with `input` on stdin (no shell). Injected in tests. */
export type HelperRunner = (program: string, args: string[], input: string, env: Record<string, string | undefined>) => Promise<HelperResult>;

export interface CredentialStoreOptions {
  env: Record<string, string | undefined>;
  /** Overrides $DOCKER_CONFIG (docker's global `--config DIR`). */
  dockerConfigDir?: string;
  secrets: Secrets;
  runHelper?: HelperRunner;
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const HELPER_TIMEOUT_MS = 15_000;

/**
 * `https://Registry.Example.com:443/v1/` → `registry.example.com`; every Docker Hub alias → `docker.io`.
 * Like docker's ConvertToHostname, plus: the default port 443 is dropped (GitLab's variables
 * spell it out, image references usually do not).
 */
export function normalizeRegistryHost(key: string): string {
  let host = key.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  host = host.split('/')[0] ?? '';
  host = host.replace(/:443$/, '');
  return HUB_ALIASES.has(host) ? 'docker.io' : host;
}

/** The server URL docker hands to a credential helper for `host`. */
export function helperServerUrl(host: string): string {
  return normalizeRegistryHost(host) === 'docker.io' ? DOCKER_HUB_AUTH_KEY : host;
}

// Through execa, like every external command (product.md), loaded when a helper runs: most runs
// read plain `auths` or nothing. A helper that cannot start rejects (the caller words it); one
// killed or timed out answers 128, as a shell would count a signal.
export const defaultHelperRunner: HelperRunner = async (program, args, input, env) => {
  const { execa } = await import('execa');
  const r = await execa(program, args, { env, extendEnv: false, input, reject: false, timeout: HELPER_TIMEOUT_MS, stripFinalNewline: false });
  if (r.exitCode === undefined && !r.signal && !r.timedOut) throw Object.assign(new Error(r.shortMessage), { code: r.code });
  return { code: r.exitCode ?? 128, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
};

function decodeAuthEntry(entry: AuthEntry | undefined): Credential | undefined {
  if (!entry || typeof entry !== 'object') return undefined;
  if (typeof entry.identitytoken === 'string' && entry.identitytoken) return { identityToken: entry.identitytoken };
  if (typeof entry.auth === 'string' && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && entry.username && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

function findKey<T>(map: Record<string, T> | undefined, host: string): T | undefined {
  if (!map || typeof map !== 'object') return undefined;
  const want = normalizeRegistryHost(host);
  if (Object.hasOwn(map, host)) return map[host];
  for (const [key, value] of Object.entries(map)) if (normalizeRegistryHost(key) === want) return value;
  return undefined;
}

export function createCredentialStore(opts: CredentialStoreOptions): CredentialStore {
  const { env, secrets } = opts;
  const runHelper = opts.runHelper ?? defaultHelperRunner;
  const problems: string[] = [];
  const warn = (text: string): void => {
    problems.push(secrets.redact(text));
  };
  const remember = (credential: Credential | undefined): Credential | undefined => {
    if (!credential) return undefined;
    if ('identityToken' in credential) secrets.add(credential.identityToken);
    else {
      secrets.add(credential.password);
      // The exact string an Authorization: Basic header (or an `auth` field) would carry.
      secrets.add(Buffer.from(`${credential.username}:${credential.password}`).toString('base64'));
    }
    return credential;
  };

  let configFile: DockerConfigFile | undefined | null = null;
  const loadConfig = (): DockerConfigFile | undefined => {
    if (configFile !== null) return configFile;
    const dir = opts.dockerConfigDir ?? env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
    const file = join(dir, 'config.json');
    configFile = undefined;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined; // no config.json: no stored credentials
    }
    try {
      configFile = JSON.parse(text) as DockerConfigFile;
      for (const entry of Object.values(configFile.auths ?? {})) {
        if (entry && typeof entry.auth === 'string') secrets.add(entry.auth);
      }
    } catch (error) {
      warn(`${file}: not valid JSON (${(error as Error).message.split('\n')[0]}); its credentials are ignored`);
    }
    return configFile;
  };

  let envAuths: Record<string, AuthEntry> | undefined | null = null;
  const loadEnvAuths = (): Record<string, AuthEntry> | undefined => {
    if (envAuths !== null) return envAuths;
    envAuths = undefined;
    const raw = env.DOCKER_AUTH_CONFIG;
    if (!raw) return undefined;
    secrets.add(raw);
    try {
      const parsed = JSON.parse(raw) as { auths?: Record<string, AuthEntry> };
      envAuths = parsed.auths && typeof parsed.auths === 'object' ? parsed.auths : undefined;
      for (const entry of Object.values(envAuths ?? {})) if (entry && typeof entry.auth === 'string') secrets.add(entry.auth);
    } catch {
      warn('DOCKER_AUTH_CONFIG is not valid JSON; it is ignored');
    }
    return envAuths;
  };

  const fromHelper = async (name: string, host: string): Promise<Credential | undefined> => {
    const program = `docker-credential-${name}`;
    let result: HelperResult;
    try {
      result = await runHelper(program, ['get'], helperServerUrl(host), env);
    } catch (error) {
      warn(`credential helper ${program} could not run (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return undefined;
    }
    if (result.code !== 0) {
      // "credentials not found in native keychain" (exit 1) just means: none stored for this host.
      if (!/credentials not found/i.test(result.stdout + result.stderr)) {
        // docker-credential-helpers print their errors on stdout; but a helper that fails after
        // printing a credential must not have it quoted, so JSON-looking output is not shown.
        const said = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
        warn(`credential helper ${program} failed for ${host} (exit ${result.code})${said && !/^[[{]/.test(said) ? `: ${said}` : ''}`);
      }
      return undefined;
    }
    try {
      const answer = JSON.parse(result.stdout) as { Username?: unknown; Secret?: unknown };
      if (typeof answer.Secret !== 'string' || !answer.Secret) return undefined;
      secrets.add(answer.Secret);
      const username = typeof answer.Username === 'string' ? answer.Username : '';
      // docker-credential-helpers: the username "<token>" marks an identity (refresh) token.
      if (username === '<token>') return { identityToken: answer.Secret };
      return { username, password: answer.Secret };
    } catch {
      warn(`credential helper ${program} answered something that is not JSON`);
      return undefined;
    }
  };

  const fromGitLab = (host: string): FoundCredential | undefined => {
    const want = normalizeRegistryHost(host);
    if (env.CI_REGISTRY && env.CI_REGISTRY_USER && env.CI_REGISTRY_PASSWORD && normalizeRegistryHost(env.CI_REGISTRY) === want) {
      return { credential: { username: env.CI_REGISTRY_USER, password: env.CI_REGISTRY_PASSWORD }, source: { kind: 'ours', label: 'CI_REGISTRY_USER/CI_REGISTRY_PASSWORD' } };
    }
    const proxyHosts = [env.CI_DEPENDENCY_PROXY_SERVER, env.CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX, env.CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX]
      .filter((v): v is string => !!v)
      .map(normalizeRegistryHost);
    if (env.CI_DEPENDENCY_PROXY_USER && env.CI_DEPENDENCY_PROXY_PASSWORD && proxyHosts.includes(want)) {
      return {
        credential: { username: env.CI_DEPENDENCY_PROXY_USER, password: env.CI_DEPENDENCY_PROXY_PASSWORD },
        source: { kind: 'ours', label: 'CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD' },
      };
    }
    return undefined;
  };

  const helperFor = (host: string): { name: string; how: 'credHelpers' | 'credsStore' } | undefined => {
    const config = loadConfig();
    if (!config) return undefined;
    const perHost = findKey(config.credHelpers, host);
    if (typeof perHost === 'string' && perHost) return { name: perHost, how: 'credHelpers' };
    if (typeof config.credsStore === 'string' && config.credsStore) return { name: config.credsStore, how: 'credsStore' };
    return undefined;
  };

  const lookup = async (host: string): Promise<FoundCredential | undefined> => {
    const fromEnv = decodeAuthEntry(findKey(loadEnvAuths(), host));
    if (fromEnv) return { credential: fromEnv, source: { kind: 'ours', label: 'DOCKER_AUTH_CONFIG' } };
    const config = loadConfig();
    if (config) {
      const helper = helperFor(host);
      if (helper) {
        const found = await fromHelper(helper.name, host);
        if (found) return { credential: found, source: { kind: 'docker-config', label: `${helper.how} (docker-credential-${helper.name})`, helper: helper.name } };
      }
      // With a helper for the host, docker reads no `auths` for it (the helper's answer, even an
      // empty one, replaces the file's: docker/cli credentials/native_store.go); we do, as before.
      const fromFile = decodeAuthEntry(findKey(config.auths, host));
      if (fromFile) return { credential: fromFile, source: helper ? { kind: 'ours', label: `config.json auths (docker asks ${helper.how} docker-credential-${helper.name} instead)` } : { kind: 'docker-config', label: 'config.json auths' } };
    }
    return fromGitLab(host);
  };

  const cache = new Map<string, Promise<FoundCredential | undefined>>();
  // GitLab's job secrets are secrets even before any lookup asks for them.
  for (const name of ['CI_REGISTRY_PASSWORD', 'CI_DEPENDENCY_PROXY_PASSWORD', 'CI_JOB_TOKEN']) secrets.add(env[name]);

  const find = (host: string): Promise<FoundCredential | undefined> => {
    const key = normalizeRegistryHost(host);
    let found = cache.get(key);
    if (!found) {
      found = lookup(host).then((f) => {
        remember(f?.credential);
        return f;
      });
      cache.set(key, found);
    }
    return found;
  };

  return {
    tokens: new TokenCache(),
    warnings: () => [...problems],
    find,
    get: async (host) => (await find(host))?.credential,
    helperFor: (host) => helperFor(host)?.name,
  };
}
