// `npm run bench` (second part): the builder lifecycle against a private dockerd, a loopback
// docker-registry and the emulated buildx plugin (the same harness the tests use).
//
//   no-op re-run                       vs  node -e 0 + one `buildx inspect`   target ≤ 2 × node + inspect
//   engine image from the cache tar    vs  docker load + container start      target ≤ 1.2 ×, 0 registry requests
//   engine image pulled from mirror    (reference)
//
// Run with tap's TypeScript loader (see package.json). Loopback only; everything started is
// stopped by its pid; every wait is bounded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installFakeBuildx } from '../test/helpers/buildx.js';
import { startDockerd } from '../test/helpers/dockerd.js';
import { pushEngineTags } from '../test/helpers/engine-image.js';
import { findBinary } from '../test/helpers/integration.js';
import { startRegistry } from '../test/helpers/registry.js';

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 7));
const BIN = join(process.cwd(), 'bin', 'buildx-bootstrap.js');
const teardowns: (() => unknown)[] = [];
const host = { teardown: (fn: () => unknown) => teardowns.push(fn) };

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: 120_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  return ms;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): void {
  spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: 120_000 });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  const missing = ['dockerd', 'docker', 'docker-registry', 'busybox'].filter((b) => !findBinary(b));
  if (missing.length) {
    process.stderr.write(`bench: needs ${missing.join(', ')}\n`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'bxb-bench-create-'));
  teardowns.push(() => rmSync(work, { recursive: true, force: true }));
  const [dockerd, mirror] = await Promise.all([startDockerd(host), startRegistry(host)]);
  await pushEngineTags(mirror, { tags: { 'v0.18.2': {} } });
  const fake = installFakeBuildx(host, { dockerConfig: join(work, 'docker-config') });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, ...fake.env, ...dockerd.env };
  const cache = join(work, 'cache');
  const image = `${mirror.host}/moby/buildkit`;
  const project = (name: string, config: object): string => {
    const dir = join(work, name);
    spawnSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image, version: 'v0.18.2' }, ...config }));
    return dir;
  };
  const cached = project('cached', { builder: { name: 'bench' }, cache: { dir: cache } });
  const pulled = project('pulled', { builder: { name: 'bench' } });
  time(process.execPath, [BIN, 'lock', '--quiet'], env, cached);
  time(process.execPath, [BIN, '--quiet'], env, cached); // first run: pulls and saves to the cache

  const rows: { name: string; ms: number }[] = [];
  const node = median(Array.from({ length: RUNS * 2 }, () => time(process.execPath, ['-e', '0'], env)));
  const inspect = median(Array.from({ length: RUNS }, () => time('docker', ['buildx', 'inspect', 'bench'], env)));
  const noop = median(Array.from({ length: RUNS }, () => time(process.execPath, [BIN, '--quiet'], env, cached)));

  const fresh = (): void => {
    run(process.execPath, [BIN, 'rm', '--quiet'], env, cached);
    const ids = spawnSync('docker', ['images', '-q'], { env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    if (ids.length) run('docker', ['rmi', '-f', ...new Set(ids)], env);
  };
  const tar = join(cache, readdirSync(cache).find((f) => f.endsWith('.tar'))!);
  const baseline: number[] = [];
  const fromCache: number[] = [];
  const fromMirror: number[] = [];
  let cacheRequests = 0;
  for (let i = 0; i < RUNS; i++) {
    fresh();
    const t0 = process.hrtime.bigint();
    time('docker', ['load', '-i', tar], env);
    const loaded = spawnSync('docker', ['images', '-q'], { env, encoding: 'utf8' }).stdout.trim().split('\n')[0]!;
    time('docker', ['run', '-d', '--name', 'bench-baseline', '--network', 'none', loaded], env);
    baseline.push(Number(process.hrtime.bigint() - t0) / 1e6);
    run('docker', ['rm', '-f', 'bench-baseline'], env);

    fresh();
    await mirror.settle();
    const before = mirror.requests();
    fromCache.push(time(process.execPath, [BIN, '--quiet'], env, cached));
    await mirror.settle();
    cacheRequests += mirror.requests() - before;

    fresh();
    fromMirror.push(time(process.execPath, [BIN, '--quiet'], env, pulled));
  }
  fresh();
  const load = median(baseline);
  rows.push({ name: 'node -e 0', ms: node }, { name: 'docker buildx inspect (emulated plugin)', ms: inspect }, { name: 'buildx-bootstrap no-op re-run', ms: noop });
  rows.push({ name: 'docker load + docker run -d (baseline)', ms: load }, { name: 'create from the cache tar (fresh daemon state)', ms: median(fromCache) }, { name: 'create pulling from the loopback mirror', ms: median(fromMirror) });

  const noopTarget = 2 * node + inspect;
  const cacheRatio = median(fromCache) / load;
  process.stdout.write(`\nbuildx-bootstrap create bench: ${RUNS} runs each, median wall time; dockerd ${dockerd.host}, mirror ${mirror.host}\n\n`);
  process.stdout.write(`${'case'.padEnd(48)}${'median ms'.padStart(10)}\n`);
  for (const r of rows) process.stdout.write(`${r.name.padEnd(48)}${r.ms.toFixed(1).padStart(10)}\n`);
  process.stdout.write('\n');
  const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
  process.stdout.write(`no-op re-run: ${noop.toFixed(1)} ms vs 2 × node + inspect = ${noopTarget.toFixed(1)} ms  ${verdict(noop <= noopTarget)}\n`);
  process.stdout.write(`cache path: ${cacheRatio.toFixed(2)} × docker load + container start (target ≤ 1.20)  ${verdict(cacheRatio <= 1.2)}\n`);
  process.stdout.write(`cache path registry requests: ${cacheRequests} (target 0)  ${verdict(cacheRequests === 0)}\n`);
  process.stdout.write(`pull path: ${(median(fromMirror) / load).toFixed(2)} × the baseline (reference)\n`);
  return noop <= noopTarget && cacheRequests === 0 && cacheRatio <= 1.2 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
process.exit(code);
