// Which configured registry serves an image, asked the way BuildKit will ask: each mirror listed
// for the image's registry, in the order of the generated buildkitd.toml (`mirrors:`, then the
// `registries.<host>.mirrors` entries), under BuildKit's mapping `host[/path]/<repository>` (BuildKit
// keeps Docker Hub's `library/`, also on GitLab's Dependency Proxy — unlike the engine resolve's
// mapping), with the credentials BuildKit will have. One HEAD per image and mirror, all at once,
// each bounded by the client's timeout (`timeouts.probe`). The upstream registry itself is not
// asked: the point is to know, before the build, whether BuildKit will have to go there.
//
// findServingRegistry is the one function for "which configured registry serves this image ref at
// which digest" — the build pre-flight and the local-only decision both use it.
import type { Config } from '../config/schema.js';
import { splitMirror } from '../config/schema.js';
import { parseImageRef } from '../registry/reference.js';
import { RegistryRequestError, type RegistryClient, type RegistryEndpoint } from '../registry/types.js';

export interface MirrorAnswer {
  /** `host[/path]/<repository>` as BuildKit asks it. */
  label: string;
  /** The mirror's host (`host[:port]`), as BuildKit asks for credentials. */
  host: string;
  outcome: 'served' | 'failed';
  digest?: string;
  /** One line, no secret: the registry's answer (`authentication failed (401) …`, `not found`). */
  error?: string;
  status?: number;
}

export interface ServingResult {
  /** The normalised reference: `docker.io/library/alpine:3.20`. */
  ref: string;
  /** The registry the reference names (`docker.io`), where BuildKit goes when no mirror serves. */
  registry: string;
  /** The first mirror in BuildKit's order that serves it; undefined: none does. */
  servedBy: MirrorAnswer | undefined;
  /** Every mirror's answer, in BuildKit's order. */
  answers: MirrorAnswer[];
}

export interface BuildMirror {
  host: string;
  path: string;
  endpoint: RegistryEndpoint;
}

/** The mirrors BuildKit tries for `registry`, in buildkitd.toml order. */
export function buildMirrorsFor(config: Pick<Config, 'mirrors' | 'registries'>, registry: string): BuildMirror[] {
  const out: BuildMirror[] = [];
  for (const m of config.mirrors.filter((x) => x.for === registry)) {
    // BuildKit reads a mirror's TLS settings from the mirror's own section, which `registries:`
    // fills too (src/buildkitd/render.ts): so do we.
    const own = config.registries[m.host];
    const endpoint: RegistryEndpoint = { host: m.host };
    if (m.http || own?.http) endpoint.http = true;
    if (m.insecure || own?.insecure) endpoint.insecure = true;
    if (m.ca || own?.ca?.[0]) endpoint.ca = m.ca || own!.ca![0]!;
    out.push({ host: m.host, path: m.path.replace(/^\/+|\/+$/g, ''), endpoint });
  }
  for (const spec of config.registries[registry]?.mirrors ?? []) {
    const { host, path } = splitMirror(spec) as { host: string; path?: string };
    const settings = config.registries[host];
    const endpoint: RegistryEndpoint = { host };
    if (settings?.http) endpoint.http = true;
    if (settings?.insecure) endpoint.insecure = true;
    if (settings?.ca?.[0]) endpoint.ca = settings.ca[0];
    if (!out.some((o) => o.host === host && o.path === (path ?? ''))) out.push({ host, path: path ?? '', endpoint });
  }
  return out;
}

function describe(error: unknown): { error: string; status?: number } {
  if (error instanceof RegistryRequestError) return { error: error.message, ...(error.status !== undefined ? { status: error.status } : {}) };
  return { error: (error as Error).message?.split('\n')[0] ?? String(error) };
}

/**
 * Which configured registry serves `ref`, at which digest: a HEAD of the manifest on each mirror
 * BuildKit would try, concurrently; the first in order that answers wins. `clientFor` gives a
 * client with the credentials BuildKit will have for that host.
 */
export async function findServingRegistry(
  ref: string,
  config: Pick<Config, 'mirrors' | 'registries'>,
  clientFor: (endpoint: RegistryEndpoint) => RegistryClient,
  signal?: AbortSignal,
): Promise<ServingResult> {
  const image = parseImageRef(ref);
  const reference = image.digest ?? image.tag ?? 'latest';
  const mirrors = buildMirrorsFor(config, image.registry);
  const answers = await Promise.all(
    mirrors.map(async (m): Promise<MirrorAnswer> => {
      const repository = m.path ? `${m.path}/${image.repository}` : image.repository;
      const label = `${m.host}/${repository}`;
      try {
        const info = await clientFor(m.endpoint).headManifest(repository, reference, signal);
        return { label, host: m.host, outcome: 'served', digest: info.digest };
      } catch (error) {
        const d = describe(error);
        // The client names the host first; the label already does.
        return { label, host: m.host, outcome: 'failed', ...d, error: d.error.startsWith(`${m.host}: `) ? d.error.slice(m.host.length + 2) : d.error };
      }
    }),
  );
  const normalised = `${image.registry}/${image.repository}${image.tag ? `:${image.tag}` : image.digest ? '' : ':latest'}${image.digest ? `@${image.digest}` : ''}`;
  return { ref: normalised, registry: image.registry, servedBy: answers.find((a) => a.outcome === 'served'), answers };
}
