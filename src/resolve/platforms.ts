// Per-platform digests of the resolved image, for the lockfile: the index's children and their
// config digests (the image IDs docker shows). Uses GET, which Docker Hub counts as a pull, so
// only `lock` calls it, never `resolve`.
import type { RegistryClient } from '../registry/types.js';
import type { PlatformPin } from './lockfile.js';
import { isAttestation, parseManifest, platformText } from '../docker/oci-image.js';

export interface PlatformPins {
  platforms?: Record<string, PlatformPin>;
  /** For a single-platform manifest: its config digest. */
  config?: string;
}

export async function fetchPlatformPins(client: RegistryClient, repository: string, digest: string, signal?: AbortSignal): Promise<PlatformPins> {
  const top = await client.getManifest(repository, digest, signal);
  const body = parseManifest(top.body, top.mediaType);
  if (body.kind === 'manifest') return { config: body.config.digest };
  const platforms: Record<string, PlatformPin> = {};
  for (const d of body.manifests) {
    // BuildKit attaches SBOM/provenance as `unknown/unknown` entries; they are not runnable images.
    if (!d.platform?.os || !d.platform.architecture || isAttestation(d)) continue;
    const child = parseManifest((await client.getManifest(repository, d.digest, signal)).body);
    if (child.kind === 'manifest') platforms[platformText(d.platform)] = { manifest: d.digest, config: child.config.digest };
  }
  return { platforms };
}
