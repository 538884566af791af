// `npm run bench` (fourth part): the CI image (the repository's Dockerfile), reference rows.
//
//   size         the image vs its docker:<v>-cli base: what Node and the tool add
//   cold start   `docker run --rm IMAGE buildx-bootstrap --version`  vs  `docker run --rm IMAGE true`
//                (same image, same entrypoint: the difference is Node starting and the tool's
//                answer), and `node -e 0` in the image for Node alone
//
// Docker Hub is out of reach, so the base images are the test harness's stand-ins
// (test/helpers/ci-image.ts: glibc and this machine's Node instead of musl and node:<v>-alpine's,
// docker CLI 28.x): the sizes are the stand-in build's, and say what is added, not the real
// image's size. Built with the daemon's own builder (the docker driver); the image is the same
// Dockerfile and tarball `buildx-bootstrap image` builds from. Loopback only; everything started
// is stopped by its pid.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEngines, installRealBuildx, startEngineDockerd } from '../test/helpers/engines.js';
import { findBinary } from '../test/helpers/integration.js';
import { buildStandIns, writeLoadArchive } from '../test/helpers/ci-image.js';
import { imageBaseImages, imageBuildCommand, localImageTag } from '../src/image/build-command.js';
import { packPackage, readManifest } from '../src/image/pack.js';
import { runBench, type BenchHost } from './run-bench.js';

const RUNS = Math.max(5, Number(process.env.BENCH_RUNS ?? 5) * 2);

function time(args: string[], env: NodeJS.ProcessEnv, expect?: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('docker', args, { env, encoding: 'utf8', timeout: 120_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  if (expect !== undefined && r.stdout !== expect) throw new Error(`docker ${args.join(' ')} printed ${JSON.stringify(r.stdout)}, expected ${JSON.stringify(expect)}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

async function main(host: BenchHost): Promise<number> {
  const missing = ['dockerd', 'docker', 'busybox'].filter((b) => !findBinary(b));
  const buildx = findEngines().buildx.at(-1);
  if (missing.length || !buildx) {
    process.stdout.write(`\nCI image bench: skipped (needs ${[...missing, ...(buildx ? [] : ['the real buildx (scripts/build-test-engines.sh)'])].join(', ')})\n`);
    return 0;
  }
  const root = process.cwd();
  const work = mkdtempSync(join(tmpdir(), 'bxb-bench-image-'));
  host.teardown(() => rmSync(work, { recursive: true, force: true }));
  const dockerd = await startEngineDockerd(host);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, ...installRealBuildx(host, buildx, { dockerConfig: join(work, 'docker-config') }).env, ...dockerd.env };
  const familiar = (ref: string): string => ref.replace(/^docker\.io\/library\//, '');
  const bases = imageBaseImages(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const dockerRef = familiar(bases.find((b) => b.includes('/docker:'))!);
  const nodeRef = familiar(bases.find((b) => b.includes('/node:'))!);
  const standIns = buildStandIns({ buildx: buildx.plugin }, { docker: dockerRef, node: nodeRef });
  for (const image of [standIns.docker, standIns.node]) {
    const archive = join(work, 'load.tar');
    writeLoadArchive(image, 'amd64', archive);
    time(['load', '-i', archive], env);
  }
  const context = join(work, 'context');
  mkdirSync(context);
  copyFileSync(join(root, 'Dockerfile'), join(context, 'Dockerfile'));
  const manifest = await readManifest(root);
  await packPackage(root, context, manifest);
  const build = imageBuildCommand({ contextDir: context, manifest, revision: '' });
  const built = spawnSync('docker', build.slice(1), { env, encoding: 'utf8', timeout: 600_000 });
  if (built.status !== 0) throw new Error(`image build failed: ${built.stderr.trim().split('\n').slice(-5).join('\n')}`);
  const image = localImageTag(manifest);
  const size = (ref: string): number => Number(spawnSync('docker', ['image', 'inspect', '-f', '{{.Size}}', ref], { env, encoding: 'utf8' }).stdout.trim());
  const [imageSize, baseSize] = [size(image), size(dockerRef)];

  const s = { tool: [] as number[], floor: [] as number[], node: [] as number[] };
  const run = ['run', '--rm', '--network', 'none', image];
  time([...run, 'true'], env); // first container start on this daemon, not counted
  for (let i = 0; i < RUNS; i++) {
    s.floor.push(time([...run, 'true'], env, ''));
    s.tool.push(time([...run, 'buildx-bootstrap', '--version'], env, `${manifest.version}\n`));
    // By path: the entrypoint sends a bare `node` to `docker node` (a docker subcommand), as docker:<v>-cli's does.
    s.node.push(time([...run, '/usr/local/bin/node', '-e', '0'], env, ''));
  }
  const m = { tool: median(s.tool), floor: median(s.floor), node: median(s.node) };
  const out = [
    '',
    `CI image bench (reference rows): ${RUNS} rounds, interleaved, medians; stand-in base images (glibc, this machine's Node), dockerd ${dockerd.host}`,
    '',
    `${'row'.padEnd(58)}${'value'.padStart(10)}  ${'compared with'.padEnd(44)}${'value'.padStart(10)}${'ratio'.padStart(8)}`,
    `${'image size (stand-in build)'.padEnd(58)}${mb(imageSize).padStart(10)}  ${`its base, ${dockerRef} stand-in`.padEnd(44)}${mb(baseSize).padStart(10)}${`${(imageSize / baseSize).toFixed(2)}×`.padStart(8)}`,
    `${'  added: Node + libstdc++/libgcc_s + the package'.padEnd(58)}${mb(imageSize - baseSize).padStart(10)}`,
    `${'docker run --rm IMAGE buildx-bootstrap --version (ms)'.padEnd(58)}${m.tool.toFixed(0).padStart(10)}  ${'docker run --rm IMAGE true'.padEnd(44)}${m.floor.toFixed(0).padStart(10)}${`${(m.tool / m.floor).toFixed(2)}×`.padStart(8)}`,
    `${'docker run --rm IMAGE /usr/local/bin/node -e 0 (ms)'.padEnd(58)}${m.node.toFixed(0).padStart(10)}  ${'docker run --rm IMAGE true'.padEnd(44)}${m.floor.toFixed(0).padStart(10)}${`${(m.node / m.floor).toFixed(2)}×`.padStart(8)}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

await runBench('image', main);
