// `buildCache.type: local` end to end with REAL buildx and BuildKit (issue 20 item 7): the cache
// lives in `<cache.dir>/build/<key>`, is exported to a fresh directory that replaces it only after a
// successful build (so three builds with a changing layer keep it at one build's size), and a job
// killed during the export leaves the previous cache for the next job. The killed job is the
// bundled CLI as a process (dist/, built by `npm test`), SIGKILLed with the buildx it started.
import t, { type Test } from 'tap';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, freshJob } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { runBin, until } from '../helpers/bin.js';
import { cacheKey } from '../../src/driver/build-cache.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

// The builder stage's first RUN writes a random value (a cache hit keeps it); the second writes
// 2 MB of random bytes that change with V, so every build exports a new 2 MB layer.
const DOCKERFILE = `FROM scratch AS builder
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 16 /dev/urandom | /bin/busybox od -An -tx1 > /value"]
ARG V
RUN ["/bin/busybox", "sh", "-c", "echo $V > /v; /bin/busybox head -c 2000000 /dev/urandom > /blob"]
FROM scratch
COPY --from=builder /value /v /
`;

function duBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    total += st.isDirectory() ? duBytes(p) : st.size;
  }
  return total;
}

/** Processes whose command line mentions `text` (the buildx a killed CLI left running). */
function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent) || Number(ent) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${ent}/cmdline`, 'utf8').includes(text)) out.push(Number(ent));
    } catch {
      // gone
    }
  }
  return out;
}

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: local cache stays bounded and survives a killed job`, async (t) => {
    const w = await realWorld(t, pair);
    const project = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        builder: { name: 'localcache', driverOpts: { network: 'host' } },
        cache: { dir: '.cache' },
      },
      { Dockerfile: DOCKERFILE },
    );
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const key = cacheKey({ dockerfile: join(project, 'Dockerfile'), context: project, platforms: [] });
    const root = join(project, '.cache', 'build');
    const dir = join(root, key);
    const args = (v: string, out: string): string[] => ['--build-cache-branch', 'main', '--', 'docker', 'buildx', 'build', '--build-arg', `V=${v}`, '--output', `type=local,dest=${out}`, '.'];

    const sizes: number[] = [];
    for (const v of ['1', '2', '3']) {
      const r = await runCli(args(v, `out${v}`), { cwd: project, env: w.env });
      ok(t, r, `build ${v}`);
      t.ok(existsSync(join(dir, 'index.json')), `build ${v}: the cache is in ${dir}`);
      t.same(readdirSync(root).filter((n) => n.startsWith(key) && n !== key && !n.endsWith('.lock')), [], `build ${v}: no fresh or old directory left beside it`);
      sizes.push(duBytes(dir));
      t.match(r.stderr, new RegExp(`cache: \\d+ of \\d+ steps cached; ${v === '1' ? '' : `read ${dir}; `}wrote ${dir}`), `build ${v}: the report`);
    }
    t.ok(sizes[2]! <= 1.5 * sizes[0]!, `three builds keep the cache bounded: ${sizes.join(', ')} bytes (≤ 1.5× the first)`);
    const value = readFileSync(join(project, 'out1', 'value'), 'utf8');
    t.equal(readFileSync(join(project, 'out3', 'value'), 'utf8'), value, 'the builder stage came from the local cache');

    // A job killed while it exports: the CLI and the buildx it started, SIGKILLed once blobs land
    // in the fresh directory.
    const before = readFileSync(join(dir, 'index.json'), 'utf8');
    const run = runBin(args('4', 'out4'), { cwd: project, env: w.env, timeoutMs: 300_000 });
    const fresh = join(root, `${key}.new-${run.child.pid}`);
    await until('the fresh export directory to receive blobs', () => existsSync(join(fresh, 'blobs', 'sha256')) && readdirSync(join(fresh, 'blobs', 'sha256')).length > 0, 240_000);
    const buildx = pidsMentioning(fresh);
    run.child.kill('SIGKILL');
    for (const pid of buildx) process.kill(pid, 'SIGKILL');
    await run.done;
    t.equal(readFileSync(join(dir, 'index.json'), 'utf8'), before, 'the killed job left the previous cache as it was');

    const next = await runCli(args('5', 'out5'), { cwd: project, env: w.env });
    ok(t, next, 'the next job');
    t.equal(readFileSync(join(project, 'out5', 'value'), 'utf8'), value, 'the next job used the cache the killed one left');
    t.match(next.stderr, /cache: [1-9]\d* of \d+ steps cached/, 'and its report counts cached steps');
    t.notOk(existsSync(fresh), "the killed job's half-written directory is gone");
  });

  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: bake with a local cache: a directory per target key, used by a job on another fresh daemon`, async (t) => {
    const w = await realWorld(t, pair);
    const bakeFile = `group "default" { targets = ["app", "tool"] }
target "app" { output = ["type=local,dest=out-app"] }
target "tool" {
  dockerfile = "tool.Dockerfile"
  output = ["type=local,dest=out-tool"]
}
`;
    // tool's builder stage differs from app's (BuildKit would run one step once for both).
    const project = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        builder: { name: 'localbake', driverOpts: { network: 'host' } },
        cache: { dir: '.cache' },
      },
      { Dockerfile: DOCKERFILE, 'tool.Dockerfile': DOCKERFILE.replace('od -An -tx1', 'od -An -tx2'), 'docker-bake.hcl': bakeFile },
    );
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const keys = { app: cacheKey({ dockerfile: join(project, 'Dockerfile'), context: project, platforms: [] }), tool: cacheKey({ dockerfile: join(project, 'tool.Dockerfile'), context: project, platforms: [] }) };
    t.not(keys.app, keys.tool, 'the two Dockerfiles give two keys');
    const root = join(project, '.cache', 'build');
    const bake = ['--build-cache-branch', 'main', '--', 'docker', 'buildx', 'bake'];
    const value = (name: string): string => readFileSync(join(project, `out-${name}`, 'value'), 'utf8');

    const job1 = await runCli(bake, { cwd: project, env: w.env });
    ok(t, job1, 'job 1: bake');
    t.same(readdirSync(root).filter((n) => !n.endsWith('.lock')).sort(), [keys.app, keys.tool].sort(), `one directory per target key in ${root}`);
    for (const [name, key] of Object.entries(keys)) {
      const dir = join(root, key);
      t.ok(existsSync(join(dir, 'index.json')) && readdirSync(join(dir, 'blobs', 'sha256')).length > 0, `target ${name}: ${dir} holds a cache`);
      t.match(job1.stderr, new RegExp(`cache: target ${name}: \\d+ of \\d+ steps cached; wrote ${dir}`), `the report for ${name} names its directory`);
    }
    const app1 = value('app');
    const tool1 = value('tool');
    t.not(app1, tool1, 'each target ran its own builder stage');

    // Job 2: another fresh daemon and docker config; only the cache directory carries over.
    const job2 = await runCli(bake, { cwd: project, env: (await freshJob(t, { buildx: pair.buildx, env: w.env })).env });
    ok(t, job2, 'job 2 (another fresh daemon): bake');
    t.equal(value('app'), app1, "app's builder stage came from its cache directory");
    t.equal(value('tool'), tool1, "tool's builder stage came from its cache directory");
    for (const [name, key] of Object.entries(keys)) {
      const dir = join(root, key);
      t.match(job2.stderr, new RegExp(`cache: target ${name}: [1-9]\\d* of \\d+ steps cached; read ${dir}; wrote ${dir}`), `job 2's report for ${name}: cached steps, read and wrote its directory`);
    }
  });
}
