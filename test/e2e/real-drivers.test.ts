// Driver choice end to end with REAL builds (real buildx, real BuildKit, dockerd's embedded
// BuildKit), on every daemon of the matrix: images that exist only in the daemon — one made by
// `docker import`, one that arrived by `docker load`, one made by `docker build` — are built FROM
// and COPY --from'd, first through the docker driver (no pin), then through a pinned container
// builder that gets them as OCI layout build contexts. A RUN step reads their files, and the
// result is exported to a local directory and read back.
//
// On the classic store the daemon's RepoDigests tell these images are local; on the containerd
// store every tag has a repo digest, so the configured registry is asked (HEAD of the digest the
// store holds) and, not serving them, they count as local-only — never pulled.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { daemonMatrix, realWorld, requireSetup, lastLine, type RealWorld } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { loadLocalOnlyImage } from '../helpers/local-image.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

const IMPORTED_MARKER = 'made by docker import, in no registry\n';
const LOADED_MARKER = 'made by docker load, in no registry\n';
const BUILT_MARKER = 'made by docker build, in no registry\n';

/** The local images, named on the world's upstream registry (which never had them). */
function names(w: RealWorld): { imported: string; loaded: string; built: string } {
  return { imported: `${w.upstream.host}/bxb-test/imported:1`, loaded: `${w.upstream.host}/bxb-test/loaded:1`, built: `${w.upstream.host}/bxb-test/built:1` };
}

// FROM and COPY --from name the local images; the RUN step reads their files inside the build.
function dockerfile(w: RealWorld): string {
  const n = names(w);
  return `FROM ${n.imported} AS base
COPY --from=${n.loaded} /marker.txt /loaded.txt
COPY --from=${n.built} /built.txt /built.txt
RUN cat /marker.txt /loaded.txt /built.txt > /ran.txt
FROM scratch
COPY --from=base /ran.txt /ran.txt
`;
}
const RAN = IMPORTED_MARKER + LOADED_MARKER + BUILT_MARKER;

/** What the registries were asked about the local images: nothing on the classic store, HEADs by digest on the containerd store. */
async function localImageRequests(w: RealWorld): Promise<string[]> {
  await w.upstream.settle();
  await w.mirror.settle();
  return [...w.upstream.requestLog(), ...w.mirror.requestLog()].filter((l) => l.includes('bxb-test'));
}

function onlyHeads(t: Test, w: RealWorld, asked: string[]): void {
  if (w.dockerd.imageStore === 'classic') t.same(asked, [], 'no registry was asked for the local images (classic store: no repo digest says it)');
  else {
    t.ok(asked.length > 0, 'the registry was asked whether it serves them (containerd store)');
    t.same(asked.filter((l) => !/^HEAD \/v2\/bxb-test\/\w+\/manifests\/sha256:[0-9a-f]{64} 404$/.test(l)), [], 'only HEADs of their digests, answered 404: nothing pulled');
  }
}

t.setTimeout(1_200_000);
const engines = requireEngines(t);
for (const pair of engines ? daemonMatrix(engines) : []) {
  t.test(`${pair.label}: local-only images (docker import, load, build), docker driver then a bridged container builder`, async (t) => {
    if (!requireSetup(t, pair)) return;
    const w = await realWorld(t, pair);
    const n = names(w);
    await loadLocalOnlyImage(t, w.dockerd, n.imported, { how: 'import', applets: ['sh', 'cat'], files: { 'marker.txt': IMPORTED_MARKER } });
    await loadLocalOnlyImage(t, w.dockerd, n.loaded, { files: { 'marker.txt': LOADED_MARKER } });
    const builtContext = w.project({}, { Dockerfile: `FROM ${n.imported}\nRUN echo '${BUILT_MARKER.trim()}' > /built.txt\n` });
    const built = await w.docker(['buildx', 'build', '--builder', 'default', '--network', 'none', '-t', n.built, builtContext]);
    t.equal(built.code, 0, `docker build of a local image${built.code ? `: ${built.stderr.slice(-2000)}` : ''}`);

    // No pin: the docker driver (dockerd's embedded BuildKit) sees the local images itself.
    const plain = w.project({ builder: { name: 'unused' } }, { Dockerfile: dockerfile(w) });
    const viaDocker = await runCli(['--', 'docker', 'buildx', 'build', '--network', 'none', '--output', 'type=local,dest=out', '.'], { cwd: plain, env: w.env });
    ok(t, viaDocker, 'build with the docker driver');
    t.equal(readFileSync(join(plain, 'out', 'ran.txt'), 'utf8'), RAN, 'the RUN step read the local images (FROM and COPY --from)');
    const ls = await w.docker(['buildx', 'ls']);
    t.notMatch(ls.stdout, /^unused\s/m, 'no builder was created');
    t.same((await w.dockerd.docker(['ps', '-aq'])).stdout.trim(), '', 'no BuildKit container');

    // A pinned BuildKit needs a container builder: the images are bridged as OCI layouts.
    const pinned = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        builder: { name: 'bridged', driverOpts: { network: 'host' } },
      },
      { Dockerfile: dockerfile(w) },
    );
    const plan = await runCli(['plan', '--', 'docker', 'buildx', 'build', '.'], { cwd: pinned, env: w.env });
    ok(t, plan, 'plan');
    for (const ref of Object.values(n)) t.match(plan.stdout, `--build-context ${ref}=oci-layout://`, `plan bridges ${ref}`);
    const viaContainer = await runCli(['--', 'docker', 'buildx', 'build', '--output', 'type=local,dest=out', '.'], { cwd: pinned, env: w.env });
    ok(t, viaContainer, 'build with a bridged container builder');
    t.equal(readFileSync(join(pinned, 'out', 'ran.txt'), 'utf8'), RAN, 'the RUN step read the bridged images in the BuildKit container');
    const containers = (await w.dockerd.docker(['ps', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean);
    t.same(containers, ['buildx_buildkit_bridged0'], 'the build ran in the pinned container builder');
    const version = await w.dockerd.docker(['exec', 'buildx_buildkit_bridged0', 'buildkitd', '--version']);
    t.match(version.stdout, ` ${pair.kit.version} `, 'which runs the pinned BuildKit');
    t.notOk(existsSync(join(pinned, '.buildx-bootstrap')), 'no layout left in the project');
    onlyHeads(t, w, await localImageRequests(w));
  });
}
