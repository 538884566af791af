// Checking content against the digest it was asked for, as it streams: a blob read by digest is
// hashed on its way through and fails at its end when the bytes are not what was asked for. The
// last piece is held back until the check passes, so an upload fed by the stream never receives
// its final byte unverified: a failure aborts the upload before it can commit, whatever the
// receiving registry checks itself. One check, two carriers: `verifyingStream` (a Transform, for
// bodies node:http delivers) and ./raw-http.ts, which hashes in its read loop.
import { Transform, type TransformCallback } from 'node:stream';
import { crypto } from '../lazy.cjs';
import { digestHashName } from './reference.js';

export class DigestCheck {
  private readonly hash;
  private readonly algorithm: string;
  private readonly expected: string;
  private bytes = 0;

  constructor(
    readonly digest: string,
    private readonly size?: number,
  ) {
    const [algorithm = '', expected = ''] = digest.split(':');
    this.algorithm = algorithm;
    this.expected = expected;
    // An algorithm we cannot compute is hashed as sha256, which then cannot match: refused.
    this.hash = crypto().createHash(digestHashName(digest) ?? 'sha256');
  }

  /** Hashes `chunk`; an Error once more bytes came than the size says. */
  update(chunk: Buffer): Error | undefined {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    return this.size !== undefined && this.bytes > this.size ? new Error(`blob ${this.digest} is larger than its ${this.size} bytes`) : undefined;
  }

  /** After the last byte: an Error when the digest or the size is not the one asked for. */
  finish(): Error | undefined {
    const actual = this.hash.digest('hex');
    if (actual !== this.expected) return new Error(`blob ${this.digest} arrived with digest ${this.algorithm}:${actual}`);
    if (this.size !== undefined && this.bytes !== this.size) return new Error(`blob ${this.digest} arrived with ${this.bytes} bytes, expected ${this.size}`);
    return undefined;
  }
}

/** A pass-through stream applying a DigestCheck, its last chunk held back until the check passes. */
export function verifyingStream(digest: string, size?: number): Transform {
  const check = new DigestCheck(digest, size);
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      const error = check.update(chunk);
      if (error) return callback(error);
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush(callback: TransformCallback) {
      const error = check.finish();
      if (error) callback(error);
      else callback(null, held);
    },
  });
}
