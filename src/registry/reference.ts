// Image references as docker and BuildKit understand them (distribution's reference grammar):
// `[registry[:port]/]path/name[:tag][@digest]`, with Docker Hub's `docker.io` default and its
// `library/` prefix for single-component names.

export const DOCKER_HUB = 'docker.io';
/** The host docker.io's API really answers on. */
export const DOCKER_HUB_API = 'registry-1.docker.io';
/** The key docker's config.json uses for Docker Hub credentials. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface ImageRef {
  /** `host[:port]`, normalised (`docker.io` for Docker Hub). */
  registry: string;
  /** Repository path inside the registry, e.g. `moby/buildkit`, `library/alpine`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export function isValidDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

const DIGEST_HASHES: Record<string, string> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** The node:crypto hash of a digest's algorithm (`sha256:…` → `sha256`); undefined for one we cannot compute. */
export function digestHashName(digest: string): string | undefined {
  return DIGEST_HASHES[digest.slice(0, digest.indexOf(':'))];
}

/** `host`, `host:port`, `[::1]:port`; no scheme, no path. */
export function isValidRegistryHost(host: string): boolean {
  let rest = host;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) return false;
    const inner = rest.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(inner)) return false;
    rest = rest.slice(end + 1);
    return rest === '' || /^:[0-9]{1,5}$/.test(rest);
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^[0-9]{1,5}$/.test(rest.slice(colon + 1))) return false;
    rest = rest.slice(0, colon);
  }
  return rest.length > 0 && rest.split('.').every((label) => HOST_LABEL.test(label));
}

/** A repository path prefix such as `dockerhub-proxy` or `group/dependency_proxy/containers`. */
export function isValidRepositoryPath(path: string): boolean {
  return path.split('/').every((c) => COMPONENT.test(c));
}

function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[') || first !== first.toLowerCase();
}

/** Parses and normalises an image reference. Throws an Error whose message says what is wrong. */
export function parseImageRef(input: string): ImageRef {
  const text = input.trim();
  if (!text) throw new Error('empty image reference');
  if (/^[a-z]+:\/\//i.test(text)) throw new Error(`image reference "${input}" must not have a scheme`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) throw new Error(`invalid digest "${digest}" in "${input}"`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!isValidTag(tag)) throw new Error(`invalid tag "${tag}" in "${input}"`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && looksLikeRegistry(parts[0]!)) {
    registry = parts.shift()!;
    if (!isValidRegistryHost(registry)) throw new Error(`invalid registry "${registry}" in "${input}"`);
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((c) => !COMPONENT.test(c))) {
    throw new Error(`invalid repository name "${parts.join('/')}" in "${input}" (lower-case letters, digits and . _ - only)`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const ref: ImageRef = { registry, repository: parts.join('/') };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository[:tag][@digest]`, always with the registry spelled out. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Host to open connections to for a registry name. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** The scheme we speak to a registry endpoint (see src/registry/client.ts for why). */
export function endpointScheme(endpoint: { host: string; http?: boolean; insecure?: boolean; ca?: string }): 'http' | 'https' {
  if (endpoint.http) return 'http';
  if (isLoopbackHost(endpoint.host) && !endpoint.ca && !endpoint.insecure) return 'http';
  return 'https';
}

/** Loopback registries are the only ones spoken to over plain HTTP without `http: true`. */
export function isLoopbackHost(host: string): boolean {
  const name = hostWithoutPort(host);
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}
