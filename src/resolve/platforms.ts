// Per-platform digests of the resolved image, for the lockfile: the index's children and their
// config digests (the image IDs docker shows). Uses GET, which Docker Hub counts as a pull, so
// only `lock` calls it, never `resolve`.
import type { RegistryClient } from '../registry/types.js';
import type { PlatformPin } from './lockfile.js';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

interface Descriptor {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

interface ManifestBody {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: { digest?: string };
}

export interface PlatformPins {
  platforms?: Record<string, PlatformPin>;
  /** For a single-platform manifest: its config digest. */
  config?: string;
}

function parse(body: Buffer): ManifestBody {
  const value: unknown = JSON.parse(body.toString('utf8'));
  if (value === null || typeof value !== 'object') throw new Error('manifest is not a JSON object');
  return value as ManifestBody;
}

export async function fetchPlatformPins(client: RegistryClient, repository: string, digest: string, signal?: AbortSignal): Promise<PlatformPins> {
  const top = await client.getManifest(repository, digest, signal);
  const body = parse(top.body);
  const mediaType = top.mediaType || body.mediaType || '';
  if (!INDEX_TYPES.has(mediaType) && !Array.isArray(body.manifests)) {
    return body.config?.digest ? { config: body.config.digest } : {};
  }
  const platforms: Record<string, PlatformPin> = {};
  for (const d of body.manifests ?? []) {
    const p = d.platform;
    // BuildKit attaches SBOM/provenance as `unknown/unknown` entries
    // (annotation vnd.docker.reference.type=attestation-manifest); they are not runnable images.
    if (!d.digest || !p?.os || !p.architecture || p.os === 'unknown' || d.annotations?.['vnd.docker.reference.type']) continue;
    const key = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
    const child = parse((await client.getManifest(repository, d.digest, signal)).body);
    if (child.config?.digest) platforms[key] = { manifest: d.digest, config: child.config.digest };
  }
  return { platforms };
}
