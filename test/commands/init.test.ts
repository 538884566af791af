// `buildx-bootstrap init` in-process: which files appear where, that the starter config loads
// with the real loader, that the snippets are valid YAML with the promised pieces, and that
// nothing is overwritten without --force.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { VERSION } from '../../src/version.js';
import { defaultLoaders } from 'cosmiconfig';
import { runCli } from '../helpers/cli.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_STARTER_VERSION, fillTemplate, findPackageRoot, INIT_FILES } from '../../src/commands/init.js';

const env = (cwd: string): Record<string, string | undefined> => ({ PATH: process.env.PATH, HOME: cwd });
const yaml = (file: string): Record<string, unknown> => defaultLoaders['.yaml'](file, readFileSync(file, 'utf8')) as Record<string, unknown>;

t.test('writes the config and both snippets; paths on stdout, where and why on stderr', async (t) => {
  const cwd = t.testdir({});
  const r = await runCli(['init'], { cwd, env: env(cwd) });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '.buildx-bootstraprc.yaml\nci/buildx-bootstrap/gitlab-ci.yml\nci/buildx-bootstrap/github-actions.yml\n');
  for (const f of INIT_FILES) t.ok(existsSync(join(cwd, f.target)), `${f.target} exists`);
  t.match(r.stderr, /ci\/buildx-bootstrap\/gitlab-ci\.yml from \.gitlab-ci\.yml/, 'says how to use the GitLab snippet');
  t.match(r.stderr, /\.github\/workflows/, 'says where the workflow goes');
  t.same(readdirSync(join(cwd, 'ci', 'buildx-bootstrap')).sort(), ['github-actions.yml', 'gitlab-ci.yml'], 'no temp files left');
});

t.test('the starter config loads cleanly with the real loader and has the documented values', async (t) => {
  const cwd = t.testdir({});
  t.equal((await runCli(['init'], { cwd, env: env(cwd) })).code, 0);
  const loaded = await loadConfig({ cwd, env: env(cwd) });
  t.equal(loaded.file, join(cwd, '.buildx-bootstraprc.yaml'), 'found by cosmiconfig search');
  const c = loaded.config;
  t.equal(c.buildkit.version, DEFAULT_STARTER_VERSION);
  t.equal(c.buildkit.image, 'moby/buildkit');
  t.equal(c.buildkit.rootless, false);
  t.same(c.mirrors, [], 'the mirror example is a comment, so no unreachable host is tried');
  t.equal(c.upstream, true);
  t.equal(c.builder.name, '', 'unset: derived from the configuration');
  t.equal(c.builder.driver, 'auto');
  t.equal(c.cache.dir, '');
  t.equal(c.lockfile, join(cwd, 'buildx-bootstrap.lock.json'));
  t.same(c.timeouts, { probe: 2000, hedge: 250, bootstrap: 120_000, drain: 600_000 });
  const text = readFileSync(join(cwd, '.buildx-bootstraprc.yaml'), 'utf8');
  t.match(text, /#\s+- host: harbor\.corp\.example\n#\s+path: dockerhub-proxy/, 'commented mirrors example');
});

t.test('the commented mirror example is valid configuration once uncommented', async (t) => {
  const cwd = t.testdir({ certs: { 'corp-ca.pem': 'x' } });
  t.equal((await runCli(['init'], { cwd, env: env(cwd) })).code, 0);
  const file = join(cwd, '.buildx-bootstraprc.yaml');
  const text = readFileSync(file, 'utf8');
  const example = text.split('\n').filter((l) => /^# {3}(- | {2})\S/.test(l)).map((l) => l.slice(2));
  t.ok(example.length >= 5, 'example lines found');
  writeFileSync(file, text.replace('mirrors: []', `mirrors:\n${example.join('\n')}`));
  const c = (await loadConfig({ cwd, env: env(cwd) })).config;
  t.same(
    c.mirrors.map((m) => [m.host, m.path, m.for, m.ca]),
    [
      ['harbor.corp.example', 'dockerhub-proxy', 'docker.io', join(cwd, 'certs', 'corp-ca.pem')],
      ['nexus.corp.example:8443', '', 'docker.io', ''],
    ],
  );
});

t.test('--buildkit-version sets the starter range; an invalid one is a usage error', async (t) => {
  const cwd = t.testdir({});
  const r = await runCli(['init', '--buildkit-version', '^0.31'], { cwd, env: env(cwd) });
  t.equal(r.code, 0, r.stderr);
  t.equal((await loadConfig({ cwd, env: env(cwd) })).config.buildkit.version, '^0.31');
  const bad = await runCli(['init', '--force', '--buildkit-version', 'not a version!'], { cwd, env: env(cwd) });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^buildx-bootstrap: invalid --buildkit-version: .* — use a range/);
  t.equal((await loadConfig({ cwd, env: env(cwd) })).config.buildkit.version, '^0.31', 'nothing rewritten');
});

t.test('refuses to overwrite any existing file (exit 2, one line, --force hint), writes nothing', async (t) => {
  const cwd = t.testdir({ '.buildx-bootstraprc.yaml': 'mine: true\n' });
  const r = await runCli(['init'], { cwd, env: env(cwd) });
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^buildx-bootstrap: \.buildx-bootstraprc\.yaml already exists; nothing was written — run buildx-bootstrap init --force to overwrite\n$/);
  t.equal(readFileSync(join(cwd, '.buildx-bootstraprc.yaml'), 'utf8'), 'mine: true\n', 'untouched');
  t.notOk(existsSync(join(cwd, 'ci')), 'no snippet written either');

  const forced = await runCli(['init', '--force'], { cwd, env: env(cwd) });
  t.equal(forced.code, 0, forced.stderr);
  t.match(readFileSync(join(cwd, '.buildx-bootstraprc.yaml'), 'utf8'), /^# buildx-bootstrap configuration/);
});

t.test('a snippet that exists blocks too, and the message names every existing file', async (t) => {
  const cwd = t.testdir({});
  mkdirSync(join(cwd, 'ci', 'buildx-bootstrap'), { recursive: true });
  writeFileSync(join(cwd, 'ci', 'buildx-bootstrap', 'gitlab-ci.yml'), 'x: 1\n');
  writeFileSync(join(cwd, 'ci', 'buildx-bootstrap', 'github-actions.yml'), 'x: 1\n');
  const r = await runCli(['init'], { cwd, env: env(cwd) });
  t.equal(r.code, 2);
  t.match(r.stderr, 'ci/buildx-bootstrap/gitlab-ci.yml, ci/buildx-bootstrap/github-actions.yml already exist');
  t.notOk(existsSync(join(cwd, '.buildx-bootstraprc.yaml')));
});

t.test('init works next to a broken configuration (it does not load it)', async (t) => {
  const cwd = t.testdir({ 'package.json': JSON.stringify({ name: 'app', 'buildx-bootstrap': { nope: 1 } }) });
  const r = await runCli(['init'], { cwd, env: env(cwd) });
  t.equal(r.code, 0, r.stderr);
});

t.test('--json lists path and kind', async (t) => {
  const cwd = t.testdir({});
  const r = await runCli(['init', '--json'], { cwd, env: env(cwd) });
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), INIT_FILES.map((f) => ({ path: f.target, kind: f.kind })));
});

t.test('the GitLab snippet: DinD with TLS, prefix mode, cache dir keyed on the lockfile, Dependency Proxy note', async (t) => {
  const cwd = t.testdir({});
  await runCli(['init'], { cwd, env: env(cwd) });
  const file = join(cwd, 'ci', 'buildx-bootstrap', 'gitlab-ci.yml');
  const doc = yaml(file);
  const job = doc['.buildx-bootstrap'] as Record<string, any>;
  t.ok(job, 'hidden job template');
  t.match(job.services[0].name, /^docker:\d+-dind$/);
  t.equal(job.variables.DOCKER_TLS_CERTDIR, '/certs');
  t.equal(job.variables.BUILDX_BOOTSTRAP_CACHE_DIR, '$CI_PROJECT_DIR/.buildkit-image');
  t.same(job.cache.paths, ['.buildkit-image/']);
  t.same(job.cache.key.files, ['buildx-bootstrap.lock.json']);
  const text = readFileSync(file, 'utf8');
  t.match(text, 'local: ci/buildx-bootstrap/gitlab-ci.yml', 'the include line names where it was written');
  t.match(text, /- buildx-bootstrap -- docker buildx build/);
  t.match(text, /CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX/);
  t.match(text, /command: \["--registry-mirror", "https:\/\//);
  t.notMatch(text, /\{\{bxb\./, 'every placeholder filled');
});

t.test('the GitLab snippet: a scheduled mirror job into the project registry with the job token, and the matching mirror', async (t) => {
  const cwd = t.testdir({});
  await runCli(['init'], { cwd, env: env(cwd) });
  const file = join(cwd, 'ci', 'buildx-bootstrap', 'gitlab-ci.yml');
  const job = yaml(file)['.buildx-bootstrap-mirror'] as Record<string, any>;
  t.ok(job, 'hidden mirror job template');
  t.same(job.rules, [{ if: '$CI_PIPELINE_SOURCE == "schedule"' }], 'runs in scheduled pipelines');
  t.ok((job.script as string[]).includes('npx buildx-bootstrap mirror --to "$CI_REGISTRY_IMAGE/mirror"'));
  const text = readFileSync(file, 'utf8');
  t.match(text, /# BUILDX_BOOTSTRAP_MIRRORS: "\$CI_REGISTRY_IMAGE\/mirror"/, 'the matching mirror for the build jobs');
  const loaded = await loadConfig({ cwd, env: { ...env(cwd), BUILDX_BOOTSTRAP_MIRRORS: 'registry.gitlab.example.com/group/project/mirror' } });
  t.match(loaded.config.mirrors, [{ host: 'registry.gitlab.example.com', path: 'group/project/mirror', for: 'docker.io' }], 'that variable is a Docker Hub mirror under the path');
  t.same(loaded.config.mirror, { images: [], engine: true }, 'the starter config has the mirror section');
});

t.test('the GitLab snippet: a scheduled CI image job, and the job template switches to the image with one variable', async (t) => {
  const cwd = t.testdir({});
  await runCli(['init'], { cwd, env: env(cwd) });
  const file = join(cwd, 'ci', 'buildx-bootstrap', 'gitlab-ci.yml');
  const doc = yaml(file);
  const image = doc['.buildx-bootstrap-image'] as Record<string, any>;
  t.ok(image, 'hidden CI image job template');
  t.same(image.rules, [{ if: '$CI_PIPELINE_SOURCE == "schedule"' }], 'runs in scheduled pipelines, beside the mirror job');
  t.match(image.services[0].name, /^docker:\d+-dind$/, 'with a DinD service to build on');
  t.equal(image.variables.BUILDX_BOOTSTRAP_MIRRORS, '$CI_REGISTRY_IMAGE/mirror', 'base images pulled through the mirror');
  const script = image.script as string[];
  const mirrorStep = script.findIndex((s) => s.startsWith('buildx-bootstrap mirror --to "$CI_REGISTRY_IMAGE/mirror" $(buildx-bootstrap image --base-images)'));
  const pushStep = script.findIndex((s) => s === 'buildx-bootstrap image --push "$CI_REGISTRY_IMAGE/mirror/buildx-bootstrap"');
  t.ok(mirrorStep >= 0 && pushStep > mirrorStep, 'its base images are mirrored first, then the image is pushed');

  const job = doc['.buildx-bootstrap'] as Record<string, any>;
  t.equal(job.image, '$BUILDX_BOOTSTRAP_JOB_IMAGE', 'the job image is one variable');
  t.match(job.variables.BUILDX_BOOTSTRAP_JOB_IMAGE, /^docker:\d+-cli$/, 'by default docker:<v>-cli, which exists before any schedule ran');
  t.match(readFileSync(file, 'utf8'), `#   BUILDX_BOOTSTRAP_JOB_IMAGE: "$CI_REGISTRY_IMAGE/mirror/buildx-bootstrap:${VERSION}"`, 'the switch names the tag image --push writes');

  // The before_script in both images, run by sh: apk/npm only where buildx-bootstrap is missing.
  const bin = join(cwd, 'bin');
  mkdirSync(bin);
  const record = join(cwd, 'calls');
  for (const tool of ['apk', 'npm']) writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${record}'\n`, { mode: 0o755 });
  const before = [...(job.before_script as string[]), 'command -v buildx-bootstrap || echo "not on PATH"'].join('\n');
  const runBefore = (path: string): { out: string; calls: string } => {
    rmSync(record, { force: true });
    const out = execFileSync('/bin/sh', ['-c', before], { cwd, env: { PATH: path, CI_PROJECT_DIR: cwd }, encoding: 'utf8' });
    return { out, calls: existsSync(record) ? readFileSync(record, 'utf8') : '' };
  };
  const plain = runBefore(`${bin}:/usr/bin:/bin`);
  t.equal(plain.calls, 'apk add --no-cache nodejs npm\nnpm ci\n', 'docker:<v>-cli: Node from apk, the tool from npm ci');
  const inImage = join(cwd, 'image-bin');
  mkdirSync(inImage);
  writeFileSync(join(inImage, 'buildx-bootstrap'), '#!/bin/sh\n', { mode: 0o755 });
  const image2 = runBefore(`${inImage}:${bin}:/usr/bin:/bin`);
  t.equal(image2.calls, '', 'the CI image: nothing installed');
  // After npm ci, the project's bin is on PATH for the job script.
  mkdirSync(join(cwd, 'node_modules', '.bin'), { recursive: true });
  writeFileSync(join(cwd, 'node_modules', '.bin', 'buildx-bootstrap'), '#!/bin/sh\n', { mode: 0o755 });
  t.equal(runBefore(`${bin}:/usr/bin:/bin`).out.trim(), join(cwd, 'node_modules', '.bin', 'buildx-bootstrap'), 'after npm ci the script finds the project\'s buildx-bootstrap');
});

t.test('the GitHub Actions snippet: valid workflow, cache keyed on the lockfile, prefix mode', async (t) => {
  const cwd = t.testdir({});
  await runCli(['init'], { cwd, env: env(cwd) });
  const doc = yaml(join(cwd, 'ci', 'buildx-bootstrap', 'github-actions.yml'));
  const steps = (doc.jobs as any).build.steps as Record<string, any>[];
  const cache = steps.find((s) => String(s.uses).startsWith('actions/cache@'));
  t.equal(cache?.with.path, '.buildkit-image');
  t.match(cache?.with.key, "hashFiles('buildx-bootstrap.lock.json')");
  t.equal((doc.jobs as any).build.env.BUILDX_BOOTSTRAP_CACHE_DIR, '${{ github.workspace }}/.buildkit-image', 'GitHub expressions survive templating');
  t.ok(steps.some((s) => /^npx buildx-bootstrap -- docker buildx build/.test(String(s.run))));
});

t.test('findPackageRoot finds this package from src and from a bundled dist chunk path', async (t) => {
  const root = await findPackageRoot();
  t.ok(existsSync(join(root, 'templates', 'gitlab-ci.yml')));
  t.equal(await findPackageRoot(join(root, 'dist', 'chunk-ABC123.js')), root);
  // Outside this checkout (t.testdir lives inside it, under .tap/).
  const elsewhere = mkdtempSync(join(tmpdir(), 'bxb-init-'));
  t.teardown(() => rmSync(elsewhere, { recursive: true, force: true }));
  writeFileSync(join(elsewhere, 'package.json'), JSON.stringify({ name: 'other' }));
  mkdirSync(join(elsewhere, 'sub'));
  await t.rejects(findPackageRoot(join(elsewhere, 'sub', 'x.js')), /cannot find the buildx-bootstrap package root/);
});

t.test('fillTemplate fills only {{bxb.*}} and fails loudly on an unknown one', async (t) => {
  t.equal(fillTemplate('a {{bxb.x}} ${{ github.sha }}', { x: '1' }), 'a 1 ${{ github.sha }}');
  t.throws(() => fillTemplate('{{bxb.y}}', {}), /has no value/);
});
