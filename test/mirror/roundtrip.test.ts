// `mirror` as users rely on it: what it copied is pulled and run by a real dockerd, the resolver
// with `upstream: false` finds the same digest, a locked create works with the upstream stopped
// (emulated buildx plugin, real dockerd), and a run killed mid-copy leaves no tag behind while
// the next run finishes the job.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { startDockerd } from '../helpers/dockerd.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { forwardTo, startHttpStub, harnessRequest } from '../helpers/net.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { installFakeBuildx } from '../helpers/buildx.js';
import { runCli } from '../helpers/cli.js';
import { runBin, until } from '../helpers/bin.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-mirror-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const MANIFEST_ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function tagDigest(reg: RunningRegistry, repo: string, tag: string): Promise<string | undefined> {
  const r = await harnessRequest(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT } });
  return r.status === 200 ? String(r.headers['docker-content-digest']) : undefined;
}

t.test('after mirror: docker pull + run from the target, resolve with upstream: false, a locked create with the upstream stopped (emulated buildx)', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker', 'docker-registry', 'busybox'])) return;
  const [dockerd, upstream, target] = await Promise.all([startDockerd(t), startRegistry(t), startRegistry(t)]);
  const engine = buildEngineImage({ version: 'v0.18.2', platforms: ['linux/amd64', 'linux/arm64'], attestations: true });
  const cli = buildEngineImage({ version: 'cli-27', format: 'docker', platforms: ['linux/amd64', 'linux/386'] });
  await pushImage(upstream.url, 'moby/buildkit', ['v0.18.2'], engine);
  await pushImage(upstream.url, 'library/docker', ['27-cli'], cli);
  const fake = installFakeBuildx(t as never, { dockerConfig: join(tempDir(t), 'docker-config') });
  const dir = tempDir(t);
  writeFileSync(
    join(dir, '.buildx-bootstraprc.json'),
    JSON.stringify({
      buildkit: { image: `${upstream.host}/moby/buildkit`, version: 'v0.18.2' },
      mirrors: [{ host: target.host, path: 'hub', for: upstream.host }],
      mirror: { images: [`${upstream.host}/library/docker:27-cli`] },
      builder: { name: 'mirrored' },
    }),
  );
  const env = { PATH: process.env.PATH, HOME: fake.env.DOCKER_CONFIG, ...fake.env, ...dockerd.env };
  const lock = await runCli(['lock'], { cwd: dir, env });
  t.equal(lock.code, 0, lock.stderr);
  const mirrored = await runCli(['mirror'], { cwd: dir, env });
  t.equal(mirrored.code, 0, mirrored.stderr);
  t.match(mirrored.stdout, `${upstream.host}/moby/buildkit:v0.18.2 -> ${target.host}/hub/moby/buildkit:v0.18.2@${engine.digest}`);

  const ref = `${target.host}/hub/library/docker:27-cli`;
  const pull = await dockerd.docker(['pull', ref], { timeoutMs: 120_000 });
  t.equal(pull.code, 0, `docker pull from the target: ${pull.stderr}`);
  t.match(pull.stdout, `Digest: ${cli.digest}`, 'dockerd sees the source digest');
  const run = await dockerd.docker(['run', '--rm', '--network', 'none', ref, '--version'], { timeoutMs: 120_000 });
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /^buildkitd github.com\/moby\/buildkit cli-27 /, 'the copied image runs');

  await upstream.stop();
  const resolved = await runCli(['resolve', '--no-upstream'], { cwd: dir, env });
  t.equal(resolved.code, 0, resolved.stderr);
  t.equal(resolved.stdout, `${target.host}/hub/moby/buildkit:v0.18.2@${engine.digest}\n`, 'resolve with upstream: false finds the same digest in the target');
  const created = await runCli([], { cwd: dir, env });
  t.equal(created.code, 0, `locked create with the upstream stopped: ${created.stderr}`);
  t.equal(created.stdout, 'mirrored\n');
  const createCall = fake.calls().map((c) => c.args).find((a) => a[0] === 'create');
  t.ok(createCall?.some((a) => a === `image=${target.host}/hub/moby/buildkit:v0.18.2@${engine.digest}`), 'the builder runs the mirrored engine image, pinned');
});

t.test('a run killed mid-copy leaves no tag pointing at a partial image; the next run finishes it', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'busybox'])) return;
  const [upstream, target] = await Promise.all([startRegistry(t), startRegistry(t)]);
  const big = buildEngineImage({ version: 'big-1', platforms: ['linux/amd64', 'linux/arm64', 'linux/386'], payloadBytes: 2 * 1024 * 1024 });
  await pushImage(upstream.url, 'team/big', ['1'], big);
  // The 386 payload layer hangs at the source until released: the kill lands mid-copy, for sure.
  const stalled = big.blobs.filter((b) => b.size > 1024 * 1024).map((b) => b.digest);
  let hold = true;
  let held = 0;
  const source = await startHttpStub(t, (req, res, body) => {
    if (hold && req.method === 'GET' && stalled.some((d) => req.url?.endsWith(`/blobs/${d}`))) {
      held++;
      return; // never answered
    }
    forwardTo(upstream, req, res, body);
  });
  const dir = tempDir(t);
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ mirrors: [{ host: target.host, for: source.host }], mirror: { engine: false, images: [`${source.host}/team/big:1`] } }));
  const env = { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, '.docker') };
  const run = runBin(['mirror'], { cwd: dir, env });
  // Blob uploads the target completed (201), by digest, from its access log.
  const uploads = (log: string[]): string[] =>
    log.flatMap((l) => {
      const m = /^PUT \/v2\/team\/big\/blobs\/uploads\/\S*[?&]digest=(sha256(?::|%3A)[0-9a-f]{64})\S* 201$/.exec(l);
      return m ? [decodeURIComponent(m[1]!)] : [];
    });
  await until('every blob but the held layers copied, those still streaming', () => held > 0 && uploads(target.requestLog()).length >= big.blobs.length - stalled.length);
  run.child.kill('SIGKILL');
  t.equal((await run.done).signal, 'SIGKILL');
  t.equal(await tagDigest(target, 'team/big', '1'), undefined, 'no tag in the target');
  await target.settle();
  const log = target.requestLog();
  const before = uploads(log);

  hold = false;
  const again = await runCli(['mirror', '--json'], { cwd: dir, env });
  t.equal(again.code, 0, again.stderr);
  t.equal(await tagDigest(target, 'team/big', '1'), big.digest, 'the next run completes it with the source digest');
  await target.settle();
  const resumed = uploads(target.requestLog().slice(log.length));
  t.same(resumed.filter((d) => before.includes(d)), [], `blobs uploaded before the kill (${before.length}) get no second upload (target's access log)`);
  t.same([...before, ...resumed].sort(), big.blobs.map((b) => b.digest).sort(), 'between the two runs every blob was uploaded exactly once');
});
