// The credentials we hand to docker for registries — the one module every path that makes docker
// or BuildKit talk to a registry goes through:
// - the engine image pull over the Engine API gets `X-Registry-Auth` per request (nothing on disk);
// - everything that runs the docker CLI or buildx (the CLI `docker pull` for BXB_ENGINE_API=0 and
//   ssh:// endpoints, the prefixed build) gets a per-run DOCKER_CONFIG: a private directory that
//   layers the credentials only we know over the user's own config.json, links every other entry
//   of the user's config directory (cli-plugins, contexts, …), points BUILDX_CONFIG at the user's
//   buildx store, and is removed when the run ends. The user's config.json is never written.
//
// docker/cli's precedence decides how the layering is spelled (cli/config/configfile/file.go
// GetCredentialsStore, credentials/native_store.go): `credHelpers[host]`, else a global
// `credsStore`, else the file's `auths`; and when a helper applies, its answer — even an empty one
// — replaces the file's entry. So a host of ours gets an `auths` entry only when no helper applies
// to it; otherwise a `credHelpers[host]` entry naming a tiny helper of ours that answers for our
// hosts and nothing else, reading the secret from a 0600 file in the private directory (never
// argv or environment, which the process list shows). Hosts for which the user's own config has
// an answer are not touched: their helpers and stores keep answering, and win.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { CredentialStore, FoundCredential } from '../registry/credentials.js';
import { normalizeRegistryHost } from '../registry/credentials.js';
import { DOCKER_HUB, DOCKER_HUB_AUTH_KEY } from '../registry/reference.js';
import type { Credential } from '../registry/types.js';
import { dockerConfigDir, stateDir } from '../state.js';
import { buildxStoreDir } from './buildx-store.js';

/** The name our helper answers to: `credHelpers[host] = "buildx-bootstrap"` → docker-credential-buildx-bootstrap. */
export const HELPER_NAME = 'buildx-bootstrap';
/** Our files inside the per-run directory (never a name a docker config directory uses). */
const OWN_DIR = '.buildx-bootstrap-auth';
const CREDENTIALS_FILE = 'credentials.json';
/** Inside OWN_DIR: the user's own config directory this one layers over. */
const USER_DIR_FILE = 'user-config-dir';
/** Names of the per-run directories (a job's: `<prefix>job-<CI_JOB_ID>`). */
export const AUTH_DIR_PREFIX = 'buildx-bootstrap-auth-';

/**
 * The user's own docker config directory — also when DOCKER_CONFIG already points at a per-run
 * directory of ours (after `eval "$(buildx-bootstrap env)"`), so layers never stack.
 */
export function userDockerConfigDir(env: Record<string, string | undefined>): string {
  const dir = dockerConfigDir(env);
  try {
    const original = readFileSync(join(dir, OWN_DIR, USER_DIR_FILE), 'utf8').trim();
    if (original) return original;
  } catch {
    // not one of ours
  }
  return dir;
}

/** Whether `dir` is a per-run directory of ours (safe to remove). */
export function isOwnAuthDir(dir: string): boolean {
  return existsSync(join(dir, OWN_DIR, USER_DIR_FILE));
}

/** The job's directory for the `env` subcommand: stable within a CI job so after_script finds it. */
export function jobAuthDir(env: Record<string, string | undefined>): string | undefined {
  const id = env.CI_JOB_ID?.trim();
  return id && /^[A-Za-z0-9_.-]+$/.test(id) ? join(env.TMPDIR || tmpdir(), `${AUTH_DIR_PREFIX}job-${id}`) : undefined;
}

/** What BuildKit will have for one host, by source, never by value. */
export interface HostCredentialReport {
  /** `host[:port]` exactly as BuildKit asks for it. */
  host: string;
  /** Where the credential comes from; undefined: none known (BuildKit pulls anonymously). */
  source: string | undefined;
  /** The per-run docker config carries it (only we know it); false: buildx finds it in the user's config. */
  handedOver: boolean;
}

export interface RegistryAuth {
  /**
   * One more host BuildKit will ask (e.g. a build-cache registry such as `$CI_REGISTRY_IMAGE/cache`'s
   * host): its credentials reach the build like the mirrors'. Accepts `host[:port]` or an image reference.
   */
  addHost(hostOrRef: string): void;
  /** `X-Registry-Auth` for a pull from `host` over the Engine API; undefined when there is no credential. */
  engineAuthHeader(host: string): Promise<string | undefined>;
  /**
   * Environment for a docker CLI or buildx child: the per-run DOCKER_CONFIG (made on first use);
   * empty when no host needs a credential only we know (the child then reads the user's config).
   */
  childEnv(): Promise<Record<string, string>>;
  /** Per host: whether BuildKit will have credentials and from where. */
  report(): Promise<HostCredentialReport[]>;
  /** The per-run directory, once made. */
  readonly dir: string | undefined;
  /** The credential store behind it: a registry client made with it asks with what BuildKit will have. */
  readonly credentials: CredentialStore;
  /** Removes the per-run directory (and with it every secret it held). */
  dispose(): Promise<void>;
}

export interface RegistryAuthOptions {
  env: Record<string, string | undefined>;
  credentials: CredentialStore;
  /** Hosts BuildKit will ask (buildCredentialHosts). */
  hosts?: string[];
  /** The per-run directory to use (the `env` subcommand's job directory); default: a new one under TMPDIR. */
  dir?: string;
  /** The node binary the helper runs with (default: this process's). */
  nodePath?: string;
}

/** `host[:port]` of an image reference, a mirror's `host[:port][/path]` or a bare host, exactly as written. */
export function hostOf(hostOrRef: string): string {
  const text = hostOrRef.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  if (!text.includes('/')) return text;
  const first = text.split('/')[0] ?? '';
  // `library/alpine`, `moby/buildkit`: a Docker Hub reference, as docker reads one.
  return /[.:]/.test(first) || first === 'localhost' ? first : DOCKER_HUB;
}

/**
 * Every registry host BuildKit will ask for this configuration, spelled as it asks (`host:port`
 * when the mirror names a port, GitLab's `:443` included): each mirror, each registry a mirror is
 * for, each `registries:` key, `$CI_REGISTRY`, the Dependency Proxy server, and each host of
 * DOCKER_AUTH_CONFIG (buildx < 0.26 does not read that variable).
 */
export function buildCredentialHosts(config: Pick<Config, 'mirrors' | 'registries'>, env: Record<string, string | undefined>): string[] {
  const hosts: string[] = [];
  const add = (h: string | undefined): void => {
    if (h && !hosts.includes(h)) hosts.push(h);
  };
  for (const m of config.mirrors) add(m.host);
  for (const m of config.mirrors) add(m.for);
  for (const key of Object.keys(config.registries)) add(key);
  add(env.CI_REGISTRY?.trim());
  add(env.CI_DEPENDENCY_PROXY_SERVER?.trim());
  if (env.CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX) add(hostOf(env.CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX));
  if (env.DOCKER_AUTH_CONFIG) {
    try {
      const parsed = JSON.parse(env.DOCKER_AUTH_CONFIG) as { auths?: Record<string, unknown> };
      for (const key of Object.keys(parsed.auths ?? {})) add(hostOf(key));
    } catch {
      // the credential store warns about it
    }
  }
  return hosts;
}

/** The key docker and buildx look a host up under (`https://index.docker.io/v1/` for Docker Hub). */
export function dockerAuthKey(host: string): string {
  return normalizeRegistryHost(host) === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : host;
}

/**
 * The Engine API's X-Registry-Auth: the AuthConfig JSON in Go's base64.URLEncoding — URL alphabet
 * *with* padding (moby api/types/registry DecodeAuthConfig); Node's `base64url` drops the padding
 * and dockerd 20.10 then reads no credentials at all.
 */
export function encodeRegistryAuth(credential: Credential, host: string): string {
  const serveraddress = dockerAuthKey(host);
  const body = 'identityToken' in credential ? { identitytoken: credential.identityToken, serveraddress } : { username: credential.username, password: credential.password, serveraddress };
  return Buffer.from(JSON.stringify(body)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

// The helper: `get` answers from credentials.json beside it (exact key, else the same host spelled
// another way), `list` names our hosts, `store`/`erase` keep nothing. CommonJS so it runs under any
// package type; no dependency.
const HELPER_SOURCE = `'use strict';
const fs = require('fs');
const path = require('path');
const table = () => JSON.parse(fs.readFileSync(path.join(__dirname, ${JSON.stringify(CREDENTIALS_FILE)}), 'utf8'));
const norm = (u) => u.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\\/\\//, '').split('/')[0].replace(/:443$/, '');
const action = process.argv[2];
if (action === 'list') {
  const out = {};
  for (const [k, v] of Object.entries(table())) out[k] = v.Username;
  process.stdout.write(JSON.stringify(out) + '\\n');
} else if (action === 'get') {
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => (input += c));
  process.stdin.on('end', () => {
    const url = input.trim();
    const t = table();
    const key = Object.hasOwn(t, url) ? url : Object.keys(t).find((k) => norm(k) === norm(url));
    const entry = key === undefined ? undefined : t[key];
    if (!entry) {
      process.stdout.write('credentials not found in native keychain\\n');
      process.exit(1);
    }
    process.stdout.write(JSON.stringify({ ServerURL: url, Username: entry.Username, Secret: entry.Secret }) + '\\n');
  });
} else if (action !== 'store' && action !== 'erase') {
  process.stderr.write('unknown action ' + action + '\\n');
  process.exit(1);
}
`;

interface DockerConfigJson {
  auths?: Record<string, unknown>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

export function createRegistryAuth(opts: RegistryAuthOptions): RegistryAuth {
  const { env, credentials } = opts;
  const hosts: string[] = [];
  const addHost = (hostOrRef: string): void => {
    const host = hostOf(hostOrRef);
    if (host && !hosts.includes(host)) hosts.push(host);
  };
  for (const h of opts.hosts ?? []) addHost(h);
  let dir: string | undefined;
  let made: Promise<string> | undefined;

  const found = async (): Promise<{ host: string; found: FoundCredential | undefined }[]> =>
    Promise.all(hosts.map(async (host) => ({ host, found: await credentials.find(host) })));

  const userDir = userDockerConfigDir(env);
  const makeDir = async (): Promise<string> => {
    let root: string;
    if (opts.dir) {
      await mkdir(opts.dir, { recursive: true, mode: 0o700 });
      await chmod(opts.dir, 0o700);
      root = opts.dir;
    } else root = await mkdtemp(join(env.TMPDIR || tmpdir(), AUTH_DIR_PREFIX));
    await mkdir(join(root, OWN_DIR), { recursive: true, mode: 0o700 });
    await writeFile(join(root, OWN_DIR, USER_DIR_FILE), `${userDir}\n`, { mode: 0o600 });
    return root;
  };

  /** Writes config.json (and the helper, when needed) for the current host list; returns the child env. */
  const write = async (root: string): Promise<Record<string, string>> => {
    let user: DockerConfigJson = {};
    try {
      user = JSON.parse(await readFile(join(userDir, 'config.json'), 'utf8')) as DockerConfigJson;
      if (!user || typeof user !== 'object' || Array.isArray(user)) user = {};
    } catch {
      user = {};
    }
    // Every other entry of the user's directory stays reachable: cli-plugins, contexts, buildx, …
    let entries: string[] = [];
    try {
      entries = await readdir(userDir);
    } catch {
      // no config directory: nothing to link
    }
    const existing = new Set(await readdir(root));
    for (const name of entries) {
      if (name === 'config.json' || name === OWN_DIR || existing.has(name)) continue;
      await symlink(join(userDir, name), join(root, name));
    }
    const ours = (await found()).filter((f): f is { host: string; found: FoundCredential } => f.found?.source.kind === 'ours');
    const config: DockerConfigJson = { ...user };
    const helperEntries: Record<string, { Username: string; Secret: string }> = {};
    for (const { host, found: f } of ours) {
      const key = dockerAuthKey(host);
      if (credentials.helperFor(host)) {
        config.credHelpers = { ...(config.credHelpers ?? {}), [key]: HELPER_NAME };
        helperEntries[key] = 'identityToken' in f.credential ? { Username: '<token>', Secret: f.credential.identityToken } : { Username: f.credential.username, Secret: f.credential.password };
      } else {
        const entry = 'identityToken' in f.credential ? { identitytoken: f.credential.identityToken } : { auth: Buffer.from(`${f.credential.username}:${f.credential.password}`).toString('base64') };
        config.auths = { ...(config.auths ?? {}), [key]: entry };
      }
    }
    await writeFile(join(root, 'config.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    const childEnv: Record<string, string> = { DOCKER_CONFIG: root };
    // buildx's store and ours stay the user's, whatever the directory holds.
    const userEnv = { ...env, DOCKER_CONFIG: userDir };
    if (!env.BUILDX_CONFIG) childEnv.BUILDX_CONFIG = buildxStoreDir(userEnv);
    if (!env.BUILDX_BOOTSTRAP_STATE_DIR) childEnv.BUILDX_BOOTSTRAP_STATE_DIR = stateDir(userEnv);
    if (Object.keys(helperEntries).length) {
      const own = join(root, OWN_DIR);
      await mkdir(join(own, 'bin'), { recursive: true, mode: 0o700 });
      await writeFile(join(own, CREDENTIALS_FILE), JSON.stringify(helperEntries), { mode: 0o600 });
      await writeFile(join(own, 'helper.cjs'), HELPER_SOURCE, { mode: 0o600 });
      const node = opts.nodePath ?? process.execPath;
      const script = `#!/bin/sh\nexec ${shQuote(node)} ${shQuote(join(own, 'helper.cjs'))} "$@"\n`;
      await writeFile(join(own, 'bin', `docker-credential-${HELPER_NAME}`), script, { mode: 0o700 });
      const bin = join(own, 'bin');
      childEnv.PATH = [bin, ...(env.PATH ?? '').split(':').filter((p) => p && p !== bin)].join(':');
    }
    return childEnv;
  };

  let envFor: { key: string; env: Promise<Record<string, string>> } | undefined;
  return {
    addHost,
    credentials,
    get dir() {
      return dir;
    },
    async engineAuthHeader(host) {
      const f = await credentials.find(host);
      return f ? encodeRegistryAuth(f.credential, host) : undefined;
    },
    async childEnv() {
      // Nothing only we know: the child keeps the user's own config, untouched and unredirected.
      if (!opts.dir && !dir && !(await found()).some((f) => f.found?.source.kind === 'ours')) return {};
      made ??= makeDir().then((d) => (dir = d));
      const root = await made;
      const key = hosts.join('\n');
      if (!envFor || envFor.key !== key) envFor = { key, env: write(root) };
      return envFor.env;
    },
    async report() {
      return (await found()).map(({ host, found: f }) => ({ host, source: f?.source.label, handedOver: f?.source.kind === 'ours' }));
    },
    async dispose() {
      const d = dir ?? (made ? await made.catch(() => undefined) : undefined);
      if (d) await rm(d, { recursive: true, force: true });
      dir = undefined;
      made = undefined;
      envFor = undefined;
    },
  };
}

/** Single-quoted for /bin/sh. */
function shQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A name for a job's directory when the run gives none (`env` without CI_JOB_ID). */
export function randomJobId(): string {
  return randomBytes(6).toString('hex');
}
