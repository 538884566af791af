// `plan` against a real dockerd, loopback registries and the emulated buildx plugin: it shows what
// create and prefix mode would do — driver and reasons, bridged local images, the exact argv —
// and changes nothing (no builder, no container, no OCI layout, the command never runs).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import type { FakeBuildx } from '../helpers/buildx.js';
import { runCli } from '../helpers/cli.js';
import { BINARIES, cliEnv, containers, createCalls, installFakeBuildx, loadLocalOnlyImage, ok, project, tempDir, world, type World } from '../helpers/world.js';

interface PrefixPlan {
  driver: { driver: string; reasons: string[]; bridges: { ref: string; contextName: string; context: string }[] };
  builder: string;
  command: { argv: string[]; env: { BUILDX_BUILDER: string }; added: { args: string[]; reason: string }[]; notLoaded: string[] } | null;
}

/** What a user would see changed by a plan: builders buildx knows, buildx calls that change things, containers, our files. */
async function assertNothingChanged(t: Test, w: World, fake: FakeBuildx, env: Record<string, string | undefined>, builder: string): Promise<void> {
  const ls = spawnSync('docker', ['buildx', 'ls'], { env: env as NodeJS.ProcessEnv, encoding: 'utf8' });
  t.equal(ls.status, 0, ls.stderr);
  t.notMatch(ls.stdout, new RegExp(`^${builder}\\b`, 'm'), `no builder ${builder} in buildx ls`);
  t.same(createCalls(fake.calls()), [], 'no buildx create');
  t.same(fake.calls().filter((c) => ['build', 'bake', 'use', 'rm'].includes(c.args[0] ?? '')), [], 'no build, use or rm');
  t.same(await containers(w.dockerd), [], 'no BuildKit container');
  t.notOk(existsSync(join(fake.dockerConfig, 'buildx-bootstrap', 'builders', builder)), 'no generated files, no OCI layout');
}

t.test('plan -- <build>: a bridged container builder, shown with the exact command, and nothing done (emulated buildx)', async (t) => {
  if (!requireBinaries(t, [...BINARIES, 'skopeo'])) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  await loadLocalOnlyImage(t, w.dockerd, 'bxb-test/tools:1');
  const dir = project(t, w, { builder: { name: 'bridged' } }, { Dockerfile: 'FROM scratch\nCOPY --from=bxb-test/tools:1 /bin/busybox /busybox\n' });
  const env = cliEnv(w, fake);
  const build = ['docker', 'buildx', 'build', '-t', 'app', '.'];

  const r = await runCli(['plan', '--json', '--', ...build], { cwd: dir, env });
  ok(t, r, 'plan --json -- build');
  const plan = JSON.parse(r.stdout) as PrefixPlan;
  t.equal(plan.driver.driver, 'docker-container');
  t.ok(plan.driver.reasons.some((x) => x.includes('buildkit.version')), `the pin is a reason (${plan.driver.reasons.join('; ')})`);
  t.equal(plan.driver.bridges.length, 1, 'one local image bridged');
  const bridge = plan.driver.bridges[0]!;
  t.equal(bridge.contextName, 'bxb-test/tools:1', 'under the name the Dockerfile uses');
  t.match(bridge.context, /^oci-layout:\/\/\/\S+\/contexts-<pid>:tools-1-[0-9a-f]{8}$/);
  t.same(plan.command, {
    argv: ['docker', 'buildx', 'build', '--builder', 'bridged', '--build-context', `bxb-test/tools:1=${bridge.context}`, '--load', '-t', 'app', '.'],
    env: { BUILDX_BUILDER: 'bridged' },
    added: [{ args: ['--load'], reason: 'the build (app) is tagged and names no output: the docker-container builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does' }],
    notLoaded: [],
  });
  await assertNothingChanged(t, w, fake, env, 'bridged');

  const text = await runCli(['plan', '--', ...build], { cwd: dir, env });
  ok(t, text, 'plan -- build (text)');
  t.match(text.stdout, /^ {10}- local image \S*bxb-test\/tools:1 → --build-context bxb-test\/tools:1=oci-layout:\/\/\S+contexts-<pid>:tools-1-[0-9a-f]{8}$/m);
  t.match(text.stdout, /^runs: {5}BUILDX_BUILDER=bridged docker buildx build --builder bridged --build-context 'bxb-test\/tools:1=oci-layout:\/\/\S+' --load -t app \.$/m);
  t.match(text.stdout, /^ {10}- added --load: the build \(app\) is tagged and names no output: the docker-container builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does$/m);
  await assertNothingChanged(t, w, fake, env, 'bridged');

  // Turned off: nothing added, and the plan says the result stays in the builder's cache.
  const off = await runCli(['plan', '--json', '--no-load', '--', ...build], { cwd: dir, env });
  ok(t, off, 'plan --no-load');
  const offPlan = JSON.parse(off.stdout) as PrefixPlan;
  t.notOk(offPlan.command?.argv.includes('--load'), 'no --load with --no-load');
  t.same(offPlan.command?.notLoaded, ["the build (app) names no output and stays in the builder's cache: --no-load"]);
  const optOut = project(t, w, { builder: { name: 'bridged', driverOpts: { 'default-load': 'false' } } }, { Dockerfile: 'FROM scratch\n' });
  const byConfig = JSON.parse((await runCli(['plan', '--json', '--', ...build], { cwd: optOut, env })).stdout) as PrefixPlan;
  t.same([byConfig.command?.argv.includes('--load'), byConfig.command?.notLoaded], [false, ["the build (app) names no output and stays in the builder's cache: builder.driverOpts.default-load is false"]], 'default-load: false in the config');
  t.equal((await runCli(['--no-load'], { cwd: dir, env })).code, 2, '--no-load without a command is a usage error');

  // What the plan showed is what prefix mode then runs (the layout directory carries the run's pid).
  ok(t, await runCli(['--', ...build], { cwd: dir, env }), 'prefix mode');
  const ran = fake.calls().filter((c) => c.args[0] === 'build').pop();
  t.same(['docker', 'buildx', ...(ran?.args ?? [])].map((a) => a.replace(/contexts-\d+:/, 'contexts-<pid>:')), plan.command?.argv, 'prefix mode ran the planned argv');
});

t.test('plan -- <build> with the docker driver, and a command that is not a build, runs nothing (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  await loadLocalOnlyImage(t, w.dockerd, 'bxb-test/tools:1');
  // No pinned version, no container-only need: the docker driver sees the local image itself.
  const dir = tempDir(t);
  spawnSync('sh', ['-c', `printf 'FROM scratch\\nCOPY --from=bxb-test/tools:1 /bin/busybox /busybox\\n' > ${dir}/Dockerfile`]);
  const env = cliEnv(w, fake);
  const r = await runCli(['plan', '--json', '--', 'docker', 'buildx', 'build', '-t', 'app', '.'], { cwd: dir, env });
  ok(t, r, 'plan');
  const plan = JSON.parse(r.stdout) as PrefixPlan;
  t.equal(plan.driver.driver, 'docker');
  t.same(plan.driver.bridges, [], 'nothing bridged');
  t.same(plan.command?.argv, ['docker', 'buildx', 'build', '--builder', 'default', '-t', 'app', '.']);

  const pinned = project(t, w, { builder: { name: 'shell' } });
  const marker = join(pinned, 'ran');
  const sh = await runCli(['plan', '--', 'sh', '-c', `touch ${marker}`], { cwd: pinned, env });
  ok(t, sh, 'plan -- sh');
  t.notOk(existsSync(marker), 'the command did not run');
  t.match(sh.stdout, /^runs: {5}BUILDX_BUILDER=shell sh -c 'touch \S+\/ran'$/m, 'shown as given, with BUILDX_BUILDER');
  await assertNothingChanged(t, w, fake, env, 'shell');
  t.equal((await runCli(['resolve', '--', 'true'], { cwd: dir, env })).code, 2, 'other commands still refuse --');
});

t.test('plan shows the decision, the config and the exact argv, and changes nothing (emulated buildx)', async (t) => {
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
