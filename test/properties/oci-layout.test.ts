// Property tests of `docker save` archive reading and the OCI layout written from it
// (src/docker/oci-layout.ts). Generated archives — valid ones, and ones with hostile manifests,
// configs, links, sizes and bytes — end in a layout or a one-line DockerError (exit 1) naming
// `docker save`; the layouts written from a handful of valid ones are read by `skopeo inspect`.
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { convertDockerArchive } from '../../src/docker/oci-layout.js';
import { requireBinaries } from '../helpers/integration.js';
import { bytesAsText, endsWellAsync, hostileString, runs } from '../helpers/properties.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Entry {
  name: string;
  type?: '0' | '2' | '5' | '1';
  data?: Buffer;
  linkname?: string;
  /** Size written in the header when it should lie. */
  declaredSize?: number;
}

/** A ustar archive, written by hand so a header can lie (tar(1) would not). */
function tar(entries: Entry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(512);
    h.write(e.name.slice(0, 100), 0, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${(e.declaredSize ?? data.length).toString(8).padStart(11, '0').slice(-11)}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type ?? '0', 156);
    h.write((e.linkname ?? '').slice(0, 100), 157, 'utf8');
    h.write('ustar\0' + '00', 257, 'binary');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    out.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

interface Image {
  layers: Buffer[];
  arch: string;
}

/** The legacy `docker save` layout (what dockerd 20.10 writes): manifest.json, config, layer tars. */
function dockerSave(image: Image, repoTag: string, extra: Entry[] = [], edit: (m: Record<string, unknown>[], c: Record<string, unknown>) => void = () => undefined): Buffer {
  const layerIds = image.layers.map((l) => sha(l));
  const config: Record<string, unknown> = { architecture: image.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: layerIds.map((id) => `sha256:${id}`) } };
  const manifest: Record<string, unknown>[] = [{ Config: 'CONFIG.json', RepoTags: [repoTag], Layers: layerIds.map((id) => `${id}/layer.tar`) }];
  edit(manifest, config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configName = `${sha(configBytes)}.json`;
  for (const m of manifest) if (m !== null && typeof m === 'object' && m.Config === 'CONFIG.json') m.Config = configName;
  return tar([
    { name: configName, data: configBytes },
    ...image.layers.flatMap((l, i): Entry[] => [{ name: `${layerIds[i]}/`, type: '5' }, { name: `${layerIds[i]}/layer.tar`, data: l }]),
    ...extra,
    { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) },
  ]);
}

const layer = fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,12}$/), data: fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)) }), { minLength: 1, maxLength: 3 }).map((files) => tar(files.map((f) => ({ name: f.name, data: f.data }))));
const image: fc.Arbitrary<Image> = fc.record({ layers: fc.array(layer, { minLength: 1, maxLength: 3 }), arch: fc.constantFrom('amd64', 'arm64', '386') });

let scratchN = 0;
async function convert(root: string, archive: Buffer) {
  const n = scratchN++;
  const file = join(root, `a${n}.tar`);
  const work = join(root, `w${n}`);
  mkdirSync(work, { recursive: true });
  writeFileSync(file, archive);
  return await convertDockerArchive(file, join(root, `layout${n}`), 'img', 'bxb.test/app:1', work);
}

const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(null, {}, [], [{}], [{ Config: 1, Layers: 'x' }], [{ Config: 'CONFIG.json', Layers: [null, 7] }]));

t.test('hostile docker save archives end in a layout or a DockerError naming docker save', async (t) => {
  const root = t.testdir();
  const mutation = fc.oneof(
    // manifest.json and the config replaced by anything JSON
    fc.record({ kind: fc.constant('manifest' as const), value: jsonish }),
    fc.record({ kind: fc.constant('config' as const), value: jsonish }),
    fc.record({ kind: fc.constant('diff' as const), value: fc.array(fc.oneof(hostileString(10), fc.constant(null)), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('platform' as const), value: fc.tuple(fc.oneof(jsonish, hostileString(10)), fc.oneof(jsonish, hostileString(10))) }),
    // paths that climb out, links that loop
    fc.record({ kind: fc.constant('layers' as const), value: fc.array(fc.constantFrom('../../etc/passwd', '/abs/layer.tar', 'loop-a', 'missing.tar', './x/../manifest.json'), { minLength: 1, maxLength: 3 }) }),
  );
  await fc.assert(
    fc.asyncProperty(image, mutation, async (img, m) => {
      const extra: Entry[] = [
        { name: 'loop-a', type: '2', linkname: 'loop-b' },
        { name: 'loop-b', type: '2', linkname: 'loop-a' },
      ];
      const archive = dockerSave(img, 'bxb.test/app:1', extra, (manifest, config) => {
        if (m.kind === 'manifest') manifest.splice(0, manifest.length, ...(Array.isArray(m.value) ? (m.value as Record<string, unknown>[]) : [m.value as Record<string, unknown>]));
        if (m.kind === 'config') Object.assign(config, { rootfs: m.value });
        if (m.kind === 'diff') config.rootfs = { diff_ids: m.value };
        if (m.kind === 'layers') manifest[0]!.Layers = m.value;
        if (m.kind === 'platform') Object.assign(config, { os: m.value[0], architecture: m.value[1] });
      });
      await endsWellAsync(() => convert(root, archive), 1, /^docker save bxb\.test\/app:1 produced an archive we cannot read: /);
    }),
    runs(150),
  );
});

t.test('random bytes, truncations and lying tar sizes end in a DockerError, with memory bounded', async (t) => {
  const root = t.testdir();
  const valid = dockerSave({ layers: [tar([{ name: 'f', data: Buffer.from('hello') }])], arch: 'amd64' }, 'bxb.test/app:1');
  const broken = fc.oneof(
    bytesAsText(2048).map((s) => Buffer.from(s)),
    fc.nat(valid.length).map((n) => valid.subarray(0, n)),
    fc.tuple(fc.nat(valid.length - 1), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, bytes]) => {
      const copy = Buffer.from(valid);
      copy.set(bytes.subarray(0, copy.length - at), at);
      return copy;
    }),
    // a header declaring 8 GiB, or a huge pax record, followed by almost nothing
    fc.constantFrom(tar([{ name: 'manifest.json', data: Buffer.from('[]'), declaredSize: 0o77777777777 }]).subarray(0, 1536), tar([{ name: 'PaxHeaders/x', type: '0', data: Buffer.from('99999999999 path=x\n') }])),
  );
  await fc.assert(fc.asyncProperty(broken, async (archive) => void (await endsWellAsync(() => convert(root, archive), 1, /^docker save bxb\.test\/app:1 produced an archive we cannot read: /))), runs(150));
});

t.test('the OCI layout written from generated docker save archives is read by skopeo inspect', async (t) => {
  if (!requireBinaries(t, ['skopeo'])) return;
  const root = mkdtempSync(join(t.testdir(), 'skopeo-'));
  const samples = fc.sample(image, { numRuns: 4, seed: 12 });
  for (const [i, img] of samples.entries()) {
    const result = await convert(root, dockerSave(img, 'bxb.test/app:1'));
    const out = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${result.dir}:${result.tag}`], { encoding: 'utf8' })) as { layers: { digest: string }[] };
    t.same(out.layers.map((l) => l.digest), img.layers.map((l) => `sha256:${sha(l)}`), `sample ${i}: skopeo reads every layer, in order`);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${result.dir}:${result.tag}`], { encoding: 'utf8' })) as { Architecture: string; Digest: string };
    t.equal(info.Architecture, img.arch, `sample ${i}: architecture`);
    t.equal(info.Digest, result.digest, `sample ${i}: the digest we report is the one skopeo computes`);
  }
});
