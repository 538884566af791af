// Image manifests as data: media types, descriptors, parsing a manifest or index and walking its
// children. Shared by the local-image bridge (./oci-layout.ts), the lockfile's platform pins
// (src/resolve/platforms.ts) and `mirror` (src/mirror/). Pure: no I/O here. (Checking streamed
// blobs against their digest is the registry client's: src/registry/digest-check.ts.)
import { createHash } from 'node:crypto';

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** BuildKit marks SBOM/provenance entries of an index this way (value `attestation-manifest`). */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';

const INDEX_TYPES = new Set<string>([MEDIA_TYPE.index, MEDIA_TYPE.dockerList]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A parsed manifest: an index (children are manifests) or an image manifest (config + layers). */
export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string; config: Descriptor; layers: Descriptor[] };

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d.digest) || typeof d.size !== 'number' || d.size < 0) {
    throw new Error(`${where}: not a valid descriptor (sha256 digest and size)`);
  }
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '' } as Descriptor;
}

/**
 * Parses a manifest body; `mediaType` is what the registry said (Content-Type), else the body's
 * own. Throws an Error naming what is wrong.
 */
export function parseManifest(body: Buffer, mediaType = ''): ParsedManifest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error('manifest is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('manifest is not a JSON object');
  const m = value as { mediaType?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  const type = mediaType || (typeof m.mediaType === 'string' ? m.mediaType : '');
  if (isIndexMediaType(type) || (!type && Array.isArray(m.manifests))) {
    if (!Array.isArray(m.manifests)) throw new Error('index has no manifests list');
    return { kind: 'index', mediaType: type || MEDIA_TYPE.index, manifests: m.manifests.map((d, i) => descriptor(d, `manifests[${i}]`)) };
  }
  if (m.config === undefined || !Array.isArray(m.layers)) throw new Error(`unsupported manifest (${type || 'no media type'}): want an image manifest or index`);
  return {
    kind: 'manifest',
    mediaType: type || MEDIA_TYPE.manifest,
    config: descriptor(m.config, 'config'),
    layers: m.layers.map((d, i) => descriptor(d, `layers[${i}]`)),
  };
}

/** An index entry for an attestation (SBOM/provenance), not a runnable platform image. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === 'attestation-manifest' || d.platform?.os === 'unknown';
}

export function platformText(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The blobs an image manifest references: config first, then layers (foreign layers included). */
export function manifestBlobs(m: Extract<ParsedManifest, { kind: 'manifest' }>): Descriptor[] {
  return [m.config, ...m.layers];
}
