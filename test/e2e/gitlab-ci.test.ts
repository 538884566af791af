// GitLab CI end to end: real jobs run by gitlab-ci-local 4.52 (the GitLab CI client testing.md
// names) on its shell executor, calling this checkout's bundled CLI (bin/ → dist/) the two ways
// the README shows: as a pre-step (`before_script: buildx-bootstrap --quiet`, then a plain
// `docker buildx build`) and as a prefix (`buildx-bootstrap -- docker buildx build …`). The jobs
// reach a private dockerd, a loopback registry serving the stand-in engine image, and the emulated
// buildx plugin, whose recorded calls show what the job's build was told.
//
// How gitlab-ci-local 4.52.2 is kept inside temp dirs (read from node_modules/gitlab-ci-local/src):
// - options also come from GCL_* environment variables (index.js `.env("GCL")`), from
//   `$HOME/.gitlab-ci-local/.env` and `<cwd>/.gitlab-ci-local-env` (argv.js injectDotenv), and
//   variables from `<home>/.gitlab-ci-local/variables.yml`: it runs with a clean environment and
//   `--home` set to a temp dir, and the switches that matter are passed explicitly;
// - `--cwd` must be relative (argv.js), so it runs with the project as its working directory;
// - a shell-executor job is `bash` spawned by execa 5 with `env: <job variables>` and execa's
//   default extendEnv, i.e. gitlab-ci-local's own environment plus the job variables, `--variable`
//   winning (job.js execScripts). DOCKER_HOST/DOCKER_CONFIG are absent from gitlab-ci-local's own
//   environment here, so the job can only have them from `--variable`;
// - it makes network requests only for remote `include:`/`rules: exists` (axios) and pulls only
//   for `image:`/`services:`; these jobs use none, and the project has no git remote (it falls back
//   to placeholder remote data without contacting anything);
// - every run first copies the tracked files with `rsync` (utils.js rsyncTrackedFiles, called from
//   handler.js for any executor), so the rsync binary is required.
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { installFakeBuildx, type FakeBuildx, type FakeBuildxCall } from '../helpers/buildx.js';
import { dockerOutput } from '../helpers/docker-out.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO, 'bin', 'buildx-bootstrap.js');
const GITLAB_CI_LOCAL = join(REPO, 'node_modules', '.bin', 'gitlab-ci-local');
const FIXTURES = join(REPO, 'test', 'fixtures', 'gitlab');
const BINARIES = ['dockerd', 'docker', 'docker-registry', 'busybox', 'git', 'bash', 'rsync'];
/** Bound on one gitlab-ci-local run (one job); tap's own per-file timeout is 180 s. */
const JOB_TIMEOUT_MS = 120_000;

interface World {
  dockerd: Dockerd;
  registry: RunningRegistry;
  /** Everything this file writes, removed in teardown. */
  root: string;
  /** The project gitlab-ci-local runs in: a git repo with .gitlab-ci.yml, config and Dockerfile. */
  project: string;
  /** Holds the `buildx-bootstrap` wrapper that jobs find on PATH. */
  binDir: string;
  /** gitlab-ci-local's HOME and --home. */
  gclHome: string;
}

interface JobRun {
  /** gitlab-ci-local's exit code: 0 when the job passed, 1 when it failed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The job's own output (its stdout and stderr lines, as gitlab-ci-local logged them). */
  log: string;
}

function git(cwd: string, args: string[], home: string): void {
  execFileSync('git', args, { cwd, env: { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1' }, stdio: 'pipe', timeout: 30_000 });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function world(t: Test): Promise<World> {
  const [dockerd, registry] = await Promise.all([startDockerd(t), startRegistry(t)]);
  await pushEngineTags(registry, { tags: { 'v0.18.2': {} } });

  const root = mkdtempSync('/tmp/bxb-gitlab-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const project = join(root, 'project');
  const binDir = join(root, 'bin');
  const gclHome = join(root, 'gcl-home');
  for (const d of [project, binDir, gclHome]) mkdirSync(d);

  // The job runs what a user's `npx buildx-bootstrap` would: this checkout's bin under this node.
  const wrapper = join(binDir, 'buildx-bootstrap');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(BIN)} "$@"\n`);
  chmodSync(wrapper, 0o755);

  copyFileSync(join(FIXTURES, 'gitlab-ci.yml'), join(project, '.gitlab-ci.yml'));
  copyFileSync(join(FIXTURES, 'Dockerfile'), join(project, 'Dockerfile'));
  writeFileSync(join(project, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${registry.host}/moby/buildkit`, version: 'v0.18.2' } }, null, 2) + '\n');
  git(project, ['init', '-q', '-b', 'main'], gclHome);
  git(project, ['config', 'user.name', 'bxb test'], gclHome);
  git(project, ['config', 'user.email', 'bxb-test@example.invalid'], gclHome);
  git(project, ['add', '.'], gclHome);
  git(project, ['commit', '-q', '-m', 'project'], gclHome);
  return { dockerd, registry, root, project, binDir, gclHome };
}

/** Runs one job with `gitlab-ci-local <job>`; `variables` reach the job through --variable. */
function runJob(t: Test, w: World, job: string, variables: Record<string, string>): Promise<JobRun> {
  const args = [
    GITLAB_CI_LOCAL,
    job,
    '--home', w.gclHome,
    '--shell-executor-no-image', // a job without image: runs on the shell executor…
    '--no-shell-isolation', // …in the project dir itself, like a shell runner's checkout
    '--no-mount-cache',
    '--no-fetch-includes',
    '--max-job-name-padding', '0',
    ...Object.entries(variables).flatMap(([k, v]) => ['--variable', `${k}=${v}`]),
  ];
  // A clean environment: no GCL_* option, no DOCKER_* or HOME of the machine running the tests.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: w.gclHome, GIT_CONFIG_NOSYSTEM: '1', FORCE_COLOR: '0' };
  // Its own process group, so a run past its bound is stopped with the job's processes.
  const child = spawn(process.execPath, args, { cwd: w.project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid ?? -1;
  let running = true;
  const killGroup = (): void => {
    if (!running || pid <= 0) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t.teardown(killGroup);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => {
      stderr += `\n[test] gitlab-ci-local ${job} still running after ${JOB_TIMEOUT_MS} ms: killed\n`;
      killGroup();
    }, JOB_TIMEOUT_MS);
    child.on('close', (code) => {
      running = false;
      clearTimeout(timer);
      const logFile = join(w.project, '.gitlab-ci-local', 'output', `${job}.log`);
      const log = existsSync(logFile) ? stripAnsi(readFileSync(logFile, 'utf8')) : '';
      resolvePromise({ code, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr), log });
    });
  });
}

function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}

/** The variables a job needs to reach this test's daemon and plugin, and nothing else. */
function jobVariables(w: World, fake: FakeBuildx, home: string): Record<string, string> {
  return {
    DOCKER_HOST: w.dockerd.host,
    DOCKER_CONFIG: fake.dockerConfig,
    BXB_FAKE_BUILDX_VERSION: fake.env.BXB_FAKE_BUILDX_VERSION,
    PATH: `${w.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: home,
  };
}

function fakeFor(t: Test, w: World, name: string): { fake: FakeBuildx; home: string } {
  const home = join(w.root, `home-${name}`);
  mkdirSync(home);
  return { fake: installFakeBuildx(t, { dockerConfig: join(w.root, `docker-config-${name}`) }), home };
}

function builds(fake: FakeBuildx): FakeBuildxCall[] {
  return fake.calls().filter((c) => c.args[0] === 'build');
}

async function builderContainers(d: Dockerd): Promise<string[]> {
  return (await dockerOutput(d, ['ps', '--filter', 'status=running', '--format', '{{.Names}}'])).split('\n').filter((l) => l.startsWith('buildx_buildkit_')).sort();
}

/** Diagnostics for a failed assertion: what gitlab-ci-local and the job printed. */
function transcript(r: JobRun): string {
  return `\n--- gitlab-ci-local stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

t.test('GitLab CI jobs run by gitlab-ci-local (shell executor, emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  if (!existsSync(join(REPO, 'dist', 'cli.cjs'))) {
    t.fail('dist/ is not built: run `npm run build` (npm test does) before this test');
    return;
  }
  const w = await world(t);

  t.test('pre-step: before_script brings the builder up and makes it current for a plain build', async (t) => {
    const { fake, home } = fakeFor(t, w, 'pre-step');
    const r = await runJob(t, w, 'pre-step', jobVariables(w, fake, home));
    t.equal(r.code, 0, `the job passes${r.code ? transcript(r) : ''}`);
    t.match(r.stdout, /PASS\s+pre-step/, 'gitlab-ci-local reports the job as passed');

    const lines = r.log.split('\n');
    const at = lines.findIndex((l) => l === '$ buildx-bootstrap --quiet');
    t.ok(at >= 0, 'the before_script ran');
    t.same(lines.slice(at + 1, at + 3), ['ci-pre-step', '$ docker buildx inspect'], 'with --quiet the job log shows the builder name and nothing else');
    t.match(r.log, /^Name:\s+ci-pre-step$/m, '`docker buildx inspect` without a name shows the builder: it is current');
    t.match(r.log, /^Driver:\s+docker-container$/m, 'a docker-container builder');
    t.match(r.log, /^Status:\s+running$/m, 'and running');
    t.match(r.log, /^BuildKit version:\s+v0\.18\.2$/m, 'with the pinned BuildKit');

    const current = JSON.parse(readFileSync(join(fake.dockerConfig, 'buildx', 'current'), 'utf8')) as { Name?: string };
    t.equal(current.Name, 'ci-pre-step', "buildx's store records the builder as current");
    const calls = builds(fake);
    t.equal(calls.length, 1, 'one build reached the buildx plugin');
    t.same(calls[0]?.args, ['build', '-t', 'app', '.'], 'the build named no builder…');
    t.equal(calls[0]?.env.BUILDX_BUILDER, undefined, '…and had no BUILDX_BUILDER, so buildx uses the current one');
    t.equal(calls[0]?.env.DOCKER_HOST, w.dockerd.host, 'the job reached the daemon given through --variable');
    t.same(await builderContainers(w.dockerd), ['buildx_buildkit_ci-pre-step0'], 'the builder container runs on that daemon');
  });

  t.test('prefix mode: the build gets the builder, and the job fails with the command', async (t) => {
    const { fake, home } = fakeFor(t, w, 'prefix');
    const vars = jobVariables(w, fake, home);
    const r = await runJob(t, w, 'prefix', vars);
    t.equal(r.code, 0, `the job passes${r.code ? transcript(r) : ''}`);
    t.match(r.stdout, /PASS\s+prefix/, 'gitlab-ci-local reports the job as passed');
    const calls = builds(fake);
    t.equal(calls.length, 1, 'one build reached the buildx plugin');
    t.same(calls[0]?.args, ['build', '--builder', 'ci-prefix', '--load', '-t', 'app', '.'], 'the build carries --builder and --load (tagged, no output, our container builder), user arguments unchanged');
    t.equal(calls[0]?.env.BUILDX_BUILDER, 'ci-prefix', 'and runs with BUILDX_BUILDER set');
    t.equal(calls[0]?.env.DOCKER_HOST, w.dockerd.host, 'against the daemon given through --variable');
    t.ok((await builderContainers(w.dockerd)).includes('buildx_buildkit_ci-prefix0'), 'the builder container runs');

    // Counted from here: a retried first job may have made a create call of its own.
    const seen = fake.calls().length;
    const failing = await runJob(t, w, 'prefix-failing', vars);
    t.equal(failing.code, 1, `gitlab-ci-local reports a failed job${failing.code === 1 ? '' : transcript(failing)}`);
    t.match(failing.stderr, /prefix-failing\b.*\bFAIL 3\b/, "the job failed with the command's exit code 3");
    t.match(failing.log, /^command ran with BUILDX_BUILDER=ci-prefix$/m, 'the command ran, with BUILDX_BUILDER set');
    t.notMatch(failing.log, /this line is never reached$/m, 'the job stopped at the failing line');
    t.same(fake.calls().slice(seen).filter((c) => c.args[0] === 'create'), [], 'the second job reused the builder');
  });
});
