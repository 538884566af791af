// Blob streams over bare sockets, for plain-HTTP registries reached without a proxy (the loopback
// and in-cluster mirrors `mirror` copies out of and into). node:http hands a body over in pieces
// of at most 64 KiB, each copied out by its parser and carried through the stream machinery, and
// sends an upload through the same machinery: for a copy of a few hundred MiB that per-piece work,
// not the bytes, was most of mirror's CPU. Here a socket reads straight into 1 MiB buffers of our
// own (net's `onread`), so a body comes in as few pieces as the kernel allows, none copied; and a
// blob GET whose body goes into a PUT on this carrier is pumped socket to socket, each buffer
// handed back to a small pool once the kernel has taken its bytes — no stream, no garbage.
//
// Connections are kept between exchanges (HTTP/1.1 keep-alive, a few per registry), as node:http's
// agent keeps them: a copy's blob GETs and PUTs reuse them. An answer that says `Connection: close`
// (or is HTTP/1.0, or is framed by the connection's end) is the last on its connection, and a GET
// whose reused connection the server had closed is sent again on a new one. What a GET answer this
// reader does not frame (chunked or encoded, informational) is handed back as `undefined` before a
// byte of its body is read, and the caller asks again through node:http. A PUT answer is small and
// read whole, chunked or not.
// A body read by digest (`expect`) is checked on the way (./digest-check.ts), its last piece held
// back until the check passes.
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { DigestCheck } from './digest-check.js';
import { BODY_OVERRUN, classifyNetworkError, TransportError, type StreamRequest, type StreamResponse } from './exchange.js';

const READ_SIZE = 1024 * 1024;
/** A streamed read shorter than this is copied out and its buffer reused (headers, configs, tails). */
const COPY_BELOW = 64 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
/** What of a PUT's answer is kept (an error's JSON); the rest is read and dropped. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Pieces of one pumped blob the kernel has not taken yet (the held-back one included). */
const MAX_IN_FLIGHT = 4;
/** Free buffers kept for the next pumped read. */
const POOL_SIZE = 16;
/** Idle connections kept per registry. */
const IDLE_PER_HOST = 8;
/** Headers node:http keeps once (the first) when they repeat; others are joined with ", ". */
const SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

const pool: Buffer[] = [];
const takeBuffer = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
const giveBack = (buffer: Buffer): void => void (pool.length < POOL_SIZE && pool.push(buffer));

/** Where a pumped body's pieces go: `done` once the bytes are taken (the buffer is then reused). */
interface Sink {
  write(chunk: Buffer, done: () => void): void;
  end(): void;
  abort(error: Error): void;
}

interface Head {
  status: number;
  headers: IncomingHttpHeaders;
  /** HTTP/1.1 without `Connection: close`: the connection may carry the next exchange. */
  keepAlive: boolean;
}

/** A bare connection: one exchange at a time, its reads handed to that exchange. */
class RawConnection {
  readonly socket: Socket;
  next: Buffer = takeBuffer();
  /** Whether it has carried an exchange before (a stale keep-alive connection fails its next one). */
  used = false;
  reader: ((n: number, buf: Buffer) => boolean) | undefined;
  onEnd: (() => void) | undefined;
  onError: ((error: Error) => void) | undefined;

  constructor(url: URL, onIdleEnd: (connection: RawConnection) => void) {
    this.socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: { buffer: () => this.next, callback: (n, buf) => (this.reader ? this.reader(n, buf as Buffer) : (onIdleEnd(this), false)) },
    });
    this.socket.setNoDelay(true);
    // While idle, any byte, the end or an error retires the connection.
    this.socket.on('end', () => (this.onEnd ? this.onEnd() : onIdleEnd(this)));
    this.socket.on('error', (error) => (this.onError ? this.onError(error) : onIdleEnd(this)));
  }
}

/**
 * Connections kept open between exchanges, per registry (host:port): a blob copy's GETs to one
 * registry and PUTs to another reuse a few connections rather than opening one per blob. Idle
 * ones do not keep the process alive.
 */
export class RawPool {
  private readonly idle = new Map<string, RawConnection[]>();

  acquire(url: URL, fresh = false): RawConnection {
    const list = fresh ? undefined : this.idle.get(url.host);
    for (let c = list?.pop(); c; c = list?.pop()) {
      if (c.socket.destroyed) continue;
      c.socket.ref();
      return c;
    }
    return new RawConnection(url, (c) => this.retire(url.host, c));
  }

  release(url: URL, connection: RawConnection): void {
    const { socket } = connection;
    connection.reader = connection.onEnd = connection.onError = undefined;
    connection.used = true;
    socket.setTimeout(0);
    socket.removeAllListeners('timeout');
    socket.removeAllListeners('drain');
    const list = this.idle.get(url.host) ?? [];
    if (socket.destroyed || list.length >= IDLE_PER_HOST) return void socket.destroy();
    list.push(connection);
    this.idle.set(url.host, list);
    socket.unref();
    socket.resume(); // reading while idle: the server closing it is seen at once
  }

  close(): void {
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
  }

  private retire(host: string, connection: RawConnection): void {
    connection.socket.destroy();
    const list = this.idle.get(host);
    const at = list?.indexOf(connection) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }
}

/**
 * Sends `req` on a pooled connection. A GET resolves once the answer's headers are in
 * (`undefined`: an answer this reader does not frame, nothing of it used); a PUT once its whole
 * answer is in, the upload sent. A GET whose reused connection turns out closed by the server
 * before any answer is sent again on a new one.
 */
export function rawOpen(req: StreamRequest, pool: RawPool): Promise<StreamResponse | undefined> {
  const { signal } = req;
  if (signal?.aborted) return Promise.reject(new TransportError('aborted', 'aborted', undefined, signal.reason));
  let head: string;
  try {
    head = requestHead(req);
  } catch (error) {
    return Promise.reject(error as Error);
  }
  const attempt = (connection: RawConnection): Promise<StreamResponse | undefined> =>
    new Promise<StreamResponse | undefined>((resolve, reject) => {
      const { socket } = connection;
      const stale = connection.used;
      let headBytes: Buffer | undefined = Buffer.alloc(0);
      let body: RawBody | undefined;
      let answer: AnswerReader | undefined;
      let uploadSent = !req.upload;
      let settled = false;
      let finished = false;
      const settle = (value: StreamResponse | undefined, error?: TransportError): void => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(value);
      };
      /** The exchange is over: the connection goes back to the pool when its framing allows. */
      const finish = (reusable: boolean): void => {
        if (finished) return;
        finished = true;
        signal?.removeEventListener('abort', onAbort);
        if (reusable) pool.release(req.url, connection);
        else socket.destroy();
      };
      const fail = (error: TransportError): void => {
        const nothingYet = !body && !answer && headBytes?.length === 0;
        finish(false);
        if (body) return body.fail(error);
        if (stale && nothingYet && req.method === 'GET' && error.kind === 'reset' && !settled) {
          settled = true;
          return void attempt(pool.acquire(req.url, true)).then(resolve, reject);
        }
        settle(undefined, error);
        // Without the error: a failed PUT is the target's failure, not its body's source's.
        req.upload?.destroy();
      };
      const onAbort = (): void => fail(new TransportError('aborted', 'aborted', undefined, signal?.reason));

      const onHead = (parsed: Head, rest: Buffer): boolean => {
        if (req.method === 'PUT') {
          answer = new AnswerReader(parsed, (error) => {
            // An answer before the whole body (a refusal) ends the exchange: stop sending.
            if (!uploadSent) req.upload?.destroy();
            finish(!error && uploadSent && parsed.keepAlive && answer!.framed);
            if (error) settle(undefined, error);
            else settle({ status: parsed.status, headers: parsed.headers, body: Readable.from(answer!.bytes().length ? [answer!.bytes()] : []) });
          });
          answer.take(rest);
          return true;
        }
        if (parsed.status < 200 || parsed.headers['transfer-encoding'] !== undefined || parsed.headers['content-encoding'] !== undefined) {
          finish(false);
          settle(undefined);
          return false;
        }
        const length = parsed.headers['content-length'];
        if (length !== undefined && !/^\d+$/.test(length)) {
          fail(new TransportError('protocol', `invalid Content-Length ${JSON.stringify(length)}`, 'HPE_INVALID_CONTENT_LENGTH'));
          return false;
        }
        const remaining = length !== undefined ? Number(length) : parsed.status === 204 || parsed.status === 304 ? 0 : undefined;
        const check = parsed.status === 200 && req.expect ? new DigestCheck(req.expect.digest, req.expect.size) : undefined;
        body = new RawBody(socket, remaining, check, (complete) => finish(complete && parsed.keepAlive && remaining !== undefined));
        settle({ status: parsed.status, headers: parsed.headers, body });
        if (rest.length) body.accept(rest, undefined);
        body.startIfEmpty();
        if (finished) return true; // the connection went back to the pool: it reads while idle
        // Nothing more is read until someone reads the body or pumps it: bytes read before then
        // would be held in buffers the pump cannot reuse.
        body.socketPaused = true;
        return false;
      };

      connection.reader = (n, buf) => {
        if (headBytes) {
          const all = headBytes.length ? Buffer.concat([headBytes, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n));
          const end = all.indexOf('\r\n\r\n');
          if (end < 0) {
            if (all.length > MAX_HEAD_BYTES) fail(new TransportError('protocol', `answer headers longer than ${MAX_HEAD_BYTES} bytes`, 'HPE_HEADER_OVERFLOW'));
            else headBytes = all;
            return true;
          }
          headBytes = undefined;
          const parsed = parseHead(all.subarray(0, end).toString('latin1'));
          if (parsed instanceof TransportError) {
            fail(parsed);
            return false;
          }
          return onHead(parsed, all.subarray(end + 4));
        }
        if (answer) {
          answer.take(buf.subarray(0, n));
          return true;
        }
        if (!body) return false;
        if (body.pumping) {
          body.accept(buf.subarray(0, n), buf);
          connection.next = takeBuffer();
        } else if (n >= COPY_BELOW) {
          body.accept(buf.subarray(0, n), undefined);
          connection.next = takeBuffer();
        } else body.accept(Buffer.from(buf.subarray(0, n)), undefined);
        return finished || !body.socketPaused;
      };
      connection.onEnd = () => {
        if (answer) answer.end();
        else if (body) body.finishBody(false);
        else fail(new TransportError('reset', 'connection closed before an answer', 'ECONNRESET'));
      };
      connection.onError = (error) => {
        if (finished) return;
        const { kind, code } = classifyNetworkError(error);
        fail(new TransportError(kind, error.message, code));
      };
      // An idle timeout, as for node:http's streamed exchanges: a large blob may take long, a stalled one must not.
      socket.setTimeout(req.idleTimeoutMs, () => fail(new TransportError('timeout', `no data for ${req.idleTimeoutMs} ms`, 'ETIMEDOUT')));
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.resume();
      socket.write(head);
      if (req.upload) sendUpload(req.upload, socket, fail, () => (uploadSent = true));
    });
  return attempt(pool.acquire(req.url));
}

/** The request line and headers; refuses what node:http refuses too. */
function requestHead(req: StreamRequest): string {
  const lines = [`${req.method} ${req.url.pathname}${req.url.search} HTTP/1.1`, `Host: ${req.url.host}`];
  for (const [name, value] of Object.entries(req.headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw new TransportError('protocol', `invalid character in header ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'host') lines.push(`${name}: ${value}`);
  }
  lines.push('', '');
  return lines.join('\r\n');
}

function parseHead(text: string): Head | TransportError {
  const [statusLine = '', ...fields] = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) return new TransportError('protocol', `not an HTTP answer: ${JSON.stringify(statusLine.slice(0, 60))}`, 'HPE_INVALID_CONSTANT');
  const headers: IncomingHttpHeaders = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0 || /^[ \t]/.test(field)) return new TransportError('protocol', 'malformed header line in the answer', 'HPE_INVALID_HEADER_TOKEN');
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field.slice(colon + 1).trim();
    const had = headers[name];
    if (name === 'set-cookie') headers[name] = [...((had as string[] | undefined) ?? []), value];
    else if (had === undefined) headers[name] = value;
    else if (!SINGLE.has(name)) headers[name] = `${had as string}, ${value}`;
  }
  const keepAlive = m[1] === '1' && !/(^|,)\s*close\s*(,|$)/i.test(String(headers.connection ?? ''));
  return { status: Number(m[2]), headers, keepAlive };
}

/** Sends a PUT's body: pumped when it is a RawBody nobody reads yet, else streamed with backpressure. */
function sendUpload(upload: Readable, socket: Socket, fail: (error: TransportError) => void, sent: () => void): void {
  const failed = (error: Error): void => fail(error instanceof TransportError ? error : new TransportError('protocol', error.message));
  if (upload instanceof RawBody && upload.canPump()) {
    upload.pumpTo({ write: (chunk, done) => void socket.write(chunk, done), end: sent, abort: failed });
    return;
  }
  upload.on('data', (chunk: Buffer) => {
    if (!socket.write(chunk)) upload.pause();
  });
  const resume = (): void => void upload.resume();
  socket.on('drain', resume);
  upload.on('end', () => {
    socket.off('drain', resume);
    sent();
  });
  upload.on('error', failed);
}

/**
 * A GET answer's body: a Readable for whoever reads it, or pumped into a Sink (`pumpTo`). Bytes
 * past a declared length are an error; so is a connection that closes before it. With a
 * DigestCheck the last piece waits for the check.
 */
class RawBody extends Readable {
  pumping = false;
  /** Reading stopped: a consumer is behind, or none has come yet. */
  socketPaused = false;
  private streaming = false;
  private sink: Sink | undefined;
  private inFlight = 0;
  private held: { chunk: Buffer; owned: Buffer | undefined } | undefined;
  private readonly pending: { chunk: Buffer; owned: Buffer | undefined }[] = [];
  private ended = false;
  /** A failure found before anyone read or pumped the body: raised when someone does. */
  private failure: Error | undefined;

  constructor(
    private readonly socket: Socket,
    private remaining: number | undefined,
    private readonly check: DigestCheck | undefined,
    /** The body is done with the connection: `complete` when it ended at its declared length. */
    private readonly close: (complete: boolean) => void,
  ) {
    super({ highWaterMark: READ_SIZE });
  }

  /** Whether nothing has read the body yet, so it can still be pumped. */
  canPump(): boolean {
    return !this.streaming && !this.pumping && !this.destroyed;
  }

  /** An empty body (Content-Length: 0) ends at once. */
  startIfEmpty(): void {
    if (this.remaining === 0) this.finishBody();
  }

  pumpTo(sink: Sink): void {
    this.pumping = true;
    this.sink = sink;
    if (this.failure) return void this.destroy(this.failure);
    for (const piece of this.pending.splice(0)) this.deliver(piece);
    if (this.ended) this.finishDelivery();
    else if (this.socketPaused && this.inFlight < MAX_IN_FLIGHT) this.resumeSocket();
  }

  /** Bytes from the socket; `owned`: the pool buffer they sit in, handed back once they are sent. */
  accept(chunk: Buffer, owned: Buffer | undefined): void {
    if (this.destroyed || this.ended) return;
    if (this.remaining !== undefined) {
      if (chunk.length > this.remaining) return this.fail(new TransportError('protocol', `bytes past the declared end of the answer (${BODY_OVERRUN})`, BODY_OVERRUN));
      this.remaining -= chunk.length;
    }
    if (chunk.length) {
      const piece = { chunk, owned };
      if (this.check) {
        const error = this.check.update(chunk);
        if (error) return this.fail(error);
        const previous = this.held;
        this.held = piece;
        if (previous) this.deliver(previous);
      } else this.deliver(piece);
    }
    if (this.remaining === 0) this.finishBody();
  }

  /** The declared length arrived (`byLength`), or the connection ended. */
  finishBody(byLength = true): void {
    if (this.ended || this.destroyed) return;
    if (this.remaining !== undefined && this.remaining > 0) return this.fail(new TransportError('reset', 'connection closed mid-response', 'ECONNRESET'));
    this.ended = true;
    this.close(byLength);
    if (this.check) {
      const error = this.check.finish();
      if (error) return this.fail(error);
      if (this.held) this.deliver(this.held);
      this.held = undefined;
    }
    if (this.pumping) this.finishDelivery();
    else if (this.streaming) this.push(null);
  }

  /** Ends the body with `error` — at once when someone reads or pumps it, else when someone does. */
  fail(error: Error): void {
    if (this.streaming || this.pumping) this.destroy(error);
    else if (!this.failure) {
      this.failure = error;
      this.ended = true;
      this.close(false);
    }
  }

  private deliver(piece: { chunk: Buffer; owned: Buffer | undefined }): void {
    if (this.pumping) {
      this.inFlight++;
      this.sink!.write(piece.chunk, () => {
        this.inFlight--;
        if (piece.owned) giveBack(piece.owned);
        if (this.socketPaused && this.inFlight < MAX_IN_FLIGHT) this.resumeSocket();
        if (this.ended && this.inFlight === 0) this.finishDelivery();
      });
      if (this.inFlight >= MAX_IN_FLIGHT) this.pauseSocket();
    } else if (this.streaming) {
      if (!this.push(piece.chunk)) this.pauseSocket();
    } else this.pending.push(piece);
  }

  private finishDelivery(): void {
    if (this.inFlight > 0 || !this.sink) return;
    const sink = this.sink;
    this.sink = undefined;
    sink.end();
    this.destroy();
  }

  private pauseSocket(): void {
    if (this.ended) return; // the connection is no longer this body's
    this.socketPaused = true;
    this.socket.pause();
  }

  private resumeSocket(): void {
    this.socketPaused = false;
    if (!this.ended) this.socket.resume();
  }

  override _read(): void {
    if (!this.streaming && !this.pumping) {
      this.streaming = true;
      if (this.failure) return void this.destroy(this.failure);
      for (const piece of this.pending.splice(0)) this.deliver(piece);
      if (this.ended) this.push(null);
    }
    if (this.socketPaused) this.resumeSocket();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.ended = true;
    this.close(false);
    for (const piece of this.pending.splice(0)) if (piece.owned) giveBack(piece.owned);
    if (error && this.sink) {
      const sink = this.sink;
      this.sink = undefined;
      sink.abort(error);
    }
    // As node:http's IncomingMessage does: a body nobody listens to for errors (one resumed to be
    // drained, a 401's or a redirect's) ends quietly rather than as an uncaught exception.
    callback(this.listenerCount('error') > 0 ? error : null);
  }
}

/** A PUT's answer, read whole: by Content-Length, chunked, or to the connection's end. */
class AnswerReader {
  complete = false;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly length: number | undefined;
  private readonly chunked: boolean;

  constructor(
    head: Head,
    private readonly done: (error?: TransportError) => void,
  ) {
    const length = head.headers['content-length'];
    this.chunked = /chunked/i.test(String(head.headers['transfer-encoding'] ?? ''));
    this.length = this.chunked ? undefined : length !== undefined && /^\d+$/.test(length) ? Number(length) : head.status === 204 || head.status === 304 ? 0 : undefined;
  }

  /** Whether it ended exactly at its declared length (nothing else on the connection). */
  get framed(): boolean {
    return this.length !== undefined && this.size === this.length;
  }

  /** Answer bytes; copied, since the connection's read buffer takes the next read. */
  take(chunk: Buffer): void {
    if (this.complete) return;
    if (this.size < MAX_ANSWER_BYTES * 2) this.chunks.push(Buffer.from(chunk));
    this.size += chunk.length;
    if (this.length !== undefined && this.size >= this.length) this.finish();
    // A chunked answer ends with its zero-size chunk (trailers aside: then at the connection's end).
    else if (this.chunked && `\r\n${Buffer.concat(this.chunks).subarray(-16).toString('latin1')}`.endsWith('\r\n0\r\n\r\n')) this.finish();
  }

  end(): void {
    if (this.complete) return;
    if (this.length !== undefined) this.done(new TransportError('reset', 'connection closed mid-response', 'ECONNRESET'));
    else this.finish();
  }

  bytes(): Buffer {
    const all = Buffer.concat(this.chunks);
    return (this.chunked ? dechunk(all) : all).subarray(0, MAX_ANSWER_BYTES);
  }

  private finish(): void {
    this.complete = true;
    this.done();
  }
}

/** The payload of a chunked body held whole (what a PUT's short answer needs; extensions ignored). */
function dechunk(all: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at < all.length) {
    const eol = all.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(all.subarray(at, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    out.push(all.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
