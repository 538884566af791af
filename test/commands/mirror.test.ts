// `buildx-bootstrap mirror` end to end, in-process, against real docker-registry instances on
// loopback. The upstream stands in for Docker Hub: token server in front (Bearer flow), the
// engine as a multi-platform OCI index with attestation manifests, CI images as Docker manifest
// lists, OCI indexes and a single Docker v2 manifest. Digests are checked with skopeo.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinaries } from '../helpers/integration.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { startTokenServer } from '../helpers/token-server.js';
import { forwardTo, startHttpStub } from '../helpers/net.js';
import { buildEngineImage, pushImage, type EngineImage } from '../helpers/engine-image.js';

const execFileP = promisify(execFile);
const HUB_USER = { username: 'hubuser', password: 'Hub-Secret-Pass-77' };
const TARGET_USER = { username: 'pusher', password: 'Target-Secret-Pass-42' };

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `skopeo inspect --raw` of a reference: the manifest bytes as the registry serves them. */
async function rawDigest(ref: string, opts: { creds?: { username: string; password: string }; certDir?: string } = {}): Promise<string> {
  const args = ['inspect', '--raw', opts.certDir ? `--cert-dir=${opts.certDir}` : '--tls-verify=false'];
  if (opts.creds) args.push(`--creds=${opts.creds.username}:${opts.creds.password}`);
  const { stdout } = await execFileP('skopeo', [...args, `docker://${ref}`], { encoding: 'buffer', timeout: 60_000, env: { PATH: process.env.PATH, HOME: '/nonexistent' } });
  return sha(stdout);
}


if (requireBinaries(t, ['docker-registry', 'openssl', 'busybox', 'skopeo'])) {
  const ts = await startTokenServer(t, { users: { [HUB_USER.username]: HUB_USER.password } });
  const upstream = await startRegistry(t, { tokenAuth: ts });
  const hub = upstream.host;
  const engine = buildEngineImage({ version: 'v0.18.2', platforms: ['linux/amd64', 'linux/arm64'], attestations: true });
  const cli = buildEngineImage({ version: 'cli-27', format: 'docker', platforms: ['linux/amd64', 'linux/arm64'] });
  const vault = buildEngineImage({ version: 'vault-1.15', platforms: ['linux/amd64', 'linux/386'], payloadBytes: 256 * 1024 });
  const alpine = buildEngineImage({ version: 'alpine-3.20', format: 'docker', platforms: ['linux/amd64'], index: false });
  const images: Record<string, EngineImage> = { 'moby/buildkit:v0.18.2': engine, 'library/docker:27-cli': cli, 'hashicorp/vault:1.15': vault, 'library/alpine:3.20': alpine };
  for (const [name, image] of Object.entries(images)) {
    const [repo, tag] = name.split(':') as [string, string];
    await pushImage(upstream.url, repo, [tag], image, { auth: HUB_USER });
  }
  t.equal(engine.children.filter((c) => c.platform.os === 'unknown').length, 2, 'the engine index carries attestation manifests');

  /** A project dir with a config file and a private DOCKER_CONFIG holding the given auths. */
  const project = (t: Test, config: Record<string, unknown>, auths: Record<string, { username: string; password: string }> = {}): { cwd: string; env: Record<string, string | undefined> } => {
    const cwd = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify(config, null, 2) });
    const docker = join(cwd, '.docker');
    mkdirSync(docker);
    const all = { [hub]: HUB_USER, ...auths };
    writeFileSync(join(docker, 'config.json'), JSON.stringify({ auths: Object.fromEntries(Object.entries(all).map(([h, c]) => [h, { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') }])) }));
    return { cwd, env: { PATH: process.env.PATH, HOME: cwd, DOCKER_CONFIG: docker } };
  };
  const baseConfig = (target: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    buildkit: { image: `${hub}/moby/buildkit`, version: 'v0.18.2' },
    mirrors: [{ host: target, path: 'hub', for: hub }],
    mirror: { images: [`${hub}/library/docker:27-cli`, `${hub}/hashicorp/vault:1.15`] },
    ...extra,
  });
  const mirror = (p: { cwd: string; env: Record<string, string | undefined> }, ...argv: string[]): Promise<CliResult> => runCli(['mirror', ...argv], p);
  const noSecrets = (t: Test, ...results: CliResult[]): void => {
    for (const r of results) for (const secret of [HUB_USER.password, TARGET_USER.password]) t.notMatch(r.stdout + r.stderr, secret, 'no secret in any output');
  };

  t.test('copies whole images under the path prefix, same digests; a re-run asks the upstream only HEADs and uploads nothing', async (t) => {
    const target = await startRegistry(t);
    const p = project(t, baseConfig(target.host));
    const first = await mirror(p, `${hub}/library/alpine:3.20`);
    t.equal(first.code, 0, first.stderr);
    const expected = [
      `${hub}/moby/buildkit:v0.18.2 -> ${target.host}/hub/moby/buildkit:v0.18.2@${engine.digest}`,
      `${hub}/library/docker:27-cli -> ${target.host}/hub/library/docker:27-cli@${cli.digest}`,
      `${hub}/hashicorp/vault:1.15 -> ${target.host}/hub/hashicorp/vault:1.15@${vault.digest}`,
      `${hub}/library/alpine:3.20 -> ${target.host}/hub/library/alpine:3.20@${alpine.digest}`,
    ];
    t.same(first.stdout.trim().split('\n'), expected, 'one line per image: source -> target@digest');
    for (const [name, image] of Object.entries(images)) {
      t.equal(await rawDigest(`${target.host}/hub/${name}`), image.digest, `${name}: same digest in the target (skopeo)`);
      for (const child of image.children) t.equal(await rawDigest(`${target.host}/hub/${name.split(':')[0]}@${child.manifest.digest}`), child.manifest.digest, `${name}: child ${child.platform.os}/${child.platform.architecture} present`);
    }
    await Promise.all([upstream.settle(), target.settle()]);
    const upBefore = upstream.requestLog().length;
    const targetBefore = target.requestLog().length;

    const second = await mirror(p, `${hub}/library/alpine:3.20`, '--json');
    t.equal(second.code, 0, second.stderr);
    const out = JSON.parse(second.stdout) as { source: string; digest: string; upToDate: boolean; manifestRequested: boolean; blobs: { copied: number } }[];
    t.same(out.map((r) => [r.digest, r.upToDate, r.manifestRequested, r.blobs.copied]), Object.values(images).map((i) => [i.digest, true, false, 0]));
    await Promise.all([upstream.settle(), target.settle()]);
    const upLog = upstream.requestLog().slice(upBefore);
    const targetLog = target.requestLog().slice(targetBefore);
    const asked = Object.keys(images).map((name) => `HEAD /v2/${name.replace(':', '/manifests/')} 200`);
    t.same(upLog.filter((l) => /^HEAD \/v2\/.+\/manifests\/.+ 200$/.test(l)).sort(), asked.sort(), 'the upstream was asked for each tag once (HEAD)');
    t.same(upLog.filter((l) => /^GET \/v2\/.+\/manifests\//.test(l)), [], 'no manifest GET upstream');
    t.same(upLog.filter((l) => /\/blobs\//.test(l)), [], 'no blob read upstream');
    t.same(targetLog.filter((l) => /^(POST|PUT|PATCH) /.test(l)), [], 'nothing uploaded to the target');
    noSecrets(t, first, second);
  });

  t.test('a tag that moved upstream between runs: the re-run copies the new image under it', async (t) => {
    const target = await startRegistry(t);
    const p = project(t, { ...baseConfig(target.host), mirror: { engine: false } });
    const before = buildEngineImage({ version: 'moving-1', platforms: ['linux/amd64', 'linux/arm64'] });
    const after = buildEngineImage({ version: 'moving-2', platforms: ['linux/amd64', 'linux/arm64'] });
    t.not(after.digest, before.digest);
    await pushImage(upstream.url, 'team/moving', ['1'], before, { auth: HUB_USER });
    const first = await mirror(p, `${hub}/team/moving:1`);
    t.equal(first.code, 0, first.stderr);
    t.equal(await rawDigest(`${target.host}/hub/team/moving:1`), before.digest);

    await pushImage(upstream.url, 'team/moving', ['1'], after, { auth: HUB_USER });
    await Promise.all([upstream.settle(), target.settle()]);
    const upBefore = upstream.requestLog().length;
    const second = await mirror(p, `${hub}/team/moving:1`, '--json');
    t.equal(second.code, 0, second.stderr);
    const moved = (JSON.parse(second.stdout) as { source: string; digest: string; upToDate: boolean }[]).find((r) => r.source.endsWith('/team/moving:1'));
    t.same([moved?.digest, moved?.upToDate], [after.digest, false], 'reported as copied, with the new digest');
    t.equal(await rawDigest(`${target.host}/hub/team/moving:1`), after.digest, 'the target tag now holds the new image (skopeo)');
    for (const child of after.children) t.equal(await rawDigest(`${target.host}/hub/team/moving@${child.manifest.digest}`), child.manifest.digest, `child ${child.platform.architecture} present`);
    await upstream.settle();
    const upLog = upstream.requestLog().slice(upBefore);
    t.ok(upLog.includes(`GET /v2/team/moving/manifests/${after.digest} 200`), 'the new index was read upstream');
  });

  t.test('--to an htpasswd target (and a TLS one): Basic auth with push rights, nothing printed that is secret', async (t) => {
    const basic = await startRegistry(t, { basicAuth: { [TARGET_USER.username]: TARGET_USER.password } });
    const tls = await startRegistry(t, { tls: true });
    const p = project(t, { ...baseConfig('unused.example'), mirror: { engine: false }, mirrors: [{ host: tls.host, ca: 'certs/ca.crt', for: hub }] }, { [basic.host]: TARGET_USER });
    const certDir = join(p.cwd, 'certs');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), tls.caCert!);
    const r1 = await mirror(p, '--to', `${basic.host}/ci`, `${hub}/library/docker:27-cli`);
    t.equal(r1.code, 0, r1.stderr);
    t.equal(r1.stdout, `${hub}/library/docker:27-cli -> ${basic.host}/ci/library/docker:27-cli@${cli.digest}\n`);
    t.equal(await rawDigest(`${basic.host}/ci/library/docker:27-cli`, { creds: TARGET_USER }), cli.digest);
    const r2 = await mirror(p, `${hub}/hashicorp/vault:1.15`);
    t.equal(r2.code, 0, r2.stderr);
    t.equal(await rawDigest(`${tls.host}/hashicorp/vault:1.15`, { certDir }), vault.digest, 'TLS target with the mirror ca:');
    const wrong = project(t, { ...baseConfig('unused.example'), mirror: { engine: false } }, { [basic.host]: { username: TARGET_USER.username, password: 'Not-The-Pass-1234' } });
    const refused = await mirror(wrong, '--to', basic.host, `${hub}/library/alpine:3.20`);
    t.equal(refused.code, 1, 'the target refused: exit 1');
    t.match(refused.stderr, new RegExp(`${basic.host}.*authentication failed`));
    t.notMatch(refused.stderr, 'Not-The-Pass-1234');
    noSecrets(t, r1, r2, refused);
  });

  t.test('a target that denies the push (quota) is exit 1 naming the registry and its reason', async (t) => {
    const real = await startRegistry(t, { basicAuth: { [TARGET_USER.username]: TARGET_USER.password } });
    const quota = await startHttpStub(t, (req, res, body) => {
      if (req.method === 'POST' && req.headers.authorization) {
        res.writeHead(403, { 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"DENIED","message":"storage quota exceeded for project team"}]}');
        return;
      }
      forwardTo(real, req, res, body);
    });
    const p = project(t, { ...baseConfig('unused.example'), mirror: { engine: false } }, { [quota.host]: TARGET_USER });
    const r = await mirror(p, '--to', quota.host, `${hub}/library/alpine:3.20`);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, `buildx-bootstrap: push of ${quota.host}/library/alpine:3.20 failed: ${quota.host}: denied (403 DENIED: storage quota exceeded for project team)`);
    noSecrets(t, r);
  });

  t.test('an image sharing layers with one already in the target mounts them instead of uploading', async (t) => {
    const target = await startRegistry(t);
    const p = project(t, { ...baseConfig(target.host), mirror: { engine: false } });
    const r1 = await mirror(p, `${hub}/library/docker:27-cli`);
    t.equal(r1.code, 0, r1.stderr);
    await target.settle();
    const before = target.requestLog().length;
    const r2 = await mirror(p, `${hub}/library/docker:27-cli`, `${hub}/hashicorp/vault:1.15`, '--json');
    t.equal(r2.code, 0, r2.stderr);
    await target.settle();
    const log = target.requestLog().slice(before);
    const mounted = log.filter((l) => /^POST \/v2\/hub\/hashicorp\/vault\/blobs\/uploads\/\?mount=.*&from=hub%2Flibrary%2Fdocker 201$/.test(l) || /^POST \/v2\/hub\/hashicorp\/vault\/blobs\/uploads\/\?mount=.*&from=hub\/library\/docker 201$/.test(l));
    t.equal(mounted.length, 1, 'the shared busybox layer was mounted from hub/library/docker');
    const vaultResult = (JSON.parse(r2.stdout) as { source: string; blobs: { mounted: number; copied: number } }[]).find((r) => r.source.includes('vault'))!;
    t.equal(vaultResult.blobs.mounted, 1);
    const uploads = log.filter((l) => /^PUT \/v2\/hub\/hashicorp\/vault\/blobs\/uploads\//.test(l)).length;
    t.equal(uploads, vaultResult.blobs.copied, 'only the blobs not mounted were uploaded');
    t.equal(uploads, vault.blobs.length - 1, 'every other blob was uploaded once');
  });

  t.test('429 with Retry-After, then success; 5xx to the end: exit 3 naming the registry', async (t) => {
    let refusals = 0;
    const flaky = await startHttpStub(t, (req, res, body) => {
      if (req.method === 'HEAD' && /\/manifests\//.test(req.url ?? '') && refusals < 1) {
        refusals++;
        res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return;
      }
      forwardTo(upstream, req, res, body);
    });
    const down = await startHttpStub(t, (_req, res) => {
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}');
    });
    const target = await startRegistry(t);
    const p = project(t, { mirrors: [{ host: target.host, for: flaky.host }, { host: target.host, for: down.host }], mirror: { engine: false } }, { [flaky.host]: HUB_USER });
    const ok = await mirror(p, `${flaky.host}/library/alpine:3.20`);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(refusals, 1, 'the 429 was met once and waited out');
    t.equal(ok.stdout, `${flaky.host}/library/alpine:3.20 -> ${target.host}/library/alpine:3.20@${alpine.digest}\n`);
    const failed = await mirror(p, `${down.host}/library/alpine:3.20`);
    t.equal(failed.code, 3, 'a source that cannot be read: exit 3');
    t.match(failed.stderr, new RegExp(`cannot read ${down.host}/library/alpine:3.20: ${down.host}: server error \\(503`));
    t.equal(failed.stderr.trim().split('\n').filter((l) => l.startsWith('buildx-bootstrap:')).length, 1, 'one error line');
    t.ok(down.requests().length > 1, 'it was retried before giving up');
  });

  t.test('a source serving a blob that does not match its digest: exit 3, nothing tagged in the target', async (t) => {
    const layer = alpine.blobs.find((b) => b.size > 1024)!;
    const liar = await startHttpStub(t, (req, res, body) => {
      if (req.method === 'GET' && req.url?.endsWith(`/blobs/${layer.digest}`)) {
        const bad = Buffer.from(layer.data);
        bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bad.length) });
        res.end(bad);
        return;
      }
      forwardTo(upstream, req, res, body);
    });
    const target = await startRegistry(t);
    const p = project(t, { mirrors: [{ host: target.host, for: liar.host }], mirror: { engine: false } }, { [liar.host]: HUB_USER });
    const r = await mirror(p, `${liar.host}/library/alpine:3.20`);
    t.equal(r.code, 3, r.stderr);
    t.match(r.stderr, `blob ${layer.digest} arrived with digest sha256:`);
    await target.settle();
    t.same(target.requestLog().filter((l) => /^PUT \/v2\/.*\/manifests\//.test(l)), [], 'no manifest, no tag was written');
  });

  t.test('bad input: an image with no target is exit 2 naming it; bad mirror config keys name their path', async (t) => {
    const target = await startRegistry(t);
    const p = project(t, { ...baseConfig(target.host), mirror: { engine: false } });
    await upstream.settle();
    const upBefore = upstream.requestLog().length;
    const none = await mirror(p, `${hub}/library/alpine:3.20`, 'quay.io/prometheus/busybox:latest');
    t.equal(none.code, 2);
    t.match(none.stderr, 'no mirror to copy quay.io/prometheus/busybox:latest into');
    await Promise.all([upstream.settle(), target.settle()]);
    t.equal(target.requests(), 0, 'nothing was asked of the target');
    t.same(upstream.requestLog().slice(upBefore), [], 'nor of the upstream');
    const bad = project(t, { mirror: { images: ['Not A Ref'], engine: 'yes' } });
    const r = await mirror(bad);
    t.equal(r.code, 2);
    t.match(r.stderr, 'mirror.images[0]');
    t.match(r.stderr, 'mirror.engine: expected true or false');
  });

  t.test('at most 8 requests at once to each registry, the source and the target side by side', async (t) => {
    // Ten images checked with --dry-run: a HEAD of each tag at the source and at the target. Both
    // registries sit behind stubs that hold every request 300 ms and count how many they hold.
    const plain = await startRegistry(t);
    const small = buildEngineImage({ version: 'small', format: 'docker', platforms: ['linux/amd64'], index: false });
    const names = Array.from({ length: 10 }, (_, i) => `team/small-${i}`);
    for (const name of names) await pushImage(plain.url, name, ['1'], small);
    const target = await startRegistry(t);
    let held = 0;
    let mostHeld = 0;
    const most = { source: 0, target: 0 };
    const now = { source: 0, target: 0 };
    const holding = (side: 'source' | 'target', to: { url: string; host: string }) => async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: Buffer): Promise<void> => {
      now[side]++;
      held++;
      most[side] = Math.max(most[side], now[side]);
      mostHeld = Math.max(mostHeld, held);
      await new Promise((resolve) => setTimeout(resolve, 300));
      now[side]--;
      held--;
      forwardTo(to, req, res, body);
    };
    const source = await startHttpStub(t, holding('source', plain));
    const targetStub = await startHttpStub(t, holding('target', target));
    const p = project(t, { mirror: { engine: false, images: names.map((n) => `${source.host}/${n}:1`) } });
    const r = await mirror(p, '--dry-run', '--to', `${targetStub.host}/copy`);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim().split('\n').length, names.length, 'every image checked');
    t.ok(most.source <= 8 && most.target <= 8, `no registry held more than 8 requests (source ${most.source}, target ${most.target})`);
    t.ok(mostHeld > 8, `the two registries' bounds are separate: ${mostHeld} requests were held at once across both`);
  });

  t.test('--dry-run asks only HEADs and says what would be copied', async (t) => {
    const target = await startRegistry(t);
    const p = project(t, baseConfig(target.host));
    await upstream.settle();
    const before = upstream.requestLog().length;
    const r = await mirror(p, '--dry-run');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, `-> ${target.host}/hub/moby/buildkit:v0.18.2@${engine.digest} (would copy)`);
    await Promise.all([upstream.settle(), target.settle()]);
    t.same(upstream.requestLog().slice(before).filter((l) => !/^(HEAD|GET \/v2\/ )/.test(l) && !/^GET \/v2\/ /.test(l)).filter((l) => !l.startsWith('HEAD')), [], 'only HEADs upstream');
    t.same(target.requestLog().filter((l) => !l.startsWith('HEAD')), [], 'only HEADs on the target');
  });
}
