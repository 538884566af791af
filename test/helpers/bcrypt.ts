// bcrypt ($2b$) for htpasswd files: distribution 2.8's htpasswd auth accepts bcrypt only
// (DIST@v2.8.2 registry/auth/htpasswd/htpasswd.go uses bcrypt.CompareHashAndPassword), the
// machine has no `htpasswd` (apache2-utils is not a CI package), `openssl passwd` has no bcrypt
// and node has no bcrypt built in. So: Blowfish's key schedule per Provos & Mazières (1999).
// The Blowfish initial state is the fractional hex digits of pi; they are computed here with
// BigInt (Machin's formula) instead of pasting 4 KiB of constants.
import { randomBytes } from 'node:crypto';

const WORDS = 18 + 4 * 256;
let initialState: Uint32Array | undefined;

function piWords(): Uint32Array {
  if (initialState) return initialState;
  const bits = WORDS * 32 + 64; // 64 guard bits against truncation error in the series
  const one = 1n << BigInt(bits);
  const arctanInverse = (x: bigint): bigint => {
    const x2 = x * x;
    let power = one / x;
    let sum = 0n;
    for (let k = 0n; power !== 0n; k += 1n) {
      const term = power / (2n * k + 1n);
      sum = k % 2n === 0n ? sum + term : sum - term;
      power /= x2;
    }
    return sum;
  };
  const pi = 4n * (4n * arctanInverse(5n) - arctanInverse(239n));
  const fraction = (pi - 3n * one) >> 64n;
  const hex = fraction.toString(16).padStart(WORDS * 8, '0');
  const words = new Uint32Array(WORDS);
  for (let i = 0; i < WORDS; i++) words[i] = Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  initialState = words;
  return words;
}

class Blowfish {
  readonly p: Uint32Array;
  readonly s: Uint32Array;

  constructor() {
    const init = piWords();
    this.p = init.slice(0, 18);
    this.s = init.slice(18);
  }

  private f(x: number): number {
    const s = this.s;
    return ((((s[x >>> 24]! + s[256 + ((x >>> 16) & 0xff)]!) >>> 0) ^ s[512 + ((x >>> 8) & 0xff)]!) + s[768 + (x & 0xff)]!) >>> 0;
  }

  encipher(block: Uint32Array, offset: number): void {
    let l = block[offset]!;
    let r = block[offset + 1]!;
    for (let i = 0; i < 16; i += 2) {
      l = (l ^ this.p[i]!) >>> 0;
      r = (r ^ this.f(l)) >>> 0;
      r = (r ^ this.p[i + 1]!) >>> 0;
      l = (l ^ this.f(r)) >>> 0;
    }
    block[offset] = (r ^ this.p[17]!) >>> 0;
    block[offset + 1] = (l ^ this.p[16]!) >>> 0;
  }

  /** Blowfish key expansion, salted when `salt` is given (bcrypt's ExpandKey / Expand0State). */
  expand(key: Uint8Array, salt?: Uint8Array): void {
    const keyPos = { at: 0 };
    for (let i = 0; i < 18; i++) this.p[i] = (this.p[i]! ^ streamWord(key, keyPos)) >>> 0;
    const block = new Uint32Array(2);
    const saltPos = { at: 0 };
    const fill = (target: Uint32Array): void => {
      for (let i = 0; i < target.length; i += 2) {
        if (salt) {
          block[0] = (block[0]! ^ streamWord(salt, saltPos)) >>> 0;
          block[1] = (block[1]! ^ streamWord(salt, saltPos)) >>> 0;
        }
        this.encipher(block, 0);
        target[i] = block[0]!;
        target[i + 1] = block[1]!;
      }
    };
    fill(this.p);
    fill(this.s);
  }
}

function streamWord(data: Uint8Array, pos: { at: number }): number {
  let word = 0;
  for (let i = 0; i < 4; i++) {
    word = ((word << 8) | data[pos.at]!) >>> 0;
    pos.at = (pos.at + 1) % data.length;
  }
  return word;
}

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BCRYPT = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** bcrypt's base64: the standard bit layout with its own alphabet and no padding. */
function encode64(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('base64')
    .replace(/=+$/, '')
    .replace(/[A-Za-z0-9+/]/g, (c) => BCRYPT[STANDARD.indexOf(c)]!);
}

function decode64(text: string, length: number): Buffer {
  const standard = text.replace(/./g, (c) => STANDARD[BCRYPT.indexOf(c)] ?? '');
  return Buffer.from(standard, 'base64').subarray(0, length);
}

/** A `$2b$` bcrypt hash of `password`. Cost 4 is the minimum Go's bcrypt accepts (fast tests). */
export function bcryptHash(password: string, cost = 4, salt: Uint8Array = randomBytes(16)): string {
  if (cost < 4 || cost > 31) throw new Error(`bcrypt cost ${cost} out of range 4..31`);
  if (salt.length !== 16) throw new Error('bcrypt salt must be 16 bytes');
  const key = Buffer.concat([Buffer.from(password, 'utf8'), Buffer.from([0])]).subarray(0, 72);
  const bf = new Blowfish();
  bf.expand(key, salt);
  for (let round = 0; round < 2 ** cost; round++) {
    bf.expand(key);
    bf.expand(salt);
  }
  const text = Buffer.from('OrpheanBeholderScryDoubt', 'latin1');
  const block = new Uint32Array(6);
  for (let i = 0; i < 6; i++) block[i] = text.readUInt32BE(i * 4);
  for (let round = 0; round < 64; round++) for (let i = 0; i < 6; i += 2) bf.encipher(block, i);
  const out = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) out.writeUInt32BE(block[i]!, i * 4);
  return `$2b$${String(cost).padStart(2, '0')}$${encode64(salt)}${encode64(out.subarray(0, 23))}`;
}

/** Checks `password` against a `$2a$`/`$2b$`/`$2y$` hash (used to self-check this module). */
export function bcryptVerify(password: string, hash: string): boolean {
  const m = /^\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})[./A-Za-z0-9]{31}$/.exec(hash);
  if (!m) return false;
  const again = bcryptHash(password, Number(m[1]), decode64(m[2]!, 16));
  return again.slice(4) === hash.slice(4);
}

/** One htpasswd line, `user:bcrypt-hash`. */
export function htpasswdLine(username: string, password: string): string {
  return `${username}:${bcryptHash(password)}`;
}
