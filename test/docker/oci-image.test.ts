// The shared manifest module: parsing indexes and manifests, attestation entries, and the
// streaming digest check that guards every blob copy.
import t from 'tap';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { isAttestation, MEDIA_TYPE, parseManifest, sha256Digest } from '../../src/docker/oci-image.js';
import { verifyingStream } from '../../src/registry/digest-check.js';

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

const collect = async (chunks: Buffer[], digest: string, size?: number): Promise<Buffer> => {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), verifyingStream(digest, size), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
};

t.test('verifyingStream passes the bytes through and fails on a wrong digest or size', async (t) => {
  const data = [Buffer.from('hello '), Buffer.from('world')];
  const digest = sha256Digest(Buffer.concat(data));
  t.equal((await collect(data, digest, 11)).toString(), 'hello world');
  await t.rejects(collect(data, sha256Digest('other')), /arrived with digest sha256:/);
  await t.rejects(collect(data, digest, 5), /larger than its 5 bytes/);
  await t.rejects(collect(data, digest, 20), /arrived with 11 bytes, expected 20/);
});

t.test('verifyingStream holds the last chunk back until the digest checks out (an upload never gets its final byte unverified)', async (t) => {
  const data = [Buffer.from('hello '), Buffer.from('world')];
  const out: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) });
  await t.rejects(pipeline(Readable.from(data), verifyingStream(sha256Digest('other'), 11), sink), /arrived with digest sha256:/);
  t.equal(Buffer.concat(out).toString(), 'hello ', 'only the bytes before the last chunk went on');
});
