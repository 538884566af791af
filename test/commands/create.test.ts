// The create flow end to end against a real dockerd (started here), real docker-registry instances
// on loopback, and the emulated buildx plugin, asserting what a user would see: the builder's name,
// which registry served the engine image, what container runs, and what the plugin was asked.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { installFakeBuildx as installFake, type FakeBuildx, type FakeBuildxVersion } from '../helpers/buildx.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const BINARIES = ['dockerd', 'docker', 'docker-registry', 'busybox'];

interface World {
  dockerd: Dockerd;
  upstream: RunningRegistry;
  mirror: RunningRegistry;
}

async function world(t: Test): Promise<World> {
  const [dockerd, upstream, mirror] = await Promise.all([startDockerd(t), startRegistry(t), startRegistry(t)]);
  const tags = { 'v0.18.2': {}, 'v0.19.1': {}, 'buildx-stable-1': 'v0.18.2' };
  await pushEngineTags(upstream, { tags });
  await pushEngineTags(mirror, { tags });
  return { dockerd, upstream, mirror };
}

// One temp dir per call (t.testdir is one path per test, and a second call would wipe the first).
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-create-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function installFakeBuildx(t: Test, opts: { version?: FakeBuildxVersion } = {}): FakeBuildx {
  return installFake(t as never, { ...opts, dockerConfig: join(tempDir(t), 'docker-config') });
}

function project(t: Test, w: World, config: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.18.2' }, ...config }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function cliEnv(w: World, fake: FakeBuildx | string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env = typeof fake === 'string' ? { DOCKER_CONFIG: fake } : fake.env;
  return { PATH: process.env.PATH, HOME: env.DOCKER_CONFIG, ...env, ...w.dockerd.env, ...extra };
}

async function containers(d: Dockerd): Promise<string[]> {
  const r = await d.docker(['ps', '-a', '--format', '{{.Names}} {{.ID}}']);
  return r.stdout.split('\n').filter((l) => l.startsWith('buildx_buildkit_'));
}

function createCalls(calls: { args: string[] }[]): string[][] {
  return calls.map((c) => c.args).filter((a) => a[0] === 'create');
}

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
}

t.test('mirror-only network: the builder comes up from the mirror, the upstream sees nothing', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], upstream: false, builder: { name: 'ci', driverOpts: { network: 'host' } } });
  await w.upstream.stop();
  const before = w.mirror.requests();
  const r = await runCli([], { cwd: dir, env: cliEnv(w, fake) });
  ok(t, r, 'create');
  t.equal(r.stdout, 'ci\n', 'stdout is the builder name alone');
  t.equal(w.upstream.requests(), 0, 'the upstream registry saw no request');
  t.ok(w.mirror.requests() > before, 'the mirror served the engine image');
  const create = createCalls(fake.calls());
  t.equal(create.length, 1, 'one buildx create');
  t.ok(create[0]!.includes(`image=${w.mirror.host}/moby/buildkit:v0.18.2@${(await w.dockerd.docker(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', `${w.mirror.host}/moby/buildkit@${create[0]!.find((a) => a.startsWith('image='))!.split('@')[1]}`])).stdout.trim().split('@')[1]}`), 'the create call pins the mirror image by digest');
  const names = await containers(w.dockerd);
  t.equal(names.length, 1);
  t.match(names[0], /^buildx_buildkit_ci0 /);
  const toml = readFileSync(join(fake.dockerConfig, 'buildx-bootstrap', 'builders', 'ci', 'buildkitd.toml'), 'utf8');
  t.match(toml, new RegExp(`\\[registry\\."${w.upstream.host.replace(/\./g, '\\.')}"\\]\\s*\\nmirrors = \\[ "${w.mirror.host.replace(/\./g, '\\.')}" \\]`), 'buildkitd.toml lists the mirror under the registry it mirrors');
  const inside = await w.dockerd.docker(['exec', 'buildx_buildkit_ci0', 'cat', '/etc/buildkit/buildkitd.toml']);
  t.match(inside.stdout, w.mirror.host, 'the config reached the builder container');
});

t.test('a second run is a no-op; a changed version recreates and says why', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], builder: { name: 'ci' } });
  const env = cliEnv(w, fake);
  ok(t, await runCli([], { cwd: dir, env }), 'first run');
  const first = await containers(w.dockerd);
  const again = await runCli([], { cwd: dir, env });
  ok(t, again, 'second run');
  t.equal(again.stdout, 'ci\n');
  t.equal(createCalls(fake.calls()).length, 1, 'no second buildx create reached the plugin');
  t.same(await containers(w.dockerd), first, 'the same container');
  t.match(again.stderr, /reusing builder ci/);

  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.19.1' }, mirrors: [{ host: w.mirror.host, for: w.upstream.host }], builder: { name: 'ci' } }));
  const changed = await runCli([], { cwd: dir, env });
  ok(t, changed, 'run after a version change');
  t.match(changed.stderr, /recreating builder ci: engine image \w{12} → \w{12}/, 'says what drifted');
  t.equal(createCalls(fake.calls()).length, 2);
  const inspect = await runCli(['plan', '--json'], { cwd: dir, env });
  ok(t, inspect, 'plan');
  t.equal(JSON.parse(inspect.stdout).action.action, 'reuse');
  const version = await w.dockerd.docker(['exec', 'buildx_buildkit_ci0', 'buildkitd', '--version']);
  t.match(version.stdout, / v0\.19\.1 /, 'the recreated builder runs the new version');

  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.19.1' }, mirrors: [], builder: { name: 'ci' } }));
  const noMirror = await runCli([], { cwd: dir, env });
  ok(t, noMirror, 'run after a mirror change');
  t.match(noMirror.stderr, /recreating builder ci: .*buildkitd\.toml changed/);
});

t.test('rm removes the builder, its container and its generated files', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'gone' } });
  const env = cliEnv(w, fake);
  ok(t, await runCli([], { cwd: dir, env }), 'create');
  t.ok(existsSync(join(fake.dockerConfig, 'buildx-bootstrap', 'builders', 'gone')));
  const r = await runCli(['rm'], { cwd: dir, env });
  ok(t, r, 'rm');
  t.equal(r.stdout, 'gone\n');
  t.same(await containers(w.dockerd), []);
  t.notOk(existsSync(join(fake.dockerConfig, 'buildx', 'instances', 'gone')), 'no store entry');
  t.notOk(existsSync(join(fake.dockerConfig, 'buildx-bootstrap', 'builders', 'gone')), 'no generated files');
});

t.test('every emulated buildx version', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  for (const version of ['0.12.1', '0.19.3', '0.36.0'] as FakeBuildxVersion[]) {
    const fake = installFakeBuildx(t, { version });
    const name = `v${version.replace(/\./g, '-')}`;
    const dir = project(t, w, { builder: { name } });
    const r = await runCli([], { cwd: dir, env: cliEnv(w, fake) });
    ok(t, r, `create with buildx ${version}`);
    t.equal(r.stdout, `${name}\n`);
    const create = createCalls(fake.calls())[0] ?? [];
    t.ok(create.includes(version === '0.12.1' ? '--config' : '--buildkitd-config'), `config flag spelled for buildx ${version}`);
    t.equal(create.includes('--timeout'), version === '0.36.0', `--timeout only from buildx 0.32 (${version})`);
    const again = await runCli([], { cwd: dir, env: cliEnv(w, fake) });
    ok(t, again, `no-op with buildx ${version}`);
    t.equal(createCalls(fake.calls()).length, 1, `reused with buildx ${version}`);
  }
});

t.test('errors a user meets are one line with a hint and the documented exit code', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, {});
  const noBuildx = tempDir(t);
  const missing = await runCli([], { cwd: dir, env: cliEnv(w, noBuildx) });
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^buildx-bootstrap: docker buildx is not installed — install the docker-buildx-plugin package/m);

  const unreachable = await runCli([], { cwd: dir, env: { ...cliEnv(w, fake), DOCKER_HOST: `unix://${join(noBuildx, 'nope.sock')}` } });
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /^buildx-bootstrap: docker is not reachable: .* — start dockerd or point DOCKER_HOST at it/m);

  const badToml = project(t, w, { buildkitd: { config: 'base.toml' } }, { 'base.toml': '[worker.oci]\nmax-parallelism = \n' });
  const toml = await runCli([], { cwd: badToml, env: cliEnv(w, fake) });
  t.equal(toml.code, 2);
  t.match(toml.stderr, /base\.toml.*line 2/);
  t.same(await containers(w.dockerd), [], 'nothing was created');
  for (const r of [missing, unreachable, toml]) t.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('buildx-bootstrap:')).length, 1);
});
