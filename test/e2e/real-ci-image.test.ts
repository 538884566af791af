// The CI image (the repository's Dockerfile) end to end on the REAL engines, built by
// buildx-bootstrap itself (`image`, prefix mode around `docker buildx build`):
// 1. its base images exist only in the daemon's store (stand-ins, test/helpers/ci-image.ts says
//    what they differ in from docker:<v>-cli and node:<v>-alpine), so the pinned BuildKit gets them
//    through the bridge (OCI layout build contexts) and the result is loaded into the daemon;
// 2. the image answers `buildx-bootstrap --version` / `bxb --version` with the packed version;
// 3. it runs a GitLab Docker-in-Docker job the way the docker executor does (the script on the
//    stdin of the image's CMD `sh`, through its entrypoint): a second daemon with TLS on
//    127.0.0.1:2376 stands in for the `docker` service, the container gets only
//    DOCKER_TLS_CERTDIR and the client certificates (+ `--add-host docker:127.0.0.1`, host
//    network), and `buildx-bootstrap -- docker buildx build` brings the locked builder up there;
// 4. `image --push` builds linux/amd64 and linux/arm64 on this amd64 machine, which has no
//    emulator, with the base images served by a mirror (as after `mirror`): the arm64 stand-ins'
//    binaries cannot run here, so the build succeeding proves no RUN ran on the target platform,
//    and the arm64 image holding the arm64 stand-in's Node proves the final stage copied from the
//    target platform's images.
// Port 2376 is fixed by the scenario (the entrypoint derives tcp://docker:2376): the file's tests
// run one after the other, each stops its service daemon, and each waits for the port to be free.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { requireEngines, startEngineDockerd } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, tempDir, type RealWorld } from '../helpers/real-world.js';
import { pushImage, MEDIA } from '../helpers/engine-image.js';
import { harnessRequest } from '../helpers/net.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { ARM64_MARKER, buildStandIns, writeLoadArchive } from '../helpers/ci-image.js';
import { imageBaseImages } from '../../src/image/build-command.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = `buildx-bootstrap:${VERSION}`;
const DIND_PORT = 2376;

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}` : ''}`);
}

/** docker.io/library/docker:29-cli → docker:29-cli (how the Dockerfile and `docker load` name it). */
const familiar = (ref: string): string => ref.replace(/^docker\.io\/library\//, '');

async function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

async function waitForPort(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await portFree(port)) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

async function registryJson(w: RealWorld, path: string, accept: string): Promise<Record<string, unknown>> {
  const r = await harnessRequest(`${w.mirror.url}${path}`, { headers: { Accept: accept } });
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}`);
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

async function registryBlob(w: RealWorld, repo: string, digest: string): Promise<Buffer> {
  const r = await harnessRequest(`${w.mirror.url}/v2/${repo}/blobs/${digest}`);
  if (r.status !== 200) throw new Error(`blob ${digest}: HTTP ${r.status}`);
  return r.body;
}

t.setTimeout(1_800_000);
const engines = requireEngines(t);
// The image's own buildx plugin is the newest (docker:<v>-cli ships a current one); the buildx
// that builds the image, and the BuildKit it pins, are each pair's.
const imagePlugin = engines?.buildx.at(-1)?.plugin;
for (const pair of engines && imagePlugin ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: the CI image, built by buildx-bootstrap, runs a DinD job; two platforms, no emulator`, async (t) => {
    const w = await realWorld(t, pair);
    const bases = imageBaseImages(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
    const dockerRef = bases.find((b) => b.includes('/docker:')) ?? 'missing docker:<v>-cli';
    const nodeRef = bases.find((b) => b.includes('/node:')) ?? 'missing node:<v>-alpine';
    t.match(dockerRef, /\/docker:\d+-cli$/, 'the Dockerfile builds FROM docker:<v>-cli');
    t.match(nodeRef, /\/node:\d+-alpine3\.\d+$/, 'and takes Node from node:<v>-alpine<a>');
    const standIns = buildStandIns({ buildx: imagePlugin! }, { docker: familiar(dockerRef), node: familiar(nodeRef) });
    const engine = { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version };

    // 1. Base images only in the local store → a pinned container builder, fed through the bridge.
    const scratch = tempDir(t, 'bxb-ci-image-');
    for (const image of [standIns.docker, standIns.node]) {
      const archive = join(scratch, `${image.ref.replace(/[:/]/g, '_')}.tar`);
      writeLoadArchive(image, 'amd64', archive);
      const loaded = await w.dockerd.docker(['load', '-i', archive]);
      ok(t, loaded, `docker load ${image.ref}`);
    }
    const local = w.project({ buildkit: engine, builder: { name: 'ci-image', driverOpts: { network: 'host' } } });
    const revision = execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const built = await runCli(['image'], { cwd: local, env: w.env });
    ok(t, built, 'buildx-bootstrap image');
    for (const ref of [dockerRef, nodeRef]) t.match(built.stderr, `exporting local image ${ref} as an OCI layout`, `${familiar(ref)} reached the builder through the bridge`);
    const names = (await w.dockerd.docker(['ps', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean);
    t.same(names, ['buildx_buildkit_ci-image0'], 'the image was built in the pinned container builder');
    const inspect = JSON.parse((await w.dockerd.docker(['image', 'inspect', IMAGE])).stdout || '[]') as { Config: { Labels: Record<string, string>; Entrypoint: string[]; Cmd: string[] } }[];
    const config = inspect[0]?.Config;
    t.ok(config, `${IMAGE} is in the daemon`);
    t.match(config?.Labels ?? {}, {
      'org.opencontainers.image.version': VERSION,
      'org.opencontainers.image.revision': revision,
      'org.opencontainers.image.source': /^https:\/\//,
    }, 'OCI labels: the packed version, the checkout it came from, a source URL');
    t.same([config?.Entrypoint, config?.Cmd], [['docker-entrypoint.sh'], ['sh']], "docker:<v>-cli's entrypoint and CMD are kept");

    // 2. The packed version, from both names on PATH.
    for (const name of ['buildx-bootstrap', 'bxb']) {
      const v = await w.dockerd.docker(['run', '--rm', '--network', 'none', IMAGE, name, '--version']);
      ok(t, v, `${name} --version in the image`);
      t.equal(v.stdout, `${VERSION}\n`, `${name} --version prints the packed version`);
    }

    // 3. A DinD job: the service daemon on 127.0.0.1:2376 with TLS, found through the entrypoint.
    if (!(await waitForPort(DIND_PORT, 120_000))) {
      t.fail(`port ${DIND_PORT} stayed busy for 2 minutes; the DinD scenario needs it`);
      return;
    }
    const dind = await startEngineDockerd(t, { tls: true, port: DIND_PORT, tlsNames: ['docker'] });
    const job = tempDir(t, 'bxb-ci-job-');
    writeFileSync(join(job, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: engine, builder: { driverOpts: { network: 'host' } } }));
    writeFileSync(join(job, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
    writeFileSync(join(job, 'hello.txt'), 'built in a DinD job\n');
    const locked = await runCli(['lock'], { cwd: job, env: w.env });
    ok(t, locked, 'lock');
    mkdirSync(join(job, 'out'));
    const script = [
      'set -e',
      'echo "derived: $DOCKER_HOST $DOCKER_CERT_PATH $DOCKER_TLS_VERIFY"',
      'buildx-bootstrap -- docker buildx build --output type=local,dest=out .',
      '',
    ].join('\n');
    const run = await w.dockerd.docker(
      ['run', '--rm', '-i', '--network', 'host', '--add-host', 'docker:127.0.0.1', '-e', 'DOCKER_TLS_CERTDIR=/certs', '-v', `${dind.certPath}:/certs/client:ro`, '-v', `${job}:/job`, '-w', '/job', IMAGE, 'sh'],
      { input: script, timeoutMs: 600_000 },
    );
    ok(t, run, 'the job script in the image');
    t.match(run.stdout, 'derived: tcp://docker:2376 /certs/client 1', 'the entrypoint derived DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY from DOCKER_TLS_CERTDIR');
    t.equal(readFileSync(join(job, 'out', 'hello.txt'), 'utf8'), 'built in a DinD job\n', 'the build ran and exported its result');
    const onDind = (await dind.docker(['ps', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean);
    t.equal(onDind.length, 1, `one BuildKit container on the service daemon: ${onDind.join(', ')}`);
    const kit = await dind.docker(['exec', onDind[0] ?? 'none', 'buildkitd', '--version']);
    t.match(kit.stdout, ` ${pair.kit.version} `, 'running the locked BuildKit');
    await dind.stop();

    // 4. Two platforms, pushed, base images from the mirror (what `mirror` copies first).
    for (const image of [standIns.docker, standIns.node]) {
      t.equal((await w.dockerd.docker(['rmi', image.ref])).code, 0, `${image.ref} removed from the local store`);
      const [repo, tag] = image.ref.split(':');
      await pushImage(w.mirror, `library/${repo}`, [tag!], image.index);
    }
    const pushed = w.project({ buildkit: engine, mirrors: [{ host: w.mirror.host }], builder: { name: 'ci-image-push', driverOpts: { network: 'host' } } });
    const target = `${w.mirror.host}/group/project/mirror/buildx-bootstrap`;
    const push = await runCli(['image', '--push', target], { cwd: pushed, env: w.env });
    ok(t, push, 'buildx-bootstrap image --push');
    t.notMatch(push.stderr, 'as an OCI layout', 'nothing bridged: the base images came from the mirror');
    await w.mirror.settle();
    const log = w.mirror.requestLog();
    for (const ref of [dockerRef, nodeRef]) {
      const [repo, tag] = familiar(ref).split(':');
      t.ok(log.some((l) => new RegExp(`^(GET|HEAD) /v2/library/${repo}/manifests/${tag}(\\?\\S*)? 200$`).test(l)), `BuildKit resolved ${familiar(ref)} on the mirror`);
    }
    const repo = 'group/project/mirror/buildx-bootstrap';
    const index = (await registryJson(w, `/v2/${repo}/manifests/${VERSION}`, [MEDIA.ociIndex, MEDIA.dockerList].join(', '))) as { manifests: { digest: string; platform: { os: string; architecture: string } }[] };
    const platforms = index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`).filter((p) => p !== 'unknown/unknown');
    t.same(platforms.sort(), ['linux/amd64', 'linux/arm64'], `${target}:${VERSION} holds both platforms`);
    for (const arch of ['amd64', 'arm64']) {
      const entry = index.manifests.find((m) => m.platform.architecture === arch)!;
      const manifest = (await registryJson(w, `/v2/${repo}/manifests/${entry.digest}`, [MEDIA.ociManifest, MEDIA.dockerManifest].join(', '))) as { config: { digest: string }; layers: { digest: string }[] };
      const cfg = JSON.parse((await registryBlob(w, repo, manifest.config.digest)).toString('utf8')) as { architecture: string; config: { Labels: Record<string, string> } };
      t.equal(cfg.architecture, arch, `${arch}: config architecture`);
      t.equal(cfg.config.Labels['org.opencontainers.image.version'], VERSION, `${arch}: version label`);
      let stubNode = false;
      let stubShell = false;
      for (const l of manifest.layers) {
        const text = gunzipSync(await registryBlob(w, repo, l.digest)).toString('latin1');
        stubNode ||= text.includes(`${ARM64_MARKER} /usr/local/bin/node`);
        stubShell ||= text.includes(`${ARM64_MARKER} /bin/busybox`);
      }
      t.equal(stubNode, arch === 'arm64', `${arch}: Node comes from the ${arch} node stand-in`);
      t.equal(stubShell, arch === 'arm64', `${arch}: the base is the ${arch} docker stand-in`);
    }
    t.comment(lastLine(push));
  });
}
