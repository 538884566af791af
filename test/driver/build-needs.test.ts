import t from 'tap';
import { parseBuildCommand } from '../../src/driver/build-args.js';
import { buildNeedsFrom, buildRequestFromConfig, dockerfileToRead, planBridges } from '../../src/driver/build-needs.js';
import { chooseDriver } from '../../src/driver/choose-driver.js';
import { analyzeDockerfile } from '../../src/dockerfile/dockerfile.js';
import type { LocalImageFact } from '../../src/docker/images.js';

const DOCKERFILE = 'FROM local/base:dev AS base\nFROM alpine:3.20\nCOPY --from=base /x /x\nCOPY --from=registry.corp/tools:1 /t /t\n';
const fact = (localOnly: boolean): LocalImageFact => ({ present: true, localOnly, repoDigests: [] });

t.test('prefix command → Dockerfile analysis → needs → decision → bridges', async (t) => {
  const req = parseBuildCommand('docker buildx build --platform linux/amd64,linux/arm64 --cache-to type=registry,ref=r/c -t app .'.split(' '))!;
  t.same(dockerfileToRead(req), { path: 'Dockerfile' });
  const df = analyzeDockerfile(DOCKERFILE, { file: 'Dockerfile', buildArgs: req.buildArgs, platforms: req.platforms, buildPlatform: 'linux/amd64', buildContexts: req.buildContexts });
  const facts = new Map([
    ['docker.io/local/base:dev', fact(true)],
    ['docker.io/library/alpine:3.20', fact(false)],
  ]);
  const needs = buildNeedsFrom({ request: req, dockerfile: df, facts, buildkitConfigReasons: [] });
  t.same(needs.images, [
    { ref: 'docker.io/local/base:dev', localOnly: true },
    { ref: 'docker.io/library/alpine:3.20', localOnly: false },
    { ref: 'registry.corp/tools:1', localOnly: false },
  ], 'an image missing from the facts is not local-only');
  t.same(needs.cacheTo, ['registry']);
  const decision = chooseDriver({ setting: 'auto', needs });
  t.equal(decision.driver, 'docker-container');
  t.same(planBridges(decision, df), [{ ref: 'docker.io/local/base:dev', contextName: 'local/base:dev', platforms: ['linux/amd64', 'linux/arm64'] }]);
});

t.test('config build: section gives the same request shape', async (t) => {
  const req = buildRequestFromConfig({
    dockerfile: 'docker/Dockerfile',
    context: '.',
    platforms: ['linux/amd64'],
    buildArgs: { A: '1' },
    buildContexts: { 'docker.io/library/node:latest': '../node' },
    cacheTo: ['type=inline'],
    target: 'prod',
  });
  t.same(req.dockerfile, { kind: 'path', path: 'docker/Dockerfile' });
  t.same(req.buildContexts, { node: '../node' });
  t.same(req.cacheTo.map((c) => c.type), ['inline']);
  t.equal(req.target, 'prod');
  const needs = buildNeedsFrom({ request: req, facts: new Map(), buildkitConfigReasons: ['buildkit.version "^0.18"'] });
  t.equal(needs.needsBuildkitConfig, true);
  t.same(needs.buildkitConfigReasons, ['buildkit.version "^0.18"']);
});

t.test('unreadable Dockerfiles are explained', async (t) => {
  const cases: [string, RegExp][] = [
    ['docker buildx build -f - .', /stdin \(-f -\)/],
    ['docker buildx build https://github.com/o/r.git', /remote/],
    ['docker buildx build -', /context comes from stdin/],
    ['docker buildx bake', /the bake targets could not be read; only the builder is set/],
  ];
  for (const [cmd, re] of cases) {
    const r = dockerfileToRead(parseBuildCommand(cmd.split(' '))!);
    t.ok('unreadable' in r, cmd);
    t.match((r as { unreadable: string }).unreadable, re, cmd);
  }
});

t.test('a bake: every target needs one builder — the most platforms, every cache export and image, with every platform it is needed for', async (t) => {
  const { mergeNeeds, mergeImages } = await import('../../src/driver/build-needs.js');
  const a = { platforms: ['linux/amd64'], cacheTo: ['inline'], needsBuildkitConfig: false, attestations: false, images: [{ ref: 'docker.io/acme/base:1', localOnly: true }] };
  const b = { platforms: ['linux/amd64', 'linux/386'], cacheTo: ['registry'], needsBuildkitConfig: true, buildkitConfigReasons: ['buildkit.version pins BuildKit v0.18.2'], attestations: true, images: [{ ref: 'docker.io/acme/base:1', localOnly: false }, { ref: 'docker.io/library/alpine:3', localOnly: false }] };
  t.same(mergeNeeds([a, b]), {
    platforms: ['linux/amd64', 'linux/386'],
    cacheTo: ['inline', 'registry'],
    needsBuildkitConfig: true,
    outputs: [],
    attestations: true,
    images: [{ ref: 'docker.io/acme/base:1', localOnly: true }, { ref: 'docker.io/library/alpine:3', localOnly: false }],
  });
  const img = (platforms: string[]) => ({ ref: 'docker.io/acme/base:1', name: 'acme/base:1', contextName: 'acme/base:1', platforms, uses: [] });
  t.same(mergeImages([{ images: [img(['linux/amd64'])] }, { images: [img(['linux/386', 'linux/amd64'])] }]).images.map((i) => i.platforms), [['linux/amd64', 'linux/386']]);
});
