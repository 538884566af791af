// Driver choice end to end with REAL builds (real buildx, real BuildKit, dockerd's embedded
// BuildKit): an image that exists only in the daemon (arrived by `docker load`, in no registry)
// is built FROM and COPY --from'd, first through the docker driver (no pin), then through a pinned
// container builder that gets it as an OCI layout build context. A RUN step reads the local
// image's file, and the result is exported to a local directory and read back.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, lastLine } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { loadLocalOnlyImage } from '../helpers/local-image.js';
import { noPullOf } from '../helpers/pulls.js';
import { dockerOutput } from '../helpers/docker-out.js';

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

const MARKER = 'made by docker load, in no registry\n';

/**
 * FROM and COPY --from name the local image; the RUN step reads its file inside the build. The
 * image is named under a loopback registry that never receives it, so any attempt to pull it
 * (by us, dockerd or BuildKit) shows in that registry's access log.
 */
function dockerfile(local: string): string {
  return `FROM ${local} AS base
COPY --from=${local} /marker.txt /copied.txt
RUN cat /marker.txt /copied.txt > /ran.txt
FROM scratch
COPY --from=base /ran.txt /ran.txt
`;
}

t.setTimeout(600_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: local-only images, docker driver then a bridged container builder`, async (t) => {
    const w = await realWorld(t, pair);
    const local = `${w.upstream.host}/bxb-test/tools:1`;
    const text = dockerfile(local);
    await loadLocalOnlyImage(t, w.dockerd, local, { applets: ['sh', 'cat'], files: { 'marker.txt': MARKER } });

    // No pin: the docker driver (dockerd's embedded BuildKit) sees the loaded image itself.
    const plain = w.project({ builder: { name: 'unused' } }, { Dockerfile: text });
    const viaDocker = await runCli(['--', 'docker', 'buildx', 'build', '--network', 'none', '--output', 'type=local,dest=out', '.'], { cwd: plain, env: w.env });
    ok(t, viaDocker, 'build with the docker driver');
    t.equal(readFileSync(join(plain, 'out', 'ran.txt'), 'utf8'), MARKER + MARKER, 'the RUN step read the local image (FROM and COPY --from)');
    const ls = await w.docker(['buildx', 'ls']);
    t.notMatch(ls.stdout, /^unused\s/m, 'no builder was created');
    t.same((await dockerOutput(w.dockerd, ['ps', '-aq'])).trim(), '', 'no BuildKit container');

    // A pinned BuildKit needs a container builder: the image is bridged as an OCI layout.
    const pinned = w.project(
      {
        buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
        builder: { name: 'bridged', driverOpts: { network: 'host' } },
      },
      { Dockerfile: text },
    );
    const viaContainer = await runCli(['--', 'docker', 'buildx', 'build', '--output', 'type=local,dest=out', '.'], { cwd: pinned, env: w.env });
    ok(t, viaContainer, 'build with a bridged container builder');
    t.equal(readFileSync(join(pinned, 'out', 'ran.txt'), 'utf8'), MARKER + MARKER, 'the RUN step read the bridged image in the BuildKit container');
    const containers = (await dockerOutput(w.dockerd, ['ps', '--format', '{{.Names}}'])).split('\n').filter(Boolean);
    t.same(containers, ['buildx_buildkit_bridged0'], 'the build ran in the pinned container builder');
    const version = await w.dockerd.docker(['exec', 'buildx_buildkit_bridged0', 'buildkitd', '--version']);
    t.match(version.stdout, ` ${pair.kit.version} `, 'which runs the pinned BuildKit');
    t.notOk(existsSync(join(pinned, '.buildx-bootstrap')), 'no layout left in the project');
    await noPullOf(t, [w.upstream, w.mirror], 'bxb-test/tools');
  });
}
