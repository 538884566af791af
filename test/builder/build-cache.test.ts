// planBuildCache (src/builder/build-cache.ts) over a parsed command: a build gets one key, a bake
// with two targets (as `bake --print` would give them) two keys and a `--set` per value; the git
// branch outside CI comes from .git files.
import t from 'tap';
import { join } from 'node:path';
import { gitBranchFacts, planBuildCache } from '../../src/builder/build-cache.js';
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
