// A small tar reader (ustar, pax and GNU long names, GNU base-256 sizes): `readTar` streams an
// archive entry by entry (the OCI layout bridge, ./oci-layout.ts); `indexTar` walks a tar file's
// headers only, seeking past the bodies, so what an archive holds (its manifest.json, a config) is
// read without reading its layers (the engine-image cache check, ./image-archive.ts).
import { open, type FileHandle } from 'node:fs/promises';

export interface TarEntry {
  /** Path inside the archive (pax `path` / GNU long name applied). */
  name: string;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  /** Target of a symlink or hard link. */
  linkname: string;
}

/** Where the tar walk reads from: a stream (read in order) or a file (skips are seeks). */
interface TarSource {
  /** Bytes consumed so far. */
  position: number;
  read(n: number): Promise<Buffer | undefined>;
  stream(n: number): AsyncGenerator<Buffer>;
  skip(n: number): Promise<void>;
}

/** Pulls exact byte counts out of an async stream of chunks without concatenating large bodies. */
class ChunkReader implements TarSource {
  position = 0;
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.length += r.value.length;
      }
    }
  }

  /** Exactly n bytes; undefined at a clean end of input; throws when the input stops short. */
  async read(n: number): Promise<Buffer | undefined> {
    await this.fill(n);
    if (this.length === 0 && this.ended) return undefined;
    if (this.length < n) throw new Error('unexpected end of tar archive');
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    this.position += n;
    return out;
  }

  /** n bytes as a stream of chunks. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.length === 0) await this.fill(1);
      const head = this.chunks.shift();
      if (!head) throw new Error('unexpected end of tar archive');
      if (head.length <= left) {
        this.length -= head.length;
        left -= head.length;
        this.position += head.length;
        yield head;
      } else {
        this.chunks.unshift(head.subarray(left));
        this.length -= left;
        this.position += left;
        const out = head.subarray(0, left);
        left = 0;
        yield out;
      }
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }
}

function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function parseNumeric(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0]! & 0x80) {
    // GNU base-256 for sizes over 8 GiB: big-endian with the top bit as a marker.
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/[\0 ]+/g, ' ').trim();
  if (!text) return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`invalid number "${text}" in tar header`);
  return parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumeric(header, 148, 8);
  } catch {
    return false;
  }
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === stored;
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(body.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0) throw new Error('invalid pax header record');
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

const pad512 = (n: number): number => (512 - (n % 512)) % 512;

/**
 * Reads a tar stream entry by entry. `onEntry` may consume `body`; whatever it leaves is skipped.
 * Throws an Error for a damaged archive (bad checksum, truncated).
 */
export async function readTar(source: AsyncIterable<Buffer>, onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  await walkTar(new ChunkReader(source[Symbol.asyncIterator]()), onEntry);
}

async function walkTar(r: TarSource, onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  for (;;) {
    const header = await r.read(512);
    if (!header) return;
    if (header.every((b) => b === 0)) return; // end-of-archive marker
    if (!checksumOk(header)) throw new Error('not a tar archive (header checksum mismatch)');
    const typeflag = String.fromCharCode(header[156]!);
    let size = parseNumeric(header, 124, 12);
    if (pax.size !== undefined) size = Number(pax.size);
    const magic = header.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(header, 345, 155) : '';
    const rawName = cString(header, 0, 100);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      const body = (await r.read(size)) ?? Buffer.alloc(0);
      await r.skip(pad512(size));
      if (typeflag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (typeflag === 'L') longName = cString(body, 0, body.length);
      else if (typeflag === 'K') longLink = cString(body, 0, body.length);
      continue; // 'g' (global pax) carries nothing we use
    }
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
    const linkname = pax.linkpath ?? longLink ?? cString(header, 157, 100);
    const type: TarEntry['type'] =
      typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'hardlink' : 'other';
    const dataSize = type === 'file' || type === 'other' ? size : 0;
    pax = {};
    longName = undefined;
    longLink = undefined;
    let consumed = 0;
    const body = (async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of r.stream(dataSize)) {
        consumed += chunk.length;
        yield chunk;
      }
    })();
    await onEntry({ name, type, size: dataSize, linkname, offset: r.position }, body);
    if (consumed < dataSize) await r.skip(dataSize - consumed);
    await r.skip(pad512(dataSize));
  }
}

/** A tar file read by offset: skipping a body is a seek, not a read. */
class FileSource implements TarSource {
  position = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  async read(n: number): Promise<Buffer | undefined> {
    if (this.position >= this.size) return undefined;
    const buf = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, this.position);
    if (bytesRead < n) throw new Error('unexpected end of tar archive');
    this.position += n;
    return buf;
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    const buf = await this.read(n);
    if (buf) yield buf;
  }

  async skip(n: number): Promise<void> {
    if (this.position + n > this.size) throw new Error('unexpected end of tar archive');
    this.position += n;
  }
}

/** The entries of a tar file, headers only (bodies are skipped by seeking). */
export async function indexTar(file: string): Promise<TarEntry[]> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const entries: TarEntry[] = [];
    await walkTar(new FileSource(fh, size), async (entry) => {
      entries.push(entry);
    });
    return entries;
  } finally {
    await fh.close();
  }
}

/** The data of one entry found by indexTar (small files: a manifest, a config). */
export async function readTarEntry(file: string, entry: Pick<TarEntry, 'offset' | 'size'>): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(entry.size);
    const { bytesRead } = await fh.read(buf, 0, entry.size, entry.offset);
    if (bytesRead < entry.size) throw new Error('unexpected end of tar archive');
    return buf;
  } finally {
    await fh.close();
  }
}
