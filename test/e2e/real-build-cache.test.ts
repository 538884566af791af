// The cross-job build cache end to end with REAL buildx and BuildKit (issue 20): each GitLab
// "job" runs on its own fresh dockerd with its own docker config (no builder, no BuildKit state,
// nothing shared but the loopback cache registry), so only the registry can carry the cache. The
// builder stage writes a fresh random value: a later job's output holding the same value proves
// that stage was not re-run. The registry's access log shows which tags were read and written.
// A bake with two targets does the same per target: two keys, two tags, one report line each.
import t from 'tap';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, freshJob, exitsZero, RANDOM_VALUE_DOCKERFILE, type FreshJob } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { forwardTo, jsonErrorHandler, startHttpStub } from '../helpers/net.js';
import { cacheKey } from '../../src/driver/build-cache.js';

const ok = exitsZero;

// Two stages; the builder stage's RUN writes 16 random bytes. busybox comes from the context.
const DOCKERFILE = RANDOM_VALUE_DOCKERFILE;

const GITLAB = { GITLAB_CI: 'true', CI_DEFAULT_BRANCH: 'main', CI_PROJECT_ID: '1' };

/** `METHOD /v2/<repo>/manifests/<tag> STATUS` lines for the cache repository. */
function manifestRequests(reg: RunningRegistry | { requestLog(): string[] }, repo: string): string[] {
  return reg.requestLog().filter((l) => l.includes(`/v2/${repo}/manifests/`));
}

t.setTimeout(900_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: a feature branch job on a fresh daemon reuses the default branch's cache`, async (t) => {
    const w = await realWorld(t, pair);
    const cacheRegistry = await startRegistry(t);
    const repo = 'grp/app/cache';
    const config = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      builder: { name: 'cachejob', driverOpts: { network: 'host' } },
    };
    const project = w.project(config, { Dockerfile: DOCKERFILE });
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const key = cacheKey({ dockerfile: join(project, 'Dockerfile'), context: project, platforms: [] });
    const gitlab = { ...GITLAB, CI_REGISTRY_IMAGE: `${cacheRegistry.host}/grp/app` };
    const build = (job: Pick<FreshJob, 'env'>, extra: Record<string, string>, out: string): Promise<CliResult> =>
      runCli(['--', 'docker', 'buildx', 'build', '--output', `type=local,dest=${out}`, '.'], { cwd: project, env: { ...job.env, ...gitlab, ...extra } });

    // Job 1: default branch, fresh daemon (the world's own).
    const job1 = await build({ env: w.env }, { CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' }, 'out1');
    ok(t, job1, 'job 1 (main)');
    t.match(job1.stderr, new RegExp(`cache: 0 of \\d+ steps cached; read ${cacheRegistry.host}/${repo}:cache-main-${key}; wrote ${cacheRegistry.host}/${repo}:cache-main-${key}`), 'job 1 reports nothing cached and the tag it wrote');
    await cacheRegistry.settle();
    t.ok(manifestRequests(cacheRegistry, repo).some((l) => l.startsWith(`PUT /v2/${repo}/manifests/cache-main-${key} 201`)), 'job 1 wrote cache-main-<key>');
    const value1 = readFileSync(join(project, 'out1', 'value'), 'utf8');

    // Job 2: feature branch, ANOTHER fresh daemon and docker config.
    const before = cacheRegistry.requestLog().length;
    const job2 = await build(await freshJob(t, { buildx: pair.buildx, env: w.env }), { CI_COMMIT_BRANCH: 'feature/X', CI_COMMIT_REF_NAME: 'feature/X' }, 'out2');
    ok(t, job2, 'job 2 (feature/X)');
    t.equal(readFileSync(join(project, 'out2', 'value'), 'utf8'), value1, "the builder stage did not run again: job 2's value is job 1's");
    await cacheRegistry.settle();
    const job2Log = manifestRequests({ requestLog: () => cacheRegistry.requestLog().slice(before) }, repo);
    t.ok(job2Log.some((l) => /^(GET|HEAD) /.test(l) && l.includes(`/manifests/cache-main-${key} 200`)), `job 2 read the default branch's tag (${job2Log.join(' | ')})`);
    t.ok(job2Log.some((l) => l.startsWith(`PUT /v2/${repo}/manifests/cache-feature-x-${key} 201`)), 'job 2 wrote the feature tag (slug of feature/X)');
    t.notOk(job2Log.some((l) => l.startsWith('PUT') && l.includes('cache-main')), 'job 2 did not overwrite the default branch tag');
    const steps = new RegExp(`cache: (\\d+) of (\\d+) steps cached; read ${cacheRegistry.host}/${repo}:cache-feature-x-${key}, ${cacheRegistry.host}/${repo}:cache-main-${key}; wrote ${cacheRegistry.host}/${repo}:cache-feature-x-${key}`).exec(job2.stderr);
    t.ok(steps && Number(steps[1]) > 0, `job 2's report counts cached steps from BuildKit's record: ${steps?.[0] ?? job2.stderr.split('\n').filter((l) => l.includes('cache:')).join(' | ')}`);

    // Job 3: the feature branch again, fresh daemon: reads its own tag.
    const before3 = cacheRegistry.requestLog().length;
    const job3 = await build(await freshJob(t, { buildx: pair.buildx, env: w.env }), { CI_COMMIT_BRANCH: 'feature/X', CI_COMMIT_REF_NAME: 'feature/X' }, 'out3');
    ok(t, job3, 'job 3 (feature/X again)');
    t.equal(readFileSync(join(project, 'out3', 'value'), 'utf8'), value1, 'job 3 reused the cache too');
    await cacheRegistry.settle();
    t.ok(
      manifestRequests({ requestLog: () => cacheRegistry.requestLog().slice(before3) }, repo).some((l) => /^(GET|HEAD) /.test(l) && l.includes(`/manifests/cache-feature-x-${key} 200`)),
      'job 3 read its own tag',
    );

    // A tag pipeline and a fork merge request: they read, and write nothing.
    for (const [what, extra] of [
      ['tag pipeline', { CI_COMMIT_TAG: 'v1.0.0', CI_COMMIT_REF_NAME: 'v1.0.0' }],
      ['fork merge request', { CI_MERGE_REQUEST_IID: '3', CI_PIPELINE_SOURCE: 'merge_request_event', CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'main', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '77', CI_MERGE_REQUEST_PROJECT_ID: '1' }],
    ] as const) {
      const mark = cacheRegistry.requestLog().length;
      const r = await build({ env: w.env }, extra, `out-${what.replace(/ /g, '-')}`);
      ok(t, r, what);
      await cacheRegistry.settle();
      const log = cacheRegistry.requestLog().slice(mark);
      t.same(log.filter((l) => /^(PUT|POST|PATCH) /.test(l)), [], `${what}: nothing written to the cache registry`);
      t.ok(log.some((l) => l.includes(`/manifests/cache-main-${key} 200`)), `${what}: read the default branch's tag`);
      t.match(r.stderr, /cache: \d+ of \d+ steps cached; read [^;]*; wrote nothing/, `${what}: the report says nothing was written`);
    }

    // The user's own --cache-to: nothing added, plan says why.
    const own = await runCli(['plan', '--json', '--', 'docker', 'buildx', 'build', '--cache-to', 'type=inline', '.'], { cwd: project, env: { ...w.env, ...gitlab, CI_COMMIT_BRANCH: 'main' } });
    ok(t, own, 'plan with the user own --cache-to');
    const planned = JSON.parse(own.stdout) as { command: { argv: string[] }; buildCache: { reasons: string[] } };
    t.same(planned.command.argv, ['docker', 'buildx', 'build', '--builder', 'cachejob', '--cache-to', 'type=inline', '.'], 'the command gets only --builder');
    t.match(planned.buildCache.reasons.join('\n'), /the build sets its own --cache-to: no cache flags added/, 'plan says why');
  });

  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: bake with two targets writes two keys, and a job on another fresh daemon reads both`, async (t) => {
    const w = await realWorld(t, pair);
    const cacheRegistry = await startRegistry(t);
    const repo = 'grp/app/cache';
    const config = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      builder: { name: 'bakejob', driverOpts: { network: 'host' } },
    };
    // Two targets, two Dockerfiles: two keys. A third (app's Dockerfile) sets its own cache-to.
    const bakeFile = `group "default" { targets = ["app", "tool"] }
target "app" { output = ["type=local,dest=out-app"] }
target "tool" {
  dockerfile = "tool.Dockerfile"
  output = ["type=local,dest=out-tool"]
}
target "own" {
  output = ["type=local,dest=out-own"]
  cache-to = ["type=registry,ref=${cacheRegistry.host}/mine:x"]
}
`;
    // tool's builder stage differs from app's: BuildKit runs one step once for both otherwise.
    const project = w.project(config, { Dockerfile: DOCKERFILE, 'tool.Dockerfile': DOCKERFILE.replace('od -An -tx1', 'od -An -tx2'), 'docker-bake.hcl': bakeFile });
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const keyApp = cacheKey({ dockerfile: join(project, 'Dockerfile'), context: project, platforms: [] });
    const keyTool = cacheKey({ dockerfile: join(project, 'tool.Dockerfile'), context: project, platforms: [] });
    t.not(keyApp, keyTool, 'the two Dockerfiles give two keys');
    const gitlab = { ...GITLAB, CI_REGISTRY_IMAGE: `${cacheRegistry.host}/grp/app` };
    const main = { CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' };
    const tagRef = (branch: string, key: string): string => `${cacheRegistry.host}/${repo}:cache-${branch}-${key}`;

    // plan: the --set args per target, in front of the user's own arguments; own: nothing, and why.
    const planned = await runCli(['plan', '--json', '--', 'docker', 'buildx', 'bake', '--set', 'tool.args.X=1', 'app', 'tool', 'own'], { cwd: project, env: { ...w.env, ...gitlab, ...main } });
    ok(t, planned, 'plan of the bake');
    const plan = JSON.parse(planned.stdout) as { driver: { driver: string; reasons: string[] }; command: { argv: string[] }; buildCache: { reasons: string[]; targets: { target: string; key: string }[] } };
    t.equal(plan.driver.driver, 'docker-container');
    t.match(plan.driver.reasons.join('\n'), /the build cache is exported across jobs \(cache in the registry: \$CI_REGISTRY_IMAGE\/cache/, "the driver decision counts the bake's cache");
    const to = (key: string): string => `type=registry,ref=${tagRef('main', key)},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`;
    t.same(
      plan.command.argv.filter((a, i, all) => all[i - 1] === '--set' && /\.cache-(from|to)=/.test(a)),
      [`app.cache-from=type=registry,ref=${tagRef('main', keyApp)}`, `app.cache-to=${to(keyApp)}`, `tool.cache-from=type=registry,ref=${tagRef('main', keyTool)}`, `tool.cache-to=${to(keyTool)}`],
      'plan: one --set per cache value for app and tool, each with its own key; none for own',
    );
    t.same(plan.command.argv.slice(-5), ['--set', 'tool.args.X=1', 'app', 'tool', 'own'], 'the user arguments stay unchanged, in order, last');
    t.match(plan.buildCache.reasons.join('\n'), /target own sets its own --cache-to: no cache flags added/, 'plan says why own gets nothing');
    // The user's own --set of a cache value: that target gets nothing either.
    const ownSet = await runCli(['plan', '--json', '--', 'docker', 'buildx', 'bake', '--set', `app.cache-from=type=registry,ref=${cacheRegistry.host}/mine:y`], { cwd: project, env: { ...w.env, ...gitlab, ...main } });
    ok(t, ownSet, 'plan with the user own --set app.cache-from');
    const ownPlan = JSON.parse(ownSet.stdout) as { command: { argv: string[] }; buildCache: { reasons: string[] } };
    t.same(ownPlan.command.argv.filter((a) => /^app\.cache-/.test(a)), [`app.cache-from=type=registry,ref=${cacheRegistry.host}/mine:y`], 'app keeps only the user cache-from');
    t.match(ownPlan.buildCache.reasons.join('\n'), /target app sets its own --cache-from: no cache flags added/);

    // Job 1: default branch, this world's fresh daemon.
    const job1 = await runCli(['--', 'docker', 'buildx', 'bake'], { cwd: project, env: { ...w.env, ...gitlab, ...main } });
    ok(t, job1, 'job 1 (main): bake');
    // A step both targets share (COPY busybox) runs once and counts as cached for the other.
    const cached1: Record<string, number> = {};
    for (const [name, key] of [['app', keyApp], ['tool', keyTool]] as const) {
      const m = new RegExp(`cache: target ${name}: (\\d+) of \\d+ steps cached; read ${tagRef('main', key)}; wrote ${tagRef('main', key)}`).exec(job1.stderr);
      t.ok(m, `job 1 reports target ${name} on a line of its own, with the tag it wrote: ${m?.[0] ?? job1.stderr.split('\n').filter((l) => l.includes('cache:')).join(' | ')}`);
      cached1[name] = Number(m?.[1] ?? NaN);
    }
    await cacheRegistry.settle();
    const job1Log = manifestRequests(cacheRegistry, repo);
    for (const key of [keyApp, keyTool]) t.ok(job1Log.some((l) => l.startsWith(`PUT /v2/${repo}/manifests/cache-main-${key} 201`)), `job 1 wrote cache-main-${key} (${job1Log.join(' | ')})`);
    const value = (name: string): string => readFileSync(join(project, `out-${name}`, 'value'), 'utf8');
    const app1 = value('app');
    const tool1 = value('tool');
    t.not(app1, tool1, 'each target ran its own builder stage');

    // Job 2: a feature branch on ANOTHER fresh daemon: both targets read the default branch's tags.
    const before = cacheRegistry.requestLog().length;
    const job2 = await runCli(['--', 'docker', 'buildx', 'bake'], { cwd: project, env: { ...(await freshJob(t, { buildx: pair.buildx, env: w.env })).env, ...gitlab, CI_COMMIT_BRANCH: 'feature/X', CI_COMMIT_REF_NAME: 'feature/X' } });
    ok(t, job2, 'job 2 (feature/X): bake');
    t.equal(value('app'), app1, "app's builder stage did not run again");
    t.equal(value('tool'), tool1, "tool's builder stage did not run again");
    await cacheRegistry.settle();
    const job2Log = manifestRequests({ requestLog: () => cacheRegistry.requestLog().slice(before) }, repo);
    for (const [name, key] of [['app', keyApp], ['tool', keyTool]] as const) {
      t.ok(job2Log.some((l) => /^(GET|HEAD) /.test(l) && l.includes(`/manifests/cache-main-${key} 200`)), `job 2 read cache-main-${key} for ${name} (${job2Log.join(' | ')})`);
      t.ok(job2Log.some((l) => l.startsWith(`PUT /v2/${repo}/manifests/cache-feature-x-${key} 201`)), `job 2 wrote cache-feature-x-${key} for ${name}`);
      const steps = new RegExp(`cache: target ${name}: (\\d+) of (\\d+) steps cached; read ${tagRef('feature-x', key)}, ${tagRef('main', key)}; wrote ${tagRef('feature-x', key)}`).exec(job2.stderr);
      t.ok(steps && Number(steps[1]) > cached1[name]!, `job 2's report for ${name} counts more cached steps than job 1's (${cached1[name]}), from its own record: ${steps?.[0] ?? job2.stderr.split('\n').filter((l) => l.includes('cache:')).join(' | ')}`);
    }
  });

  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: a registry that refuses the cache manifest: the build passes, the report says why`, async (t) => {
    const w = await realWorld(t, pair);
    const real = await startRegistry(t);
    const refusing = await startHttpStub(t, (req, res, body) => {
      if (req.method === 'PUT' && /\/manifests\/cache-/.test(req.url ?? '')) return jsonErrorHandler(400, 'MANIFEST_INVALID', 'manifest invalid: cache manifests are not accepted here')(req, res, body);
      forwardTo(real, req, res, body);
    });
    const project = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        builder: { name: 'refused', driverOpts: { network: 'host' } },
        buildCache: { type: 'registry', ref: `${refusing.host}/app/cache` },
      },
      { Dockerfile: DOCKERFILE },
    );
    copyFileSync('/usr/bin/busybox', join(project, 'busybox'));
    const r = await runCli(['--build-cache-branch', 'main', '--', 'docker', 'buildx', 'build', '--output', 'type=local,dest=out', '.'], { cwd: project, env: w.env });
    ok(t, r, 'the build');
    t.ok(refusing.requests().some((l) => l.startsWith('PUT') && l.includes('/manifests/cache-main-')), 'BuildKit tried to write the cache manifest');
    t.match(r.stderr, /cache: \d+ of \d+ steps cached; read [^;]+; not written: [^\n]*(400|MANIFEST_INVALID|manifest invalid)/, 'the report says the cache was not written, with the registry answer');
  });
}
