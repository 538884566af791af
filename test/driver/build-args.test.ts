import t from 'tap';
import {
  bakeAllowArgs,
  bakeContextArgs,
  bakePrintArgs,
  bakeUnreadable,
  buildResultOf,
  isBuildCommand,
  loadNeedsImageStore,
  parseBuildCommand,
  parseCacheSpec,
  parseOutputSpec,
  resultLoads,
  rewriteBuildCommand,
  type BuildRequest,
  type LoadContext,
} from '../../src/driver/build-args.js';
import { UsageError } from '../../src/errors.js';

const parse = (cmd: string | string[], env: Record<string, string> = {}): BuildRequest => {
  const argv = typeof cmd === 'string' ? cmd.split(' ') : cmd;
  const r = parseBuildCommand(argv, env);
  if (!r) throw new Error(`not recognised: ${argv.join(' ')}`);
  return r;
};

t.test('recognises build commands and nothing else', async (t) => {
  const yes: [string, BuildRequest['kind'], BuildRequest['invocation'], number][] = [
    ['docker buildx build .', 'build', 'buildx', 2],
    ['docker buildx b .', 'build', 'buildx', 2],
    ['docker buildx bake', 'bake', 'buildx', 2],
    ['docker buildx f app', 'bake', 'buildx', 2],
    ['docker build -t x .', 'build', 'docker-build', 1],
    ['docker builder build .', 'build', 'docker-build', 2],
    ['docker image build .', 'build', 'docker-build', 2],
    ['/usr/local/bin/docker buildx build .', 'build', 'buildx', 2],
    ['docker --context ci -H unix:///tmp/d.sock --log-level=warn -D buildx build .', 'build', 'buildx', 8],
    ['docker --tlsverify --tlscacert /c/ca.pem buildx --builder b1 build .', 'build', 'buildx', 7],
    ['docker-buildx build .', 'build', 'buildx', 1],
    ['docker -c other build .', 'build', 'docker-build', 3],
  ];
  for (const [cmd, kind, invocation, idx] of yes) {
    const r = parse(cmd);
    t.same([r.kind, r.invocation, r.subcommandIndex], [kind, invocation, idx], cmd);
  }
  for (const cmd of ['docker buildx ls', 'docker run build', 'make build', 'docker --context build ps', 'npm run build', 'docker buildx imagetools create x', '']) {
    t.equal(parseBuildCommand(cmd ? cmd.split(' ') : []), undefined, `not a build: ${JSON.stringify(cmd)}`);
    t.notOk(isBuildCommand(cmd ? cmd.split(' ') : []));
  }
});

t.test('reads Dockerfile, context, build args, contexts, platforms, caches, outputs, target, builder', async (t) => {
  const r = parse(
    [
      'docker', 'buildx', 'build',
      '-f', 'docker/app.Dockerfile', '--build-arg', 'VERSION=1.2', '--build-arg=EMPTY=', '--build-arg', 'FROM_ENV', '--build-arg', 'UNSET',
      '--build-context', 'alpine=docker-image://mirror/alpine:3', '--build-context=docker.io/library/node:latest=../node',
      '--platform', 'linux/amd64,linux/arm64', '--platform=linux/aarch64', '--cache-to', 'type=registry,ref=r/app:cache,mode=max',
      '--cache-from=r/app:cache', '-o', 'type=image,push=true', '--push', '--target', 'prod', '--builder', 'mine', '-t', 'app:1', 'ctx',
    ],
    { FROM_ENV: 'yes' },
  );
  t.same(r.dockerfile, { kind: 'path', path: 'docker/app.Dockerfile' });
  t.same(r.context, { kind: 'local', path: 'ctx' });
  t.same(r.buildArgs, { VERSION: '1.2', EMPTY: '', FROM_ENV: 'yes' }, 'K alone comes from the environment and is dropped when unset');
  t.same(r.buildArgsFromEnv, ['FROM_ENV', 'UNSET']);
  t.same(r.buildContexts, { alpine: 'docker-image://mirror/alpine:3', node: '../node' }, 'context names are normalised like buildx does');
  t.same(r.platforms, ['linux/amd64', 'linux/arm64']);
  t.same(r.cacheTo, [{ type: 'registry', attrs: { ref: 'r/app:cache', mode: 'max' }, raw: 'type=registry,ref=r/app:cache,mode=max' }]);
  t.same(r.cacheFrom, ['r/app:cache']);
  t.same(r.outputs.map((o) => o.type), ['image']);
  t.equal(r.push, true);
  t.equal(r.target, 'prod');
  t.equal(r.builder, 'mine');
  t.same(r.warnings, []);
});

t.test('Dockerfile and context kinds', async (t) => {
  const cases: [string, BuildRequest['dockerfile'], BuildRequest['context']][] = [
    ['docker buildx build .', { kind: 'path', path: 'Dockerfile' }, { kind: 'local', path: '.' }],
    ['docker buildx build app/', { kind: 'path', path: 'app/Dockerfile' }, { kind: 'local', path: 'app/' }],
    ['docker buildx build -f - .', { kind: 'stdin' }, { kind: 'local', path: '.' }],
    ['docker build -f- .', { kind: 'stdin' }, { kind: 'local', path: '.' }],
    ['docker buildx build -', { kind: 'remote' }, { kind: 'stdin' }],
    ['docker buildx build https://github.com/o/r.git#main', { kind: 'remote' }, { kind: 'remote', url: 'https://github.com/o/r.git#main' }],
    ['docker buildx build -f sub/Dockerfile git@github.com:o/r.git', { kind: 'remote', path: 'sub/Dockerfile' }, { kind: 'remote', url: 'git@github.com:o/r.git' }],
    ['docker buildx build --file=x.Dockerfile ctx', { kind: 'path', path: 'x.Dockerfile' }, { kind: 'local', path: 'ctx' }],
    ['docker buildx build -qfx.Dockerfile ctx', { kind: 'path', path: 'x.Dockerfile' }, { kind: 'local', path: 'ctx' }],
    ['docker buildx bake -f docker-bake.hcl app', { kind: 'none' }, { kind: 'missing' }],
  ];
  for (const [cmd, dockerfile, context] of cases) {
    const r = parse(cmd);
    t.same([r.dockerfile, r.context], [dockerfile, context], cmd);
  }
});

t.test('bool flags, value flags that look like positionals, --, interspersed context', async (t) => {
  const r = parse('docker buildx build . --load --push=false --no-cache --network host --progress plain -- ');
  t.equal(r.load, true);
  t.equal(r.push, false, '--push=false is not a push');
  t.same(r.context, { kind: 'local', path: '.' }, '"host" and "plain" are flag values, not contexts');
  t.same(parse('docker buildx build --secret id=x -- -weird-dir').context, { kind: 'local', path: '-weird-dir' });
  t.equal(parse('docker buildx build --sbom=true .').attestations, true);
  t.equal(parse('docker buildx build --provenance=false .').attestations, false);
  t.equal(parse('docker buildx build --provenance mode=max .').attestations, true);
  t.equal(parse('docker buildx build --attest type=sbom .').attestations, true);
  t.same(parse('docker buildx --builder=root build --builder sub .').builder, 'sub', 'the later --builder wins');
});

t.test('platforms from DOCKER_DEFAULT_PLATFORM when no --platform; local = this machine', async (t) => {
  t.same(parse('docker buildx build .', { DOCKER_DEFAULT_PLATFORM: 'linux/arm64' }).platforms, ['linux/arm64']);
  t.same(parse('docker buildx build --platform linux/amd64 .', { DOCKER_DEFAULT_PLATFORM: 'linux/arm64' }).platforms, ['linux/amd64']);
  t.equal(parse('docker buildx build --platform local .').platforms.length, 1);
  t.throws(() => parse('docker buildx build --platform linux/amd64/v2/x .'), UsageError);
});

t.test('unknown flags are reported, not guessed silently', async (t) => {
  const r = parse('docker buildx build --future-flag value .');
  t.match(r.warnings, [/unknown build flag --future-flag/, /one context argument, got 2/]);
});

t.test('malformed values are UsageErrors', async (t) => {
  t.throws(() => parse('docker buildx build -f'), { message: /flag -f in the build command needs a value/ });
  t.throws(() => parse('docker buildx build --target'), { message: /--target in the build command needs a value/ });
  t.throws(() => parse('docker buildx build --cache-to mode=max .'), { message: /--cache-to "mode=max": type required/ });
  t.throws(() => parse('docker buildx build --output type=local,dest .'), { message: /invalid value "dest"/ });
  t.throws(() => parse('docker buildx build --build-context =x .'), UsageError);
});

t.test('cache and output specs', async (t) => {
  t.same(parseCacheSpec('user/app:cache'), [{ type: 'registry', attrs: { ref: 'user/app:cache' }, raw: 'user/app:cache' }]);
  t.same(parseCacheSpec('a/b:c,d/e:f').map((c) => c.attrs.ref), ['a/b:c', 'd/e:f']);
  t.same(parseCacheSpec('type=inline')[0]!.type, 'inline');
  t.same(parseCacheSpec('type=gha,"scope=a,b"')[0]!.attrs, { scope: 'a,b' });
  t.same(parseOutputSpec('out'), { type: 'local', attrs: { dest: 'out' }, raw: 'out' });
  t.same(parseOutputSpec('-').type, 'tar');
  t.same(parseOutputSpec('type=docker,dest=img.tar'), { type: 'docker', attrs: { dest: 'img.tar' }, raw: 'type=docker,dest=img.tar' });
});

t.test('rewrite inserts --builder and --build-context after the subcommand; user args unchanged and in order', async (t) => {
  const ctx = { alpine: 'oci-layout:///tmp/bxb-x:alpine', 'registry.corp/app/bin:v1': 'oci-layout:///tmp/bxb-x:bin' };
  const cases: [string, { builder?: string; addBuildContexts: Record<string, string> }, string][] = [
    [
      'docker buildx build -t app:1 --platform linux/amd64,linux/arm64 .',
      { builder: 'bxb', addBuildContexts: ctx },
      'docker buildx build --builder bxb --build-context alpine=oci-layout:///tmp/bxb-x:alpine --build-context registry.corp/app/bin:v1=oci-layout:///tmp/bxb-x:bin -t app:1 --platform linux/amd64,linux/arm64 .',
    ],
    [
      'docker --context ci buildx build . --push',
      { builder: 'bxb', addBuildContexts: {} },
      'docker --context ci buildx build --builder bxb . --push',
    ],
    [
      'docker build -f - .',
      { addBuildContexts: { alpine: 'oci-layout:///l:alpine' } },
      'docker build --build-context alpine=oci-layout:///l:alpine -f - .',
    ],
    ['docker buildx build --builder mine .', { builder: 'bxb', addBuildContexts: {} }, 'docker buildx build --builder mine .'],
    ['docker buildx --builder mine b .', { builder: 'bxb', addBuildContexts: {} }, 'docker buildx --builder mine b .'],
    ['docker buildx bake --push app', { builder: 'bxb', addBuildContexts: {} }, 'docker buildx bake --builder bxb --push app'],
  ];
  for (const [cmd, opts, want] of cases) {
    const argv = cmd.split(' ');
    const out = rewriteBuildCommand(argv, opts);
    t.equal(out.join(' '), want, cmd);
    // The user's arguments are a subsequence of the result, in order.
    let j = 0;
    for (const a of out) if (a === argv[j]) j++;
    t.equal(j, argv.length, `every user argument kept in order: ${cmd}`);
  }
  const argv = ['docker', 'buildx', 'build', '--label', 'a b', '--build-arg', 'X=$Y "q"', '.'];
  const out = rewriteBuildCommand(argv, { builder: 'b', addBuildContexts: {} });
  t.same(out.slice(5), argv.slice(3), 'arguments with spaces and quotes pass through byte for byte');
  t.same(argv, ['docker', 'buildx', 'build', '--label', 'a b', '--build-arg', 'X=$Y "q"', '.'], 'input not mutated');
  t.throws(() => rewriteBuildCommand('docker buildx bake'.split(' '), { addBuildContexts: { a: 'b' } }), { message: /cannot add build contexts to the whole of `docker buildx bake`/ });
  t.throws(() => rewriteBuildCommand(['make'], { addBuildContexts: {} }), /not a build command/);
});

// ---- where the result lands (issue 18) -------------------------------------------------------

/** The command prefix mode runs with a docker-container builder we chose, on the given store. */
function prefixed(cmd: string, ctx: Partial<LoadContext> = {}): string {
  const argv = cmd.split(' ');
  const req = parse(argv);
  const { steps } = resultLoads([buildResultOf(req)], { driver: 'docker-container', ...ctx });
  return rewriteBuildCommand(argv, { builder: 'bxb', addBuildContexts: {}, add: steps.flatMap((s) => s.args) }).join(' ');
}

t.test('a tagged build without an output gets --load; an explicit output, push or load is never second-guessed', async (t) => {
  const rows: [string, Partial<LoadContext>, string][] = [
    ['docker buildx build -t app:1 .', {}, 'docker buildx build --builder bxb --load -t app:1 .'],
    ['docker build -t app:2 .', {}, 'docker build --builder bxb --load -t app:2 .'],
    ['docker buildx build --tag=app:1 --tag app:latest .', {}, 'docker buildx build --builder bxb --load --tag=app:1 --tag app:latest .'],
    ['docker buildx build -qt app:1 .', {}, 'docker buildx build --builder bxb --load -qt app:1 .'],
    ['docker buildx build .', {}, 'docker buildx build --builder bxb .'],
    ['docker buildx build -t app:1 --push .', {}, 'docker buildx build --builder bxb -t app:1 --push .'],
    ['docker buildx build -t app:1 --push=false .', {}, 'docker buildx build --builder bxb -t app:1 --push=false .'],
    ['docker buildx build -t app:1 --load .', {}, 'docker buildx build --builder bxb -t app:1 --load .'],
    ['docker buildx build -t app:1 --load=false .', {}, 'docker buildx build --builder bxb -t app:1 --load=false .'],
    ['docker buildx build -t app:1 -o type=oci,dest=app.tar .', {}, 'docker buildx build --builder bxb -t app:1 -o type=oci,dest=app.tar .'],
    ['docker buildx build -t app:1 --output=out .', {}, 'docker buildx build --builder bxb -t app:1 --output=out .'],
    ['docker buildx build -t app:1 --call=check .', {}, 'docker buildx build --builder bxb -t app:1 --call=check .'],
    ['docker buildx build -t app:1 --check .', {}, 'docker buildx build --builder bxb -t app:1 --check .'],
    ['docker buildx build -t app:1 --print=outline .', {}, 'docker buildx build --builder bxb -t app:1 --print=outline .'],
    ['docker buildx build -t app:1 --call build .', {}, 'docker buildx build --builder bxb --load -t app:1 --call build .'],
    ['docker buildx build -t app:1 --platform linux/amd64,linux/386 .', { imageStore: 'containerd' }, 'docker buildx build --builder bxb --load -t app:1 --platform linux/amd64,linux/386 .'],
    ['docker buildx build -t app:1 --provenance=true .', { imageStore: 'containerd' }, 'docker buildx build --builder bxb --load -t app:1 --provenance=true .'],
    ['docker buildx build -t app:1 --platform linux/amd64,linux/386 .', {}, 'docker buildx build --builder bxb --load -t app:1 --platform linux/amd64,linux/386 .'],
    ['docker buildx build -t app:1 --provenance=false .', { imageStore: 'classic' }, 'docker buildx build --builder bxb --load -t app:1 --provenance=false .'],
    ['docker buildx build -t app:1 .', { off: '--no-load' }, 'docker buildx build --builder bxb -t app:1 .'],
    ['docker buildx build -t app:1 --platform linux/amd64,linux/386 .', { off: '--no-load', imageStore: 'classic' }, 'docker buildx build --builder bxb -t app:1 --platform linux/amd64,linux/386 .'],
  ];
  for (const [cmd, ctx, want] of rows) t.equal(prefixed(cmd, ctx), want, `${cmd} ${JSON.stringify(ctx)}`);
});

t.test('the classic image store cannot load a manifest list: refused before the build, naming the ways out', async (t) => {
  const refuse = (cmd: string) => () => prefixed(cmd, { imageStore: 'classic' });
  const fixes = ' — push it (--push), write it to a file (--output type=oci,dest=app-1.tar), or run dockerd with the containerd image store; --no-load keeps the result in the build cache only';
  const line = (e: unknown): string => `${(e as UsageError).message} — ${(e as UsageError).hint}`;
  let caught: unknown;
  try {
    refuse('docker buildx build -t app:1 --platform linux/amd64,linux/386 .')();
  } catch (e) {
    caught = e;
  }
  t.type(caught, UsageError);
  t.equal((caught as UsageError).exitCode, 2);
  t.equal(
    line(caught),
    `the build (app:1) is tagged and names no output, so it would be loaded into the local image store, but it builds 2 platforms (linux/amd64, linux/386), and the daemon's classic image store cannot load a manifest list${fixes}`,
  );
  for (const cmd of ['docker buildx build -t app:1 --provenance=true .', 'docker buildx build -t app:1 --sbom=true .', 'docker buildx build -t app:1 --attest type=sbom .']) {
    t.throws(refuse(cmd), { message: /it asks for attestations \(SBOM\/provenance\), and the daemon's classic image store cannot load a manifest list$/ }, cmd);
  }
  // What buildx would do anyway is left to it: a push, no tag (its own warning), an explicit --load.
  for (const cmd of ['docker buildx build -t app:1 --platform linux/amd64,linux/386 --push .', 'docker buildx build --platform linux/amd64,linux/386 .', 'docker buildx build -t a --load --platform linux/amd64,linux/386 .']) {
    t.doesNotThrow(refuse(cmd), cmd);
  }
  const bake = [
    { bakeTarget: 'web', tags: ['web:1'], outputs: [], push: false, load: false, platforms: ['linux/amd64', 'linux/386'], attestations: false },
    { bakeTarget: 'api', tags: ['api:1'], outputs: [], push: false, load: false, platforms: [], attestations: true },
  ];
  t.throws(() => resultLoads(bake, { driver: 'docker-container', imageStore: 'classic' }), {
    message:
      "bake target web (web:1) is tagged and names no output, so it would be loaded into the local image store, but it builds 2 platforms (linux/amd64, linux/386); bake target api (api:1) is tagged and names no output, so it would be loaded into the local image store, but it asks for attestations (SBOM/provenance), and the daemon's classic image store cannot load a manifest list",
    hint: 'push it (--set web.output=type=registry or --push), write it to a file (--set web.output=type=oci,dest=web.tar), or run dockerd with the containerd image store; --no-load keeps the result in the build cache only',
  });
  t.same(resultLoads(bake, { driver: 'docker-container', imageStore: 'containerd' }).steps.map((s) => s.args), [['--set', 'web.output=type=docker'], ['--set', 'api.output=type=docker']], 'the containerd store loads them');
});

t.test('the image store is asked only when a manifest list would be loaded', async (t) => {
  const res = (cmd: string) => [buildResultOf(parse(cmd))];
  t.equal(loadNeedsImageStore(res('docker buildx build -t a --platform linux/amd64,linux/386 .'), {}), true);
  t.equal(loadNeedsImageStore(res('docker buildx build -t a --sbom=true .'), {}), true);
  t.equal(loadNeedsImageStore(res('docker buildx build -t a .'), {}), false);
  t.equal(loadNeedsImageStore(res('docker buildx build -t a --platform linux/amd64,linux/386 --push .'), {}), false);
  t.equal(loadNeedsImageStore(res('docker buildx build -t a --platform linux/amd64,linux/386 .'), { off: '--no-load' }), false);
});

t.test('turned off, the results that stay in the cache are named with why', async (t) => {
  const r = resultLoads([buildResultOf(parse('docker buildx build -t app:1 .'))], { driver: 'docker-container', off: 'builder.driverOpts.default-load is false' });
  t.same(r, { steps: [], notes: ["the build (app:1) names no output and stays in the builder's cache: builder.driverOpts.default-load is false"] });
  const on = resultLoads([buildResultOf(parse('docker buildx build -t app:1 .'))], { driver: 'kubernetes' });
  t.match(on.steps[0]!.reason, /^the build \(app:1\) is tagged and names no output: the kubernetes builder would keep the result in its build cache only, so it is loaded into the local image store, as docker build does$/);
});

t.test('bake: --print reads the same definition; per-target contexts and loading as --set', async (t) => {
  t.same(bakePrintArgs('docker buildx bake -f ci/bake.hcl --set *.platform=linux/amd64 app'.split(' ')), ['docker', 'buildx', 'bake', '--print', '-f', 'ci/bake.hcl', '--set', '*.platform=linux/amd64', 'app']);
  t.same(bakePrintArgs('docker --context ci buildx --builder b f web'.split(' ')), ['docker', '--context', 'ci', 'buildx', '--builder', 'b', 'f', '--print', 'web']);
  t.throws(() => bakePrintArgs('docker buildx build .'.split(' ')), /not a bake command/);
  t.equal(bakeUnreadable('docker buildx bake app'.split(' ')), undefined);
  t.equal(bakeUnreadable('docker buildx bake -f - app'.split(' ')), 'the bake definition comes from stdin (-f -)');
  t.equal(bakeUnreadable('docker buildx bake https://github.com/o/r.git app'.split(' ')), 'the bake definition is remote (a git or HTTP URL)');
  t.equal(bakeUnreadable('docker buildx bake --print app'.split(' ')), 'the bake command does not build (--print)');
  t.equal(bakeUnreadable('docker buildx bake --list=targets'.split(' ')), 'the bake command does not build (--list)');
  t.equal(bakeUnreadable('docker buildx bake --list-targets'.split(' ')), 'the bake command does not build (--list)');
  const add = [
    ...bakeContextArgs({ app: { 'bxb-test/tools:1': 'oci-layout:///run/ctx:tools', 'docker.io/acme/base': 'oci-layout:///run/ctx:base' }, web: {} }),
    ...resultLoads(
      [
        { bakeTarget: 'app', tags: ['app:1'], outputs: [], push: false, load: false, platforms: [], attestations: false },
        { bakeTarget: 'web', tags: ['web:1'], outputs: [{ type: 'local', attrs: { dest: 'out' } }], push: false, load: false, platforms: [], attestations: false },
      ],
      { driver: 'docker-container' },
    ).steps.flatMap((s) => s.args),
  ];
  t.same(rewriteBuildCommand('docker buildx bake --progress plain app web'.split(' '), { builder: 'bxb', addBuildContexts: {}, add }), [
    'docker', 'buildx', 'bake', '--builder', 'bxb',
    '--set', 'app.contexts.bxb-test/tools:1=oci-layout:///run/ctx:tools',
    '--set', 'app.contexts.docker.io/acme/base=oci-layout:///run/ctx:base',
    '--set', 'app.output=type=docker',
    '--progress', 'plain', 'app', 'web',
  ]);
});

t.test('tags and calls are read', async (t) => {
  const r = parse('docker buildx build -t a:1 --tag=b:2 -qtc:3 --call outline .');
  t.same(r.tags, ['a:1', 'b:2', 'c:3']);
  t.equal(r.call, 'outline');
  t.equal(parse('docker buildx build --call=build .').call, undefined);
  t.equal(parse('docker buildx bake --print').call, 'print');
  t.equal(parse('docker buildx bake --print=false').call, undefined);
  t.same(parse('docker buildx bake -t x').tags, [], 'bake has no -t: its tags come from the targets');
});

t.test('bake reads the bridged layouts outside the working directory only when allowed (buildx >= 0.17 has --allow)', async (t) => {
  t.same(bakeAllowArgs(['/run/ctx'], '0.38.2'), ['--allow=fs.read=/run/ctx']);
  t.same(bakeAllowArgs(['/run/ctx', '/run/ctx'], 'v0.17.0'), ['--allow=fs.read=/run/ctx']);
  t.same(bakeAllowArgs(['/run/ctx'], '0.16.2'), [], 'older bake has no --allow (and no check)');
  t.same(bakeAllowArgs(['/run/ctx'], '0.12.1'), []);
  t.same(bakeAllowArgs([], '0.38.2'), []);
});
