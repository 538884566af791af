// What the emulated `build` checks of its `--build-context NAME=oci-layout://DIR:TAG` arguments while
// it runs (the real buildx reads the layout from the client then: BX util/ocilayout/parse.go,
// BK client/ociindex/ociindex.go). The result goes into the call log, so a test can assert that
// the layout existed, was valid and held the tag at the moment the build ran, not only that the
// flag was passed.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const REF_NAME = 'org.opencontainers.image.ref.name';
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

/** `--build-context NAME=VALUE` and `--build-context=NAME=VALUE` values of build argv (after `build`). */
export function buildContextFlags(args) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--build-context' && i + 1 < args.length) out.push(args[++i]);
    else if (a.startsWith('--build-context=')) out.push(a.slice('--build-context='.length));
  }
  return out;
}

/**
 * One entry per oci-layout context: `{ name, dir, tag, valid, byTag, error? }`; `valid` means the
 * directory is an OCI layout in which buildx finds the image — the manifest index.json names TAG,
 * else its only manifest (BX build/build.go: lookup by name, then "lookup single"; `byTag` says
 * which) — and every blob it reaches (index, manifests, config, layers) is present with its
 * digest and size. Held to real buildx by test/e2e/real-conformance.test.ts.
 */
export function checkOciLayoutContexts(args) {
  const results = [];
  for (const value of buildContextFlags(args)) {
    const eq = value.indexOf('=');
    if (eq <= 0) continue;
    const name = value.slice(0, eq);
    const source = value.slice(eq + 1);
    if (!source.startsWith('oci-layout://')) continue;
    const ref = source.slice('oci-layout://'.length);
    // BX util/ocilayout: `path[:tag][@digest]`, the tag is after the last ':' past the last '/'.
    const at = ref.lastIndexOf('@');
    const noDigest = at > ref.lastIndexOf('/') ? ref.slice(0, at) : ref;
    const colon = noDigest.lastIndexOf(':');
    const dir = colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
    const tag = colon > noDigest.lastIndexOf('/') ? noDigest.slice(colon + 1) : 'latest';
    try {
      const byTag = checkLayout(dir, tag);
      results.push({ name, dir, tag, valid: true, byTag });
    } catch (err) {
      results.push({ name, dir, tag, valid: false, byTag: false, error: String(err?.message ?? err) });
    }
  }
  return results;
}

function checkLayout(dir, tag) {
  const marker = JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'));
  if (marker.imageLayoutVersion !== '1.0.0') throw new Error(`oci-layout: imageLayoutVersion ${marker.imageLayoutVersion}`);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const manifests = index.manifests ?? [];
  const named = manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  const entry = named ?? (manifests.length === 1 ? manifests[0] : undefined);
  if (!entry) throw new Error(`index.json names no manifest with ${REF_NAME}=${tag} and holds ${manifests.length} manifests`);
  checkDescriptor(dir, entry, 0);
  return named !== undefined;
}

function checkDescriptor(dir, desc, depth) {
  if (depth > 4) throw new Error('index nesting too deep');
  const body = blob(dir, desc);
  const isIndex = INDEX_TYPES.has(desc.mediaType);
  const isManifest = /manifest/.test(desc.mediaType ?? '') && !isIndex;
  if (!isIndex && !isManifest) return;
  const doc = JSON.parse(body.toString('utf8'));
  if (isIndex) {
    if (!doc.manifests?.length) throw new Error(`${desc.digest}: an index with no manifests`);
    for (const m of doc.manifests) checkDescriptor(dir, m, depth + 1);
    return;
  }
  if (!doc.config) throw new Error(`${desc.digest}: a manifest with no config`);
  blob(dir, doc.config);
  for (const layer of doc.layers ?? []) blob(dir, layer);
}

function blobPath(dir, desc) {
  const m = /^sha256:([0-9a-f]{64})$/.exec(desc.digest ?? '');
  if (!m) throw new Error(`unsupported digest ${desc.digest}`);
  return join(dir, 'blobs', 'sha256', m[1]);
}

function blob(dir, desc) {
  const body = readFileSync(blobPath(dir, desc));
  verify(desc, body.length, createHash('sha256').update(body).digest('hex'));
  return body;
}

function verify(desc, size, hex) {
  if (`sha256:${hex}` !== desc.digest) throw new Error(`blob ${desc.digest} has digest sha256:${hex}`);
  if (typeof desc.size === 'number' && desc.size !== size) throw new Error(`blob ${desc.digest} has size ${size}, descriptor says ${desc.size}`);
}
