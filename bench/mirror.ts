// `npm run bench` (third part): `buildx-bootstrap mirror` against the fastest tools people use to
// copy images between registries, side by side in one run, on loopback registries:
//
//   crane copy          one process per image, in sequence (a CI job's loop)   go-containerregistry
//   regctl image copy   one process per image, in sequence                     regclient
//   regsync once        one process for all images (its YAML config)           regclient
//   skopeo sync --all   one process for all images (its YAML source)           Debian's skopeo
//
//   first copy of 6 two-platform images (3 incompressible 8 MiB layers per platform) into an
//   empty target                 target ≤ 1.0 × the fastest peer
//   no-change re-run             target ≤ 2.0 × the fastest peer's re-run (Node's start-up is
//                                most of ours there)
//
// Beside each wall time, the CPU time the tool's own processes used (from the kernel's
// accounting of this process's children): on a loaded machine, wall time follows CPU demand.
//
// Every tool gets its own fresh, empty target registry per round; the order of the tools rotates
// from round to round, and after each run every image's tag and child manifests are HEADed in
// that tool's target and must carry the source digests (a run that copied nothing does not
// count). crane, regctl and regsync are built by scripts/build-test-engines.sh with go install
// (versions in versions.env), skopeo is Debian's. Run with tap's TypeScript loader (see
// package.json). Loopback only; everything started is stopped by its pid; every wait is bounded.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEngineImage, pushImage } from '../test/helpers/engine-image.js';
import { enginesDir } from '../test/helpers/engines.js';
import { findBinary } from '../test/helpers/integration.js';
import { harnessRequest } from '../test/helpers/net.js';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.js';
import { runBench, type BenchHost } from './run-bench.js';

const RUNS = Math.max(1, Number(process.env.BENCH_MIRROR_RUNS ?? 3));
const IMAGES = 6;
const LAYERS = 3;
const PAYLOAD = Number(process.env.BENCH_MIRROR_PAYLOAD ?? 8 * 1024 * 1024);
const BIN = join(process.cwd(), 'bin', 'buildx-bootstrap.js');
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** Wall time and CPU time of a run (one command, or a tool's sequence of commands). */
interface Timing {
  ms: number;
  /** User + system CPU seconds of the command(s), at the kernel's 10 ms tick. */
  cpu: number;
}

/**
 * CPU seconds of this process's children that have been waited for (/proc/self/stat cutime and
 * cstime, in USER_HZ = 100 ticks). The registries are children too, but they are only waited for
 * when they stop, so the difference around one command is that command's own CPU; no wrapper
 * process (which would add to the per-image tools' wall time) is needed.
 */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Wall time of one command. Asynchronous on purpose: the registries run in this process's
 * event loop (their access logs are read from a pipe), and spawnSync would stall them. */
async function time(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Timing> {
  const cpu0 = childrenCpu();
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${stderr.trim().split('\n').pop()}`);
  return { ms, cpu: childrenCpu() - cpu0 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** A peer binary built by scripts/build-test-engines.sh, at the version versions.env names. */
function builtTool(key: string, dirName: string, binary: string): string | undefined {
  const dir = enginesDir();
  let version: string | undefined;
  try {
    version = new RegExp(`^${key}="?([^"\\n]+)"?`, 'm').exec(readFileSync(join(dir, 'versions.env'), 'utf8'))?.[1];
  } catch {
    return undefined;
  }
  const path = version ? join(dir, `${dirName}-${version}`, binary) : undefined;
  return path && existsSync(path) ? path : undefined;
}

interface Image {
  /** `team/image-N` */
  repo: string;
  digest: string;
  children: string[];
}

interface Tool {
  name: string;
  /** Copies every image from `upstream` into `target` under `prefix/`. */
  copy(target: RunningRegistry, prefix: string): Promise<Timing>;
  /** Where the tool puts `team/image-N` (skopeo sync keeps only the last path component). */
  repoIn?(prefix: string, repo: string): string;
}

async function main(host: BenchHost): Promise<number> {
  const crane = builtTool('BXB_CRANE_VERSION', 'crane', 'crane');
  const regctl = builtTool('BXB_REGCLIENT_VERSION', 'regclient', 'regctl');
  const regsync = builtTool('BXB_REGCLIENT_VERSION', 'regclient', 'regsync');
  const missing = [
    ...['docker-registry', 'busybox', 'skopeo'].filter((b) => !findBinary(b)),
    ...(crane ? [] : ['crane']),
    ...(regctl ? [] : ['regctl']),
    ...(regsync ? [] : ['regsync']),
  ];
  if (missing.length) {
    process.stderr.write(`bench: needs ${missing.join(', ')} (crane, regctl and regsync: scripts/build-test-engines.sh)\n`);
    return 1;
  }
  const work = mkdtempSync(join(tmpdir(), 'bxb-bench-mirror-'));
  host.teardown(() => rmSync(work, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, 'docker') };
  const upstream = await startRegistry(host);
  const images: Image[] = [];
  let bytes = 0;
  for (let i = 0; i < IMAGES; i++) {
    const image = buildEngineImage({ version: `bench-${i}`, format: i % 2 ? 'docker' : 'oci', platforms: ['linux/amd64', 'linux/arm64'], payloadBytes: PAYLOAD, payloadLayers: LAYERS });
    const repo = `team/image-${i}`;
    await pushImage(upstream.url, repo, ['1.0'], image);
    images.push({ repo, digest: image.digest, children: image.children.map((c) => c.manifest.digest) });
    bytes += image.blobs.reduce((n, b) => n + b.size, 0);
  }
  const sources = images.map((i) => `${upstream.host}/${i.repo}:1.0`);
  const project = join(work, 'project');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, '.buildx-bootstraprc.json'), JSON.stringify({ mirror: { engine: false, images: sources } }));
  // regctl/regsync read plain-HTTP registries from their configuration (HOME/.regctl/config.json).
  const regclientHosts = (target: RunningRegistry): Promise<unknown> =>
    Promise.all([upstream.host, target.host].map((h) => time(regctl!, ['registry', 'set', '--tls', 'disabled', h], env)));

  const sequential = (each: (source: string, image: Image, target: string) => [string, string[]]) => async (target: RunningRegistry, prefix: string): Promise<Timing> => {
    const sum: Timing = { ms: 0, cpu: 0 };
    for (const [i, image] of images.entries()) {
      const [cmd, args] = each(sources[i]!, image, `${target.host}/${prefix}/${image.repo}:1.0`);
      const t = await time(cmd, args, env);
      sum.ms += t.ms;
      sum.cpu += t.cpu;
    }
    return sum;
  };
  const tools: Tool[] = [
    { name: 'buildx-bootstrap mirror', copy: (target, prefix) => time(process.execPath, [BIN, 'mirror', '--quiet', '--to', `${target.host}/${prefix}`], env, project) },
    { name: `crane copy × ${IMAGES}`, copy: sequential((src, _i, dst) => [crane!, ['copy', '--insecure', src, dst]]) },
    {
      name: `regctl image copy × ${IMAGES}`,
      copy: async (target, prefix) => {
        await regclientHosts(target);
        return sequential((src, _i, dst) => [regctl!, ['image', 'copy', src, dst]])(target, prefix);
      },
    },
    {
      name: 'regsync once',
      copy: async (target, prefix) => {
        const file = join(work, `regsync-${target.port}.yml`);
        const config = {
          version: 1,
          creds: [upstream.host, target.host].map((registry) => ({ registry, tls: 'disabled' })),
          sync: images.map((image, i) => ({ source: sources[i], target: `${target.host}/${prefix}/${image.repo}:1.0`, type: 'image' })),
        };
        writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
        return time(regsync!, ['once', '-c', file, '-v', 'error'], env);
      },
    },
    {
      name: 'skopeo sync --all',
      copy: async (target, prefix) => {
        const file = join(work, `skopeo-${target.port}.yml`);
        const source = { [upstream.host]: { 'tls-verify': false, images: Object.fromEntries(images.map((i) => [i.repo, ['1.0']])) } };
        writeFileSync(file, JSON.stringify(source, null, 2));
        return time('skopeo', ['sync', '--all', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', file, `${target.host}/${prefix}`], env);
      },
      repoIn: (prefix, repo) => `${prefix}/${repo.split('/').pop()!}`,
    },
  ];

  /** Every image's tag and child manifests in `target` carry the source digests. */
  const verify = async (tool: Tool, target: RunningRegistry, prefix: string): Promise<void> => {
    for (const image of images) {
      for (const ref of ['1.0', ...image.children]) {
        const repo = tool.repoIn ? tool.repoIn(prefix, image.repo) : `${prefix}/${image.repo}`;
        const r = await harnessRequest(`${target.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
        const want = ref === '1.0' ? image.digest : ref;
        const got = r.status === 200 ? String(r.headers['docker-content-digest']) : `HTTP ${r.status}`;
        if (got !== want) throw new Error(`${tool.name}: ${target.host}/${repo}@${ref} is ${got}, not ${want}`);
      }
    }
  };

  const first = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  const firstCpu = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  const again = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  const againCpu = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  for (let run = 0; run < RUNS; run++) {
    const targets = await Promise.all(tools.map(() => startRegistry(host)));
    // Rotate the order: no tool always goes first (cold page cache) or last.
    const order = tools.map((_, i) => (i + run) % tools.length);
    for (const i of order) {
      const tool = tools[i]!;
      const t = await tool.copy(targets[i]!, 'copy');
      first.get(tool.name)!.push(t.ms);
      firstCpu.get(tool.name)!.push(t.cpu);
      await verify(tool, targets[i]!, 'copy');
    }
    for (const i of [...order].reverse()) {
      const tool = tools[i]!;
      const t = await tool.copy(targets[i]!, 'copy');
      again.get(tool.name)!.push(t.ms);
      againCpu.get(tool.name)!.push(t.cpu);
      await verify(tool, targets[i]!, 'copy');
    }
    await Promise.all(targets.map((t) => t.stop()));
  }
  const node: number[] = [];
  for (let i = 0; i < 5; i++) node.push((await time(process.execPath, ['-e', '0'], env)).ms);

  const ours = tools[0]!.name;
  const peers = tools.slice(1).map((t) => t.name);
  const fastest = (m: Map<string, number[]>): string => peers.reduce((a, b) => (median(m.get(a)!) <= median(m.get(b)!) ? a : b));
  const out: string[] = [];
  out.push(
    '',
    `buildx-bootstrap mirror bench: ${IMAGES} images × 2 platforms × ${LAYERS} layers of ${(PAYLOAD / (1 << 20)).toFixed(0)} MiB, ${(bytes / (1 << 20)).toFixed(1)} MiB of blobs, ${RUNS} rounds (tool order rotated), median wall time; every target HEADed after every run`,
    '',
    `${'tool'.padEnd(36)}${'first copy ms'.padStart(15)}${'CPU s'.padStart(8)}${'re-run ms'.padStart(12)}${'CPU s'.padStart(8)}`,
  );
  for (const t of tools) {
    out.push(
      `${t.name.padEnd(36)}${median(first.get(t.name)!).toFixed(0).padStart(15)}${median(firstCpu.get(t.name)!).toFixed(2).padStart(8)}${median(again.get(t.name)!).toFixed(0).padStart(12)}${median(againCpu.get(t.name)!).toFixed(2).padStart(8)}`,
    );
  }
  out.push(`${'node -e 0 (start-up, reference)'.padEnd(36)}${''.padStart(23)}${median(node).toFixed(0).padStart(12)}`);
  out.push('', `CPU s: user + system of the tool's own process(es), median; the registries' CPU is not in it. Load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} cores.`);
  const f = fastest(first);
  const a = fastest(again);
  const firstRatio = median(first.get(ours)!) / median(first.get(f)!);
  const againRatio = median(again.get(ours)!) / median(again.get(a)!);
  const verdict = (ok: boolean): string => (ok ? 'ok' : 'MISSED');
  const cpuRatio = median(firstCpu.get(ours)!) / median(firstCpu.get(f)!);
  out.push('', `first copy: ${firstRatio.toFixed(2)} × the fastest peer (${f}; target ≤ 1.00)  ${verdict(firstRatio <= 1.0)}; CPU ${cpuRatio.toFixed(2)} × that peer's`);
  out.push(`no-change re-run: ${againRatio.toFixed(2)} × the fastest peer's re-run (${a}; target ≤ 2.00)  ${verdict(againRatio <= 2.0)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return firstRatio <= 1.0 && againRatio <= 2.0 ? 0 : 1;
}

await runBench('mirror', main);
