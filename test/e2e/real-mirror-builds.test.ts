// Builds on the REAL engines pull through the buildkitd.toml buildx-bootstrap writes: the base
// image of a Dockerfile comes from the configured mirror — a plain one, and one under a path
// prefix the way Harbor/Nexus proxy projects store Docker Hub images (`<prefix>/library/…`) —
// and the registry it mirrors sees no request. Asserted from the registries' access logs.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines, pushRealEngineImage } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, tempDir } from '../helpers/real-world.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { runCli } from '../helpers/cli.js';

// Real engines are slow to start on two cores: a file-level bound above tap's default per file.
t.setTimeout(600_000);
const engines = requireEngines(t);

// A small runnable base image (busybox + a marker file) standing in for a Docker Hub library image.
const base = buildEngineImage({ version: 'v0.0.1', platforms: ['linux/amd64'], index: false, flavour: 'base-image' });

for (const pair of engines ? pairs(engines) : []) {
  for (const prefix of ['', 'dockerhub-proxy']) {
    const kind = prefix ? `a path-prefixed mirror (${prefix}/library/…)` : 'a plain mirror';
    t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: a build pulls its base image through ${kind}`, async (t: Test) => {
      const w = await realWorld(t, pair);
      const at = prefix ? `${prefix}/` : '';
      if (prefix) await pushRealEngineImage(w.mirror, pair.kit, { repository: `${at}moby/buildkit` });
      await pushImage(w.upstream, 'library/base', ['1'], base);
      await pushImage(w.mirror, `${at}library/base`, ['1'], base);
      const mirror = { host: w.mirror.host, for: w.upstream.host, ...(prefix ? { path: prefix } : {}) };
      const dir = w.project(
        {
          buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
          mirrors: [mirror],
          upstream: false,
          builder: { name: 'ci', driverOpts: { network: 'host' } },
        },
        {
          Dockerfile: [
            `FROM ${w.upstream.host}/library/base:1 AS base`,
            'RUN echo "ran on $(cat /etc/bxb-standin | head -n 1)" > /built.txt',
            'FROM scratch',
            'COPY --from=base /built.txt /',
            '',
          ].join('\n'),
        },
      );
      const out = join(tempDir(t), 'out');
      await w.upstream.settle();
      const upstreamBefore = w.upstream.requests();

      const r = await runCli(['--', 'docker', 'buildx', 'build', '--output', `type=local,dest=${out}`, dir], { cwd: dir, env: w.env });
      t.equal(r.code, 0, `the build through the builder succeeds${r.code ? `: ${lastLine(r)}` : ''}`);
      t.equal(readFileSync(join(out, 'built.txt'), 'utf8'), 'ran on version=v0.0.1\n', 'the RUN step ran on the base image');

      await Promise.all([w.upstream.settle(), w.mirror.settle()]);
      t.equal(w.upstream.requests() - upstreamBefore, 0, 'the mirrored registry got no request');
      const pulls = w.mirror.requestLog().filter((l) => l.includes(`/v2/${at}library/base/`));
      t.ok(pulls.some((l) => /^(GET|HEAD) \S+\/manifests\/1(\?\S*)? 200$/.test(l)), `BuildKit resolved the tag on the mirror under ${at || 'its root'}: ${pulls.join(', ')}`);
      t.ok(pulls.some((l) => /^GET \S+\/blobs\/sha256:[0-9a-f]{64}(\?\S*)? 200$/.test(l)), 'and fetched the layers from it');
      const toml = await w.dockerd.docker(['exec', 'buildx_buildkit_ci0', 'cat', '/etc/buildkit/buildkitd.toml']);
      // buildx re-encodes the file when it copies it into the container: buildx 0.12 writes
      // `["h"]`, 0.38 `['h']` (another TOML encoder), so only the value is compared.
      const listed = `${w.mirror.host}${prefix ? `/${prefix}` : ''}`.replace(/[.]/g, '\\.');
      t.match(toml.stdout, new RegExp(`mirrors = \\[ ?["']${listed}["'] ?\\]`), 'the builder runs with the mirror in its buildkitd.toml');
    });
  }
}
