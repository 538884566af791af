// What issue 19 adds to create, plan and env, on a real dockerd and loopback registries with the
// emulated buildx plugin (the real-engine builds are in test/e2e/real-registry-credentials.test.ts):
// a path mirror with a BuildKit older than v0.12 is refused before anything is pulled or created,
// and `env` prints the per-run docker config for a build in its own step, which `env --remove`
// deletes.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { runCli } from '../helpers/cli.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { BINARIES, cliEnv, createCalls, installFakeBuildx, project, tempDir, world } from '../helpers/world.js';

t.test('BuildKit pinned below v0.12 with a path mirror: exit 2 naming the mirror and the version, before any pull or create (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  await pushEngineTags(w.upstream, { tags: { 'v0.11.6': {} } });
  const fake = installFakeBuildx(t);
  const mirrors = [{ host: w.mirror.host, path: 'dockerhub-proxy', for: w.upstream.host }];
  const dir = project(t, w, { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.11.6' }, mirrors, builder: { name: 'old' } });
  const env = cliEnv(w, fake);
  for (const argv of [[], ['plan']]) {
    const r = await runCli(argv, { cwd: dir, env });
    t.equal(r.code, 2, `${argv[0] ?? 'create'}: a configuration error`);
    t.match(r.stderr, `${w.mirror.host}/dockerhub-proxy is a path mirror; BuildKit v0.11.6`, 'naming the mirror and the pinned version');
    t.match(r.stderr, /path mirrors need BuildKit v0\.12\.0 or newer/, 'and the version that supports it');
  }
  t.same(createCalls(fake.calls()), [], 'no builder was created');
  t.equal((await w.dockerd.docker(['images', '-q'])).stdout.trim(), '', 'nothing was pulled');

  // The same pin with a host-only mirror is fine, and v0.12 with the path mirror too.
  const hostOnly = project(t, w, { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.11.6' }, mirrors: [{ host: w.mirror.host, for: w.upstream.host }] });
  t.equal((await runCli(['plan'], { cwd: hostOnly, env })).code, 0, 'a host-only mirror works with BuildKit v0.11');
  const recent = project(t, w, { mirrors });
  t.equal((await runCli(['plan'], { cwd: recent, env })).code, 0, 'a path mirror works with BuildKit v0.18');
});

t.test('env prints the per-run docker config for a later build step; env --remove deletes it (GitLab job directory)', async (t) => {
  if (!requireBinaries(t, ['docker'])) return;
  const home = tempDir(t);
  const tmp = tempDir(t);
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    TMPDIR: tmp,
    CI_JOB_ID: '4242',
    CI_REGISTRY: 'registry.gitlab.example',
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: 'Job-Token-in-env-test',
  };
  const dir = tempDir(t);
  const r = await runCli(['env'], { cwd: dir, env });
  t.equal(r.code, 0, r.stderr);
  const jobDir = join(tmp, 'buildx-bootstrap-auth-job-4242');
  t.match(r.stdout, `export DOCKER_CONFIG='${jobDir}'\n`, 'DOCKER_CONFIG names the job directory');
  t.match(r.stdout, `export BUILDX_CONFIG='${join(home, '.docker', 'buildx')}'`, "buildx's store stays the user's");
  t.notMatch(r.stdout + r.stderr, /Job-Token-in-env-test/, 'no secret printed');
  t.match(r.stderr, /registry\.gitlab\.example: credentials from CI_REGISTRY_USER\/CI_REGISTRY_PASSWORD/, 'says where the credentials come from');
  const auths = (JSON.parse(readFileSync(join(jobDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> }).auths;
  t.equal(Buffer.from(auths['registry.gitlab.example']!.auth, 'base64').toString(), 'gitlab-ci-token:Job-Token-in-env-test', 'the job token is in the private config');

  // A second `env` in the same job (DOCKER_CONFIG exported) layers over the user's, not over itself.
  const again = await runCli(['env'], { cwd: dir, env: { ...env, DOCKER_CONFIG: jobDir } });
  t.equal(again.code, 0);
  t.match(again.stdout, `export BUILDX_CONFIG='${join(home, '.docker', 'buildx')}'`, 'still the user store');

  // after_script: a new shell without the exported variables finds the directory by CI_JOB_ID.
  const removed = await runCli(['env', '--remove'], { cwd: dir, env });
  t.equal(removed.code, 0);
  t.notOk(existsSync(jobDir), 'the job directory and the token in it are gone');
  t.equal((await runCli(['rm', '--remove'], { cwd: dir, env })).code, 2, '--remove belongs to env');
});

t.test('HTTP(S)_PROXY reaches the BuildKit container as env.* driver options, NO_PROXY keeps loopback and direct mirrors direct; a proxy URL with a password is refused unseen (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }] });
  const proxy = 'http://127.0.0.1:3128';
  const plain = JSON.parse((await runCli(['plan', '--json'], { cwd: dir, env: cliEnv(w, fake) })).stdout) as { argv: string[]; builder: string };
  const r = await runCli(['plan', '--json'], { cwd: dir, env: cliEnv(w, fake, { HTTPS_PROXY: proxy, http_proxy: proxy, NO_PROXY: '.corp.example' }) });
  t.equal(r.code, 0, r.stderr);
  const planned = JSON.parse(r.stdout) as { argv: string[]; builder: string };
  const opts = planned.argv.flatMap((a, i) => (planned.argv[i - 1] === '--driver-opt' ? [a] : []));
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy']) t.ok(opts.includes(`env.${name}=${proxy}`), `--driver-opt env.${name}`);
  const noProxy = opts.find((o) => o.startsWith('"env.NO_PROXY='));
  t.equal(noProxy, `"env.NO_PROXY=.corp.example,localhost,127.0.0.1,::1,${w.mirror.host}"`, 'NO_PROXY keeps the user entries, loopback and the mirror (one quoted CSV field for buildx)');
  t.not(planned.builder, plain.builder, 'the proxy options count in the builder name like any driver option');

  const refused = await runCli(['plan'], { cwd: dir, env: cliEnv(w, fake, { HTTPS_PROXY: 'http://alice:S3cret-Proxy-Pass@127.0.0.1:3128' }) });
  t.equal(refused.code, 2, 'a configuration error');
  t.match(refused.stderr, /HTTPS_PROXY: the proxy URL carries a user and password/, 'naming the variable');
  t.notMatch(refused.stderr, /S3cret|alice/, 'never its value');
  t.match(refused.stderr, /set builder\.driverOpts "env\.https_proxy"/, 'with the fix');
  const explicitDir = project(t, w, { builder: { driverOpts: { 'env.https_proxy': 'http://127.0.0.1:3129' } } });
  const explicit = await runCli(['plan', '--json'], { cwd: explicitDir, env: cliEnv(w, fake, { HTTPS_PROXY: 'http://alice:S3cret-Proxy-Pass@127.0.0.1:3128' }) });
  t.equal(explicit.code, 0, 'the user set the option explicitly: their value is used, the variable is not checked');
  t.notMatch(explicit.stdout, /S3cret/);
});
