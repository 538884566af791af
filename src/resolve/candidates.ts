// Where the engine image can come from, in priority order (product.md, Resolution rules): each
// mirror whose `for` is the engine image's registry, in configured order, then the registry
// itself unless `upstream: false`.
import type { Config, MirrorConfig } from '../config/schema.js';
import { DOCKER_HUB, parseImageRef, registryApiHost } from '../registry/reference.js';
import type { RegistryEndpoint } from '../registry/types.js';

export interface Candidate {
  /** `host[/path]/repository`, as it appears in the resolved reference; used in every message. */
  label: string;
  /** `host[:port]` as written in image references (`docker.io` for Docker Hub). */
  registry: string;
  /** Repository inside that registry, including a mirror's path prefix. */
  repository: string;
  /** How to connect: API host (`registry-1.docker.io` for docker.io), http/insecure/ca. */
  endpoint: RegistryEndpoint;
  kind: 'mirror' | 'upstream';
  /** Where a mirror came from (`config`, `gitlab-dependency-proxy`). */
  origin: string;
}

/** The engine image repository, normalised: `{registry, repository}`. */
export function engineImage(config: Pick<Config, 'buildkit'>): { registry: string; repository: string } {
  const ref = parseImageRef(config.buildkit.image);
  return { registry: ref.registry, repository: ref.repository };
}

export function engineCandidates(config: Pick<Config, 'buildkit' | 'mirrors' | 'upstream' | 'registries'>): Candidate[] {
  return candidatesFor(config, engineImage(config));
}

/** Where any image can come from: its registry's mirrors in configured order, then the registry unless `upstream: false`. */
export function candidatesFor(config: Pick<Config, 'mirrors' | 'upstream' | 'registries'>, image: { registry: string; repository: string }): Candidate[] {
  const out: Candidate[] = config.mirrors.filter((m) => m.for === image.registry).map((m) => mirrorCandidate(m, image));
  if (config.upstream) out.push(upstreamCandidate(image, config.registries));
  return out;
}

/** The registry itself as a candidate, with its `registries.<host>` settings (http, insecure, ca). */
export function upstreamCandidate(image: { registry: string; repository: string }, registries: Config['registries']): Candidate {
  const settings = registries[image.registry];
  const endpoint: RegistryEndpoint = { host: registryApiHost(image.registry) };
  if (settings?.http) endpoint.http = true;
  if (settings?.insecure) endpoint.insecure = true;
  // RegistryEndpoint takes one CA file; `registries.<host>.ca` is a list for buildkitd.toml.
  if (settings?.ca?.[0]) endpoint.ca = settings.ca[0];
  return {
    label: `${image.registry}/${image.repository}`,
    registry: image.registry,
    repository: image.repository,
    endpoint,
    kind: 'upstream',
    origin: 'upstream',
  };
}

/** A mirror as a candidate for `image`: `host[/path]/<repository>` (the resolver's mapping). */
export function mirrorCandidate(m: MirrorConfig, image: { registry: string; repository: string }): Candidate {
  let repository = image.repository;
  // GitLab's Dependency Proxy is addressed as `<prefix>/alpine`, without Docker Hub's `library/`
  // (GL doc/user/packages/dependency_proxy/_index.md; facts §9). Harbor/Nexus proxies keep it.
  if (m.origin === 'gitlab-dependency-proxy' && image.registry === DOCKER_HUB && repository.startsWith('library/')) {
    repository = repository.slice('library/'.length);
  }
  if (m.path) repository = `${m.path}/${repository}`;
  const endpoint: RegistryEndpoint = { host: m.host };
  if (m.http) endpoint.http = true;
  if (m.insecure) endpoint.insecure = true;
  if (m.ca) endpoint.ca = m.ca;
  return {
    label: `${m.host}/${repository}`,
    registry: m.host,
    repository,
    endpoint,
    kind: 'mirror',
    origin: m.origin ?? 'config',
  };
}
