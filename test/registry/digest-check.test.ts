// The streaming digest check that guards every blob copy (src/registry/digest-check.ts), as the
// Transform node:http bodies go through; the bare-socket carrier's use of it is in raw-http.test.ts.
import t from 'tap';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256Digest } from '../../src/docker/oci-image.js';
import { verifyingStream } from '../../src/registry/digest-check.js';

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
