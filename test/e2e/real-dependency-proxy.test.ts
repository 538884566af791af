// The GitLab Dependency Proxy as a build sees it, on the REAL engines: TLS on 127.0.0.1:443 with
// the harness CA, bearer tokens from a token server that only knows the job's Dependency Proxy
// account, images under `group/dependency_proxy/containers/library/…`, the CI_DEPENDENCY_PROXY_*
// variables exactly as GitLab sets them (server and prefix with `:443`), no route to Docker Hub.
// A prefixed `FROM alpine:3.20` build pulls through it with the job's credentials; with a wrong
// password the pre-flight stops it (upstream: false) or warns first (upstream: true).
//
// Differences from GitLab: the token realm is on 127.0.0.1 but on its own port over plain HTTP
// (GitLab: https on the same host:443), and a TCP forwarder on :443 stands in front of the
// registry's own port. Only one test binds 127.0.0.1:443 at a time: the tests here run in order.
import t, { type Test } from 'tap';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { requireCondition } from '../helpers/integration.js';
import { pairs, realWorld, lastLine, tempDir } from '../helpers/real-world.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { runCli } from '../helpers/cli.js';

t.setTimeout(900_000);
const engines = requireEngines(t);
const alpine = buildEngineImage({ version: 'v3.20.0', platforms: ['linux/amd64'], index: false, flavour: 'base-image' });
const DP = { user: 'gitlab-ci-token', password: 'glcbt-DependencyProxy_Token_9876' };

/** A TCP forwarder on 127.0.0.1:443 to the registry's port (TLS passes through untouched). */
async function forward443(t: Test, targetPort: number): Promise<boolean> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(443, '127.0.0.1', () => resolve(true));
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return ok;
}

async function dependencyProxy(t: Test): Promise<{ registry: RunningRegistry; tokens: TokenServer } | undefined> {
  const tokens = await startTokenServer(t, { users: { [DP.user]: DP.password } });
  const registry = await startRegistry(t, { tls: true, tokenAuth: tokens });
  if (!requireCondition(t, await forward443(t, registry.port), 'needs 127.0.0.1:443 free and bindable (root)')) return undefined;
  // The harness pushes to the registry's own port (its push session speaks the token flow too).
  await pushImage(registry, 'group/dependency_proxy/containers/library/alpine', ['3.20'], alpine, { auth: { username: DP.user, password: DP.password } });
  return { registry, tokens };
}

for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: FROM alpine:3.20 through the Dependency Proxy on 127.0.0.1:443 with the CI_DEPENDENCY_PROXY_* credentials; a wrong password stops or warns before the build`, async (t) => {
    const dp = await dependencyProxy(t);
    if (!dp) return;
    const w = await realWorld(t, pair);
    const configText = '{\n\t"auths": {}\n}\n';
    writeFileSync(join(w.buildx.dockerConfig, 'config.json'), configText);
    const base = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      // The engine image from an anonymous mirror; the Dependency Proxy is added for docker.io.
      mirrors: [{ host: w.mirror.host, for: w.upstream.host }],
      // The harness CA for the proxy host: BuildKit gets it in buildkitd.toml, our client reads it
      // too. `http: false` because BuildKit speaks plain HTTP to a loopback host unless told (a
      // real GitLab host is never loopback).
      registries: { '127.0.0.1:443': { ca: [dp.registry.caFile!], http: false } },
      builder: { name: 'dp', driverOpts: { network: 'host' } },
    };
    const dockerfile = { Dockerfile: 'FROM alpine:3.20\nRUN cat /etc/bxb-standin | head -n 1 > /built.txt\nFROM scratch\nCOPY --from=0 /built.txt /\n' };
    const dir = w.project({ ...base, upstream: false }, dockerfile);
    const gitlab = (password: string): Record<string, string | undefined> => ({
      ...w.env,
      TMPDIR: tempDir(t, 'bxb-tmp-'),
      CI_SERVER_HOST: '127.0.0.1',
      CI_DEPENDENCY_PROXY_SERVER: '127.0.0.1:443',
      CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX: '127.0.0.1:443/group/dependency_proxy/containers',
      CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX: '127.0.0.1:443/group/dependency_proxy/containers',
      CI_DEPENDENCY_PROXY_USER: DP.user,
      CI_DEPENDENCY_PROXY_PASSWORD: password,
    });
    const out = join(tempDir(t), 'out');
    const r = await runCli(['--', 'docker', 'buildx', 'build', '--output', `type=local,dest=${out}`, dir], { cwd: dir, env: gitlab(DP.password) });
    t.equal(r.code, 0, `the prefixed build succeeds${r.code ? `: ${lastLine(r)}` : ''}`);
    t.equal(readFileSync(join(out, 'built.txt'), 'utf8'), 'version=v3.20.0\n', 'the RUN step ran on alpine from the proxy');
    await dp.registry.settle();
    const log = dp.registry.requestLog().filter((l) => l.includes('/group/dependency_proxy/containers/library/alpine/'));
    t.ok(log.some((l) => /^(HEAD|GET) \S+\/manifests\/3\.20\?ns=docker\.io 200$/.test(l)), `BuildKit resolved alpine:3.20 on the proxy, authenticated${log.some((l) => l.endsWith(' 200')) ? '' : `: ${log.join(', ')}`}`);
    t.ok(log.some((l) => /^GET \S+\/blobs\/sha256:[0-9a-f]{64}\?ns=docker\.io 200$/.test(l)), 'and fetched its layers from it');
    t.ok(dp.tokens.requests().some((q) => q.username === DP.user && q.status === 200 && q.scopes.some((s) => s.includes('library/alpine:pull'))), 'tokens were issued for the Dependency Proxy account');
    t.equal(readFileSync(join(w.buildx.dockerConfig, 'config.json'), 'utf8'), configText, 'config.json is byte-identical');
    t.notMatch(r.stderr + r.stdout, /DependencyProxy_Token/, 'the password is never printed');

    const refused = await runCli(['--', 'docker', 'buildx', 'build', dir], { cwd: dir, env: gitlab('wrong-password') });
    t.equal(refused.code, 3, 'upstream: false and a wrong password: exit 3 before the build');
    t.match(refused.stderr, /no mirror serves docker\.io\/library\/alpine:3\.20 \(127\.0\.0\.1:443\/group\/dependency_proxy\/containers\/library\/alpine: [^)]*401/, 'naming the image, the proxy and its 401');
    t.notMatch(refused.stderr, /#\d+ \[/, 'no build step ran');

    const loose = w.project({ ...base, upstream: true }, dockerfile);
    const warned = await runCli(['--', 'docker', 'buildx', 'build', loose], { cwd: loose, env: gitlab('wrong-password') });
    const at = warned.stderr.indexOf('docker.io/library/alpine:3.20 will come from docker.io itself, not a mirror');
    t.ok(at >= 0, `upstream: true: the warning is printed${at < 0 ? `: ${warned.stderr.slice(-1500)}` : ''}`);
    const step = warned.stderr.search(/#\d+ \[/);
    t.ok(step < 0 || at < step, 'before the build');
  });
}
