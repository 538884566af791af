// `npm run bench` (third part): `buildx-bootstrap mirror` against what teams script today,
// `skopeo copy --all` one image after the other, side by side in one run, on loopback registries:
//
//   first copy of 6 multi-platform images into an empty target   target ≤ 0.8 × skopeo
//   no-change re-run                                             target ≤ 0.25 × skopeo's re-run
//
// Each run gets fresh, empty targets (one per tool). Run with tap's TypeScript loader (see
// package.json). Loopback only; everything started is stopped by its pid; every wait is bounded.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEngineImage, pushImage } from '../test/helpers/engine-image.js';
import { findBinary } from '../test/helpers/integration.js';
import { startRegistry } from '../test/helpers/registry.js';

const RUNS = Math.max(1, Number(process.env.BENCH_MIRROR_RUNS ?? 3));
const IMAGES = 6;
const PAYLOAD = Number(process.env.BENCH_MIRROR_PAYLOAD ?? 2 * 1024 * 1024);
const BIN = join(process.cwd(), 'bin', 'buildx-bootstrap.js');
const teardowns: (() => unknown)[] = [];
const host = { teardown: (fn: () => unknown) => teardowns.push(fn) };

/** Wall time of one command. Asynchronous on purpose: the registries run in this process's
 * event loop (their access logs are read from a pipe), and spawnSync would stall them. */
async function time(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${stderr.trim().split('\n').pop()}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  const missing = ['docker-registry', 'busybox', 'skopeo'].filter((b) => !findBinary(b));
  if (missing.length) {
    process.stderr.write(`bench: needs ${missing.join(', ')}\n`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'bxb-bench-mirror-'));
  teardowns.push(() => rmSync(work, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, 'docker') };
  const upstream = await startRegistry(host);
  const names: string[] = [];
  let bytes = 0;
  for (let i = 0; i < IMAGES; i++) {
    const image = buildEngineImage({ version: `bench-${i}`, format: i % 2 ? 'docker' : 'oci', platforms: ['linux/amd64', 'linux/arm64'], payloadBytes: PAYLOAD });
    const name = `team/image-${i}`;
    await pushImage(upstream.url, name, ['1.0'], image);
    names.push(`${upstream.host}/${name}:1.0`);
    bytes += image.blobs.reduce((n, b) => n + b.size, 0);
  }
  const project = join(work, 'project');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, '.buildx-bootstraprc.json'), JSON.stringify({ mirror: { engine: false, images: names } }));

  const bxb = { first: [] as number[], again: [] as number[] };
  const skopeo = { first: [] as number[], again: [] as number[] };
  const skopeoAll = async (target: string): Promise<number> => {
    let ms = 0;
    for (const ref of names) ms += await time('skopeo', ['copy', '--all', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${ref}`, `docker://${target}/${ref.slice(upstream.host.length + 1)}`], env);
    return ms;
  };
  for (let run = 0; run < RUNS; run++) {
    const [a, b] = await Promise.all([startRegistry(host), startRegistry(host)]);
    const mirror = (): Promise<number> => time(process.execPath, [BIN, 'mirror', '--quiet', '--to', `${a.host}/bxb`], env, project);
    // Alternate which tool goes first, so neither always meets a warmer page cache.
    if (run % 2 === 0) {
      bxb.first.push(await mirror());
      skopeo.first.push(await skopeoAll(`${b.host}/skopeo`));
    } else {
      skopeo.first.push(await skopeoAll(`${b.host}/skopeo`));
      bxb.first.push(await mirror());
    }
    bxb.again.push(await mirror());
    skopeo.again.push(await skopeoAll(`${b.host}/skopeo`));
    await Promise.all([a.stop(), b.stop()]);
  }
  const node: number[] = [];
  for (let i = 0; i < 5; i++) node.push(await time(process.execPath, ['-e', '0'], env));

  const rows = [
    { name: 'buildx-bootstrap mirror, empty target', ms: median(bxb.first) },
    { name: `skopeo copy --all × ${IMAGES}, empty target`, ms: median(skopeo.first) },
    { name: 'buildx-bootstrap mirror, no-change re-run', ms: median(bxb.again) },
    { name: `skopeo copy --all × ${IMAGES}, no-change re-run`, ms: median(skopeo.again) },
    { name: 'node -e 0 (start-up floor, reference)', ms: median(node) },
  ];
  process.stdout.write(`\nbuildx-bootstrap mirror bench: ${IMAGES} images × 2 platforms, ${(bytes / (1 << 20)).toFixed(1)} MB of blobs, ${RUNS} runs, median wall time\n\n`);
  process.stdout.write(`${'case'.padEnd(48)}${'median ms'.padStart(10)}\n`);
  for (const r of rows) process.stdout.write(`${r.name.padEnd(48)}${r.ms.toFixed(1).padStart(10)}\n`);
  const first = median(bxb.first) / median(skopeo.first);
  const again = median(bxb.again) / median(skopeo.again);
  const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
  process.stdout.write(`\nfirst copy: ${first.toFixed(2)} × skopeo (target ≤ 0.80)  ${verdict(first <= 0.8)}\n`);
  process.stdout.write(`no-change re-run: ${again.toFixed(2)} × skopeo's re-run (target ≤ 0.25)  ${verdict(again <= 0.25)}\n`);
  return first <= 0.8 && again <= 0.25 ? 0 : 1;
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
