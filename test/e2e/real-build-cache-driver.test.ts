// The build cache in the driver decision with REAL buildx and BuildKit (issue 20 item 5): a bake
// whose only container-only need is the cross-job cache. Nothing pins BuildKit (the default
// version comes through a loopback mirror for docker.io) and one target is FROM an image that
// exists only in the daemon, so without the cache `builder.driver: auto` keeps the docker driver
// (README "How the driver is chosen": local-only images and nothing a container builder is needed
// for); with the GitLab registry cache on, the cache export alone makes it docker-container, the
// local image is bridged into its target as an OCI layout, and both targets write their tags.
import t, { type Test } from 'tap';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines, pushRealEngineImage } from '../helpers/engines.js';
import { pairs, realWorld, lastLine } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { loadLocalOnlyImage } from '../helpers/local-image.js';
import { noPullOf } from '../helpers/pulls.js';
import { dockerOutput } from '../helpers/docker-out.js';
import { cacheKey } from '../../src/driver/build-cache.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

const MARKER = 'made by docker load, in no registry\n';

interface Plan {
  driver: { driver: string; reasons: string[]; bridges: { ref: string; contextName: string; context: string }[] };
  command: { argv: string[] };
  buildCache?: { type: string; targets: { target: string; key: string }[] };
}

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: the bake's cache alone takes builder.driver auto from docker to docker-container, bridging a local-only image`, async (t) => {
    const w = await realWorld(t, pair);
    const cacheRegistry = await startRegistry(t);
    // No pin: the default moby/buildkit:buildx-stable-1, served by the mirror for docker.io.
    await pushRealEngineImage(w.mirror, pair.kit, { tags: ['buildx-stable-1'] });
    // Named on the upstream registry, which never receives it.
    const local = `${w.upstream.host}/bxb-test/tools:1`;
    await loadLocalOnlyImage(t, w.dockerd, local, { files: { 'marker.txt': MARKER } });
    const bakeFile = `group "default" { targets = ["tools", "web"] }
target "tools" {
  dockerfile = "tools.Dockerfile"
  output = ["type=local,dest=out-tools"]
}
target "web" {
  dockerfile = "web.Dockerfile"
  output = ["type=local,dest=out-web"]
}
`;
    const project = w.project(
      { mirrors: [{ host: w.mirror.host, for: 'docker.io' }], upstream: false, builder: { name: 'bakecache', driverOpts: { network: 'host' } } },
      {
        'docker-bake.hcl': bakeFile,
        'tools.Dockerfile': `FROM ${local}\nCOPY tools.txt /tools.txt\n`,
        'tools.txt': 'tools\n',
        'web.Dockerfile': 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.txt /web.txt\n',
        'web.txt': 'web\n',
      },
    );
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const keyTools = cacheKey({ dockerfile: join(project, 'tools.Dockerfile'), context: project, platforms: [] });
    const keyWeb = cacheKey({ dockerfile: join(project, 'web.Dockerfile'), context: project, platforms: [] });
    const repo = 'grp/app/cache';
    const env = { ...w.env, GITLAB_CI: 'true', CI_DEFAULT_BRANCH: 'main', CI_PROJECT_ID: '1', CI_REGISTRY_IMAGE: `${cacheRegistry.host}/grp/app`, CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' };
    const bake = ['--', 'docker', 'buildx', 'bake'];
    const out = (target: string, file: string): string => readFileSync(join(project, `out-${target}`, file), 'utf8');

    // Without the cache: the existing rule keeps the docker driver.
    const offPlan = await runCli(['plan', '--json', '--no-build-cache', ...bake], { cwd: project, env });
    ok(t, offPlan, 'plan --no-build-cache');
    const off = JSON.parse(offPlan.stdout) as Plan;
    t.equal(off.driver.driver, 'docker', '--no-build-cache: the docker driver');
    t.match(off.driver.reasons.join('\n'), /only exists in the local image store[^\n]*only the docker driver sees them\nnothing in the build needs a container builder/, 'because of the local image, and nothing needs a container builder');
    t.same(off.driver.bridges, [], 'nothing bridged');
    t.same(off.command.argv.filter((a) => /\.cache-(from|to)=/.test(a)), [], 'no cache flags');
    const offRun = await runCli(['--no-build-cache', ...bake], { cwd: project, env });
    ok(t, offRun, 'bake --no-build-cache');
    t.equal(out('tools', 'marker.txt'), MARKER, 'the docker driver built FROM the local image');
    t.equal(out('web', 'web.txt'), 'web\n');
    t.same((await dockerOutput(w.dockerd, ['ps', '-aq'])).trim(), '', 'no BuildKit container was created');
    await cacheRegistry.settle();
    t.same(cacheRegistry.requestLog(), [], 'the cache registry was not asked anything');
    rmSync(join(project, 'out-tools'), { recursive: true });
    rmSync(join(project, 'out-web'), { recursive: true });

    // With the cache: the export alone asks for a container builder; the local image is bridged.
    const onPlan = await runCli(['plan', '--json', ...bake], { cwd: project, env });
    ok(t, onPlan, 'plan with the cache');
    const on = JSON.parse(onPlan.stdout) as Plan;
    t.equal(on.driver.driver, 'docker-container', 'the cache: docker-container');
    t.match(on.driver.reasons.join('\n'), /the build cache is exported across jobs \(cache in the registry: \$CI_REGISTRY_IMAGE\/cache[^\n]*which needs a container builder/, 'the reason is the cache');
    t.notMatch(on.driver.reasons.join('\n'), /pins BuildKit|buildkit\.image/, 'and nothing pins BuildKit');
    t.same(on.driver.bridges.map((b) => b.contextName), [local], 'the local image is bridged');
    const sets = on.command.argv.filter((_, i, all) => all[i - 1] === '--set');
    t.same(sets.filter((s) => s.includes('.contexts.')).map((s) => s.replace(/=oci-layout:\/\/.*/, '')), [`tools.contexts.${local}`], 'into the target FROM it, as an OCI layout');
    t.same(
      sets.filter((s) => /\.cache-to=/.test(s)).map((s) => s.replace(/,mode=.*/, '')),
      [`tools.cache-to=type=registry,ref=${cacheRegistry.host}/${repo}:cache-main-${keyTools}`, `web.cache-to=type=registry,ref=${cacheRegistry.host}/${repo}:cache-main-${keyWeb}`],
      'each target writes its own tag',
    );

    const onRun = await runCli(bake, { cwd: project, env });
    ok(t, onRun, 'bake with the cache');
    t.equal(out('tools', 'marker.txt'), MARKER, 'the container builder built FROM the bridged local image');
    t.equal(out('tools', 'tools.txt'), 'tools\n');
    t.equal(out('web', 'web.txt'), 'web\n');
    t.match(onRun.stderr, /exporting local image \S*bxb-test\/tools:1 as an OCI layout for the builder/, 'the local image was bridged');
    const containers = (await dockerOutput(w.dockerd, ['ps', '--format', '{{.Names}}'])).split('\n').filter(Boolean);
    t.same(containers, ['buildx_buildkit_bakecache0'], 'the bake ran in a docker-container builder');
    await cacheRegistry.settle();
    const puts = cacheRegistry.requestLog().filter((l) => l.startsWith(`PUT /v2/${repo}/manifests/`));
    for (const key of [keyTools, keyWeb]) t.ok(puts.some((l) => l.startsWith(`PUT /v2/${repo}/manifests/cache-main-${key} 201`)), `cache-main-${key} written (${puts.join(' | ')})`);
    for (const name of ['tools', 'web']) t.match(onRun.stderr, new RegExp(`cache: target ${name}: [^\\n]*wrote ${cacheRegistry.host}/${repo}:cache-main-`), `the report names target ${name}'s written tag`);
    await noPullOf(t, [w.upstream, w.mirror, cacheRegistry], 'bxb-test/tools');
  });
}
