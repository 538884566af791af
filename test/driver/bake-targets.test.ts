// The bake targets as real buildx prints them (captured `bake --print` of test/fixtures/buildx/
// docker-bake.hcl from buildx v0.12.1, CSV strings, and v0.38.2, objects): the same targets read
// from both, and each target as the build request the driver decision and the Dockerfile reader take.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bakeTargetRequest, bakeTargetResult, readBakeTargets, type BakeTarget } from '../../src/driver/bake-targets.js';
import { resultLoads } from '../../src/driver/build-args.js';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'buildx', name), 'utf8');

/** What both versions must give, whatever their JSON shape. */
function summary(targets: BakeTarget[]) {
  return targets.map((x) => ({
    name: x.name,
    context: x.context,
    dockerfile: x.dockerfile,
    inline: x.dockerfileInline,
    target: x.target,
    platforms: x.platforms,
    tags: x.tags,
    outputs: x.outputs.map((o) => ({ type: o.type, attrs: o.attrs })),
    cacheFrom: x.cacheFrom.map((o) => ({ type: o.type, attrs: o.attrs })),
    cacheTo: x.cacheTo.map((o) => ({ type: o.type, attrs: o.attrs })),
    args: x.args,
    contexts: x.contexts,
    attestations: x.attestations,
  }));
}

t.test('bake --print of buildx 0.12 (strings) and 0.38 (objects) read alike', async (t) => {
  for (const version of ['v0.12.1', 'v0.38.2']) {
    const targets = readBakeTargets(fixture(`bake-print-${version}.json`));
    t.same(
      summary(targets),
      [
        {
          name: 'app', context: '.', dockerfile: 'app.Dockerfile', inline: undefined, target: 'prod', platforms: [], tags: ['app:1'],
          outputs: [{ type: 'local', attrs: { dest: 'out' } }], cacheFrom: [], cacheTo: [], args: { A: '1' }, contexts: { alpine: 'docker-image://x/alpine:3' }, attestations: false,
        },
        {
          name: 'base', context: 'base', dockerfile: 'Dockerfile', inline: undefined, target: undefined, platforms: ['linux/amd64', 'linux/386'], tags: ['base:1'],
          outputs: [], cacheFrom: [{ type: 'registry', attrs: { ref: 'r/c:base' } }], cacheTo: [{ type: 'inline', attrs: {} }], args: {}, contexts: {}, attestations: true,
        },
        {
          name: 'inline', context: '.', dockerfile: 'Dockerfile', inline: 'FROM scratch\n', target: undefined, platforms: [], tags: [],
          outputs: [], cacheFrom: [], cacheTo: [], args: {}, contexts: {}, attestations: false,
        },
      ],
      `buildx ${version}`,
    );
    const pushed = readBakeTargets(fixture(`bake-print-${version}-push.json`));
    t.same(
      pushed.map((x) => [x.name, x.outputs.map((o) => [o.type, o.attrs]), x.attestations]),
      [
        ['app', [['local', { dest: 'out' }]], false],
        ['inline', [['image', { push: 'true' }]], false],
      ],
      `buildx ${version}: --push shows as an image output, --provenance=false as a disabled attestation`,
    );
  }
});

t.test('a target as a build request: Dockerfile relative to its context, contexts keyed as BuildKit looks them up', async (t) => {
  const [app, base] = readBakeTargets(fixture('bake-print-v0.38.2.json')) as [BakeTarget, BakeTarget];
  const r = bakeTargetRequest(base);
  t.same([r.dockerfile, r.context, r.platforms, r.attestations, r.tags], [{ kind: 'path', path: 'base/Dockerfile' }, { kind: 'local', path: 'base' }, ['linux/amd64', 'linux/386'], true, ['base:1']]);
  t.same(bakeTargetRequest(app).dockerfile, { kind: 'path', path: 'app.Dockerfile' });
  t.equal(bakeTargetRequest(app).target, 'prod');
  const of = (over: Partial<BakeTarget>): BakeTarget => ({ ...app, ...over });
  t.same(bakeTargetRequest(of({ dockerfile: 'cwd://ci/app.Dockerfile', context: 'src' })).dockerfile, { kind: 'path', path: 'ci/app.Dockerfile' }, 'cwd:// is relative to the working directory');
  t.same(bakeTargetRequest(of({ dockerfile: '/abs/Dockerfile', context: 'src' })).dockerfile, { kind: 'path', path: '/abs/Dockerfile' });
  t.same(bakeTargetRequest(of({ context: 'https://github.com/o/r.git#main' })).dockerfile, { kind: 'remote', path: 'app.Dockerfile' }, 'a remote context: not readable here');
  const named = readBakeTargets(JSON.stringify({ target: { x: { contexts: { 'docker.io/library/alpine:latest': 'oci-layout:///l:a', 'foo:1': 'target:y' }, args: { A: 'a', UNSET: null } } } }))[0]!;
  t.same(named.contexts, { alpine: 'oci-layout:///l:a', 'foo:1': 'target:y' });
  t.same(named.args, { A: 'a' }, 'an arg unset in the environment (null) is left out');
});

t.test('loading per bake target: only tagged targets without an output, as --set <target>.output=type=docker', async (t) => {
  for (const version of ['v0.12.1', 'v0.38.2']) {
    const targets = readBakeTargets(fixture(`bake-print-${version}.json`)).map((x) => ({ ...x, attestations: false, platforms: [] }));
    const { steps } = resultLoads(targets.map(bakeTargetResult), { driver: 'docker-container', imageStore: 'classic' });
    t.same(steps.map((s) => s.args), [['--set', 'base.output=type=docker']], `${version}: app has an output, inline no tag`);
    const pushed = readBakeTargets(fixture(`bake-print-${version}-push.json`));
    t.same(resultLoads(pushed.map(bakeTargetResult), { driver: 'docker-container' }).steps, [], `${version}: --push is an output for every target`);
  }
});

t.test('what is not bake --print JSON is a one-line usage error', async (t) => {
  t.throws(() => readBakeTargets('#1 [internal] load local bake definitions'), { message: /^bake --print did not give JSON/, exitCode: 2 });
  t.throws(() => readBakeTargets('{"group":{}}'), { message: 'bake --print gave no "target" map' });
});
