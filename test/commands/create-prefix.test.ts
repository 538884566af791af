// Prefix mode end to end (`buildx-bootstrap [options] -- <command…>`) on a real dockerd and loopback
// registries with the emulated buildx plugin: the command runs with BUILDX_BUILDER, stdin, output,
// signals and exit code pass through, and local-only images are bridged as OCI layouts.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { runCli } from '../helpers/cli.js';
import { noPullOf } from '../helpers/pulls.js';
import { BINARIES, cliEnv, createCalls, installFakeBuildx, instances, loadLocalOnlyImage, ok, project, runBin, tempDir, until, world } from '../helpers/world.js';

t.test('prefix mode runs the command with BUILDX_BUILDER, passes output and exit code through (emulated buildx)', async (t) => {
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
  t.same(calls[0]!.args, ['build', '--builder', 'prefixed', '--load', '--build-arg', 'A=1', '-t', 'app:dev', '.'], 'user arguments unchanged and in order; the tagged result is loaded (container builder)');
  t.equal(calls[0]!.env.BUILDX_BUILDER, 'prefixed');

  // A bake whose targets cannot be read (the emulation does not evaluate bake files): said, and
  // the bake runs with the builder only, failing or not as buildx decides.
  const bake = await runCli(['--', 'docker', 'buildx', 'bake', 'app'], { cwd: dir, env });
  ok(t, bake, 'prefixed bake');
  t.match(bake.stderr, /warning: not analysing the bake: bake --print failed: ERROR: fake buildx: bake --print is not emulated; only the builder is set$/m);
  t.same(fake.calls().filter((c) => c.args[0] === 'bake').map((c) => c.args), [['bake', '--print', 'app'], ['bake', '--builder', 'prefixed', 'app']], 'read with --print, then run with the builder only (emulated buildx)');
});

t.test('a build that needs a local-only image: docker driver, or a bridged container builder (emulated buildx)', async (t) => {
  if (!requireBinaries(t, [...BINARIES, 'skopeo'])) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  // Named under the upstream's loopback host, which never receives it: any attempt to pull it
  // (by us, dockerd or BuildKit) lands in an access log instead of on Docker Hub.
  const local = `${w.upstream.host}/bxb-test/tools:1`;
  await loadLocalOnlyImage(t, w.dockerd, local);
  const dockerfile = `FROM scratch\nCOPY --from=${local} /bin/busybox /busybox\n`;

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
  t.match(context, new RegExp(`^${local.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=oci-layout://\\S+:\\S+$`), `the build gets the local image as a named OCI layout context (${args.join(' ')})`);
  t.same(args.filter((_, i) => i !== at && i !== at + 1), ['build', '--builder', 'bridged', '--load', '-t', 'app', '.'], 'user arguments unchanged and in order; the tagged result is loaded');
  const layoutDir = context?.replace(/^.*oci-layout:\/\//, '').replace(/:[^:]+$/, '') ?? '';
  t.same(second?.ociLayouts?.map(({ name, dir, valid, byTag, error }) => ({ name, dir, valid, byTag, error })), [{ name: local, dir: layoutDir, valid: true, byTag: true, error: undefined }], 'while the build ran, the context was a valid OCI layout holding its tag (emulated buildx)');
  t.notOk(existsSync(layoutDir), 'the temporary layout was removed after the command');
  await noPullOf(t, [w.upstream, w.mirror], 'bxb-test/tools');
});

t.test('prefix mode passes stdin to the command, forwards SIGTERM and SIGINT, and exits with its code (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'signals' } });
  const env = cliEnv(w, fake);
  const piped = await runBin(['--', 'sh', '-c', 'read a; read b; echo "got=$a,$b"'], { cwd: dir, env, stdin: 'first line\nsecond\n' }).done;
  t.equal(piped.code, 0, piped.stderr);
  t.equal(piped.stdout, 'got=first line,second\n', 'the command read our stdin');

  for (const [signal, code] of [['SIGTERM', 42], ['SIGINT', 33]] as const) {
    const trap = signal.slice(3);
    const script = `trap "echo got-${trap}; exit ${code}" ${trap}; echo ready; while :; do sleep 0.1; done`;
    const run = runBin(['--', 'sh', '-c', script], { cwd: dir, env });
    let out = '';
    run.child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await until('the command to start', () => out.includes('ready'));
    run.child.kill(signal);
    const result = await run.done;
    t.match(result.stdout, `got-${trap}`, `the command received ${signal}`);
    t.equal(result.code, code, `${signal}: buildx-bootstrap exits with the command's own code`);
  }
  t.same(instances(fake), ['signals'], 'the builder made before the command stays');
});

t.test('a bridged image lacking a platform the build asks for is an error before the build (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  await loadLocalOnlyImage(t, w.dockerd, 'bxb-test/tools:1');
  const dir = project(t, w, { builder: { name: 'multi' } }, { Dockerfile: 'FROM scratch\nCOPY --from=bxb-test/tools:1 /bin/busybox /busybox\n' });
  const host = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
  const other = host === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
  // --push: a multi-platform result without an output could not be loaded into dockerd 20.10's classic store.
  const r = await runCli(['--', 'docker', 'buildx', 'build', '--platform', `${host},${other}`, '-t', 'app', '--push', '.'], { cwd: dir, env: cliEnv(w, fake) });
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, new RegExp(`^buildx-bootstrap: local image (docker\\.io/)?bxb-test/tools:1 is ${host} only, but the build needs it for ${other} — `, 'm'));
  t.same(fake.calls().filter((c) => c.args[0] === 'build'), [], 'the build never ran');
});

