import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { analyzeDockerfile, buildContextName, detectSyntax, normalizeImageName, type AnalyzeOptions, type DockerfileNeeds } from '../../src/dockerfile/dockerfile.js';
import { UsageError } from '../../src/errors.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../fixtures/dockerfiles/${name}`, import.meta.url)), 'utf8');

function analyze(text: string, opts: Partial<AnalyzeOptions> = {}): DockerfileNeeds {
  return analyzeDockerfile(text, { file: 'Dockerfile', buildArgs: {}, buildPlatform: 'linux/amd64', ...opts });
}
const refs = (n: DockerfileNeeds): string[] => n.images.map((i) => i.ref);

t.test('buildContextName gives the key BuildKit looks named contexts up by', async (t) => {
  const cases: [string, string][] = [
    ['alpine', 'alpine'],
    ['alpine:latest', 'alpine'],
    ['docker.io/library/alpine', 'alpine'],
    ['docker.io/library/alpine:latest', 'alpine'],
    ['index.docker.io/library/alpine:3.20', 'alpine:3.20'],
    ['library/alpine:3.20', 'alpine:3.20'],
    ['docker.io/foo/bar:1', 'foo/bar:1'],
    ['docker.io/library/foo/bar', 'library/foo/bar'],
    ['registry.corp/app/bin:v1', 'registry.corp/app/bin:v1'],
    ['registry.corp/app/bin:latest', 'registry.corp/app/bin'],
    ['localhost:5000/x', 'localhost:5000/x'],
    [`alpine@sha256:${'a'.repeat(64)}`, `alpine@sha256:${'a'.repeat(64)}`],
    [`alpine:latest@sha256:${'a'.repeat(64)}`, `alpine:latest@sha256:${'a'.repeat(64)}`],
  ];
  for (const [input, want] of cases) t.equal(buildContextName(input), want, input);
  t.throws(() => buildContextName('Not/Valid Name'));
  t.equal(normalizeImageName('alpine'), 'docker.io/library/alpine:latest');
  t.equal(normalizeImageName('ghcr.io/a/b:1'), 'ghcr.io/a/b:1');
});

t.test('multi-stage Go build: syntax frontend, ARG-driven FROM on the build platform, distroless', async (t) => {
  const n = analyze(fixture('go-multistage.Dockerfile'), { platforms: ['linux/amd64', 'linux/arm64'] });
  t.same(refs(n), ['docker.io/docker/dockerfile:1.7', 'docker.io/library/golang:1.23-alpine', 'gcr.io/distroless/static-debian12:nonroot']);
  t.equal(n.syntax, 'docker/dockerfile:1.7');
  const golang = n.images[1]!;
  t.equal(golang.contextName, 'golang:1.23-alpine');
  t.same(golang.platforms, ['linux/amd64'], 'FROM --platform=$BUILDPLATFORM is needed only for the build platform');
  t.same(golang.uses[0], { kind: 'from', line: 5, written: 'golang:${GO_VERSION}-alpine', platform: 'linux/amd64', stage: 'build' });
  t.same(n.images[2]!.platforms, ['linux/amd64', 'linux/arm64'], 'the final stage is needed for each target platform');
  t.equal(n.target, 'stage-1');
  t.same(n.stages.map((s) => s.name ?? null), ['build', null]);
});

t.test('build args override ARG defaults; undeclared build args do not leak into FROM', async (t) => {
  const text = fixture('go-multistage.Dockerfile');
  t.match(refs(analyze(text, { buildArgs: { GO_VERSION: '1.22' } })), ['docker.io/docker/dockerfile:1.7', 'docker.io/library/golang:1.22-alpine']);
  const n = analyze(fixture('arg-driven.Dockerfile'));
  t.same(refs(n), ['docker.io/library/node:20-bookworm-slim'], 'ARG quotes are removed; stages built FROM a stage need no image');
  const mirrored = analyze(fixture('arg-driven.Dockerfile'), { buildArgs: { REGISTRY: 'harbor.corp/proxy', NODE_VERSION: '22' } });
  t.same(refs(mirrored), ['harbor.corp/proxy/node:22-bookworm-slim'], '${VAR:+x} adds the prefix only when set');
  t.equal(mirrored.images[0]!.name, 'harbor.corp/proxy/node:22-bookworm-slim');
  t.equal(mirrored.images[0]!.uses.length, 2, 'both FROM lines use it');
  const undeclared = analyze('FROM alpine:${TAG:-3.19}\n', { buildArgs: { TAG: '3.20' } });
  t.same(refs(undeclared), ['docker.io/library/alpine:3.19'], 'a build arg without a global ARG is not visible in FROM');
});

t.test('COPY --from: images, stage names (any case), numeric indexes, digests', async (t) => {
  const n = analyze(fixture('copy-from-images.Dockerfile'));
  t.same(refs(n), [
    'docker.io/library/debian:bookworm',
    'registry.corp/app/bin:v1',
    'docker.io/library/nginx:1.27',
    `ghcr.io/acme/assets@sha256:${'0123456789abcdef'.repeat(4)}`,
  ]);
  const bin = n.images.find((i) => i.ref === 'registry.corp/app/bin:v1')!;
  t.same(bin.uses, [{ kind: 'copy-from', line: 6, written: 'registry.corp/app/bin:v1', platform: 'linux/amd64', stage: 'stage-1' }]);
  t.equal(bin.contextName, 'registry.corp/app/bin:v1');
  t.equal(n.images.find((i) => i.ref.startsWith('docker.io/library/nginx'))!.contextName, 'nginx:1.27');
});

t.test('RUN --mount from= images and stages; cache/secret mounts need nothing', async (t) => {
  const n = analyze(fixture('mount-from.Dockerfile'));
  t.same(refs(n), ['docker.io/library/alpine:3.20', 'docker.io/local/base:dev', 'docker.io/local/toolbox:dev']);
  t.equal(n.images[2]!.uses[0]!.kind, 'mount-from');
  t.equal(n.images[2]!.contextName, 'local/toolbox:dev');
});

t.test('heredoc bodies are not instructions; JSON-form RUN has no heredoc', async (t) => {
  const n = analyze(fixture('heredocs.Dockerfile'));
  t.same(refs(n), ['docker.io/library/busybox:latest', 'docker.io/library/python:3.12-slim']);
  t.equal(n.images[1]!.uses[0]!.line, 19, 'line numbers count heredoc bodies');
});

t.test('escape directive: backtick continuations, backslashes are plain characters', async (t) => {
  const n = analyze(fixture('escape-backtick.Dockerfile'));
  t.equal(n.escapeToken, '`');
  t.same(refs(n), ['mcr.microsoft.com/windows/servercore:ltsc2022', 'mcr.microsoft.com/powershell:lts-nanoserver-ltsc2022']);
});

t.test('--target limits the images to the stages it reaches', async (t) => {
  const text = fixture('targets.Dockerfile');
  t.same(refs(analyze(text)), ['docker.io/library/node:20', 'docker.io/library/nginx:alpine'], 'default target is the last stage');
  t.same(refs(analyze(text, { target: 'test' })), ['docker.io/library/node:20', 'docker.io/cypress/included:13.6.0']);
  t.same(refs(analyze(text, { target: 'DEV' })), ['docker.io/library/node:20'], 'target names are case-insensitive');
  t.throws(() => analyze(text, { target: 'staging' }), { message: /target stage "staging" could not be found/, hint: /base, test, dev, prod/ });
});

t.test('continuations with comments and empty lines, lower-case instructions, ONBUILD from a parent stage', async (t) => {
  const n = analyze(fixture('continuations.Dockerfile'));
  t.same(refs(n), ['docker.io/library/ubuntu:24.04', 'docker.io/example/onbuild-helper:2']);
  t.same(n.stages.map((s) => s.name ?? null), ['runtime', null]);
});

t.test('platform args: TARGETARCH per target platform, fixed --platform, BUILDPLATFORM', async (t) => {
  const n = analyze(fixture('platform-args.Dockerfile'), { platforms: ['linux/amd64', 'linux/arm64/v8'] });
  t.same(refs(n), ['docker.io/tonistiigi/xx:1.5', 'docker.io/library/busybox:1.36', 'docker.io/library/alpine-amd64:latest', 'docker.io/library/alpine-arm64:latest']);
  const busybox = n.images.find((i) => i.ref.includes('busybox'))!;
  t.same(busybox.platforms, ['linux/amd64']);
  t.same(n.platforms, ['linux/amd64', 'linux/arm64']);
});

t.test('user --build-context names replace images and stages', async (t) => {
  const n = analyze(fixture('copy-from-images.Dockerfile'), { buildContexts: { 'docker.io/library/nginx:1.27': 'docker-image://mirror/nginx:1.27', base: '../base-rootfs' } });
  t.notOk(refs(n).includes('docker.io/library/nginx:1.27'));
  t.notOk(refs(n).includes('docker.io/library/debian:bookworm'), 'stage "base" is replaced, so its FROM is not needed');
  t.same(n.overridden.map((o) => o.contextName).sort(), ['base', 'nginx:1.27']);
  const perPlatform = analyze('FROM alpine\n', { buildContexts: { 'alpine::linux/amd64': 'oci-layout:///x:alpine' } });
  t.same(perPlatform.images, [], 'a name::platform context matches that platform');
});

t.test('scratch, stage aliases and the syntax build-arg', async (t) => {
  const n = analyze('FROM scratch AS empty\nFROM empty\nCOPY --from=scratch / /\n', { buildArgs: { BUILDKIT_SYNTAX: 'registry.corp/dockerfile:1 --flag' } });
  t.same(refs(n), ['registry.corp/dockerfile:1']);
  t.equal(n.images[0]!.uses[0]!.kind, 'syntax');
  // Found by test/properties/dockerfile.test.ts: a bad BUILDKIT_SYNTAX was reported as "Dockerfile:0".
  t.throws(() => analyze('FROM alpine\n', { buildArgs: { BUILDKIT_SYNTAX: ':' } }), { name: 'UsageError', message: /^--build-arg BUILDKIT_SYNTAX: invalid frontend image ":"/ });
  t.equal(analyze('# syntax=docker/dockerfile:1\nFROM alpine\n', { buildArgs: { BUILDKIT_SYNTAX: ' ' } }).images[0]!.uses[0]!.line, 1, 'a blank build arg leaves the directive, and its line');
  t.throws(() => analyze('FROM a\n', { buildArgs: { BUILDKIT_SYNTAX: 'x\ny' } }), { message: /^--build-arg BUILDKIT_SYNTAX: invalid frontend image "x\\ny"/ }, 'one line');
  t.same(detectSyntax('#!/usr/bin/env buildctl\n# syntax = docker/dockerfile:1\nFROM a\n'), { ref: 'docker/dockerfile:1', line: 2 });
  t.equal(detectSyntax('FROM a\n# syntax=docker/dockerfile:1\n'), undefined, 'a directive after an instruction is a comment');
  t.equal(detectSyntax('# hello\n# syntax=docker/dockerfile:1\n'), undefined, 'a plain comment ends the directives');
});

t.test('unparseable Dockerfiles are UsageErrors naming file:line', async (t) => {
  const cases: [string, RegExp][] = [
    ['FROM alpine\nFROM\n', /^Dockerfile:2: FROM requires either one or three arguments/],
    ['FROM alpine\nRUN <<EOF\necho hi\n', /^Dockerfile:2: unterminated heredoc/],
    ['FROM alpine\nFROBNICATE x\n', /^Dockerfile:2: unknown instruction: FROBNICATE/],
    ['RUN true\nFROM alpine\n', /^Dockerfile:1: no build stage in current context/],
    ['# only a comment\n\n', /^Dockerfile:\d+: file with no instructions/],
    ['ARG X=1\n', /^Dockerfile:1: dockerfile contains no stages to build/],
    ['FROM alpine AS 1st\n', /invalid name for build stage: "1st"/],
    ['FROM alpine\nARG SRC=x\nCOPY --from=$SRC /a /b\n', /^Dockerfile:3: variable expansion is not supported for --from/],
    ['FROM alpine\nRUN --mount=from=${IMG},target=/x true\n', /^Dockerfile:2: 'from' doesn't support variable expansion/],
    ['FROM alpine\nCOPY --from=3 /a /b\n', /^Dockerfile:2: invalid stage index 3/],
    ['FROM alpine AS a\nCOPY --from=b /x /y\nFROM alpine AS b\nFROM a\n', /^Dockerfile:2: cannot copy from stage "b"/],
    ['ARG BASE\nFROM ${BASE}\n', /^Dockerfile:2: base name \(\$\{BASE\}\) should not be blank/],
    ['FROM ${BASE:?required}\n', /^Dockerfile:1: BASE: required/],
    ['FROM ${BASE:?set BASE}\n', /^Dockerfile:1: FROM requires either one or three arguments/],
    ['FROM alpine:${TAG\n', /^Dockerfile:1: syntax error: missing '}'/],
    ['FROM Builder\n', /^Dockerfile:1: failed to parse stage name "Builder"/],
    ['FROM --platform= alpine\n', /^Dockerfile:1: empty platform value/],
    ['FROM --plat=linux/amd64 alpine\n', /unknown flag: --plat/],
    ['# escape=x\nFROM alpine\n', /^Dockerfile:1: invalid escape token/],
    ['FROM alpine\nONBUILD FROM busybox\n', /FROM isn't allowed as an ONBUILD trigger/],
    ['FROM alpine\nCOPY ["a", 1]\n', /^Dockerfile:2: dockerfile is not a string array/],
  ];
  for (const [text, re] of cases) {
    let err: unknown;
    try {
      analyze(text);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof UsageError, `UsageError for ${JSON.stringify(text)}`);
    t.match((err as UsageError).message, re, JSON.stringify(text));
    t.equal((err as UsageError).exitCode, 2);
  }
});

t.test('ARG expansion forms', async (t) => {
  const one = (from: string, args: Record<string, string> = {}): string =>
    analyze(`ARG A=alpine\nARG E=\nARG V=v1.2.3-rc\n${from}\n`, { buildArgs: args }).images[0]!.name;
  t.equal(one('FROM $A'), 'alpine');
  t.equal(one('FROM ${A}:3'), 'alpine:3');
  t.equal(one('FROM ${E:-busybox}'), 'busybox', ':- on empty');
  t.equal(one('FROM x${E-busybox}'), 'x', '- keeps an empty set value');
  t.equal(one('FROM ${MISSING-busybox}'), 'busybox');
  t.equal(one('FROM ${A:+busybox}'), 'busybox');
  t.equal(one('FROM ${E:+x}alpine'), 'alpine');
  t.equal(one('FROM a:${V#v}'), 'a:1.2.3-rc');
  t.equal(one('FROM a:${V%-*}'), 'a:v1.2.3');
  t.equal(one('FROM a:${V%%.*}'), 'a:v1');
  t.equal(one('FROM a:${V##*.}'), 'a:3-rc');
  t.equal(one('FROM a:${V/./_}'), 'a:v1_2.3-rc');
  t.equal(one('FROM a:${V//./_}'), 'a:v1_2_3-rc');
  t.equal(one('FROM "$A":\'3\''), 'alpine:3', 'quotes are removed');
  t.equal(one('FROM $A', { A: 'busybox' }), 'busybox', 'a build arg wins over the default');
  t.equal(one('FROM ${TARGETOS}-$TARGETARCH'), 'linux-amd64', 'platform args are predefined in the global scope');
  t.equal(analyze('ARG A=x\nARG B=${A}y\nFROM $B\n').images[0]!.name, 'xy', 'a default may use an earlier global ARG');
});
