// What `image` runs and what the shipped Dockerfile promises, read without docker: the exact
// `docker buildx build` argv, the --push reference, the base images `mirror` must copy first, and
// the Dockerfile's shape (every RUN on $BUILDPLATFORM, a final stage that only copies, the labels).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageBaseImages, imageBuildCommand, imageSource, pushReference } from '../../src/image/build-command.js';
import { runCli } from '../helpers/cli.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCKERFILE = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const manifest = { name: 'buildx-bootstrap', version: '1.2.3', files: [] };

t.test('the build command: no network for RUN, labels from the package, load or push both platforms', async (t) => {
  const common = ['docker', 'buildx', 'build', '--file', '/ctx/Dockerfile', '--network', 'none', '--build-arg', 'VERSION=1.2.3', '--build-arg', 'SOURCE=https://www.npmjs.com/package/buildx-bootstrap/v/1.2.3', '--build-arg', 'REVISION=abc'];
  t.same(imageBuildCommand({ contextDir: '/ctx', manifest, revision: 'abc' }), [...common, '--tag', 'buildx-bootstrap:1.2.3', '--load', '/ctx']);
  t.same(imageBuildCommand({ contextDir: '/ctx', manifest, revision: 'abc', push: 'reg.example/g/p/mirror/buildx-bootstrap:1.2.3' }), [
    ...common, '--platform', 'linux/amd64,linux/arm64', '--tag', 'reg.example/g/p/mirror/buildx-bootstrap:1.2.3', '--push', '/ctx',
  ]);
});

t.test('--push REF gets the version as its tag unless it names one', async (t) => {
  t.equal(pushReference('reg.example:5000/g/p/mirror/buildx-bootstrap', '1.2.3'), 'reg.example:5000/g/p/mirror/buildx-bootstrap:1.2.3');
  t.equal(pushReference('reg.example/bxb:edge', '1.2.3'), 'reg.example/bxb:edge');
  t.throws(() => pushReference('Reg Example/x', '1.2.3'), { exitCode: 2, message: /invalid --push reference/ });
  t.throws(() => pushReference(`reg.example/x@sha256:${'a'.repeat(64)}`, '1.2.3'), { exitCode: 2, message: /names a digest/ });
});

t.test('the source label: the repository URL when the package has one, else its npm page', async (t) => {
  t.equal(imageSource({ ...manifest, repository: { url: 'git+https://github.com/o/r.git' } }), 'https://github.com/o/r');
  t.equal(imageSource(manifest), 'https://www.npmjs.com/package/buildx-bootstrap/v/1.2.3');
});

/** The Dockerfile's stages: the FROM line and the instructions under it (continuations joined). */
function stages(text: string): { from: string; instructions: string[] }[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: { from: string; instructions: string[] }[] = [];
  for (const line of lines) {
    if (/^FROM\s/i.test(line)) out.push({ from: line, instructions: [] });
    else out.at(-1)?.instructions.push(line);
  }
  return out;
}

t.test('the Dockerfile: RUN only on $BUILDPLATFORM, a final stage that only copies, OCI labels', async (t) => {
  const all = stages(DOCKERFILE);
  for (const s of all) {
    if (s.instructions.some((i) => /^RUN\s/i.test(i))) t.match(s.from, /--platform=\$BUILDPLATFORM\b/, `a stage with RUN is on the build platform: ${s.from}`);
  }
  const final = all.at(-1)!;
  t.match(final.from, /^FROM docker:\$\{DOCKER_VERSION\}-cli$/, 'the final stage is docker:<v>-cli');
  t.same(final.instructions.map((i) => i.split(/\s/)[0]!.toUpperCase()).filter((k) => !['ARG', 'COPY', 'LABEL'].includes(k)), [], 'and only copies (ARG, COPY, LABEL)');
  t.notMatch(final.instructions.join('\n'), /^(ENTRYPOINT|CMD)\b/m, "docker:<v>-cli's entrypoint is kept");
  const labels = final.instructions.filter((i) => /^LABEL\s/i.test(i)).join(' ');
  for (const key of ['version', 'source', 'revision']) t.match(labels, `org.opencontainers.image.${key}=`, `label org.opencontainers.image.${key}`);
});

t.test('the base images mirror copies first, and image --base-images prints them', async (t) => {
  const bases = imageBaseImages(DOCKERFILE);
  t.same([...bases].sort(), ['docker.io/library/docker:29-cli', 'docker.io/library/node:24-alpine3.23']);
  const r = await runCli(['image', '--base-images']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${bases.join('\n')}\n`);
});
