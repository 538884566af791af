// The shared manifest module: parsing indexes and manifests, attestation entries. (The streaming
// digest check that guards every blob copy: test/registry/digest-check.test.ts.)
import t from 'tap';
import { isAttestation, MEDIA_TYPE, parseManifest } from '../../src/docker/oci-image.js';

const d = (n: number): string => `sha256:${String(n).repeat(64).slice(0, 64)}`;

t.test('an index lists its children; attestations are recognised; a manifest lists config then layers', async (t) => {
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: [
      { mediaType: MEDIA_TYPE.manifest, digest: d(1), size: 10, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MEDIA_TYPE.manifest, digest: d(2), size: 11, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
    ],
  }));
  const parsed = parseManifest(index);
  t.equal(parsed.kind, 'index');
  if (parsed.kind !== 'index') return;
  t.same(parsed.manifests.map((m) => [m.digest, isAttestation(m)]), [[d(1), false], [d(2), true]]);
  const manifest = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MEDIA_TYPE.config, digest: d(3), size: 5 }, layers: [{ mediaType: MEDIA_TYPE.layerGzip, digest: d(4), size: 6 }] })), MEDIA_TYPE.dockerManifest);
  t.match(manifest, { kind: 'manifest', mediaType: MEDIA_TYPE.dockerManifest, config: { digest: d(3) }, layers: [{ digest: d(4) }] });
  t.throws(() => parseManifest(Buffer.from('{"manifests":[{"digest":"sha256:short","size":1}]}')), /manifests\[0\]: not a valid descriptor/);
  t.throws(() => parseManifest(Buffer.from('not json')), /not JSON/);
  t.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}')), /unsupported manifest/);
});
