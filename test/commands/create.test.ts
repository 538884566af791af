// The create flow end to end against a real dockerd (started here), real docker-registry instances
// on loopback, and the emulated buildx plugin, asserting what a user would see: the builder's name,
// which registry served the engine image, what container runs, and what the plugin was asked.
import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd } from '../helpers/dockerd.js';
import { type FakeBuildxVersion } from '../helpers/buildx.js';
import { runCli } from '../helpers/cli.js';
import { BINARIES, cliEnv, containers, createCalls, installFakeBuildx, instances, ok, project, runBin, tempDir, until, world } from '../helpers/world.js';
import { dockerOutput } from '../helpers/docker-out.js';

t.test('mirror-only network: the builder comes up from the mirror, the upstream sees nothing (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], upstream: false, builder: { name: 'ci', driverOpts: { network: 'host' } } });
  // The upstream keeps running and serving the same tags: a request to it would succeed and be counted.
  await Promise.all([w.upstream.settle(), w.mirror.settle()]);
  const [upstreamBefore, mirrorBefore] = [w.upstream.requests(), w.mirror.requests()];
  const r = await runCli([], { cwd: dir, env: cliEnv(w, fake) });
  ok(t, r, 'create');
  t.equal(r.stdout, 'ci\n', 'stdout is the builder name alone');
  t.match(r.stderr, /Pulling from moby\/buildkit[\s\S]*Digest: sha256:[0-9a-f]{64}/, 'the pull shows its progress on stderr');
  await Promise.all([w.upstream.settle(), w.mirror.settle()]);
  t.same(w.upstream.requestLog().slice(upstreamBefore), [], 'the running upstream registry saw no request');
  t.ok(w.mirror.requests() > mirrorBefore, 'the mirror served the engine image');
  const create = createCalls(fake.calls());
  t.equal(create.length, 1, 'one buildx create');
  const pushedDigest = w.pushed['v0.18.2']!.digest;
  t.ok(create[0]!.includes(`image=${w.mirror.host}/moby/buildkit:v0.18.2@${pushedDigest}`), `the create call pins the mirror image by the digest the harness pushed (the index, ${pushedDigest}): ${create[0]!.join(' ')}`);
  const names = await containers(w.dockerd);
  t.equal(names.length, 1);
  t.match(names[0], /^buildx_buildkit_ci0 /);
  const toml = readFileSync(join(fake.dockerConfig, 'buildx-bootstrap', 'builders', 'ci', 'buildkitd.toml'), 'utf8');
  t.match(toml, new RegExp(`\\[registry\\."${w.upstream.host.replace(/\./g, '\\.')}"\\]\\s*\\nmirrors = \\[ "${w.mirror.host.replace(/\./g, '\\.')}" \\]`), 'buildkitd.toml lists the mirror under the registry it mirrors');
  const inside = await w.dockerd.docker(['exec', 'buildx_buildkit_ci0', 'cat', '/etc/buildkit/buildkitd.toml']);
  t.match(inside.stdout, w.mirror.host, 'the config reached the builder container');
});

t.test('a second run is a no-op; a changed version recreates and says why (emulated buildx)', async (t) => {
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

t.test('rm removes the builder, its container and its generated files (emulated buildx)', async (t) => {
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

t.test('errors a user meets are one line with a hint and the documented exit code (emulated buildx)', async (t) => {
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
  const hugeInt = project(t, w, { buildkitd: { config: 'base.toml' } }, { 'base.toml': '[worker.oci]\ngckeepstorage = 90000000000000000000\n' });
  const huge = await runCli([], { cwd: hugeInt, env: cliEnv(w, fake) });
  t.equal(huge.code, 2, 'an integer beyond int64 in the base buildkitd.toml is a configuration error');
  t.match(huge.stderr, /base\.toml: worker\.oci\.gckeepstorage: 90000000000000000000 is outside the signed 64-bit integers/);
  t.same(await containers(w.dockerd), [], 'nothing was created');
  for (const r of [missing, tooOld, unreachable, toml, huge]) t.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('buildx-bootstrap:')).length, 1);
});

t.test('eight parallel runs against one daemon end with one builder and one container (emulated buildx)', async (t) => {
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

t.test('SIGINT or SIGTERM during bootstrap leaves no builder, container or volume, exit 130 / 143 (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const fake = installFakeBuildx(t);
    const name = `interrupted-${signal.toLowerCase()}`;
    const dir = project(t, w, { builder: { name } });
    const run = runBin([], { cwd: dir, env: { ...cliEnv(w, fake), BXB_FAKE_BUILDX_READY_DELAY_MS: '8000' } });
    await until('the bootstrap to start', () => run.stderr().includes(`bootstrapping builder ${name}`));
    // Interrupt once the container exists (the emulated buildkitd is still "starting"), so the
    // cleanup has a real container and volume to remove.
    for (let i = 0; i < 300 && (await containers(w.dockerd)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal((await containers(w.dockerd)).length, 1, `${signal}: the builder container was being started`);
    run.child.kill(signal);
    const result = await run.done;
    t.equal(result.code, code, `${signal}: exit ${code}`);
    t.match(result.stderr, `interrupted by ${signal}`);
    t.equal(result.stdout, '', `${signal}: no builder name printed`);
    t.same(instances(fake), [], `${signal}: no builder in the store`);
    t.same(await containers(w.dockerd), [], `${signal}: no buildx_buildkit_* container`);
    t.notMatch(await dockerOutput(w.dockerd, ['volume', 'ls', '-q']), /buildx_buildkit_/, `${signal}: no state volume`);
  }
});

t.test('a fresh daemon comes up from the cache directory without asking any registry (emulated buildx)', async (t) => {
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

t.test('GitLab DinD: TLS from the environment gets a docker context and the builder runs there (emulated buildx)', async (t) => {
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
