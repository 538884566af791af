// `npm run bench` (second part): the builder bring-up against a private dockerd and a loopback
// docker-registry, side by side with the docker commands it replaces (interleaved runs, medians).
// Real engines (the Go-built buildx and BuildKit of scripts/build-test-engines.sh, run through the
// test harness's runc shim) when they are built; the emulated buildx plugin otherwise. The table
// says which.
//
//   cache path   fresh daemon, image from the cache.dir tar, lockfile   vs  docker load -i TAR + docker tag ALIAS + buildx create --bootstrap   ≤ 1.2×, 0 registry requests
//   pull path    image in the mirror, not on the daemon, lockfile       vs  docker pull REF + buildx create --bootstrap                          ≤ 1.2×
//   no-op        builder up to date, lockfile                           vs  one docker buildx inspect NAME                                       ≤ 1.0×
//
// A floor does the same work as our side: the `buildx create` arguments ours ran (captured with
// --debug), the same generated buildkitd.toml, and on the cache path the same unpullable
// `localhost:1/…` alias we hand buildx (its own pull attempt is refused at once, no registry
// round trip, for both). Old buildx exits 0 from `create --bootstrap` when the bootstrap failed,
// so after every floor run its builder is checked to run, and the floor's registry requests are
// counted like ours.
//
// Run with tap's TypeScript loader (see package.json). Loopback only; everything started is
// stopped by its pid; every wait is bounded.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localAlias } from '../src/docker/engine-image.js';
import { installFakeBuildx } from '../test/helpers/buildx.js';
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js';
import { pushEngineTags } from '../test/helpers/engine-image.js';
import { findEngines, installRealBuildx, pushRealEngineImage, startEngineDockerd } from '../test/helpers/engines.js';
import { findBinary } from '../test/helpers/integration.js';
import { configFilePath } from '../src/builder/bring-up.js';
import { startRegistry } from '../test/helpers/registry.js';
import { runBench, type BenchHost } from './run-bench.js';

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const BIN = join(process.cwd(), 'bin', 'buildx-bootstrap.js');

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: 180_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  return ms;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): string {
  return spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: 180_000 }).stdout ?? '';
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(host: BenchHost): Promise<number> {
  const missing = ['dockerd', 'docker', 'docker-registry', 'busybox'].filter((b) => !findBinary(b));
  if (missing.length) {
    process.stderr.write(`bench: needs ${missing.join(', ')}\n`);
    return 1;
  }
  const engines = findEngines();
  const real = process.env.BENCH_EMULATED !== '1' && engines.buildx.length > 0 && engines.buildkit.length > 0;
  const buildx = engines.buildx.at(-1);
  const kit = engines.buildkit.at(-1);
  const work = mkdtempSync(join(tmpdir(), 'bxb-bench-create-'));
  host.teardown(() => rmSync(work, { recursive: true, force: true }));
  const [dockerd, mirror] = await Promise.all([(real ? startEngineDockerd : startDockerd)(host) as Promise<Dockerd>, startRegistry(host)]);
  const tag = real ? kit!.version : 'v0.18.2';
  if (real) await pushRealEngineImage(mirror, kit!);
  else await pushEngineTags(mirror, { tags: { [tag]: {} } });
  const dockerConfig = join(work, 'docker-config');
  const pluginEnv = real ? installRealBuildx(host, buildx!, { dockerConfig }).env : installFakeBuildx(host, { dockerConfig }).env;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, ...pluginEnv, ...dockerd.env };
  const engineLabel = real ? `real engines: buildx ${buildx!.version}, BuildKit ${kit!.version} (runc shim)` : 'EMULATION: fake buildx plugin, busybox stand-in BuildKit image';
  const cache = join(work, 'cache');
  const image = `${mirror.host}/moby/buildkit`;
  const project = (name: string, config: object): string => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image, version: tag }, ...config }));
    return dir;
  };
  const cached = project('cached', { builder: { name: 'bench' }, cache: { dir: cache } });
  const pulled = project('pulled', { builder: { name: 'bench' } });
  time(process.execPath, [BIN, 'lock', '--quiet'], env, cached);
  writeFileSync(join(pulled, 'buildx-bootstrap.lock.json'), readFileSync(join(cached, 'buildx-bootstrap.lock.json')));
  // First run: pulls and saves to the cache. Its --debug transcript gives the buildx create argv.
  const first = spawnSync(process.execPath, [BIN, '--debug'], { env, cwd: cached, encoding: 'utf8', timeout: 180_000 });
  if (first.status !== 0) throw new Error(`first run failed: ${first.stderr.trim().split('\n').pop()}`);
  const createLine = first.stderr.split('\n').find((l) => /^\$ docker buildx create /.test(l.replace(/^.*?\$ /, '$ ')))?.replace(/^.*?\$ /, '$ ');
  if (!createLine) throw new Error(`no buildx create in the first run's --debug output:\n${first.stderr}`);
  const ourCreate = createLine.slice('$ docker '.length).split(' ');
  const toml = join(work, 'floor-buildkitd.toml');
  writeFileSync(toml, readFileSync(configFilePath(env, 'bench')));
  const tar = join(cache, readdirSync(cache).find((f) => f.endsWith('.tar'))!);
  const lock = JSON.parse(readFileSync(join(cached, 'buildx-bootstrap.lock.json'), 'utf8')) as { digest: string };
  const pinned = `${image}:${tag}@${lock.digest}`;
  const alias = localAlias(`${image}:${tag}`);

  /** A fresh daemon state: no builder, no container, no image. */
  const fresh = (): void => {
    run(process.execPath, [BIN, 'rm', '--quiet'], env, cached);
    run('docker', ['buildx', 'rm', 'floor'], env);
    const ids = run('docker', ['images', '-aq'], env).split('\n').filter(Boolean);
    if (ids.length) run('docker', ['rmi', '-f', ...new Set(ids)], env);
  };
  /** Our create argv for the floor builder: its name, its image, the copy of our buildkitd.toml. */
  const floorArgs = (ref: string): string[] =>
    ourCreate.map((a, i) => {
      if (ourCreate[i - 1] === '--name') return 'floor';
      if (a.startsWith('image=')) return `image=${ref}`;
      if (a.startsWith('--config=') || a.startsWith('--buildkitd-config=')) return `${a.slice(0, a.indexOf('=') + 1)}${toml}`;
      if (ourCreate[i - 1] === '--config' || ourCreate[i - 1] === '--buildkitd-config') return toml;
      return a;
    });
  const createFloor = (ref: string): number => {
    const ms = time('docker', floorArgs(ref), env);
    // buildx 0.10–0.12 exit 0 from a failed --bootstrap: the floor counts only if its builder runs.
    const running = run('docker', ['inspect', '--format', '{{.State.Running}} {{.Config.Image}}', 'buildx_buildkit_floor0'], env).trim();
    if (running !== `true ${ref}`) throw new Error(`the floor's builder is not running ${ref} after buildx create --bootstrap (docker inspect: ${running || 'no container'})`);
    return ms;
  };
  const s = { cacheFloor: [] as number[], cache: [] as number[], pullFloor: [] as number[], pull: [] as number[], inspect: [] as number[], noop: [] as number[] };
  let cacheRequests = 0;
  let floorRequests = 0;
  const deadline = Date.now() + 20 * 60_000;
  for (let i = 0; i < RUNS; i++) {
    if (Date.now() > deadline) throw new Error('bench exceeded its 20 minute bound');
    fresh();
    await mirror.settle();
    const floorBefore = mirror.requests();
    const loadMs = time('docker', ['load', '-i', tar], env);
    const tagMs = time('docker', ['tag', `${image}:${tag}`, alias], env);
    s.cacheFloor.push(loadMs + tagMs + createFloor(alias));
    await mirror.settle();
    floorRequests += mirror.requests() - floorBefore;
    fresh();
    await mirror.settle();
    const before = mirror.requests();
    s.cache.push(time(process.execPath, [BIN, '--quiet'], env, cached));
    await mirror.settle();
    cacheRequests += mirror.requests() - before;
    // The builder is up to date now: the no-op pair, interleaved.
    for (let j = 0; j < 3; j++) {
      s.inspect.push(time('docker', ['buildx', 'inspect', 'bench'], env));
      s.noop.push(time(process.execPath, [BIN, '--quiet'], env, cached));
    }
    fresh();
    s.pullFloor.push(time('docker', ['pull', pinned], env) + createFloor(pinned));
    fresh();
    s.pull.push(time(process.execPath, [BIN, '--quiet'], env, pulled));
  }
  fresh();

  const m = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)])) as Record<keyof typeof s, number>;
  const rows = [
    { name: 'cache path (fresh daemon, cache.dir tar, lockfile)', ms: m.cache, floor: 'docker load + tag ALIAS + buildx create (our args)', floorMs: m.cacheFloor, target: 1.2 },
    { name: 'pull path (image in the mirror only, lockfile)', ms: m.pull, floor: 'docker pull REF + buildx create (our args)', floorMs: m.pullFloor, target: 1.2 },
    { name: 'no-op re-run (builder up to date, lockfile)', ms: m.noop, floor: 'docker buildx inspect NAME', floorMs: m.inspect, target: 1.0 },
  ];
  const out: string[] = [];
  out.push('', `buildx-bootstrap create bench: ${RUNS} rounds (no-op: ${3 * RUNS} pairs), interleaved, medians; dockerd ${dockerd.host}, mirror ${mirror.host}`, `engines: ${engineLabel}`, '');
  out.push(`${'row'.padEnd(52)}${'ms'.padStart(8)}  ${'floor'.padEnd(48)}${'ms'.padStart(8)}${'ratio'.padStart(8)}  target  result`);
  let pass = true;
  for (const r of rows) {
    const ratio = r.ms / r.floorMs;
    const ok = ratio <= r.target;
    pass &&= ok;
    out.push(`${r.name.padEnd(52)}${r.ms.toFixed(0).padStart(8)}  ${r.floor.padEnd(48)}${r.floorMs.toFixed(0).padStart(8)}${`${ratio.toFixed(2)}×`.padStart(8)}  ≤ ${r.target.toFixed(1)}×  ${ok ? 'ok' : 'MISSED'}`);
  }
  out.push(`${'cache path registry requests'.padEnd(52)}${String(cacheRequests).padStart(8)}  ${'(over all rounds)'.padEnd(48)}${''.padStart(16)}  = 0     ${cacheRequests === 0 ? 'ok' : 'MISSED'}`);
  pass &&= cacheRequests === 0;
  out.push(`${'cache floor registry requests'.padEnd(52)}${String(floorRequests).padStart(8)}  ${'(over all rounds; same advantage as ours)'.padEnd(48)}${''.padStart(16)}  = 0     ${floorRequests === 0 ? 'ok' : 'MISSED'}`);
  pass &&= floorRequests === 0;
  process.stdout.write(`${out.join('\n')}\n`);
  return pass ? 0 : 1;
}

await runBench('create', main);
