#!/usr/bin/env node
// `npm run bench` (after `npm run build`): start-up and fallback cost of `buildx-bootstrap resolve`,
// measured side by side against the same loopback docker-registry.
//
//   --version                      vs  node -e 0                               target ≤ 1.25 × node -e 0
//   resolve (exact tag)            vs  node -e 0 (skopeo inspect --raw shown)  target ≤ 2 × node -e 0
//   resolve, first mirror silent   vs  probe + 150 ms                          target ≤ probe + 150 ms
//   references, no target: a bare node:http HEAD of the same tag (the least a Node program does for
//   this answer), resolve without the compile cache (a first run), skopeo inspect --raw
//
// Plain node on purpose (no TypeScript loader is installed, and the test harness needs tap): the
// registry set-up here is a few HTTP requests. Loopback only; everything started is stopped by
// its pid; every wait is bounded.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'buildx-bootstrap.js');
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 15));
const PROBE_MS = Number(process.env.BENCH_PROBE_MS ?? 1000);
const TAG = 'v0.18.2';
const REPO = 'moby/buildkit';
const DEADLINE = Date.now() + 5 * 60_000; // the whole bench is bounded

const which = (name) => (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name)).find((p) => existsSync(p));

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exitCode = 1;
}

function httpReq(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...(body ? { 'Content-Length': body.length } : {}), ...headers }, agent: false, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sha = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;

async function pushBlob(base, buf) {
  const digest = sha(buf);
  const start = await httpReq(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST', body: Buffer.alloc(0) });
  if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
  const location = new URL(start.headers.location, base);
  location.searchParams.set('digest', digest);
  const put = await httpReq(location.href, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: buf });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${put.body}`);
  return { digest, size: buf.length };
}

async function pushManifest(base, ref, mediaType, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  const res = await httpReq(`${base}/v2/${REPO}/manifests/${ref}`, { method: 'PUT', headers: { 'Content-Type': mediaType }, body });
  if (res.status !== 201) throw new Error(`manifest ${ref}: ${res.status} ${res.body}`);
  return { digest: sha(body), size: body.length, mediaType };
}

/** A stand-in BuildKit image: an OCI index with one linux/amd64 manifest (one tiny layer). */
async function seed(base) {
  const layer = await pushBlob(base, randomBytes(1024));
  const config = await pushBlob(base, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} })));
  const manifest = await pushManifest(base, 'bench-amd64', 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
  return pushManifest(base, TAG, 'application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform: { os: 'linux', architecture: 'amd64' } }],
  });
}

async function startRegistry(dir) {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = {
    version: '0.1',
    log: { level: 'error', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') } },
    http: { addr: host, secret: randomBytes(16).toString('hex') },
  };
  const file = join(dir, 'registry.yml');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn('docker-registry', ['serve', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH, HOME: dir } });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const until = Date.now() + 20_000;
  for (;;) {
    const ok = await httpReq(`http://${host}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, child };
}

/** Accepts TCP and never answers: a dead mirror behind a firewall that drops, not rejects. */
async function startBlackhole() {
  const sockets = new Set();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.resume();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

function time(cmd, args, opts) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`);
  return { ms, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  if (!existsSync(join(ROOT, 'dist', 'cli.cjs'))) return fail('dist/ is missing: run npm run build first');
  if (!which('docker-registry')) return fail('docker-registry is not installed (Debian package docker-registry)');
  const haveSkopeo = Boolean(which('skopeo'));

  const dir = mkdtempSync(join(tmpdir(), 'bxb-bench-'));
  let registry;
  let blackhole;
  const cleanup = async () => {
    if (registry && registry.child.exitCode === null) {
      const exited = new Promise((r) => registry.child.once('exit', r));
      process.kill(registry.child.pid, 'SIGTERM');
      const t = setTimeout(() => registry.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await blackhole?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => {
    if (registry?.child.pid) registry.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    registry = await startRegistry(dir);
    const index = await seed(`http://${registry.host}`);
    blackhole = await startBlackhole();

    const home = join(dir, 'home');
    mkdirSync(join(home, '.docker'), { recursive: true });
    const env = { PATH: process.env.PATH, HOME: home, DOCKER_CONFIG: join(home, '.docker') };
    const image = `${registry.host}/${REPO}`;
    const plainDir = join(dir, 'plain');
    const holeDir = join(dir, 'blackhole');
    mkdirSync(plainDir);
    mkdirSync(holeDir);
    writeFileSync(join(plainDir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { version: TAG, image } }));
    writeFileSync(
      join(holeDir, '.buildx-bootstraprc.json'),
      JSON.stringify({ buildkit: { version: TAG, image }, mirrors: [{ host: blackhole.host, for: registry.host }], timeouts: { probe: `${PROBE_MS}ms`, hedge: '250ms' } }),
    );

    const expected = `${image}:${TAG}@${index.digest}`;
    // Reference: the least a Node program can do for the same answer, one node:http HEAD of the tag
    // (what is left between this and `resolve` is this tool's own work).
    const bare = join(dir, 'bare-head.cjs');
    const [regHost, regPort] = registry.host.split(':');
    writeFileSync(
      bare,
      `require('node:http').request({ host: ${JSON.stringify(regHost)}, port: ${regPort}, method: 'HEAD', path: '/v2/${REPO}/manifests/${TAG}', headers: { Accept: ${JSON.stringify(index.mediaType)} } }, (res) => { res.resume(); res.on('end', () => process.stdout.write(res.headers['docker-content-digest'] + '\\n')); }).end();\n`,
    );
    const cases = [
      { name: 'node -e 0', run: () => time(process.execPath, ['-e', '0'], { env }) },
      {
        name: 'buildx-bootstrap --version',
        run: () => {
          const r = time(process.execPath, [BIN, '--version'], { env });
          if (!/^\d+\.\d+\.\d+/.test(r.stdout)) throw new Error(`--version printed ${JSON.stringify(r.stdout)}`);
          return r;
        },
      },
      {
        name: 'buildx-bootstrap resolve',
        run: () => {
          const r = time(process.execPath, [BIN, 'resolve'], { env, cwd: plainDir });
          if (r.stdout.trim() !== expected) throw new Error(`resolve printed ${JSON.stringify(r.stdout)}, expected ${expected}`);
          return r;
        },
      },
      {
        name: 'bare node:http HEAD',
        run: () => {
          const r = time(process.execPath, [bare], { env });
          if (r.stdout.trim() !== index.digest) throw new Error(`bare HEAD printed ${JSON.stringify(r.stdout)}`);
          return r;
        },
      },
      {
        // Reference: a run that compiles every chunk (bin/compile-cache.js off), as the first run on
        // a machine does.
        name: 'resolve, no compile cache',
        run: () => {
          const r = time(process.execPath, [BIN, 'resolve'], { env: { ...env, BXB_COMPILE_CACHE: '0' }, cwd: plainDir });
          if (r.stdout.trim() !== expected) throw new Error(`uncached resolve printed ${JSON.stringify(r.stdout)}`);
          return r;
        },
      },
      ...(haveSkopeo ? [{ name: 'skopeo inspect --raw', run: () => time('skopeo', ['inspect', '--raw', `docker://${image}:${TAG}`, '--tls-verify=false'], { env }) }] : []),
      {
        name: 'resolve, first mirror blackholed',
        run: () => {
          const r = time(process.execPath, [BIN, 'resolve'], { env, cwd: holeDir });
          if (r.stdout.trim() !== expected) throw new Error(`blackhole resolve printed ${JSON.stringify(r.stdout)}`);
          return r;
        },
      },
    ];
    for (const c of cases) c.run(); // warm the page cache and the registry
    const samples = new Map(cases.map((c) => [c.name, []]));
    for (let i = 0; i < RUNS; i++) {
      if (Date.now() > DEADLINE) throw new Error('bench exceeded its 5 minute bound');
      for (const c of cases) samples.get(c.name).push(c.run().ms); // interleaved: drift hits all alike
    }

    const m = Object.fromEntries([...samples].map(([k, v]) => [k, median(v)]));
    const base = m['node -e 0'];
    const rows = [
      ['node -e 0', base, 'the floor', NaN, '', ''],
      ['buildx-bootstrap --version', m['buildx-bootstrap --version'], 'node -e 0', base, '≤ 1.25×', m['buildx-bootstrap --version'] <= 1.25 * base],
      ['buildx-bootstrap resolve (exact tag)', m['buildx-bootstrap resolve'], 'node -e 0', base, '≤ 2.00×', m['buildx-bootstrap resolve'] <= 2 * base],
      ['bare node:http HEAD of the tag (reference)', m['bare node:http HEAD'], 'node -e 0', base, '', ''],
      ['resolve, no compile cache (reference)', m['resolve, no compile cache'], 'node -e 0', base, '', ''],
      haveSkopeo ? ['skopeo inspect --raw (reference)', m['skopeo inspect --raw'], 'node -e 0', base, '', ''] : ['skopeo inspect --raw', NaN, 'skopeo not installed', NaN, '', ''],
      [`resolve, blackholed mirror (probe ${PROBE_MS} ms)`, m['resolve, first mirror blackholed'], `probe ${PROBE_MS} ms`, PROBE_MS, `≤ +150 ms`, m['resolve, first mirror blackholed'] <= PROBE_MS + 150],
    ];
    const out = [];
    out.push(`buildx-bootstrap bench: ${RUNS} runs each, interleaved, median wall time; registry ${registry.host} (docker-registry, loopback), node ${process.version}`);
    out.push('');
    out.push(`${'row'.padEnd(44)} ${'ms'.padStart(8)}  ${'floor'.padEnd(22)} ${'ms'.padStart(8)} ${'ratio'.padStart(7)}  ${'target'.padEnd(9)} result`);
    const f = (x, w) => (Number.isNaN(x) ? ''.padStart(w) : x.toFixed(1).padStart(w));
    for (const [name, ms, floor, floorMs, target, pass] of rows) {
      const ratio = Number.isNaN(floorMs) ? '' : `${(ms / floorMs).toFixed(2)}×`;
      out.push(`${name.padEnd(44)} ${f(ms, 8)}  ${floor.padEnd(22)} ${f(floorMs, 8)} ${ratio.padStart(7)}  ${target.padEnd(9)} ${pass === '' ? '' : pass ? 'ok' : 'MISSED'}`);
    }
    if (haveSkopeo) out.push('', `resolve / skopeo: ${(m['buildx-bootstrap resolve'] / m['skopeo inspect --raw']).toFixed(2)}×`);
    out.push(`blackhole fallback overhead over probe: ${(m['resolve, first mirror blackholed'] - PROBE_MS).toFixed(1)} ms`);
    process.stdout.write(`${out.join('\n')}\n`);
    if (rows.some((r) => r[5] === false)) process.exitCode = 1;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().catch((error) => fail(error.stack ?? String(error)));
