// Builds on the REAL engines pull through authenticated mirrors with the credentials only the CI
// environment has (issue 19): `$CI_REGISTRY_IMAGE/mirror` on an htpasswd registry with
// CI_REGISTRY_USER/PASSWORD and no docker login — the engine image comes from it (the daemon's
// pull gets the job token) and BuildKit pulls the base image through it (buildx's session gets it
// from the per-run docker config). The user's config.json stays byte-identical, no token is left
// anywhere, the user's credential helper wins for its host, and a global credsStore does not
// swallow the hand-over.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines, pushRealEngineImage } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, tempDir, type RealWorld } from '../helpers/real-world.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/cli.js';
import { requireCondition } from '../helpers/integration.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { filesHolding } from '../helpers/files.js';

t.setTimeout(900_000);
const engines = requireEngines(t);

const base = buildEngineImage({ version: 'v0.0.1', platforms: ['linux/amd64'], index: false, flavour: 'base-image' });
const TOKENS = { job1: 'glcbt-64_FirstJobToken_aaaa1111', job2: 'glcbt-64_SecondJobToken_bbbb2222' };

/** A host name /etc/hosts maps to 127.0.0.1, other than localhost. */
function loopbackHostName(): string | undefined {
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (address !== '127.0.0.1') continue;
    const name = names.find((n) => n && n !== 'localhost' && /^[a-z0-9.-]+$/i.test(n));
    if (name) return name;
  }
  return undefined;
}

interface CiWorld {
  w: RealWorld;
  ci: RunningRegistry;
  tmp: string;
  configText: string;
  dir: string;
  env(user: keyof typeof TOKENS, extra?: Record<string, string>): Record<string, string | undefined>;
}

async function ciWorld(t: Test, pair: Parameters<typeof realWorld>[1], userConfig: Record<string, unknown> = {}): Promise<CiWorld> {
  const [w, ci] = await Promise.all([realWorld(t, pair), startRegistry(t, { basicAuth: { job1: TOKENS.job1, job2: TOKENS.job2 } })]);
  const auth = { username: 'job1', password: TOKENS.job1 };
  await pushRealEngineImage(ci, pair.kit, { repository: 'group/project/mirror/moby/buildkit', auth });
  await pushImage(ci, 'group/project/mirror/library/base', ['1'], base, { auth });
  const configText = `${JSON.stringify(userConfig, null, '\t')}\n`;
  writeFileSync(join(w.buildx.dockerConfig, 'config.json'), configText);
  const tmp = tempDir(t, 'bxb-tmp-');
  const dir = w.project(
    {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      // init's set-up: the scheduled mirror job's copy, `$CI_REGISTRY_IMAGE/mirror`.
      mirrors: [{ host: ci.host, path: 'group/project/mirror', for: w.upstream.host }],
      upstream: false,
      builder: { name: 'ci', driverOpts: { network: 'host' } },
    },
    {
      Dockerfile: [`FROM ${w.upstream.host}/library/base:1 AS base`, 'RUN echo "ran on $(cat /etc/bxb-standin | head -n 1)" > /built.txt', 'FROM scratch', 'COPY --from=base /built.txt /', ''].join('\n'),
    },
  );
  return {
    w,
    ci,
    tmp,
    configText,
    dir,
    env: (user, extra = {}) => ({ ...w.env, TMPDIR: tmp, CI_REGISTRY: ci.host, CI_REGISTRY_IMAGE: `${ci.host}/group/project`, CI_REGISTRY_USER: user, CI_REGISTRY_PASSWORD: TOKENS[user], CI_JOB_ID: user === 'job1' ? '1001' : '1002', ...extra }),
  };
}

async function build(c: CiWorld, t: Test, env: Record<string, string | undefined>, extra: string[] = []): Promise<string> {
  const out = join(tempDir(t), 'out');
  const r = await runCli(['--', 'docker', 'buildx', 'build', ...extra, '--output', `type=local,dest=${out}`, c.dir], { cwd: c.dir, env });
  t.equal(r.code, 0, `the prefixed build succeeds${r.code ? `: ${lastLine(r)}` : ''}`);
  t.notMatch(r.stderr + r.stdout, /FirstJobToken|SecondJobToken/, 'no token in the output');
  return existsSync(join(out, 'built.txt')) ? readFileSync(join(out, 'built.txt'), 'utf8') : '';
}

for (const pair of engines ? pairs(engines) : []) {
  const versions = `buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}`;

  t.test(`${versions}: $CI_REGISTRY_IMAGE/mirror on an htpasswd registry, empty docker config, no docker login — engine image and base image come from it; two jobs on one $HOME leave no token`, async (t) => {
    const c = await ciWorld(t, pair);
    const { w, ci } = c;
    t.equal(await build(c, t, c.env('job1')), 'ran on version=v0.0.1\n', 'the RUN step ran on the base image from the mirror');
    await Promise.all([ci.settle(), w.upstream.settle()]);
    const log = ci.requestLog();
    t.ok(log.some((l) => /^(HEAD|GET) \/v2\/group\/project\/mirror\/moby\/buildkit\/manifests\/\S+ 200$/.test(l)), `the daemon pulled the engine image from the mirror with the job token: ${log.join(', ')}`);
    t.ok(log.some((l) => /^(HEAD|GET) \/v2\/group\/project\/mirror\/library\/base\/manifests\/1(\?\S*)? 200$/.test(l)), 'BuildKit resolved the base image on the mirror, authenticated');
    t.ok(log.some((l) => /^GET \/v2\/group\/project\/mirror\/library\/base\/blobs\/sha256:[0-9a-f]{64}(\?\S*)? 200$/.test(l)), 'and fetched its layers');
    t.equal(w.upstream.requests(), 0, 'the upstream (Docker Hub) got no request');
    t.equal(readFileSync(join(w.buildx.dockerConfig, 'config.json'), 'utf8'), c.configText, 'config.json is byte-identical');
    const places = [w.env.HOME!, c.tmp];
    t.same(filesHolding(places, 'job1', TOKENS.job1), [], 'no file under $HOME (docker config, state dir) or $TMPDIR holds the first job token');

    // The next job on the same shell-runner $HOME, with its own token: BuildKit must re-resolve.
    t.equal(await build(c, t, c.env('job2'), ['--pull']), 'ran on version=v0.0.1\n', 'the second job builds with its own token');
    t.same(filesHolding(places, 'job2', TOKENS.job2), [], 'and leaves its token nowhere either');
    t.same(filesHolding(places, 'job1', TOKENS.job1), [], 'nor the first one');
    t.equal(readFileSync(join(w.buildx.dockerConfig, 'config.json'), 'utf8'), c.configText, 'config.json is still byte-identical');
    t.same(readdirSync(c.tmp).filter((n) => n.startsWith('buildx-bootstrap-auth-')), [], 'no per-run directory is left in $TMPDIR');
  });

  t.test(`${versions}: a global credsStore (Docker Desktop, many CI images) does not swallow the hand-over; the user's credential helper for the mirror host wins over the environment`, async (t) => {
    // A store that knows nothing of the mirror (docker reads no `auths` under it).
    const binDir = tempDir(t, 'bxb-bin-');
    const storeLog = join(binDir, 'desktop.log');
    writeFileSync(join(binDir, 'docker-credential-desktop'), `#!/bin/sh\nread url\necho "$1 $url" >> '${storeLog}'\necho 'credentials not found in native keychain'\nexit 1\n`, { mode: 0o755 });
    const c = await ciWorld(t, pair, { credsStore: 'desktop' });
    const path = `${binDir}:${c.w.env.PATH}`;
    t.equal(await build(c, t, c.env('job1', { PATH: path })), 'ran on version=v0.0.1\n', 'the build pulls through the mirror with the job token under a global credsStore');
    t.equal(readFileSync(join(c.w.buildx.dockerConfig, 'config.json'), 'utf8'), c.configText, 'config.json is byte-identical');
    t.same(filesHolding([c.w.env.HOME!, c.tmp], 'job1', TOKENS.job1), [], 'no token left behind');

    // The user's own helper for the mirror host answers with job2's account; the environment has
    // a wrong password. The helper wins: the build succeeds, and buildx asked the helper.
    const helperLog = join(binDir, 'corp.log');
    writeFileSync(
      join(binDir, 'docker-credential-corp'),
      `#!/bin/sh\nread url\necho "$1 $url builder=\${BUILDX_BUILDER:-none}" >> '${helperLog}'\necho '{"ServerURL":"'"$url"'","Username":"job2","Secret":"${TOKENS.job2}"}'\n`,
      { mode: 0o755 },
    );
    const helperConfig = `${JSON.stringify({ credHelpers: { [c.ci.host]: 'corp' } })}\n`;
    writeFileSync(join(c.w.buildx.dockerConfig, 'config.json'), helperConfig);
    t.equal(await build(c, t, c.env('job1', { PATH: path, CI_REGISTRY_PASSWORD: 'wrong-password' }), ['--pull']), 'ran on version=v0.0.1\n', "the build uses the helper's credentials");
    t.match(readFileSync(helperLog, 'utf8'), new RegExp(`^get ${c.ci.host.replace(/\./g, '\\.')} builder=ci$`, 'm'), 'buildx (running under BUILDX_BUILDER=ci) asked the helper for the mirror host');
    t.equal(readFileSync(join(c.w.buildx.dockerConfig, 'config.json'), 'utf8'), helperConfig, 'config.json is byte-identical');
  });
}

for (const pair of engines ? pairs(engines).slice(-1) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: pre-flight — plan lists the mirror serving each image; a wrong job token fails before the build (upstream: false) or warns first (upstream: true)`, async (t) => {
    const c = await ciWorld(t, pair);
    const planned = await runCli(['plan', '--json', '--', 'docker', 'buildx', 'build', c.dir], { cwd: c.dir, env: c.env('job1') });
    t.equal(planned.code, 0, planned.stderr);
    const images = (JSON.parse(planned.stdout) as { images: { ref: string; servedBy: string | null; digest: string | null }[] }).images;
    t.same(
      images.map((i) => ({ ref: i.ref, servedBy: i.servedBy })),
      [{ ref: `${c.w.upstream.host}/library/base:1`, servedBy: `${c.ci.host}/group/project/mirror/library/base` }],
      'plan --json names the mirror that will serve the base image',
    );
    t.match(images[0]?.digest, /^sha256:[0-9a-f]{64}$/, 'at its digest');

    // The engine image pinned and on the daemon (lockfile + a first build), so only the build's
    // own images meet the wrong token.
    t.equal((await runCli(['lock'], { cwd: c.dir, env: c.env('job1') })).code, 0, 'lock');
    t.equal(await build(c, t, c.env('job1')), 'ran on version=v0.0.1\n', 'a first build with the right token');
    await c.ci.settle();
    const before = c.ci.requestLog().length;
    const wrong = c.env('job1', { CI_REGISTRY_PASSWORD: 'expired-job-token' });
    const refused = await runCli(['--', 'docker', 'buildx', 'build', c.dir], { cwd: c.dir, env: wrong });
    t.equal(refused.code, 3, 'exit 3 before the build');
    t.match(refused.stderr, `no mirror serves ${c.w.upstream.host}/library/base:1`, 'naming the image');
    t.match(refused.stderr, new RegExp(`${c.ci.host.replace(/\./g, '\\.')}/group/project/mirror/library/base: authentication failed \\(401\\).*with the credentials BuildKit will have: CI_REGISTRY_USER/CI_REGISTRY_PASSWORD`), "naming the mirror's answer and the credentials' source");
    t.notMatch(refused.stderr, /expired-job-token/, 'never the secret');
    await c.ci.settle();
    t.notOk(c.ci.requestLog().slice(before).some((l) => l.includes('?ns=')), 'BuildKit never asked the mirror: no build step ran');

    const loose = c.w.project(
      { buildkit: { image: `${c.w.upstream.host}/moby/buildkit`, version: pair.kit.version }, mirrors: [{ host: c.ci.host, path: 'group/project/mirror', for: c.w.upstream.host }], upstream: true, builder: { name: 'ci', driverOpts: { network: 'host' } } },
      { Dockerfile: `FROM ${c.w.upstream.host}/library/base:1\n` },
    );
    t.equal((await runCli(['lock'], { cwd: loose, env: c.env('job1') })).code, 0, 'lock');
    await pushImage(c.w.upstream, 'library/base', ['1'], base);
    const warned = await runCli(['--', 'docker', 'buildx', 'build', loose], { cwd: loose, env: wrong });
    const at = warned.stderr.indexOf(`${c.w.upstream.host}/library/base:1 will come from ${c.w.upstream.host} itself, not a mirror`);
    t.ok(at >= 0, `a warning names the image and where it will come from${at < 0 ? `: ${warned.stderr.slice(-1500)}` : ""}`);
    t.match(warned.stderr.slice(at), /authentication failed \(401\)/, 'and why');
    const buildOutput = warned.stderr.search(/#\d+ |\[internal\]/);
    t.ok(buildOutput < 0 || at < buildOutput, 'before the build starts');
  });
}

for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: HTTP(S)_PROXY reaches BuildKit — a base image from a registry not in NO_PROXY goes through the forward proxy, the loopback mirror does not`, async (t) => {
    // A name Go's proxy rules do not take for loopback (only `localhost` and loopback IPs), from
    // /etc/hosts: should the proxy not be used, it still resolves locally — no DNS query leaves.
    const name = loopbackHostName();
    if (!requireCondition(t, name !== undefined, 'needs a name other than localhost for 127.0.0.1 in /etc/hosts')) return;
    const w = await realWorld(t, pair);
    const proxy = await startForwardProxy(t);
    const remote = `${name}:${w.upstream.port}`;
    await pushImage(w.upstream, 'library/base', ['1'], base);
    const dir = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        mirrors: [{ host: w.mirror.host, for: w.upstream.host }],
        upstream: false,
        registries: { [remote]: { http: true } },
        builder: { name: 'proxied', driverOpts: { network: 'host' } },
      },
      { Dockerfile: `FROM ${remote}/library/base:1\nRUN cat /etc/bxb-standin | head -n 1 > /built.txt\n` },
    );
    const env = { ...w.env, HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '.corp.example' };
    const r = await runCli(['--', 'docker', 'buildx', 'build', dir], { cwd: dir, env });
    t.equal(r.code, 0, `the build succeeds${r.code ? `: ${lastLine(r)}` : ''}`);
    const through = proxy.log();
    const asked = through.some((l) => l.startsWith(`GET http://${remote}/v2/library/base/manifests/1`) || l.startsWith(`HEAD http://${remote}/v2/library/base/manifests/1`));
    t.ok(asked, `BuildKit asked the registry for the base image through the proxy${asked ? '' : `: ${through.join(', ')}`}`);
    t.ok(through.some((l) => l.startsWith(`GET http://${remote}/v2/library/base/blobs/sha256:`)), 'and fetched its layers through it');
    t.notOk(through.some((l) => l.includes(w.mirror.host)), 'the loopback mirror was reached directly');
    const inspect = await w.dockerd.docker(['inspect', '--format', '{{json .Config.Env}}', 'buildx_buildkit_proxied0']);
    const containerEnv = JSON.parse(inspect.stdout) as string[];
    t.ok(containerEnv.includes(`HTTPS_PROXY=${proxy.url}`) && containerEnv.includes(`http_proxy=${proxy.url}`), 'the BuildKit container runs with the proxy in both spellings');
    t.ok(containerEnv.includes(`NO_PROXY=.corp.example,localhost,127.0.0.1,::1,${w.mirror.host}`), 'and NO_PROXY with loopback and the mirror');
  });
}

for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: the build cache at $CI_REGISTRY_IMAGE/cache on an htpasswd registry is written with the job token, no docker login`, async (t) => {
    const w = await realWorld(t, pair);
    const registry = await startRegistry(t, { basicAuth: { 'gitlab-ci-token': TOKENS.job1 } });
    const dir = w.project(
      { buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version }, builder: { name: 'cachecreds', driverOpts: { network: 'host' } } },
      { Dockerfile: 'FROM scratch\nCOPY Dockerfile /built\n' },
    );
    const env = {
      ...w.env,
      TMPDIR: tempDir(t, 'bxb-tmp-'),
      GITLAB_CI: 'true',
      CI_DEFAULT_BRANCH: 'main',
      CI_PROJECT_ID: '1',
      CI_COMMIT_BRANCH: 'main',
      CI_COMMIT_REF_NAME: 'main',
      CI_REGISTRY: registry.host,
      CI_REGISTRY_IMAGE: `${registry.host}/grp/app`,
      CI_REGISTRY_USER: 'gitlab-ci-token',
      CI_REGISTRY_PASSWORD: TOKENS.job1,
    };
    const r = await runCli(['--', 'docker', 'buildx', 'build', '--output', `type=local,dest=${join(tempDir(t), 'out')}`, dir], { cwd: dir, env });
    t.equal(r.code, 0, `the build succeeds${r.code ? `: ${lastLine(r)}` : ''}`);
    t.match(r.stderr, new RegExp(`wrote ${registry.host.replace(/\./g, '\\.')}/grp/app/cache:cache-main-[0-9a-f]{8}`), 'the cache report says the tag was written');
    await registry.settle();
    t.ok(registry.requestLog().some((l) => /^PUT \/v2\/grp\/app\/cache\/manifests\/cache-main-[0-9a-f]{8} 201$/.test(l)), 'the registry stored the cache manifest, pushed with the job token');
    t.same(filesHolding([w.env.HOME!, env.TMPDIR], 'gitlab-ci-token', TOKENS.job1), [], 'and no token is left behind');
  });
}
