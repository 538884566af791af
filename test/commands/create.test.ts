// The create flow end to end against a real dockerd (started here), real docker-registry instances
// on loopback, and the emulated buildx plugin, asserting what a user would see: the builder's name,
// which registry served the engine image, what container runs, and what the plugin was asked.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  t.match(r.stderr, /Pulling from moby\/buildkit[\s\S]*Digest: sha256:[0-9a-f]{64}/, 'the pull shows its progress on stderr');
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
  const json = await runCli(['--json'], { cwd: dir, env });
  ok(t, json, 'create --json');
  t.match(JSON.parse(json.stdout), { builder: 'ci', driver: 'docker-container', action: 'reuse', image: /moby\/buildkit:v0\.18\.2@sha256:/, buildContexts: [] });

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

  const tooOld = await runCli([], { cwd: dir, env: { ...cliEnv(w, fake), BXB_FAKE_BUILDX_VERSION: '0.9.1' } });
  t.equal(tooOld.code, 1);
  t.match(tooOld.stderr, /^buildx-bootstrap: buildx 0\.9\.1 is too old \(buildx-bootstrap needs 0\.10\.0 or later\) — upgrade the docker-buildx-plugin package/m);

  const unreachable = await runCli([], { cwd: dir, env: { ...cliEnv(w, fake), DOCKER_HOST: `unix://${join(noBuildx, 'nope.sock')}` } });
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /^buildx-bootstrap: docker is not reachable: .* — start dockerd or point DOCKER_HOST at it/m);

  const badToml = project(t, w, { buildkitd: { config: 'base.toml' } }, { 'base.toml': '[worker.oci]\nmax-parallelism = \n' });
  const toml = await runCli([], { cwd: badToml, env: cliEnv(w, fake) });
  t.equal(toml.code, 2);
  t.match(toml.stderr, /base\.toml.*line 2/);
  t.same(await containers(w.dockerd), [], 'nothing was created');
  for (const r of [missing, tooOld, unreachable, toml]) t.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('buildx-bootstrap:')).length, 1);
});

// ---- process-level runs: the bundled CLI (dist/, built by npm test) as users run it ----------

const BIN = join(process.cwd(), 'bin', 'buildx-bootstrap.js');

interface BinRun {
  child: ChildProcess;
  stderr(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function runBin(args: string[], opts: { cwd: string; env: Record<string, string | undefined> }): BinRun {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, stderr: () => stderr, done };
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function instances(fake: FakeBuildx): string[] {
  const dir = join(fake.dockerConfig, 'buildx', 'instances');
  return existsSync(dir) ? readdirSync(dir) : [];
}

t.test('eight parallel runs against one daemon end with one builder and one container', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'shared' } });
  const env = cliEnv(w, fake);
  const runs = Array.from({ length: 8 }, () => runBin(['--quiet'], { cwd: dir, env }));
  const results = await Promise.all(runs.map((r) => r.done));
  t.same(results.map((r) => r.code), [0, 0, 0, 0, 0, 0, 0, 0], `all exit 0 ${results.map((r) => r.stderr).join('')}`);
  t.same(results.map((r) => r.stdout), Array(8).fill('shared\n'), 'each prints the builder name');
  t.same(results.map((r) => r.stderr), Array(8).fill(''), '--quiet prints nothing else');
  t.same(instances(fake), ['shared'], 'one builder in the buildx store');
  t.equal((await containers(w.dockerd)).length, 1, 'one builder container');
  t.equal(createCalls(fake.calls()).length, 1, 'buildx create ran once');
});

t.test('SIGINT during bootstrap leaves no builder and no container, exit 130', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'interrupted' } });
  const run = runBin([], { cwd: dir, env: { ...cliEnv(w, fake), BXB_FAKE_BUILDX_READY_DELAY_MS: '8000' } });
  await until('the bootstrap to start', () => /bootstrapping builder interrupted/.test(run.stderr()));
  // Interrupt once the container exists (the emulated buildkitd is still "starting"), so the
  // cleanup has a real container and volume to remove.
  for (let i = 0; i < 300 && (await containers(w.dockerd)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal((await containers(w.dockerd)).length, 1, 'the builder container was being started');
  run.child.kill('SIGINT');
  const result = await run.done;
  t.equal(result.code, 130, 'exit 130');
  t.match(result.stderr, /interrupted by SIGINT/);
  t.equal(result.stdout, '', 'no builder name printed');
  t.same(instances(fake), [], 'no builder in the store');
  t.same(await containers(w.dockerd), [], 'no buildx_buildkit_* container');
  const volumes = await w.dockerd.docker(['volume', 'ls', '-q']);
  t.notMatch(volumes.stdout, /buildx_buildkit_/, 'no state volume');
});

t.test('a fresh daemon comes up from the cache directory without asking any registry', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fresh = await startDockerd(t);
  const fake = installFakeBuildx(t);
  const cache = join(tempDir(t), 'engine-cache');
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], cache: { dir: cache }, builder: { name: 'cached' } });
  const env = cliEnv(w, fake);
  const lock = await runCli(['lock'], { cwd: dir, env });
  ok(t, lock, 'lock');
  ok(t, await runCli([], { cwd: dir, env }), 'first job');
  t.ok(readdirSync(cache).some((f) => f.endsWith('.tar')), 'the engine image was saved to the cache directory');
  const seen = fake.calls().length;
  const rerun = await runCli([], { cwd: dir, env });
  ok(t, rerun, 'no-op re-run with the lockfile');
  t.same(fake.calls().slice(seen).map((c) => c.args[0]), [], 'a locked no-op re-run starts no buildx at all: the store record and the container state answer');
  await Promise.all([w.upstream.settle(), w.mirror.settle()]);
  const before = w.upstream.requests() + w.mirror.requests();
  // The next job: a fresh daemon and a fresh ~/.docker, as in a new DinD job.
  const nextJob = installFakeBuildx(t);
  const second = await runCli([], { cwd: dir, env: { ...cliEnv(w, nextJob), ...fresh.env } });
  ok(t, second, 'job on a fresh daemon with no registry');
  t.equal(second.stdout, 'cached\n');
  t.match(second.stderr, /loaded from the cache directory/);
  await Promise.all([w.upstream.settle(), w.mirror.settle()]);
  t.equal(w.upstream.requests() + w.mirror.requests(), before, 'no registry request: not for the lock, not for the pull');

  // Every registry gone: still up (a stopped builder on a fresh daemon next time).
  await Promise.all([w.upstream.stop(), w.mirror.stop()]);
  const third = installFakeBuildx(t);
  const offline = await runCli([], { cwd: dir, env: { ...cliEnv(w, third), ...fresh.env } });
  ok(t, offline, 'job with every registry unreachable');
  const names = await containers(fresh);
  t.equal(names.length, 1, 'the builder container runs on the fresh daemon');
  const image = await fresh.docker(['container', 'inspect', '--format', '{{.Image}}', 'buildx_buildkit_cached0']);
  const pinned = JSON.parse(readFileSync(join(dir, 'buildx-bootstrap.lock.json'), 'utf8')) as { platforms?: Record<string, { config: string }> };
  t.ok(Object.values(pinned.platforms ?? {}).some((p) => p.config === image.stdout.trim()), 'it runs the locked image');
});

t.test('GitLab DinD: TLS from the environment gets a docker context and the builder runs there', async (t) => {
  if (!requireBinaries(t, [...BINARIES, 'openssl'])) return;
  const w = await world(t);
  const dind = await startDockerd(t, { tls: true });
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'dind' } });
  const env = { ...cliEnv(w, fake), ...dind.env };
  const r = await runCli([], { cwd: dir, env });
  ok(t, r, 'create on the DinD daemon');
  t.equal(r.stdout, 'dind\n');
  const create = createCalls(fake.calls())[0] ?? [];
  t.match(create[create.length - 1], /^buildx-bootstrap-[0-9a-f]{10}$/, 'the builder endpoint is the generated context');
  t.equal((await containers(dind)).length, 1, 'the container runs on the DinD daemon');
  t.same(await containers(w.dockerd), [], 'and not on the other one');
  const again = await runCli([], { cwd: dir, env });
  ok(t, again, 'second run');
  t.equal(createCalls(fake.calls()).length, 1, 'reused');
});

t.test('prefix mode runs the command with BUILDX_BUILDER, passes output and exit code through', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'prefixed' } });
  const env = cliEnv(w, fake);
  const r = await runCli(['--', 'sh', '-c', 'echo "builder=$BUILDX_BUILDER"; echo oops >&2; exit 7'], { cwd: dir, env });
  t.equal(r.code, 7, "the command's exit code");
  t.match(r.stdout, /^builder=prefixed$/m);
  t.match(r.stderr, /^oops$/m);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  const build = await runCli(['--', 'docker', 'buildx', 'build', '--build-arg', 'A=1', '-t', 'app:dev', '.'], { cwd: dir, env });
  ok(t, build, 'prefixed build');
  const calls = fake.calls().filter((c) => c.args[0] === 'build');
  t.equal(calls.length, 1);
  t.same(calls[0]!.args, ['build', '--builder', 'prefixed', '--build-arg', 'A=1', '-t', 'app:dev', '.'], 'user arguments unchanged and in order');
  t.equal(calls[0]!.env.BUILDX_BUILDER, 'prefixed');
});

t.test('a build that needs a local-only image: docker driver, or a bridged container builder', async (t) => {
  if (!requireBinaries(t, [...BINARIES, 'skopeo'])) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  // An image that exists only in this daemon: built from the machine's busybox, never pushed.
  const root = tempDir(t);
  const tar = join(root, 'tools.tar');
  const files = join(root, 'rootfs');
  await w.dockerd.docker(['version']);
  const made = spawnSync('sh', ['-c', `mkdir -p ${files}/bin && cp /bin/busybox ${files}/bin/ && tar -C ${files} -cf ${tar} .`]);
  t.equal(made.status, 0);
  const imported = await w.dockerd.docker(['import', tar, 'bxb-test/tools:1']);
  t.equal(imported.code, 0, imported.stderr);
  // As in the CI job that motivates this: the image arrives by `docker load` (from an earlier step).
  const saved = join(root, 'tools-image.tar');
  t.equal((await w.dockerd.docker(['save', '-o', saved, 'bxb-test/tools:1'])).code, 0);
  t.equal((await w.dockerd.docker(['rmi', 'bxb-test/tools:1'])).code, 0);
  const loaded = await w.dockerd.docker(['load', '-i', saved]);
  t.equal(loaded.code, 0, loaded.stderr);
  const dockerfile = 'FROM scratch\nCOPY --from=bxb-test/tools:1 /bin/busybox /busybox\n';

  // No pinned version, no container-only need: the docker driver sees the local image itself.
  const plain = tempDir(t);
  writeFileSync(join(plain, 'Dockerfile'), dockerfile);
  const viaDocker = await runCli(['--', 'docker', 'buildx', 'build', '-t', 'app', '.'], { cwd: plain, env: cliEnv(w, fake) });
  ok(t, viaDocker, 'build with the docker driver');
  const first = fake.calls().filter((c) => c.args[0] === 'build').pop();
  t.same(first?.args, ['build', '--builder', 'default', '-t', 'app', '.'], 'the docker driver builder, nothing bridged');
  t.equal(createCalls(fake.calls()).length, 0, 'no builder was created');

  // A pinned BuildKit needs a container builder: the local image is bridged as an OCI layout.
  const pinned = project(t, w, { builder: { name: 'bridged' } }, { Dockerfile: dockerfile });
  const viaContainer = await runCli(['--', 'docker', 'buildx', 'build', '-t', 'app', '.'], { cwd: pinned, env: cliEnv(w, fake) });
  ok(t, viaContainer, 'build with a bridged container builder');
  const second = fake.calls().filter((c) => c.args[0] === 'build').pop();
  const args = second?.args ?? [];
  const at = args.indexOf('--build-context');
  const context = at > 0 ? args[at + 1] : undefined;
  t.match(context, /^bxb-test\/tools:1=oci-layout:\/\/\S+:\S+$/, `the build gets the local image as a named OCI layout context (${args.join(' ')})`);
  t.same(args.filter((_, i) => i !== at && i !== at + 1), ['build', '--builder', 'bridged', '-t', 'app', '.'], 'user arguments unchanged and in order');
  const layoutDir = context?.replace(/^.*oci-layout:\/\//, '').replace(/:[^:]+$/, '') ?? '';
  t.notOk(existsSync(layoutDir), 'the temporary layout was removed after the command');
  t.equal(w.upstream.requestLog().filter((l) => l.includes('tools')).length + w.mirror.requestLog().filter((l) => l.includes('tools')).length, 0, 'no registry was asked for the local image');
});

t.test('prefix mode forwards SIGTERM to the command and exits with its code', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'signals' } });
  const script = 'trap "echo got-TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done';
  const run = runBin(['--', 'sh', '-c', script], { cwd: dir, env: cliEnv(w, fake) });
  let out = '';
  run.child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await until('the command to start', () => out.includes('ready'));
  run.child.kill('SIGTERM');
  const result = await run.done;
  t.match(result.stdout, /got-TERM/, 'the command received SIGTERM');
  t.equal(result.code, 42, "buildx-bootstrap exits with the command's own code");
  t.same(instances(fake), ['signals'], 'the builder made before the command stays');
});

t.test('plan shows the decision, the config and the exact argv, and changes nothing', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], builder: { name: 'planned', driverOpts: { network: 'host' } } });
  const env = cliEnv(w, fake);
  const r = await runCli(['plan', '--json'], { cwd: dir, env });
  ok(t, r, 'plan');
  const plan = JSON.parse(r.stdout) as { image: { reference: string; source: string }; driver: { driver: string; reasons: string[] }; argv: string[]; buildkitdToml: string; action: { action: string } };
  t.equal(plan.image.source, `${w.mirror.host}/moby/buildkit`, 'the mirror serves it');
  t.equal(plan.driver.driver, 'docker-container');
  t.ok(plan.driver.reasons.length > 0, 'with its reasons');
  t.equal(plan.action.action, 'create');
  t.same(plan.argv.slice(0, 8), ['docker', 'buildx', 'create', '--name', 'planned', '--driver', 'docker-container', '--driver-opt']);
  t.ok(plan.argv.includes(`image=${plan.image.reference}`), 'the pinned image is in the argv');
  t.match(plan.buildkitdToml, w.mirror.host);
  t.equal(fake.calls().filter((c) => c.args[0] !== 'version' && c.args[0] !== 'inspect').length, 0, 'no buildx call that changes anything');
  t.same(await containers(w.dockerd), []);
  const text = await runCli(['plan'], { cwd: dir, env });
  ok(t, text, 'plan (text)');
  t.match(text.stdout, /^driver: {3}docker-container$/m);
  t.match(text.stdout, /^builder: {2}planned — would create: builder planned does not exist$/m);

  // A locked tag moved in the registry: plan fails like create would (exit 4).
  ok(t, await runCli(['lock'], { cwd: dir, env }), 'lock');
  await pushEngineTags(w.mirror, { tags: { 'v0.18.2': { version: 'v0.18.2', platforms: ['linux/amd64'] } } });
  await pushEngineTags(w.upstream, { tags: { 'v0.18.2': { version: 'v0.18.2', platforms: ['linux/amd64'] } } });
  const moved = await runCli(['plan'], { cwd: dir, env });
  t.equal(moved.code, 4, 'exit 4 when the registry serves another digest for the locked tag');
  t.match(moved.stderr, /sha256:[0-9a-f]{64}/);
});
