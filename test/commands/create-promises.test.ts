// README promises about create, rm and prefix mode, end to end on a real dockerd and loopback
// registries with the emulated buildx plugin: what --debug prints, what a failed bootstrap leaves
// (an interrupted one: create.test.ts), rm --keep-state, the bridge flags of a plain create, secrets in files, and
// extra builder nodes.
import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry } from '../helpers/registry.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { installFakeBuildx as installFake } from '../helpers/buildx.js';
import { runCli } from '../helpers/cli.js';
import { BINARIES, cliEnv, containers, createCalls, installFakeBuildx, instances, loadLocalOnlyImage, ok, project, tempDir, world } from '../helpers/world.js';
import { dockerOutput } from '../helpers/docker-out.js';

async function volumes(d: Dockerd): Promise<string[]> {
  return (await dockerOutput(d, ['volume', 'ls', '-q'])).split('\n').filter((v) => v.startsWith('buildx_buildkit_'));
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

t.test('--debug shows every docker command; a failed bootstrap names the command, shows its transcript with --debug, and leaves nothing (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'broken' } });
  const env = { ...cliEnv(w, fake), BXB_FAKE_BUILDX_BOOT_FAIL: '1' };

  const plain = await runCli([], { cwd: dir, env });
  t.equal(plain.code, 1, 'exit 1: a buildx operation failed');
  t.equal(plain.stdout, '', 'no builder name');
  const errors = plain.stderr.split('\n').filter((l) => l.startsWith('buildx-bootstrap:'));
  t.equal(errors.length, 1, 'one error line');
  t.match(errors[0], /^buildx-bootstrap: docker buildx create failed: ERROR: failed to bootstrap .*injected by BXB_FAKE_BUILDX_BOOT_FAIL\) — .*--debug shows the buildx output/);
  t.notMatch(plain.stderr, /^(?:\[[\d:]{8}\] )?debug: /m, 'no debug lines without --debug');
  t.notMatch(plain.stderr, /^\(exit 1\)$/m, 'no transcript without --debug');
  t.same(instances(fake), [], 'no builder in the buildx store');
  t.same(await containers(w.dockerd), [], 'no buildx_buildkit_* container');
  t.same(await volumes(w.dockerd), [], 'no state volume');

  const debug = await runCli(['--debug'], { cwd: dir, env });
  t.equal(debug.code, 1);
  t.match(debug.stderr, /^(?:\[[\d:]{8}\] )?debug: \$ docker buildx version$/m, 'the buildx version call is shown');
  t.match(debug.stderr, /^(?:\[[\d:]{8}\] )?debug: \$ docker buildx create --name broken --driver docker-container --driver-opt image=\S+\/moby\/buildkit:v0\.18\.2@sha256:[0-9a-f]{64} /m, 'the exact create argv is shown');
  t.match(debug.stderr, /^(?:\[[\d:]{8}\] )?debug: \$ docker buildx create --name broken .* --bootstrap /m, 'the bootstrapping create is shown');
  t.match(debug.stderr, /^(?:\[[\d:]{8}\] )?debug: \$ docker buildx rm broken$/m, 'and the clean-up after it');
  t.match(
    debug.stderr,
    /^buildx-bootstrap: docker buildx create failed: .*\n\$ docker buildx create --name broken [^\n]* --bootstrap [^\n]*\n\(exit 1\)\n[\s\S]*ERROR: failed to bootstrap/m,
    "the error is followed by the failing command's transcript",
  );
  t.same(instances(fake), [], 'still no builder');
  t.same(await containers(w.dockerd), []);
  t.same(await volumes(w.dockerd), []);
});

t.test('rm --keep-state keeps the state volume; rm removes it (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'cache' } });
  const env = cliEnv(w, fake);
  ok(t, await runCli([], { cwd: dir, env }), 'create');
  t.same(await volumes(w.dockerd), ['buildx_buildkit_cache0_state'], 'the builder has its state volume');
  const kept = await runCli(['rm', '--keep-state'], { cwd: dir, env });
  ok(t, kept, 'rm --keep-state');
  t.equal(kept.stdout, 'cache\n');
  t.same(await containers(w.dockerd), [], 'the container is gone');
  t.same(instances(fake), [], 'the builder is gone');
  t.same(await volumes(w.dockerd), ['buildx_buildkit_cache0_state'], 'the state volume (build cache) stays');
  ok(t, await runCli([], { cwd: dir, env }), 'create again');
  ok(t, await runCli(['rm'], { cwd: dir, env }), 'rm');
  t.same(await volumes(w.dockerd), [], 'plain rm removes the state volume');
});

t.test('plain create with a local-only image prints the bridge flags; --json has buildContexts, reasons and warnings (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  await loadLocalOnlyImage(t, w.dockerd, 'bxb-test/tools:1');
  const dockerfile = 'FROM scratch\nCOPY --from=bxb-test/tools:1 /bin/busybox /busybox\n';
  const build = { dockerfile: 'Dockerfile', context: '.' };
  // A pinned version needs a container builder: the local image is bridged.
  const dir = project(t, w, { builder: { name: 'bridge' }, build }, { Dockerfile: dockerfile });
  const env = cliEnv(w, fake);
  const text = await runCli([], { cwd: dir, env });
  ok(t, text, 'create');
  t.equal(text.stdout, 'bridge\n', 'stdout is the builder name alone');
  const flags = /^(?:\[[\d:]{8}\] )?build with: (--build-context=bxb-test\/tools:1=oci-layout:\/\/(\S+):(\S+))$/m.exec(text.stderr);
  t.ok(flags, `stderr prints the --build-context flag to pass to the build: ${text.stderr}`);
  const json = await runCli(['--json'], { cwd: dir, env });
  ok(t, json, 'create --json');
  const out = JSON.parse(json.stdout) as Record<string, unknown>;
  t.same(Object.keys(out).sort(), ['action', 'buildContexts', 'builder', 'driver', 'image', 'reasons', 'warnings'], 'the keys the README lists');
  t.match(out, { builder: 'bridge', driver: 'docker-container', action: 'reuse', warnings: [] });
  t.same(out.buildContexts, [flags?.[1]], 'buildContexts lists the same flags');
  t.match(out.reasons, [/BuildKit|version|pinned/i], 'reasons say why a container builder');
  t.ok(existsSync(join(flags?.[2] ?? '/nonexistent', 'index.json')), 'the layout the flags name exists after create returns');

  // Without a pin (default image and version) the docker driver serves the local image; mirrors
  // dockerd lacks give a warning.
  const unpinned = tempDir(t);
  writeFileSync(join(unpinned, 'Dockerfile'), dockerfile);
  writeFileSync(join(unpinned, '.buildx-bootstraprc.json'), JSON.stringify({ mirrors: [{ host: w.mirror.host }], build }));
  const docker = await runCli(['--json'], { cwd: unpinned, env });
  ok(t, docker, 'create --json (docker driver)');
  const d = JSON.parse(docker.stdout) as { driver: string; warnings: string[]; reasons: string[]; buildContexts: string[] };
  t.equal(d.driver, 'docker');
  t.same(d.buildContexts, []);
  t.ok(d.reasons.length > 0, 'reasons are listed');
  t.match(d.warnings, [/registry-mirror|daemon\.json/], 'the mirror warning is in warnings');
});

t.test('secrets never reach a generated file, the lockfile or the output; BUILDX_BOOTSTRAP_STATE_DIR places the generated files (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const password = 'S3cret-Mirror-Pass';
  const [dockerd, upstream, mirror] = await Promise.all([startDockerd(t), startRegistry(t), startRegistry(t, { basicAuth: { robot: password } })]);
  await pushEngineTags(mirror, { tags: { 'v0.18.2': {} }, auth: { username: 'robot', password } });
  const w = { dockerd, upstream, mirror, pushed: {} };
  const fake = installFakeBuildx(t);
  const auth = Buffer.from(`robot:${password}`).toString('base64');
  writeFileSync(join(fake.dockerConfig, 'config.json'), JSON.stringify({ auths: { [mirror.host]: { auth } } }));
  const state = join(tempDir(t), 'state');
  const dir = project(t, w, { mirrors: [{ host: mirror.host, for: upstream.host }], upstream: false, builder: { name: 'secret', driverOpts: { network: 'host' } } });
  const env = { ...cliEnv(w, fake), BUILDX_BOOTSTRAP_STATE_DIR: state };
  const lock = await runCli(['lock', '--debug'], { cwd: dir, env });
  ok(t, lock, 'lock through the authenticated mirror');
  const create = await runCli(['--debug'], { cwd: dir, env });
  ok(t, create, 'create through the authenticated mirror');
  const json = await runCli(['--json', '--debug'], { cwd: dir, env });
  ok(t, json, 'create --json');
  t.ok(existsSync(join(state, 'builders', 'secret', 'buildkitd.toml')), 'generated files live in BUILDX_BOOTSTRAP_STATE_DIR');
  t.notOk(existsSync(join(fake.dockerConfig, 'buildx-bootstrap')), 'and not in $DOCKER_CONFIG/buildx-bootstrap');
  const files = [
    ...filesUnder(state),
    ...filesUnder(dir),
    ...filesUnder(fake.dockerConfig).filter((f) => f !== join(fake.dockerConfig, 'config.json')),
  ];
  t.ok(files.some((f) => f.endsWith('buildx-bootstrap.lock.json')), 'the lockfile is among the files checked');
  t.ok(files.some((f) => f.endsWith('buildkitd.toml')), 'buildkitd.toml is among them');
  t.ok(files.some((f) => f.includes(join('buildx', 'instances'))), "buildx's builder record is among them");
  for (const f of files) {
    const text = readFileSync(f).toString('latin1');
    t.notOk(text.includes(password) || text.includes(auth), `no secret in ${f.replace(fake.dockerConfig, '$DOCKER_CONFIG').replace(dir, '<project>').replace(state, '<state>')}`);
  }
  for (const [what, r] of [['lock', lock], ['create', create], ['create --json', json]] as const) {
    t.notOk(`${r.stdout}${r.stderr}`.includes(password) || `${r.stdout}${r.stderr}`.includes(auth), `no secret in the output of ${what} --debug`);
  }
});

t.test('builder.nodes: an extra node on a second daemon is appended, bootstrapped and reused (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const second = await startDockerd(t);
  const fake = installFake(t);
  const dir = project(t, w, { builder: { name: 'multi', nodes: [{ name: 'multi-extra', endpoint: second.host, platforms: ['linux/arm64'] }] } });
  const env = cliEnv(w, fake);
  const r = await runCli([], { cwd: dir, env });
  ok(t, r, 'create with an extra node');
  t.equal(r.stdout, 'multi\n');
  const creates = createCalls(fake.calls());
  t.equal(creates.length, 2, 'one create and one create --append');
  t.same(creates[1]!.slice(0, 3), ['create', '--name', 'multi'], 'the second call is for the same builder');
  t.ok(creates[1]!.join(' ').includes('--append --node multi-extra'), 'it appends the named node');
  t.ok(creates[1]!.includes(second.host), `the extra node's endpoint is passed: ${creates[1]!.join(' ')}`);
  t.ok(creates[1]!.includes('--platform') && creates[1]!.includes('linux/arm64'), 'with its platforms');
  t.match(await containers(w.dockerd), [/^buildx_buildkit_multi0 /], 'the first node runs on the first daemon');
  t.match(await containers(second), [/^buildx_buildkit_multi-extra /], 'the extra node runs on the second daemon');
  const again = await runCli([], { cwd: dir, env });
  ok(t, again, 'second run');
  t.equal(createCalls(fake.calls()).length, 2, 'reused: no new create');
  const changed = project(t, w, { builder: { name: 'multi', nodes: [] } });
  const dropped = await runCli([], { cwd: changed, env });
  ok(t, dropped, 'run without the extra node');
  t.match(dropped.stderr, /recreating builder multi: .*(extra nodes changed|node\(s\))/, 'dropping the node recreates the builder and says why');
  t.same(await containers(second), [], 'the extra node is gone from the second daemon');
});
