// planBuildCache (src/builder/build-cache.ts) over a parsed command: a build gets one key, a bake
// with two targets (as `bake --print` would give them) two keys and a `--set` per value; the git
// branch outside CI comes from .git files.
import t from 'tap';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { bakeCacheInput, cacheReport, cacheWanted, gitBranchFacts, planBuildCache } from '../../src/builder/build-cache.js';
import { readBakeTargets, type BakeTarget } from '../../src/driver/bake-targets.js';
import { bakeCacheKeys, cacheKey } from '../../src/driver/build-cache.js';
import { defaultConfig } from '../../src/config/schema.js';
import { parseBuildCommand, rewriteBuildCommand } from '../../src/driver/build-args.js';
import type { DockerRunner } from '../../src/docker/runner.js';

const runner = { run: async () => ({ exitCode: 1, stdout: '', stderr: 'not used', command: '' }), binary: 'docker', globalArgs: [], env: {} } as DockerRunner;
const env = { GITLAB_CI: 'true', CI_REGISTRY_IMAGE: 'reg.example/grp/app', CI_COMMIT_BRANCH: 'main', CI_DEFAULT_BRANCH: 'main' };
const base = { config: defaultConfig(), env, cwd: '/src', driver: 'docker-container' as const, runner, branchFlag: undefined, buildkitVersion: 'v0.34.2', runId: '1' };

t.test('bake with two targets: two keys, one --set per value, user arguments unchanged', async (t) => {
  const argv = ['docker', 'buildx', 'bake', '--push', 'web', 'api'];
  const request = parseBuildCommand(argv)!;
  const bakeTargets = [
    { name: 'web', context: '/src', dockerfile: '/src/web/Dockerfile', platforms: ['linux/amd64'], cacheFrom: [], cacheTo: [] },
    { name: 'api', context: '/src', dockerfile: '/src/api/Dockerfile', platforms: ['linux/amd64'], cacheFrom: [], cacheTo: [] },
  ];
  const plan = (await planBuildCache({ ...base, request, bakeTargets }))!;
  const [web, api] = plan.targets;
  t.not(web!.key, api!.key, 'two images, two keys');
  const out = rewriteBuildCommand(argv, { builder: 'b', addBuildContexts: {}, cache: plan.targets });
  t.same(out.slice(0, 5), ['docker', 'buildx', 'bake', '--builder', 'b']);
  t.same(out.slice(-3), ['--push', 'web', 'api'], 'the user arguments stay unchanged and last');
  t.same(
    out.filter((a) => a.includes('.cache-')),
    [
      `web.cache-from=type=registry,ref=reg.example/grp/app/cache:cache-main-${web!.key}`,
      `web.cache-to=type=registry,ref=reg.example/grp/app/cache:cache-main-${web!.key},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`,
      `api.cache-from=type=registry,ref=reg.example/grp/app/cache:cache-main-${api!.key}`,
      `api.cache-to=type=registry,ref=reg.example/grp/app/cache:cache-main-${api!.key},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`,
    ],
  );
  const own = (await planBuildCache({ ...base, request, bakeTargets: [{ ...bakeTargets[0]!, cacheTo: ['type=inline'] }, bakeTargets[1]!] }))!;
  t.same(own.targets.map((f) => f.to.length), [0, 1], "a target with its own cache-to gets nothing; the other still does");
  t.match(own.reasons.join('\n'), /target web sets its own --cache-to: no cache flags added/);
  const unread = (await planBuildCache({ ...base, request }))!;
  t.same(unread.targets, [], 'without the targets nothing is added');
  t.match(unread.reasons, [/bake: no cache flags are added/]);
});

t.test('the git branch and origin default from .git files, worktrees included', async (t) => {
  const dir = t.testdir({
    repo: { '.git': { HEAD: 'ref: refs/heads/topic/a\n', refs: { remotes: { origin: { HEAD: 'ref: refs/remotes/origin/trunk\n' } } } }, sub: {} },
    detached: { '.git': { HEAD: `${'a'.repeat(40)}\n` } },
    main: { '.git': { worktrees: { wt: { HEAD: 'ref: refs/heads/wt-branch\n', commondir: '../..' } }, refs: { remotes: { origin: { HEAD: 'ref: refs/remotes/origin/main\n' } } } } },
    wt: { '.git': 'gitdir: ../main/.git/worktrees/wt\n' },
    none: {},
  });
  t.same(await gitBranchFacts(join(dir, 'repo', 'sub')), { branch: 'topic/a', defaultBranch: 'trunk' });
  t.same(await gitBranchFacts(join(dir, 'detached')), {});
  t.same(await gitBranchFacts(join(dir, 'wt')), { branch: 'wt-branch', defaultBranch: 'main' });
});

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'buildx', name), 'utf8');
const TO = 'mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true';

t.test('bake --print of buildx 0.12 and 0.38: a key and --set args per target, none for the target with its own cache', async (t) => {
  // test/fixtures/buildx/docker-bake.hcl: app (app.Dockerfile, stage prod), base (its own cache-from
  // and cache-to), inline (dockerfile-inline).
  const keyApp = cacheKey({ dockerfile: '/src/app.Dockerfile', context: '/src', target: 'prod', platforms: [] });
  const keyInline = cacheKey({ dockerfile: '/src/Dockerfile', context: '/src', platforms: [] });
  t.not(keyApp, keyInline);
  for (const version of ['v0.12.1', 'v0.38.2']) {
    const argv = ['docker', 'buildx', 'bake', '--set', 'app.args.B=2', 'app', 'base', 'inline'];
    const request = parseBuildCommand(argv)!;
    const plan = (await planBuildCache({ ...base, request, ...bakeCacheInput({ targets: readBakeTargets(fixture(`bake-print-${version}.json`)) }, '/src') }))!;
    t.same(
      plan.targets.map((f) => ({ target: f.target, key: f.key, from: f.from.length, to: f.to.length })),
      [
        { target: 'app', key: keyApp, from: 1, to: 1 },
        { target: 'base', key: plan.targets[1]!.key, from: 0, to: 0 },
        { target: 'inline', key: keyInline, from: 1, to: 1 },
      ],
      `${version}: app and inline each get their own key, base nothing`,
    );
    t.match(plan.reasons.join('\n'), /target base sets its own --cache-from and --cache-to: no cache flags added/, `${version}: plan says why base gets nothing`);
    const out = rewriteBuildCommand(argv, { builder: 'b', addBuildContexts: {}, cache: plan.targets });
    const ref = (key: string): string => `reg.example/grp/app/cache:cache-main-${key}`;
    t.same(
      out,
      [
        'docker', 'buildx', 'bake', '--builder', 'b',
        '--set', `app.cache-from=type=registry,ref=${ref(keyApp)}`,
        '--set', `app.cache-to=type=registry,ref=${ref(keyApp)},${TO}`,
        '--set', `inline.cache-from=type=registry,ref=${ref(keyInline)}`,
        '--set', `inline.cache-to=type=registry,ref=${ref(keyInline)},${TO}`,
        '--set', 'app.args.B=2', 'app', 'base', 'inline',
      ],
      `${version}: the --set args after the subcommand, the user arguments unchanged and in order`,
    );
  }
});

t.test('bake: the driver decision counts the cache when a target gets it', async (t) => {
  const request = parseBuildCommand(['docker', 'buildx', 'bake'])!;
  const targets = bakeCacheInput({ targets: readBakeTargets(fixture('bake-print-v0.38.2.json')) }, '/src').bakeTargets!;
  t.match(cacheWanted(base.config, env, request, targets), { type: 'registry' }, 'two of three targets get the cache: a container builder is wanted');
  t.equal(cacheWanted(base.config, env, request, targets.filter((x) => x.name === 'base')), undefined, 'only a target with its own cache: not counted');
  t.equal(cacheWanted(base.config, env, request, undefined), undefined, 'targets not read: not counted');
  t.match(cacheWanted(base.config, env, parseBuildCommand(['docker', 'buildx', 'build', '.'])!), { type: 'registry' }, 'a build as before');
});

t.test('bake: targets one key would not tell apart get their names folded in; a remote context or a call other than build gets a note', async (t) => {
  const one = { context: '/src', dockerfile: '/src/Dockerfile', platforms: [], cacheFrom: [], cacheTo: [] };
  const keys = bakeCacheKeys([{ ...one, name: 'a' }, { ...one, name: 'b' }, { ...one, name: 'c', target: 'x' }], '');
  t.not(keys[0], keys[1], 'same Dockerfile, stage and platforms (args differ): still two keys');
  t.not(keys[0], cacheKey(one), 'neither takes the plain key the other could write');
  t.equal(keys[2], cacheKey({ ...one, target: 'x' }), 'a target with a key of its own keeps the plain key');
  t.same(bakeCacheKeys([{ ...one, name: 'a' }, { ...one, name: 'own', cacheTo: ['type=inline'] }], ''), [cacheKey(one), cacheKey(one)], 'a target with its own cache shares with nobody');
  t.same(bakeCacheKeys([{ ...one, name: 'web/1' }], 'k'), ['k-web-1'], 'a configured key gets the target');
  const remote: BakeTarget = { ...readBakeTargets(fixture('bake-print-v0.38.2.json'))[2]!, name: 'r', context: 'https://github.com/o/r.git' };
  const input = bakeCacheInput({ targets: [remote] }, '/src');
  t.same(input.bakeTargets, []);
  t.match(input.bakeNotes, [/target r has no local context/]);
  const check = bakeCacheInput({ targets: [{ ...remote, context: '.', call: 'check' }] }, '/src');
  t.same(check.bakeTargets, []);
  t.match(check.bakeNotes, [/target r does not build \(call check\)/]);
});

t.test('after a bake: one report line per target, each from the record buildx named for it', async (t) => {
  // Real records of a two-target bake (test/fixtures/history/h12-bake-json.txt): app 0 of 9 cached, tool 1 of 9.
  const histories = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'history', 'h12-bake-json.txt'), 'utf8');
  const fake = { ...runner, run: async (args: string[]) => ({ exitCode: 0, stdout: args.includes('histories') ? histories : '#1 exporting cache to registry\n#1 DONE 0.1s\n', stderr: '', command: '' }) } as DockerRunner;
  const request = parseBuildCommand(['docker', 'buildx', 'bake'])!;
  const one = { context: '/src', platforms: [], cacheFrom: [], cacheTo: [] };
  const plan = (await planBuildCache({ ...base, request, bakeTargets: [{ ...one, name: 'app', dockerfile: '/src/Dockerfile' }, { ...one, name: 'tool', dockerfile: '/src/tool.Dockerfile' }] }))!;
  const dir = t.testdir({
    // buildx ≥ 0.13 writes each target's ref under its name.
    'meta.json': JSON.stringify({ app: { 'buildx.build.ref': 'b/b0/xgm7tjie0ismyer39qktlg9ay' }, tool: { 'buildx.build.ref': 'b/b0/x1sfwuw4aikvxsx5kqxadonqm' }, 'buildx.build.warnings': [] }),
  });
  const report = (metadataFile: string | undefined) =>
    cacheReport({ plan, bake: true, exitCode: 0, runner: fake, source: { kind: 'container', container: 'c' }, metadataFile, startedAt: 0 });
  const lines = await report(join(dir, 'meta.json'));
  t.equal(lines.length, 2, 'one line per target');
  t.match(lines[0], new RegExp(`^cache: target app: 0 of 9 steps cached; read reg.example/grp/app/cache:cache-main-${plan.targets[0]!.key}; wrote reg.example/grp/app/cache:cache-main-${plan.targets[0]!.key}$`));
  t.match(lines[1], /^cache: target tool: 1 of 9 steps cached; .*wrote reg.example\/grp\/app\/cache:cache-main-/);
  // No ref (buildx 0.12) and records that import other caches and name no Dockerfile we know: said, not guessed.
  const unknown = await report(undefined);
  t.match(unknown, [/^cache: target app: cached steps not known \(buildx wrote no build ref for the target, and its record could not be told from the others'\)/, /^cache: target tool: cached steps not known/]);
});

t.test('bake on the docker driver (classic store): inline per target, only for the targets that push', async (t) => {
  for (const version of ['v0.12.1', 'v0.38.2']) {
    // bake --push --print: inline's output became type=image,push=true; app keeps its local output.
    const targets = readBakeTargets(fixture(`bake-print-${version}-push.json`)).map((x) => (x.name === 'app' ? x : { ...x, tags: ['reg.example/inline:1'] }));
    const request = parseBuildCommand(['docker', 'buildx', 'bake', '--push'])!;
    const plan = (await planBuildCache({ ...base, driver: 'docker', request, ...bakeCacheInput({ targets }, '/src') }))!;
    t.equal(plan.choice.type, 'inline', `${version}: the classic store (unknown here) allows only inline`);
    t.same(
      plan.targets.map((f) => ({ target: f.target, from: f.from, to: f.to })),
      [
        { target: 'app', from: [], to: [] },
        { target: 'inline', from: ['reg.example/inline:1'], to: ['type=inline'] },
      ],
      `${version}: the pushing target reads its own pushed tag and writes inline; the other gets nothing`,
    );
    t.match(plan.reasons.join('\n'), /does not push: no cross-job cache/);
  }
});

t.test('bake with a local cache: a directory per target key, each exported fresh', async (t) => {
  const config = defaultConfig();
  config.cache.dir = '/cache';
  config.buildCache.type = 'local';
  const request = parseBuildCommand(['docker', 'buildx', 'bake'])!;
  const targets = readBakeTargets(fixture('bake-print-v0.38.2.json'));
  const plan = (await planBuildCache({ ...base, config, env: {}, branchFlag: 'main', request, ...bakeCacheInput({ targets }, '/src') }))!;
  const [app, , inline] = plan.targets;
  t.same(
    [app!.to, inline!.to],
    [[`type=local,dest=/cache/build/${app!.key}.new-1,mode=max,ignore-error=true`], [`type=local,dest=/cache/build/${inline!.key}.new-1,mode=max,ignore-error=true`]],
    'each target exports to its own fresh directory',
  );
  t.same([app!.local?.dir, inline!.local?.dir], [`/cache/build/${app!.key}`, `/cache/build/${inline!.key}`]);
  t.not(app!.key, inline!.key);
});

t.test('a build that only checks or prints (--call check, --check, --call outline): no cache flags, and the driver decision does not count the cache', async (t) => {
  for (const args of [['--call', 'check'], ['--check'], ['--call=outline'], ['--print=targets']]) {
    const request = parseBuildCommand(['docker', 'buildx', 'build', ...args, '.'])!;
    t.equal(cacheWanted(base.config, env, request), undefined, `${args.join(' ')}: not counted for the driver`);
    const plan = (await planBuildCache({ ...base, request }))!;
    t.same(plan.targets, [], `${args.join(' ')}: no cache flags`);
    t.match(plan.reasons, [/builds nothing: no cache flags/], `${args.join(' ')}: plan says why`);
  }
  const build = (await planBuildCache({ ...base, request: parseBuildCommand(['docker', 'buildx', 'build', '--call', 'build', '.'])! }))!;
  t.equal(build.targets.length, 1, '--call build is a build: one key');
  t.ok(build.targets[0]!.from.length > 0, '… with its cache-from');
});
