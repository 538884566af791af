// The build cache's pure decisions (issue 20 items 2–5): slug, key, branches, exact flags, the
// driver rule and the report line. Tables of inputs → exact outputs.
import t from 'tap';
import {
  bakeCacheKeys,
  bakeCacheSetArgs,
  cacheBranches,
  cacheFlagsFor,
  cacheKey,
  cacheTypeForDriver,
  formatCacheReport,
  refSlug,
  resolveCacheType,
  type BranchPlan,
  type CacheFlagInput,
  type CacheTarget,
} from '../../src/driver/build-cache.js';
import { cacheTargetOf, parseBuildCommand, rewriteBuildCommand } from '../../src/driver/build-args.js';
import { chooseDriver, type BuildNeeds } from '../../src/driver/choose-driver.js';

t.test('refSlug is GitLab CI_COMMIT_REF_SLUG', async (t) => {
  const table: [string, string][] = [
    ['main', 'main'],
    ['feature/X_y.z', 'feature-x-y-z'],
    ['-Leading-and-trailing-', 'leading-and-trailing'],
    ['Ünïcode/ブランチ', 'n-code'],
    ['a'.repeat(70), 'a'.repeat(63)],
    // cut to 63 first, then the trailing '-' goes
    [`${'b'.repeat(62)}/c`, 'b'.repeat(62)],
    ['release/1.2', 'release-1-2'],
  ];
  for (const [name, slug] of table) t.equal(refSlug(name), slug, name);
  t.equal(refSlug('😀x'), 'x', 'an emoji is one character, replaced by one -');
});

t.test('key: 8 hex over the Dockerfile path in the context, --target and sorted platforms', async (t) => {
  const base = { dockerfile: '/r/app/Dockerfile', context: '/r/app', platforms: ['linux/amd64'] };
  const k = cacheKey(base);
  t.match(k, /^[0-9a-f]{8}$/);
  t.equal(cacheKey({ ...base, dockerfile: '/other/dir/Dockerfile', context: '/other/dir' }), k, 'the checkout location does not change it');
  t.equal(cacheKey({ ...base, platforms: ['linux/arm64', 'linux/amd64'] }), cacheKey({ ...base, platforms: ['linux/amd64', 'linux/arm64'] }), 'platform order does not matter');
  const distinct = new Set([
    k,
    cacheKey({ ...base, target: 'test' }),
    cacheKey({ ...base, platforms: ['linux/arm64'] }),
    cacheKey({ ...base, dockerfile: '/r/app/docker/web.Dockerfile' }),
    cacheKey({ ...base, platforms: [] }),
  ]);
  t.equal(distinct.size, 5, 'target, platforms and Dockerfile each change the key');
});

t.test('bake with a configured key: -<target slug>; two target names with one slug stay apart', async (t) => {
  const one = { context: '/src', dockerfile: '/src/Dockerfile', platforms: [], cacheFrom: [], cacheTo: [] };
  t.same(bakeCacheKeys([{ ...one, name: 'web' }, { ...one, name: 'api' }], 'k'), ['k-web', 'k-api'], 'distinct slugs: the slug alone');
  const keys = bakeCacheKeys([{ ...one, name: 'a_b' }, { ...one, name: 'a-b' }, { ...one, name: 'App' }, { ...one, name: 'app' }, { ...one, name: 'web' }], 'k');
  t.equal(new Set(keys).size, keys.length, `five targets, five keys: ${keys.join(', ')}`);
  t.match(keys, [/^k-a-b-[0-9a-f]{8}$/, /^k-a-b-[0-9a-f]{8}$/, /^k-app-[0-9a-f]{8}$/, /^k-app-[0-9a-f]{8}$/, 'k-web']);
});

t.test('auto picks registry, then local, then off', async (t) => {
  const gl = { GITLAB_CI: 'true', CI_REGISTRY_IMAGE: 'gitlab.example:5050/grp/app' };
  t.match(resolveCacheType({ type: 'auto', ref: '' }, gl, ''), { type: 'registry', ref: 'gitlab.example:5050/grp/app/cache' });
  t.match(resolveCacheType({ type: 'auto', ref: 'r.example/c' }, gl, '/cache'), { type: 'registry', ref: 'r.example/c' });
  t.match(resolveCacheType({ type: 'auto', ref: '' }, { CI_REGISTRY_IMAGE: 'x/y' }, '/cache'), { type: 'local' }, '$CI_REGISTRY_IMAGE counts only in GitLab CI');
  t.match(resolveCacheType({ type: 'auto', ref: '' }, {}, ''), { type: 'off' });
  t.match(resolveCacheType({ type: 'local', ref: '' }, {}, ''), { type: 'off', reason: /cache\.dir is not set/ });
  t.match(resolveCacheType({ type: 'registry', ref: '' }, {}, '/c'), { type: 'off', reason: /no repository is known/ });
  t.match(resolveCacheType({ type: 'off', ref: 'r/c' }, gl, '/c'), { type: 'off' });
});

t.test('branches: own, then MR target or default; tag pipelines, forks and detached HEADs write nothing', async (t) => {
  const gl = { GITLAB_CI: 'true', CI_DEFAULT_BRANCH: 'main' };
  const table: [string, Parameters<typeof cacheBranches>[0], Pick<BranchPlan, 'own' | 'fallback' | 'write'>][] = [
    ['branch pipeline', { env: { ...gl, CI_COMMIT_BRANCH: 'feature/x', CI_COMMIT_REF_NAME: 'feature/x' } }, { own: 'feature/x', fallback: 'main', write: true }],
    ['default branch', { env: { ...gl, CI_COMMIT_BRANCH: 'main' } }, { own: 'main', fallback: 'main', write: true }],
    ['tag pipeline', { env: { ...gl, CI_COMMIT_TAG: 'v1.0', CI_COMMIT_REF_NAME: 'v1.0' } }, { own: undefined, fallback: 'main', write: false }],
    [
      'merge request',
      { env: { ...gl, CI_MERGE_REQUEST_IID: '7', CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'fix', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'release/2', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '1', CI_MERGE_REQUEST_PROJECT_ID: '1' } },
      { own: 'fix', fallback: 'release/2', write: true },
    ],
    [
      'merge request from a fork',
      { env: { ...gl, CI_MERGE_REQUEST_IID: '7', CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'main', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '99', CI_MERGE_REQUEST_PROJECT_ID: '1' } },
      { own: undefined, fallback: 'main', write: false },
    ],
    ['--build-cache-branch wins in CI', { env: { ...gl, CI_COMMIT_BRANCH: 'a' }, flag: 'b' }, { own: 'b', fallback: 'main', write: true }],
    ['git branch outside CI', { env: {}, gitBranch: 'topic', gitDefault: 'trunk' }, { own: 'topic', fallback: 'trunk', write: true }],
    ['detached HEAD outside CI', { env: {}, gitDefault: 'trunk' }, { own: undefined, fallback: 'trunk', write: false }],
    ['detached HEAD with --build-cache-branch', { env: {}, flag: 'ci-x' }, { own: 'ci-x', fallback: undefined, write: true }],
  ];
  for (const [what, input, want] of table) t.match(cacheBranches(input), want, what);
  t.match(cacheBranches({ env: { ...gl, CI_COMMIT_TAG: 'v1' } }).reasons, [/tag pipeline \(CI_COMMIT_TAG=v1\)/]);
});

const target: CacheTarget = { name: '', context: '/src', dockerfile: '/src/Dockerfile', platforms: [], cacheFrom: [], cacheTo: [] };
const KEY = cacheKey(target);
const registry = (branches: BranchPlan, extra: Partial<CacheFlagInput> = {}): CacheFlagInput => ({
  choice: { type: 'registry', ref: 'reg.example:5000/grp/app/cache', reason: '' },
  branches,
  mode: 'max',
  key: '',
  buildkitVersion: 'v0.34.2',
  ...extra,
});
const feature: BranchPlan = { own: 'Feature/X', fallback: 'main', write: true, reasons: [] };

t.test('registry flags: two reads, one write, every option explicit', async (t) => {
  const f = cacheFlagsFor(target, registry(feature));
  t.same(f.from, [`type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-${KEY}`, `type=registry,ref=reg.example:5000/grp/app/cache:cache-main-${KEY}`]);
  t.same(f.to, [`type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-${KEY},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`]);
  t.same(cacheFlagsFor(target, registry({ ...feature, own: 'main' })).from, [`type=registry,ref=reg.example:5000/grp/app/cache:cache-main-${KEY}`], 'on the default branch one tag is read');
  const tagPipeline = cacheFlagsFor(target, registry({ own: undefined, fallback: 'main', write: false, reasons: [] }));
  t.same([tagPipeline.from.length, tagPipeline.to], [1, []], 'a tag pipeline reads the default branch and writes nothing');
  const old = cacheFlagsFor(target, registry(feature, { buildkitVersion: 'v0.11.6', mode: 'min' }));
  t.same(old.to, [`type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-${KEY},mode=min,oci-mediatypes=true,ignore-error=true`], 'no image-manifest before BuildKit 0.12');
  t.match(old.reasons, [/BuildKit v0.11.6 predates image-manifest/]);
  t.match(cacheFlagsFor(target, registry(feature, { key: 'web' })).to, [/:cache-feature-x-web,/], 'buildCache.key replaces the derived key');
});

t.test("the user's own --cache-from or --cache-to: nothing added, and the reason", async (t) => {
  for (const own of [{ cacheFrom: ['type=registry,ref=x/y:c'] }, { cacheTo: ['type=inline'] }]) {
    const f = cacheFlagsFor({ ...target, ...own }, registry(feature));
    t.same([f.from, f.to], [[], []]);
    t.match(f.reasons, [/the build sets its own --cache-(from|to): no cache flags added/]);
  }
});

t.test('local flags: read only an existing cache, export to a fresh directory', async (t) => {
  const input = { ...registry(feature), choice: { type: 'local' as const, ref: '', reason: '' }, localRoot: '/ci/cache/build', localSuffix: '42' };
  const first = cacheFlagsFor(target, { ...input, localExisting: new Set() });
  t.same(first.from, [], 'no directory yet: nothing to read');
  t.same(first.to, [`type=local,dest=/ci/cache/build/${KEY}.new-42,mode=max,ignore-error=true`]);
  t.same(first.local, { fresh: `/ci/cache/build/${KEY}.new-42`, dir: `/ci/cache/build/${KEY}` });
  t.same(cacheFlagsFor(target, { ...input, localExisting: new Set([KEY]) }).from, [`type=local,src=/ci/cache/build/${KEY}`]);
});

t.test('inline: --cache-from the pushed tags with --push; without it nothing and the reason', async (t) => {
  const input = { ...registry(feature), choice: { type: 'inline' as const, ref: '', reason: '' } };
  const pushed = cacheFlagsFor(target, { ...input, push: true, tags: ['reg.example/app:1', 'reg.example/app:latest'] });
  t.same([pushed.from, pushed.to], [['reg.example/app:1', 'reg.example/app:latest'], ['type=inline']]);
  const local = cacheFlagsFor(target, { ...input, push: false, tags: ['app'] });
  t.same([local.from, local.to], [[], []]);
  t.match(local.reasons, [/does not push: no cross-job cache/]);
});

t.test('driver: auto with the cache on picks docker-container; explicit docker on the classic store falls back to inline', async (t) => {
  const needs: BuildNeeds = { platforms: [], cacheTo: [], needsBuildkitConfig: false, images: [{ ref: 'docker.io/library/app:local', localOnly: true }] };
  t.equal(chooseDriver({ setting: 'auto', needs }).driver, 'docker', 'without the cache a local-only image keeps the docker driver');
  const withCache = chooseDriver({ setting: 'auto', needs: { ...needs, buildCache: 'the build cache is exported across jobs' } });
  t.same([withCache.driver, withCache.bridge], ['docker-container', ['docker.io/library/app:local']], 'with it: a container builder, the local image bridged');
  t.equal(chooseDriver({ setting: 'docker', needs: { ...needs, buildCache: 'x' } }).driver, 'docker', 'an explicit docker driver is not refused for our cache');
  const registryChoice = { type: 'registry' as const, ref: 'r/c', reason: 'cache in the registry' };
  t.match(cacheTypeForDriver({ choice: registryChoice, driver: 'docker', imageStore: 'classic' }), { type: 'inline', reason: /classic image store exports only inline cache/ });
  t.equal(cacheTypeForDriver({ choice: registryChoice, driver: 'docker', imageStore: 'containerd' }).type, 'registry');
  t.equal(cacheTypeForDriver({ choice: registryChoice, driver: 'docker-container', imageStore: 'classic' }).type, 'registry');
});

t.test('the rewritten command: user arguments unchanged and in order, cache flags after ours', async (t) => {
  const argv = ['docker', 'buildx', 'build', '--target', 'app', '-t', 'x', '--platform', 'linux/amd64,linux/386', '-f', 'docker/Dockerfile', 'ctx'];
  const req = parseBuildCommand(argv)!;
  t.same([...req.platforms].sort(), ['linux/386', 'linux/amd64']);
  const ct = cacheTargetOf(req, '/work')!;
  t.same(ct, { name: '', context: '/work/ctx', dockerfile: '/work/docker/Dockerfile', target: 'app', platforms: req.platforms, cacheFrom: [], cacheTo: [] });
  t.equal(cacheKey(ct), cacheKey({ ...ct, dockerfile: '/elsewhere/docker/Dockerfile', context: '/elsewhere/ctx' }));
  const flags = cacheFlagsFor(ct, registry(feature));
  const key = flags.key;
  t.same(rewriteBuildCommand(argv, { builder: 'b1', addBuildContexts: {}, cache: [flags], metadataFile: '/s/m.json' }), [
    'docker', 'buildx', 'build',
    '--builder', 'b1',
    '--cache-from', `type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-${key}`,
    '--cache-from', `type=registry,ref=reg.example:5000/grp/app/cache:cache-main-${key}`,
    '--cache-to', `type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-${key},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`,
    '--metadata-file', '/s/m.json',
    ...argv.slice(3),
  ]);
  const own = ['docker', 'buildx', 'build', '--metadata-file', 'mine.json', '.'];
  t.same(rewriteBuildCommand(own, { addBuildContexts: {}, cache: [], metadataFile: '/s/m.json' }), own, "the user's own --metadata-file is kept, ours not added");
  t.same(
    bakeCacheSetArgs([
      { ...flags, target: 'web' },
      { ...cacheFlagsFor({ ...ct, name: 'api', target: 'api' }, registry(feature)), target: 'api' },
    ]).filter((_, i) => i % 2 === 1).map((s) => s.replace(/cache-(feature-x|main)-[0-9a-f]{8}/, 'cache-$1-KEY')),
    [
      'web.cache-from=type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-KEY',
      'web.cache-from=type=registry,ref=reg.example:5000/grp/app/cache:cache-main-KEY',
      'web.cache-to=type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-KEY,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true',
      'api.cache-from=type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-KEY',
      'api.cache-from=type=registry,ref=reg.example:5000/grp/app/cache:cache-main-KEY',
      'api.cache-to=type=registry,ref=reg.example:5000/grp/app/cache:cache-feature-x-KEY,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true',
    ],
    'bake: one --set per value and target',
  );
});

t.test('the report line', async (t) => {
  const flags = { reads: ['r/c:cache-x-1', 'r/c:cache-main-1'], writes: 'r/c:cache-x-1', to: ['type=registry,…'] };
  t.equal(formatCacheReport({ flags, exitCode: 0, steps: { cached: 11, total: 13 }, exportErrors: [] }), 'cache: 11 of 13 steps cached; read r/c:cache-x-1, r/c:cache-main-1; wrote r/c:cache-x-1');
  t.equal(
    formatCacheReport({ flags, exitCode: 0, steps: { cached: 0, total: 5 }, exportErrors: ['error writing manifest blob: unsupported media type'] }),
    'cache: 0 of 5 steps cached; read r/c:cache-x-1, r/c:cache-main-1; not written: error writing manifest blob: unsupported media type',
  );
  t.equal(formatCacheReport({ flags, exitCode: 1, steps: { cached: 2, total: 5 }, exportErrors: [] }), 'cache: 2 of 5 steps cached; read r/c:cache-x-1, r/c:cache-main-1; not written: the build failed (exit 1)');
  t.equal(
    formatCacheReport({ flags: { reads: ['r/c:cache-main-1'], writes: undefined, to: [] }, exitCode: 0, steps: { why: 'docker buildx history ls failed' }, exportErrors: { why: 'x' } }),
    'cache: cached steps not known (docker buildx history ls failed); read r/c:cache-main-1; wrote nothing',
  );
});
