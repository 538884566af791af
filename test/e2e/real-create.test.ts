// create, re-run, drift and rm against the REAL engines: docker-buildx built from source at the
// oldest and newest versions, each driving a real BuildKit engine image (buildkitd built from
// source) on a private dockerd, with loopback registries standing in for Docker Hub and a mirror.
import t, { type Test } from 'tap';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, realWorld, requireSetup, lastLine, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}` : ''}`);
}

async function buildkitContainers(w: RealWorld): Promise<string[]> {
  const r = await w.dockerd.docker(['ps', '-a', '--format', '{{.Names}} {{.ID}} {{.State}}']);
  return r.stdout.split('\n').filter((l) => l.startsWith('buildx_buildkit_'));
}

async function volumes(w: RealWorld): Promise<string[]> {
  const r = await w.dockerd.docker(['volume', 'ls', '--format', '{{.Name}}']);
  return r.stdout.split('\n').filter(Boolean);
}

// Real engines are slow to start on two cores: a file-level bound above tap's default per file.
t.setTimeout(1_200_000);
const engines = requireEngines(t);
for (const pair of engines ? daemonMatrix(engines) : []) {
  t.test(`${pair.label}: mirror-only create, re-run, drift, rm`, async (t) => {
    if (!requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const config = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      mirrors: [{ host: w.mirror.host, for: w.upstream.host }],
      upstream: false,
      builder: { name: 'ci', driverOpts: { network: 'host' } },
    };
    const dir = w.project(config);
    const upstreamBefore = w.upstream.requests();

    const first = await runCli([], { cwd: dir, env: w.env });
    ok(t, first, 'create');
    t.equal(first.stdout, 'ci\n', 'stdout is the builder name alone');
    await w.upstream.settle();
    t.equal(w.upstream.requests() - upstreamBefore, 0, 'the upstream registry, still running, got no request');
    t.ok(w.mirror.requestLog().some((l) => l.startsWith(`GET /v2/moby/buildkit/manifests/`)), 'the mirror served the engine image');

    const running = await buildkitContainers(w);
    t.equal(running.length, 1, 'one BuildKit container');
    t.match(running[0], /^buildx_buildkit_ci0 \S+ running$/, 'buildx made and started it');
    const version = await w.dockerd.docker(['exec', 'buildx_buildkit_ci0', 'buildkitd', '--version']);
    t.match(version.stdout, new RegExp(` ${pair.kit.version.replace(/\./g, '\\.')} `), 'the container runs the pinned BuildKit');
    const image = await w.dockerd.docker(['inspect', '--format', '{{.Config.Image}}', 'buildx_buildkit_ci0']);
    t.match(image.stdout.trim(), w.image.digest, 'by the digest of the index the registry holds');
    const inspect = await w.docker(['buildx', 'inspect', 'ci']);
    t.equal(inspect.code, 0, 'real buildx knows the builder');
    t.match(inspect.stdout, /Status:\s+running/);
    t.match(inspect.stdout, new RegExp(`Build[Kk]it(?: version)?:\\s+${pair.kit.version.replace(/\./g, '\\.')}`), 'buildx reports the pinned BuildKit version');

    const again = await runCli([], { cwd: dir, env: w.env });
    ok(t, again, 're-run');
    t.equal(again.stdout, 'ci\n');
    t.match(again.stderr, /reusing builder ci/, 'says it reused the builder');
    t.same(await buildkitContainers(w), running, 'the same container, still running');

    const changed = w.project({ ...config, buildkitd: { flags: ['--debug'] } });
    const recreate = await runCli([], { cwd: changed, env: w.env });
    ok(t, recreate, 'run after a config change');
    t.match(recreate.stderr, /recreating builder ci: .*flags/, 'says what drifted');
    const after = await buildkitContainers(w);
    t.equal(after.length, 1, 'still one BuildKit container');
    t.not(after[0]!.split(' ')[1], running[0]!.split(' ')[1], 'a new container');
    const args = await w.dockerd.docker(['inspect', '--format', '{{json .Args}}', 'buildx_buildkit_ci0']);
    t.match(args.stdout, '--debug', 'the new container runs with the new flag');

    const rm = await runCli(['rm'], { cwd: changed, env: w.env });
    ok(t, rm, 'rm');
    t.equal(rm.stdout, 'ci\n');
    t.same(await buildkitContainers(w), [], 'no container left');
    t.same((await volumes(w)).filter((v) => v.startsWith('buildx_buildkit_')), [], 'no state volume left');
    const ls = await w.docker(['buildx', 'ls']);
    t.notMatch(ls.stdout, /^ci\s/m, 'buildx no longer lists the builder');
  });
}
