// The emulation, checked: one buildx sequence (version, create, inspect before and after
// bootstrap, ls, errors, rm) against the emulated plugin (test/fake-buildx) and the REAL plugin of
// the same version, on the same daemon. What is compared is what buildx-bootstrap reads — the
// parsers in src/docker/parse.ts — plus exit codes and the first line of errors, not raw bytes.
// The emulation runs the stand-in engine image (its container is not privileged); the real plugin
// runs the real one, both reporting the same BuildKit version.
import t from 'tap';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, dockerWith } from '../helpers/real-world.js';
import { installFakeBuildx, type FakeBuildxVersion } from '../helpers/buildx.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { startRegistry } from '../helpers/registry.js';
import { buildCreateArgs, buildInspectArgs, buildLsArgs, buildRmArgs, buildVersionArgs } from '../../src/docker/buildx-args.js';
import { parseBuildxVersion, parseInspect, parseLsJson, type BuilderInfo } from '../../src/docker/parse.js';

type Run = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

function firstError(stderr: string): string {
  return stderr.split('\n').find((l) => /\S/.test(l) && !/^#\d+ /.test(l)) ?? '';
}

/** What buildx-bootstrap reads from `inspect`, with the values that legitimately differ (the
 * registry port, the container's hostname, GC sizes computed from the disk) left out. */
function readInspect(info: BuilderInfo, hosts: Record<string, string>) {
  const norm = (s: string): string => Object.entries(hosts).reduce((acc, [from, to]) => acc.split(from).join(to), s);
  return {
    name: info.name,
    driver: info.driver,
    error: info.error,
    lastActivity: info.lastActivity !== undefined,
    nodes: info.nodes.map((n) => ({
      name: n.name,
      endpoint: norm(n.endpoint),
      driverOpts: Object.fromEntries(Object.entries(n.driverOpts).map(([k, v]) => [k, norm(v)])),
      status: n.status,
      flags: n.flags,
      buildkitVersion: n.buildkitVersion,
      platforms: n.platforms,
      fixedPlatforms: n.fixedPlatforms,
      labelKeys: Object.keys(n.labels).sort(),
      gcRules: n.gcPolicy.map((r) => Object.keys(r).sort()),
      files: Object.keys(n.files).sort(),
      error: n.error,
    })),
  };
}

async function sequence(run: Run, version: string, image: string, hosts: Record<string, string>) {
  const out: Record<string, unknown> = {};
  const v = await run(buildVersionArgs());
  const parsed = parseBuildxVersion(v.stdout);
  out.version = { code: v.code, version: parsed.version, raw: parsed.raw };
  const input = {
    buildxVersion: version,
    name: 'conf',
    driver: 'docker-container' as const,
    image,
    driverOpts: { network: 'host' },
    buildkitdFlags: ['--debug'],
    platforms: [],
    use: false,
    bootstrap: false,
  };
  const create = await run(buildCreateArgs(input));
  out.create = { code: create.code, stdout: create.stdout, error: create.code ? firstError(create.stderr) : '' };
  const before = await run(buildInspectArgs('conf'));
  out.inspectBefore = { code: before.code, info: readInspect(parseInspect(before.stdout), hosts) };
  const boot = await run(buildInspectArgs('conf', { bootstrap: true }));
  out.inspectAfter = { code: boot.code, info: readInspect(parseInspect(boot.stdout), hosts) };
  const ls = await run(buildLsArgs(parsed.version));
  const builders = parsed.version.startsWith('0.12.') ? undefined : parseLsJson(ls.stdout);
  const conf = builders?.find((b) => b.name === 'conf');
  out.ls = {
    code: ls.code,
    // buildx 0.12 has no --format json and buildx-bootstrap reads no ls table: exit code only.
    conf: conf && {
      driver: conf.driver,
      current: conf.current,
      dynamic: conf.dynamic,
      nodes: conf.nodes.map((n) => ({ name: n.name, status: n.status, version: n.version, flags: n.flags, driverOpts: Object.keys(n.driverOpts).sort(), files: Object.keys(n.files) })),
    },
    names: builders?.map((b) => b.name),
  };
  const unknown = await run(['buildx', 'create', '--bogus-flag', '--name', 'conf2']);
  out.unknownFlag = { code: unknown.code, error: firstError(unknown.stderr) };
  const again = await run(buildCreateArgs(input));
  out.existing = { code: again.code, error: firstError(again.stderr) };
  const rm = await run(buildRmArgs('conf'));
  out.rm = { code: rm.code, stdout: rm.stdout, error: rm.code ? firstError(rm.stderr) : '' };
  const gone = await run(buildInspectArgs('conf'));
  out.inspectGone = { code: gone.code, error: firstError(gone.stderr) };
  return out;
}

t.setTimeout(600_000);
const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version}: the emulation reads like the real plugin`, async (t) => {
    const w = await realWorld(t, pair);
    const stand = await startRegistry(t);
    await pushImage(stand, 'moby/buildkit', [pair.kit.version], buildEngineImage({ version: pair.kit.version }));
    const fake = installFakeBuildx(t, { version: pair.buildx.version as FakeBuildxVersion });
    const fakeEnv = { ...w.env, ...fake.env };
    const hosts = { [w.upstream.host]: 'REGISTRY', [stand.host]: 'REGISTRY' };

    const emulated = await sequence((a) => dockerWith(fakeEnv, a), pair.buildx.version, `${stand.host}/moby/buildkit:${pair.kit.version}`, hosts);
    const real = await sequence((a) => w.docker(a), pair.buildx.version, `${w.upstream.host}/moby/buildkit:${pair.kit.version}`, hosts);
    // Both readings in full when they differ, to see what the emulation has to learn.
    if (JSON.stringify(emulated) !== JSON.stringify(real)) t.comment(JSON.stringify({ emulated, real }, null, 1));
    for (const step of Object.keys(real)) t.same(emulated[step], real[step], `${step}: the emulation reads as the real plugin`);
  });
}
