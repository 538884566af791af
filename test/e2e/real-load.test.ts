// Where a prefixed build's result lands, on the REAL engines (both pairs; dockerd 20.10, the classic
// image store): with a pinned BuildKit we choose a docker-container builder, and a tagged build
// without an output is loaded into the local image store as `docker build` leaves it (issue 18):
// the seed pipeline (step 1 builds base:1, `docker run base:1`, step 2 builds FROM base:1 through
// the bridge), `docker build -t`, the docker driver unchanged, `--push` not loaded, manifest lists
// refused before the build on the classic store, and a bake of two targets, one FROM a local-only
// image, both loaded.
import t, { type Test } from 'tap';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { loadLocalOnlyImage } from '../helpers/local-image.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

/** Runs a command in an image on the world's daemon (no network) and returns its stdout. */
async function runIn(w: RealWorld, image: string, args: string[]): Promise<string> {
  const r = await w.dockerd.docker(['run', '--rm', '--network', 'none', image, ...args]);
  return r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr.trim()}`;
}

async function hasImage(w: RealWorld, ref: string): Promise<boolean> {
  return (await w.dockerd.docker(['image', 'inspect', ref])).code === 0;
}

/** The registry's answer for a manifest (an image or an index), by HEAD as a client would ask. */
async function registryHas(w: RealWorld, repo: string, tag: string): Promise<string> {
  const res = await fetch(`http://${w.upstream.host}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.status === 200 ? (res.headers.get('content-type') ?? 'unknown') : `status ${res.status}`;
}

/** One whole stderr line of ours (after the logger's `[hh:mm:ss] ` when stderr is not a terminal). */
function logLine(text: string): RegExp {
  return new RegExp(`^(\\[[\\d:]+\\] )?${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');
}

const STEP1 = 'made by step 1\n';
const MARKER = 'made by docker load, in no registry\n';
const LOCAL = 'bxb-test/tools:1';

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: a tagged build on our container builder lands in the local image store`, async (t) => {
    const w = await realWorld(t, pair);
    // One config for every pinned project, so they share one builder (network host: the loopback registry).
    const pinned = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      builder: { name: 'pinned', driverOpts: { network: 'host' } },
      registries: { [w.upstream.host]: { http: true } },
    };
    const project = (files: Record<string, string>, config: Record<string, unknown> = pinned): string => {
      const dir = w.project(config, files);
      copyFileSync('/bin/busybox', join(dir, 'busybox'));
      return dir;
    };
    const cli = (dir: string, args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, env: w.env });

    await t.test('the seed pipeline: step 1 builds base:1, docker run base:1, step 2 builds FROM base:1', async (t) => {
      const step1 = project({ Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY step1.txt /step1.txt\n', 'step1.txt': STEP1 });
      const build1 = ['docker', 'buildx', 'build', '-t', 'base:1', '.'];
      const plan = JSON.parse((await cli(step1, ['plan', '--json', '--', ...build1])).stdout) as { driver: { driver: string }; command: { argv: string[] } };
      t.equal(plan.driver.driver, 'docker-container', 'the pinned BuildKit needs our container builder');
      t.same(plan.command.argv, ['docker', 'buildx', 'build', '--builder', 'pinned', '--load', '-t', 'base:1', '.'], 'the command we run carries --load');
      const r1 = await cli(step1, ['--', ...build1]);
      ok(t, r1, 'step 1');
      t.match(r1.stderr, logLine('adding --load: the build (base:1) is tagged and names no output: the docker-container builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does'));
      t.notMatch(r1.stderr, /No output specified/, 'buildx has nothing to warn about');
      t.equal(await runIn(w, 'base:1', ['/bin/busybox', 'cat', '/step1.txt']), STEP1, 'docker run base:1 shows what step 1 built');

      const step2 = project({
        Dockerfile: 'FROM base:1\nCOPY --from=base:1 /step1.txt /copied.txt\nRUN ["/bin/busybox", "sh", "-c", "echo made by step 2 > /step2.txt"]\n',
      });
      const r2 = await cli(step2, ['--', 'docker', 'buildx', 'build', '-t', 'app:1', '.']);
      ok(t, r2, 'step 2 (FROM base:1)');
      t.match(r2.stderr, /exporting local image (docker\.io\/)?(library\/)?base:1 as an OCI layout for the builder/, 'base:1 was bridged into the container builder');
      t.equal(await runIn(w, 'app:1', ['/bin/busybox', 'cat', '/step1.txt', '/copied.txt', '/step2.txt']), `${STEP1}${STEP1}made by step 2\n`, "docker run app:1 shows both steps' files");
    });

    await t.test('docker build -t app:2 on the pinned BuildKit: in the local store', async (t) => {
      const dir = project({ Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY two.txt /two.txt\n', 'two.txt': 'two\n' });
      const r = await cli(dir, ['--', 'docker', 'build', '-t', 'app:2', '.']);
      ok(t, r, 'docker build');
      t.match(r.stderr, logLine('adding --load: the build (app:2) is tagged and names no output: the docker-container builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does'));
      t.equal(await runIn(w, 'app:2', ['/bin/busybox', 'cat', '/two.txt']), 'two\n');
    });

    await t.test('the docker driver chosen: nothing added, the image is there as before', async (t) => {
      await loadLocalOnlyImage(t, w.dockerd, LOCAL, { applets: ['sh', 'cat'], files: { 'marker.txt': MARKER } });
      const dir = w.project({ builder: { name: 'unused' } }, { Dockerfile: `FROM ${LOCAL}\nRUN cat /marker.txt > /seen.txt\n` });
      const plan = JSON.parse((await cli(dir, ['plan', '--json', '--', 'docker', 'buildx', 'build', '--network', 'none', '-t', 'app:3', '.'])).stdout) as { driver: { driver: string }; command: { argv: string[] } };
      t.equal(plan.driver.driver, 'docker', 'a local-only image and nothing container-only: the docker driver');
      t.same(plan.command.argv, ['docker', 'buildx', 'build', '--builder', 'default', '--network', 'none', '-t', 'app:3', '.'], 'nothing added');
      // --network none: the test daemon has no bridge network for RUN steps.
      const r = await cli(dir, ['--', 'docker', 'buildx', 'build', '--network', 'none', '-t', 'app:3', '.']);
      ok(t, r, 'build with the docker driver');
      t.notMatch(r.stderr, /adding --load/);
      t.equal(await runIn(w, 'app:3', ['cat', '/seen.txt']), MARKER);
    });

    await t.test('--push: nothing loaded, the registry has it', async (t) => {
      const dir = project({ Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\n' });
      const ref = `${w.upstream.host}/pushed/app:1`;
      const r = await cli(dir, ['--', 'docker', 'buildx', 'build', '-t', ref, '--push', '.']);
      ok(t, r, 'build --push');
      t.notMatch(r.stderr, /adding --load/);
      t.notOk(await hasImage(w, ref), 'not in the local store');
      t.match(await registryHas(w, 'pushed/app', '1'), /manifest|index/, 'in the registry');
    });

    await t.test('several platforms or attestations with a tag and no output on the classic store: refused before the build', async (t) => {
      const dir = project({ Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\n' });
      const two = ['--platform', 'linux/amd64,linux/386'];
      const multi = await cli(dir, ['--', 'docker', 'buildx', 'build', '-t', 'multi:1', ...two, '.']);
      t.equal(multi.code, 2, 'exit 2');
      t.equal(
        multi.stderr.trim().split('\n').pop(),
        "buildx-bootstrap: the build (multi:1) is tagged and names no output, so it would be loaded into the local image store, but it builds 2 platforms (linux/amd64, linux/386), and the daemon's classic image store cannot load a manifest list — push it (--push), write it to a file (--output type=oci,dest=multi-1.tar), or run dockerd with the containerd image store; --no-load keeps the result in the build cache only",
      );
      t.notMatch(multi.stderr, /^#\d+ /m, 'no build step ran');
      const prov = await cli(dir, ['--', 'docker', 'buildx', 'build', '-t', 'multi:1', '--provenance=true', '.']);
      t.equal(prov.code, 2, '--provenance=true: exit 2');
      t.match(lastLine(prov), /but it asks for attestations \(SBOM\/provenance\), and the daemon's classic image store cannot load a manifest list — push it \(--push\)/);
      t.notOk(await hasImage(w, 'multi:1'), 'nothing built');

      const pushed = await cli(dir, ['--', 'docker', 'buildx', 'build', '-t', `${w.upstream.host}/multi/app:1`, ...two, '--push', '.']);
      ok(t, pushed, 'two platforms with --push');
      t.match(await registryHas(w, 'multi/app', '1'), /index|list/, 'the registry has the manifest list');

      const untagged = await cli(dir, ['--', 'docker', 'buildx', 'build', ...two, '.']);
      ok(t, untagged, 'two platforms without a tag or an output');
      t.match(untagged.stderr, /No output specified with docker-container driver/, "unchanged: built into the cache, with buildx's own warning");
      t.notMatch(untagged.stderr, /adding --load/);

      const off = await cli(dir, ['--no-load', '--', 'docker', 'buildx', 'build', '-t', 'multi:1', ...two, '.']);
      ok(t, off, '--no-load: built into the cache');
      t.match(off.stderr, logLine("not loaded: the build (multi:1) names no output and stays in the builder's cache: --no-load"));
      t.notOk(await hasImage(w, 'multi:1'), 'and not loaded');
    });

    await t.test('bake: two targets, one FROM a local-only image, both built on the pinned BuildKit and loaded', async (t) => {
      const dir = project({
        'docker-bake.hcl': [
          'group "default" { targets = ["tools", "web"] }',
          'target "tools" {\n  dockerfile = "tools.Dockerfile"\n  tags = ["bake-tools:1"]\n}',
          'target "web" {\n  dockerfile = "web.Dockerfile"\n  tags = ["bake-web:1"]\n}',
          '',
        ].join('\n'),
        'tools.Dockerfile': `FROM ${LOCAL}\nRUN cat /marker.txt > /seen.txt\n`,
        'web.Dockerfile': 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.txt /web.txt\n',
        'web.txt': 'web\n',
      });
      const plan = JSON.parse((await cli(dir, ['plan', '--json', '--', 'docker', 'buildx', 'bake'])).stdout) as {
        driver: { driver: string; bridges: { contextName: string; context: string }[] };
        command: { argv: string[] };
      };
      t.equal(plan.driver.driver, 'docker-container');
      const bridge = plan.driver.bridges[0];
      t.equal(bridge?.contextName, LOCAL, 'the local image is bridged');
      // buildx >= 0.20 refuses a bake reading a path outside the working directory unless allowed.
      const dir0 = bridge?.context.replace(/^oci-layout:\/\//, '').replace(/:[^:/]+$/, '');
      const allow = pair.buildx.version === 'v0.12.1' ? [] : [`--allow=fs.read=${dir0}`];
      t.same(
        plan.command.argv,
        ['docker', 'buildx', 'bake', '--builder', 'pinned', ...allow, '--set', `tools.contexts.${LOCAL}=${bridge?.context}`, '--set', 'tools.output=type=docker', '--set', 'web.output=type=docker'],
        'into the target that needs it; each tagged target loaded',
      );
      const text = (await cli(dir, ['plan', '--', 'docker', 'buildx', 'bake'])).stdout;
      t.match(text, /^ {10}- local image (docker\.io\/)?bxb-test\/tools:1 → --set tools\.contexts\.bxb-test\/tools:1=oci-layout:\/\/\S+contexts-<pid>:tools-1-[0-9a-f]{8}$/m, 'plan names the target the image is bridged into');
      t.match(text, logLine('          - added --set web.output=type=docker: bake target web (bake-web:1) is tagged and names no output: the docker-container builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does'));
      const r = await cli(dir, ['--', 'docker', 'buildx', 'bake']);
      ok(t, r, 'bake');
      t.equal(await runIn(w, 'bake-tools:1', ['cat', '/seen.txt']), MARKER, 'the target FROM the local image built through the bridge');
      t.equal(await runIn(w, 'bake-web:1', ['/bin/busybox', 'cat', '/web.txt']), 'web\n');
      await w.upstream.settle();
      t.same(w.upstream.requestLog().filter((l) => l.includes('bxb-test')), [], 'no registry was asked for the local image');
    });
  });
}
