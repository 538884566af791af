// Blob streams on the bare-socket carrier (src/registry/raw-http.ts, what a plain-HTTP registry
// without a proxy gets) and on node:http (a registry behind HTTP_PROXY), through the transport the
// client uses: the same bytes either way, the body checked against the digest it was asked by with
// its last piece held back, framing lies refused, what the bare reader does not frame asked again
// through node:http, and a GET pumped into a PUT arriving whole. Loopback only: a proxied host's
// name is not loopback to the proxy rules, and the test proxy connects it to 127.0.0.1.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { TransportError, type StreamResponse, type Transport } from '../../src/registry/exchange.js';
import { createTransport } from '../../src/registry/http.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { startHttpStub, startRawServer } from '../helpers/net.js';

const digestOf = (body: Buffer): string => `sha256:${createHash('sha256').update(body).digest('hex')}`;

/** A node:http server on 127.0.0.1; every request is logged with the bytes its body carried. */
function transports(t: Test, proxyUrl?: string): Transport {
  const transport = createTransport({ env: proxyUrl ? { HTTP_PROXY: proxyUrl } : {}, tls: { rejectUnauthorized: true } });
  t.teardown(() => transport.close());
  return transport;
}

async function readAll(body: Readable): Promise<{ pieces: number; bytes: Buffer; error?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk as Buffer);
  } catch (error) {
    return { pieces: chunks.length, bytes: Buffer.concat(chunks), error: error as Error };
  }
  return { pieces: chunks.length, bytes: Buffer.concat(chunks) };
}

/** The two carriers: bare sockets (127.0.0.1, no proxy) and node:http (a proxied name). */
async function carriers(t: Test, port: number): Promise<{ name: string; transport: Transport; base: string }[]> {
  const proxy = await startForwardProxy(t);
  return [
    { name: 'bare socket', transport: transports(t), base: `http://127.0.0.1:${port}` },
    { name: 'node:http via proxy', transport: transports(t, proxy.url), base: `http://blobs.test:${port}` },
  ];
}

const get = (transport: Transport, url: string, expect?: { digest: string; size?: number }): Promise<StreamResponse> =>
  transport.open!({ method: 'GET', url: new URL(url), headers: { 'User-Agent': 'test' }, idleTimeoutMs: 3000, expect });

t.test('a blob GET: the same bytes on both carriers, the bare socket in whole reads rather than 64 KiB pieces', async (t) => {
  const blob = randomBytes(8 * 1024 * 1024 + 123);
  const { port } = await startHttpStub(t, (_req, res) => void res.writeHead(200, { 'Content-Length': blob.length, 'Docker-Content-Digest': digestOf(blob) }).end(blob));
  for (const { name, transport, base } of await carriers(t, port)) {
    const res = await get(transport, `${base}/v2/app/blobs/${digestOf(blob)}`, { digest: digestOf(blob), size: blob.length });
    t.equal(res.status, 200, name);
    t.equal(res.headers['docker-content-digest'], digestOf(blob), `${name}: headers as node:http names them`);
    const got = await readAll(res.body);
    t.notOk(got.error, `${name}: no error`);
    t.ok(got.bytes.equals(blob), `${name}: every byte, in order`);
    // node:http's parser hands a body over in pieces of at most 64 KiB: 8 MiB is at least 129.
    if (name === 'bare socket') t.ok(got.pieces < 100, `bare socket: ${got.pieces} pieces for 8 MiB`);
  }
});

t.test('a body that is not the blob asked for ends in an error on both carriers, before its last piece is passed on', async (t) => {
  const blob = randomBytes(3 * 1024 * 1024);
  const claimed = digestOf(Buffer.from('something else'));
  const { port } = await startHttpStub(t, (_req, res) => void res.writeHead(200, { 'Content-Length': blob.length }).end(blob));
  for (const { name, transport, base } of await carriers(t, port)) {
    const res = await get(transport, `${base}/v2/app/blobs/${claimed}`, { digest: claimed, size: blob.length });
    const got = await readAll(res.body);
    t.match(got.error?.message, /arrived with digest sha256:/, `${name}: the digest it had is named`);
    t.ok(got.bytes.length < blob.length, `${name}: ${got.bytes.length} of ${blob.length} bytes passed on`);
  }
  // Without `expect` (a 401's body, a redirect's) nothing is checked.
  const res = await get(transports(t), `http://127.0.0.1:${port}/v2/app/blobs/${claimed}`);
  t.equal((await readAll(res.body)).bytes.length, blob.length, 'unchecked: every byte');
});

t.test('the bare socket refuses a body longer or shorter than its Content-Length, and a stall', async (t) => {
  const answers: Record<string, (s: import('node:net').Socket) => void> = {
    short: (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(50)),
    long: (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n' + 'x'.repeat(50)),
    stall: (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nxx'),
    garbage: (s) => s.end('\x16\x03\x01 not http\r\n\r\n'),
  };
  const host = await startRawServer(t, (s, request) => answers[/GET \/(\w+)/.exec(request.toString())![1]!]!(s));
  const transport = transports(t);
  const open = (path: string) => transport.open!({ method: 'GET', url: new URL(`http://${host}/${path}`), headers: {}, idleTimeoutMs: 300 });
  const short = await readAll((await open('short')).body);
  t.match(short.error, { kind: 'reset' }, 'shorter: a reset, retried like one');
  const long = await readAll((await open('long')).body);
  t.match(long.error, { kind: 'protocol', code: 'EBODYOVERRUN' }, 'longer: bytes past the end');
  const stall = await readAll((await open('stall')).body);
  t.match(stall.error, { kind: 'timeout' }, 'a stall: the idle timeout');
  const garbage = await open('garbage').then(() => undefined, (e: unknown) => e);
  t.match(garbage, { kind: 'protocol', message: /not an HTTP answer/ }, 'not HTTP: a protocol failure');
  await t.rejects(transport.open!({ method: 'GET', url: new URL(`http://${host}/short`), headers: { Authorization: 'Bearer a\r\nX-Injected: 1' }, idleTimeoutMs: 300 }), TransportError, 'a header value with a line break is refused, not sent');
});

t.test('an answer the bare reader does not frame (chunked) is asked again through node:http, nothing lost', async (t) => {
  const blob = randomBytes(200_000);
  const { port, requests } = await startHttpStub(t, (_req, res) => {
    res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
    res.write(blob.subarray(0, 70_000));
    res.end(blob.subarray(70_000));
  });
  const res = await get(transports(t), `http://127.0.0.1:${port}/v2/app/blobs/x`, { digest: digestOf(blob), size: blob.length });
  const got = await readAll(res.body);
  t.ok(got.bytes.equals(blob) && !got.error, 'every byte, checked');
  t.equal(requests().length, 2, 'asked twice: once bare, once through node:http');
});

/**
 * A source whose body has no declared length and ends with the connection, 150 ms after its last
 * byte: the digest can only be checked then, so whether that last byte was passed on before the
 * check is visible.
 */
async function lateEndingSource(t: Test, body: Buffer): Promise<string> {
  return startRawServer(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
    s.write(body);
    setTimeout(() => s.end(), 150);
  });
}

t.test('a GET pumped into a PUT on the bare carrier arrives whole; a source that lies never gets its last byte into the upload', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024 + 7);
  const bad = Buffer.from(blob);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff; // differs only in the very last byte
  const source = await startHttpStub(t, (_req, res) => void res.writeHead(200, { 'Content-Length': blob.length }).end(blob));
  const lyingSource = await lateEndingSource(t, bad);
  /** Bodies of the uploads the target received whole (a cut-off one never reaches the handler). */
  const received: Buffer[] = [];
  const target = await startHttpStub(t, (_req, res, body) => {
    received.push(body);
    res.writeHead(201, { 'Docker-Content-Digest': digestOf(body), 'Content-Length': 0 }).end();
  });
  const transport = transports(t);
  const copy = async (host: string) => {
    const got = await get(transport, `http://${host}/v2/app/blobs/${digestOf(blob)}`, { digest: digestOf(blob), size: blob.length });
    let sourceError: Error | undefined;
    got.body.on('error', (e) => (sourceError = e));
    const put = transport.open!({
      method: 'PUT',
      url: new URL(`http://127.0.0.1:${target.port}/v2/app/blobs/uploads/1?digest=${digestOf(blob)}`),
      headers: { 'Content-Length': String(blob.length), 'Content-Type': 'application/octet-stream' },
      upload: got.body,
      idleTimeoutMs: 3000,
    });
    return { put, sourceError: () => sourceError };
  };
  const good = await copy(source.host);
  const answer = await good.put;
  t.equal(answer.status, 201, 'the PUT was answered');
  t.equal(received.length, 1, 'one upload arrived whole');
  t.ok(received[0]?.equals(blob), '… with every byte, in order');

  const lying = await copy(lyingSource);
  const outcome = await lying.put.then((r) => `answered ${r.status}`, (e: Error) => `failed: ${e.message}`);
  t.match(outcome, /^failed/, 'the PUT fails');
  t.match(lying.sourceError()?.message, /arrived with digest/, 'the failure is the source body’s');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(target.requests().length, 2, 'the second upload was started');
  t.equal(received.length, 1, '… and cut off before its last byte: the target never received it whole');
});

t.test('read as a stream, a lying body ends in its error without its last piece', async (t) => {
  const blob = randomBytes(300_000);
  const host = await lateEndingSource(t, blob);
  const claimed = digestOf(Buffer.from('other'));
  const res = await get(transports(t), `http://${host}/v2/app/blobs/${claimed}`, { digest: claimed });
  const got = await readAll(res.body);
  t.match(got.error?.message, /arrived with digest/);
  t.ok(got.bytes.length < blob.length, `${got.bytes.length} of ${blob.length} bytes passed on`);
});

t.test('a PUT refused before its body is sent is answered with the refusal, not a broken pipe', async (t) => {
  // Answered as soon as the request's first bytes arrive, the body still coming.
  const json = '{"errors":[{"code":"SIZE_INVALID","message":"quota exceeded"}]}';
  const host = await startRawServer(t, (s) => s.end(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nConnection: close\r\n\r\n${json}`));
  // A body that would take ~10 s to send: refused long before it could be.
  const body = Readable.from((async function* () {
    for (let i = 0; i < 1000; i++) {
      await new Promise((r) => setTimeout(r, 10));
      yield randomBytes(64 * 1024);
    }
  })());
  const transport = transports(t);
  const res = await transport.open!({
    method: 'PUT',
    url: new URL(`http://${host}/v2/app/blobs/uploads/1?digest=sha256:0`),
    headers: { 'Content-Length': String(1000 * 64 * 1024) },
    upload: body,
    idleTimeoutMs: 3000,
  });
  t.equal(res.status, 413);
  const text = Buffer.concat(await (res.body as Readable).toArray()).toString();
  t.match(text, /quota exceeded/, 'the registry’s reason reaches the client');
  t.ok(body.destroyed, 'and the body is no longer read: nothing more is fetched for an upload already refused');
});

t.test('blob GETs and PUTs to one registry reuse a few connections', async (t) => {
  const blob = randomBytes(100_000);
  const stub = await startHttpStub(t, (req, res) => {
    if (req.method === 'PUT') return void res.writeHead(201, { 'Content-Length': 0 }).end();
    res.writeHead(200, { 'Content-Length': blob.length }).end(blob);
  });
  const transport = transports(t);
  const getBlob = async (path: string) => readAll((await get(transport, `http://${stub.host}/${path}`, { digest: digestOf(blob), size: blob.length })).body);
  for (let i = 0; i < 5; i++) t.ok((await getBlob(`v2/app/blobs/${i}`)).bytes.equals(blob), `GET ${i}: every byte`);
  t.equal(stub.connections(), 1, 'five GETs in a row, one connection');
  for (let i = 0; i < 3; i++) {
    const res = await transport.open!({ method: 'PUT', url: new URL(`http://${stub.host}/v2/app/blobs/uploads/${i}`), headers: { 'Content-Length': String(blob.length) }, upload: Readable.from([blob]), idleTimeoutMs: 3000 });
    t.equal(res.status, 201, `PUT ${i} answered`);
  }
  t.equal(stub.connections(), 1, 'the PUTs too');
});

t.test('an answer saying `Connection: close` (or HTTP/1.0) is the last on its connection, even when the server would go on', async (t) => {
  const blob = randomBytes(10_000);
  let connections = 0;
  const host = await startRawServer(t, (s, first) => {
    connections++;
    const answer = (request: Buffer): void => {
      const version = request.toString().includes('/old') ? '1.0' : '1.1';
      s.write(`HTTP/${version} 200 OK\r\nContent-Length: ${blob.length}\r\n${request.toString().includes('/close') ? 'Connection: close\r\n' : ''}\r\n`);
      s.write(blob);
    };
    answer(first);
    s.on('data', answer);
  });
  const transport = transports(t);
  const getBlob = async (path: string) => readAll((await get(transport, `http://${host}/${path}`, { digest: digestOf(blob), size: blob.length })).body);
  await getBlob('v2/app/blobs/close');
  await getBlob('v2/app/blobs/old');
  await getBlob('v2/app/blobs/a');
  await getBlob('v2/app/blobs/b');
  t.equal(connections, 3, 'one connection each for the two that said so, one for the two after');
});

t.test('a reused connection the server closed as the next GET went out: that GET is sent again on a new one', async (t) => {
  const blob = randomBytes(50_000);
  const answer = `HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`;
  let connections = 0;
  const host = await startRawServer(t, (s) => {
    connections++;
    s.write(answer);
    s.write(blob);
    // The first connection answers once, then drops the next request unanswered (an idle
    // timeout on the server's side, hit as the request arrived).
    if (connections === 1) s.once('data', () => s.destroy());
    else s.on('data', () => (s.write(answer), s.write(blob)));
  });
  const transport = transports(t);
  for (let i = 0; i < 3; i++) {
    const got = await readAll((await get(transport, `http://${host}/v2/app/blobs/${i}`, { digest: digestOf(blob), size: blob.length })).body);
    t.ok(got.bytes.equals(blob) && !got.error, `GET ${i}: every byte, no error`);
  }
  t.equal(connections, 2, 'the dropped GET went again on a second connection, which carried the rest');
});

t.test('a bare-socket GET aborted mid-body ends its body with the abort, and its connection is not reused', async (t) => {
  const blob = randomBytes(200_000);
  let connections = 0;
  const host = await startRawServer(t, (s) => {
    connections++;
    // Half the body, then nothing until the test is over: only the abort can end the read.
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`);
    s.write(blob.subarray(0, 100_000));
  });
  const transport = transports(t);
  const controller = new AbortController();
  const res = await transport.open!({ method: 'GET', url: new URL(`http://${host}/v2/app/blobs/x`), headers: {}, idleTimeoutMs: 10_000, signal: controller.signal });
  setTimeout(() => controller.abort(new Error('stop')), 100);
  const got = await readAll(res.body);
  t.match(got.error, { kind: 'aborted' }, 'the body ends with the abort, well before the idle timeout');
  const refused = await transport.open!({ method: 'GET', url: new URL(`http://${host}/v2/app/blobs/y`), headers: {}, idleTimeoutMs: 10_000, signal: controller.signal }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(refused, { kind: 'aborted' }, 'an already aborted signal: nothing sent');
  // A body resumed to be drained, nobody listening for its errors (what the client does with a
  // 401's or a redirect's): its connection dropping mid-body must not be an uncaught exception.
  const next = await transport.open!({ method: 'GET', url: new URL(`http://${host}/v2/app/blobs/z`), headers: {}, idleTimeoutMs: 300 });
  next.body.resume();
  await new Promise((r) => next.body.once('close', r));
  t.ok(next.body.destroyed, 'the drained body ended (its idle timeout), quietly');
  t.equal(connections, 2, 'that GET went on a new connection');
});
