// The emulation, checked: one buildx sequence (version, create, inspect before and after
// bootstrap, a build with an `oci-layout://` named context, `buildctl debug histories` while a
// build runs, ls, errors, create --append, use, rm) against the emulated plugin (test/fake-buildx)
// and the REAL plugin of the same version, on the same daemon. What is compared is what
// buildx-bootstrap reads — the parsers in src/docker/parse.ts — and the raw fields around it (the
// labels of every inspect line, the keys of ls JSON and of history records, which a parser that
// drops them would otherwise compare equal), plus exit codes and the first line of errors.
// The emulation runs the stand-in engine image (its container is not privileged); the real plugin
// runs the real one, both reporting the same BuildKit version.
import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines } from '../helpers/engines.js';
import { pairs, realWorld, dockerWith, tempDir } from '../helpers/real-world.js';
import { installFakeBuildx, type FakeBuildxVersion } from '../helpers/buildx.js';
import { buildEngineImage, pushImage, standInBuildLine, type EngineImage } from '../helpers/engine-image.js';
import type { Dockerd } from '../helpers/dockerd.js';
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

/** The label of every line of `inspect` (`Name`, `Driver Options`, `> ` file lines as `>`), in order. */
function inspectLabels(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (l.startsWith('>') ? '>' : (/^([^:]+):/.exec(l)?.[1] ?? l).trim()))
    .filter((label, i, all) => label !== '>' || all[i - 1] !== '>');
}

/** Keys of every object in `ls --format json` output, builder and node level. */
function lsJsonKeys(stdout: string): { builder: string[]; node: string[] } {
  const builder = new Set<string>();
  const node = new Set<string>();
  for (const line of stdout.split('\n').filter((l) => l.trim())) {
    const b = JSON.parse(line) as Record<string, unknown> & { Nodes?: Record<string, unknown>[] };
    for (const k of Object.keys(b)) builder.add(k);
    for (const n of b.Nodes ?? []) for (const k of Object.keys(n)) node.add(k);
  }
  return { builder: [...builder].sort(), node: [...node].sort() };
}

/** A running build's history line as raw shape: which keys, which timestamp encoding, our build arg. */
function historyShape(line: string | undefined): unknown {
  if (line === undefined) return 'no running build reported';
  const event = JSON.parse(line) as Record<string, unknown> & { record?: Record<string, unknown> & { FrontendAttrs?: Record<string, string>; CreatedAt?: unknown; Ref?: string } };
  const r = event.record ?? {};
  return {
    event: Object.keys(event).sort(),
    record: Object.keys(r).sort(),
    ref: typeof r.Ref === 'string' && /^[a-z0-9]{25}$/.test(r.Ref),
    createdAt: typeof r.CreatedAt === 'string' ? (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(r.CreatedAt) ? 'RFC 3339' : r.CreatedAt) : Object.keys((r.CreatedAt ?? {}) as object).sort().join(','),
    bust: r.FrontendAttrs?.['build-arg:BUST'],
  };
}

/** `buildctl debug histories --format '{{json .}}'` in the builder's container: the line of the running build with BUST=`bust`. */
async function runningHistoryLine(d: Dockerd, container: string, bust: string): Promise<string | undefined> {
  for (let i = 0; i < 120; i++) {
    const r = await d.docker(['exec', container, 'buildctl', 'debug', 'histories', '--format', '{{json .}}']);
    const line = r.stdout.split('\n').find((l) => l.includes(`"build-arg:BUST":"${bust}"`) && !l.includes('CompletedAt'));
    if (line) return line;
    await new Promise((res) => setTimeout(res, 250));
  }
  return undefined;
}

/** An OCI image layout of `image` tagged `tag`, as `docker buildx build --build-context x=oci-layout://DIR:TAG` reads it. */
function writeLayout(dir: string, image: EngineImage, tag: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of [image.manifest, ...image.children.map((c) => c.manifest), ...image.blobs]) writeFileSync(join(dir, 'blobs', 'sha256', b.digest.slice(7)), b.data);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const entry = { mediaType: image.manifest.mediaType, digest: image.digest, size: image.manifest.size, annotations: { 'org.opencontainers.image.ref.name': tag } };
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] }));
}

interface Side {
  /** The side's DOCKER_CONFIG (buildx's store, `current`). */
  dockerConfig: string;
  /** Where the build steps keep their contexts and outputs. */
  dir: string;
  layout: string;
  /** Whether the build just run accepted its oci-layout context (the real one: it built; the emulation: its layout check). */
  accepted(r: { code: number }, out: string): boolean;
  /** Runs a build with BUST=conformance on builder `conf` and returns its history line while it runs. */
  runningBuildLine(): Promise<string | undefined>;
}

async function sequence(run: Run, version: string, image: string, hosts: Record<string, string>, side: Side) {
  const out: Record<string, unknown> = {};
  const norm = (s: string): string => [...Object.entries(hosts), [side.dockerConfig, 'DOCKER_CONFIG'] as const].reduce((acc, [from, to]) => acc.split(from).join(to), s);
  const v = await run(buildVersionArgs());
  const parsed = parseBuildxVersion(v.stdout);
  // The revision is left out on purpose: the emulation prints one no real build has (util.mjs).
  out.version = { code: v.code, version: parsed.version, raw: parsed.raw, fields: v.stdout.trim().split(' ').length, package: v.stdout.split(' ')[0] };
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
  out.inspectBeforeLabels = inspectLabels(before.stdout);
  const boot = await run(buildInspectArgs('conf', { bootstrap: true }));
  out.inspectAfter = { code: boot.code, info: readInspect(parseInspect(boot.stdout), hosts) };
  out.inspectAfterLabels = inspectLabels(boot.stdout);

  // A build with a named oci-layout context, then one whose tag is not in the layout.
  const context = join(side.dir, 'context');
  mkdirSync(context, { recursive: true });
  writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY --from=tools /etc/bxb-standin /standin\n');
  const build = async (tag: string, dest: string, layout = side.layout): Promise<boolean> => {
    const r = await run(['buildx', 'build', '--builder', 'conf', '--build-context', `tools=oci-layout://${layout}:${tag}`, '--output', `type=local,dest=${join(side.dir, dest)}`, context]);
    return side.accepted(r, join(side.dir, dest, 'standin'));
  };
  // buildx takes a layout's only manifest when the tag is not in it (BX build/build.go "lookup
  // single"); a directory that is no layout is refused.
  out.buildOciLayout = {
    accepted: await build('v1', 'out'),
    missingTagAccepted: await build('nope', 'out-nope'),
    notALayoutAccepted: await build('v1', 'out-none', join(side.dir, 'no-layout')),
  };

  // A running build as BuildKit's history reports it (the emulation: the stand-in buildctl).
  out.runningBuild = historyShape(await side.runningBuildLine());

  const ls = await run(buildLsArgs(parsed.version));
  const builders = parsed.version.startsWith('0.12.') ? undefined : parseLsJson(ls.stdout);
  const conf = builders?.find((b) => b.name === 'conf');
  out.lsKeys = builders ? lsJsonKeys(ls.stdout) : undefined;
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
  const append = await run(['buildx', 'create', '--append', '--name', 'conf', '--node', 'conf1', '--driver-opt', `image=${image}`, '--driver-opt', 'network=host']);
  out.append = { code: append.code, stdout: append.stdout, error: append.code ? firstError(append.stderr) : '' };
  const appended = await run(buildInspectArgs('conf'));
  out.inspectAppended = { code: appended.code, info: readInspect(parseInspect(appended.stdout), hosts), labels: inspectLabels(appended.stdout) };
  const use = await run(['buildx', 'use', 'conf']);
  let current: unknown;
  try {
    current = JSON.parse(readFileSync(join(side.dockerConfig, 'buildx', 'current'), 'utf8'));
  } catch (e) {
    current = String(e);
  }
  out.use = { code: use.code, stdout: use.stdout, stderr: use.stderr, current };
  const useMissing = await run(['buildx', 'use', 'no-such-builder']);
  out.useMissing = { code: useMissing.code, error: norm(firstError(useMissing.stderr)) };
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

    const root = tempDir(t, 'bxb-conformance-');
    const layoutImage = buildEngineImage({ version: 'layout-1', platforms: ['linux/amd64'], index: false });
    const layout = join(root, 'layout');
    writeLayout(layout, layoutImage, 'v1');
    const standin = `version=layout-1\nflavour=default\n`;
    const long = join(root, 'long');
    mkdirSync(long);
    copyFileSync('/bin/busybox', join(long, 'busybox'));
    writeFileSync(join(long, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "6"]\n');

    const emulated = await sequence((a) => dockerWith(fakeEnv, a), pair.buildx.version, `${stand.host}/moby/buildkit:${pair.kit.version}`, hosts, {
      dockerConfig: fake.dockerConfig,
      dir: join(root, 'emulated'),
      layout,
      accepted: (r) => r.code === 0 && (fake.calls().at(-1)?.ociLayouts ?? []).every((l) => l.valid),
      // The emulated shared-runner tests mark a build on the stand-in exactly so.
      runningBuildLine: async () => {
        const line = standInBuildLine('conformancebuild000000000', pair.kit.version, { attrs: { 'build-arg:BUST': 'conformance' } });
        await w.dockerd.docker(['exec', 'buildx_buildkit_conf0', 'sh', '-c', 'mkdir -p /run/bxb-builds && printf "%s\\n" "$1" > /run/bxb-builds/conformance', 'sh', line]);
        const seen = await runningHistoryLine(w.dockerd, 'buildx_buildkit_conf0', 'conformance');
        await w.dockerd.docker(['exec', 'buildx_buildkit_conf0', 'rm', '-f', '/run/bxb-builds/conformance']);
        return seen;
      },
    });
    const real = await sequence((a) => w.docker(a), pair.buildx.version, `${w.upstream.host}/moby/buildkit:${pair.kit.version}`, hosts, {
      dockerConfig: w.buildx.dockerConfig,
      dir: join(root, 'real'),
      layout,
      accepted: (r, out) => {
        try {
          return r.code === 0 && readFileSync(out, 'utf8') === standin;
        } catch {
          return false;
        }
      },
      runningBuildLine: async () => {
        const running = w.docker(['buildx', 'build', '--builder', 'conf', '--progress', 'plain', '--build-arg', 'BUST=conformance', long], { timeoutMs: 180_000 });
        const seen = await runningHistoryLine(w.dockerd, 'buildx_buildkit_conf0', 'conformance');
        const done = await running;
        t.equal(done.code, 0, `the real long build succeeded${done.code ? `: ${done.stderr.trim().split('\n').pop()}` : ''}`);
        return seen;
      },
    });
    // Both readings in full when they differ, to see what the emulation has to learn.
    if (JSON.stringify(emulated) !== JSON.stringify(real)) t.comment(JSON.stringify({ emulated, real }, null, 1));
    for (const step of Object.keys(real)) t.same(emulated[step], real[step], `${step}: the emulation reads as the real plugin`);
  });
}
