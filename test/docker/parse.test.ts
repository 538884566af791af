import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseBuildxVersion, parseDriverOpts, parseInspect, parseLsJson } from '../../src/docker/parse.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/buildx/${name}`, import.meta.url), 'utf8');

t.test('parseBuildxVersion reads every form buildx prints', async (t) => {
  t.same(parseBuildxVersion(fixture('version-release.txt')), {
    version: '0.11.2',
    raw: 'v0.11.2',
    revision: '9872040b6626fb7d87ef7296fd5b832e8cc2ad17',
  });
  t.same(parseBuildxVersion(fixture('version-deb.txt')), { version: '0.19.3', raw: 'v0.19.3', revision: '48d6a39' });
  t.same(parseBuildxVersion(fixture('version-unstamped.txt')), { version: '0.0.0', raw: 'v0.0.0+unknown', revision: '' });
  t.same(parseBuildxVersion('github.com/docker/buildx v0.32.0-rc1 0a1b2c3d\n'), { version: '0.32.0', raw: 'v0.32.0-rc1', revision: '0a1b2c3d' });
  t.same(parseBuildxVersion('github.com/docker/buildx v0.19.2-desktop.1 33d6a8a\r\n'), {
    version: '0.19.2',
    raw: 'v0.19.2-desktop.1',
    revision: '33d6a8a',
  });
});

t.test('parseBuildxVersion refuses output that is not a buildx version line', async (t) => {
  for (const bad of ['', '\n', 'docker: unknown command: docker buildx\n', 'github.com/docker/buildx\n', 'github.com/docker/buildx latest abc\n', 'Docker version 28.2.2, build e6534b4\n']) {
    t.throws(() => parseBuildxVersion(bad), /unexpected output of docker buildx version/, JSON.stringify(bad));
  }
});

t.test('parseDriverOpts reads Go %q values, spaces and escapes included', async (t) => {
  t.same(parseDriverOpts('image="moby/buildkit:latest" network="host"'), { image: 'moby/buildkit:latest', network: 'host' });
  t.same(parseDriverOpts('env.HTTP_PROXY="http://p:3128 \\"q\\"" env.X="a\\tb\\\\c\\u00e9\\x01"'), {
    'env.HTTP_PROXY': 'http://p:3128 "q"',
    'env.X': 'a\tb\\c\u00e9\x01',
  });
  t.same(parseDriverOpts('  '), {});
  t.throws(() => parseDriverOpts('image=moby/buildkit'), /cannot read driver options/);
  t.throws(() => parseDriverOpts('image="unterminated'), /cannot read driver options/);
});

t.test('inspect: buildx docs example (Flags:/BuildKit: labels, fixed platform)', async (t) => {
  const b = parseInspect(fixture('inspect-docs-example-a.txt'));
  t.equal(b.name, 'elated_tesla');
  t.equal(b.driver, 'docker-container');
  t.equal(b.lastActivity, '2022-11-30 12:42:47 +0100 CET');
  t.equal(b.error, undefined);
  t.equal(b.nodes.length, 1);
  const n = b.nodes[0]!;
  t.equal(n.name, 'elated_tesla0');
  t.equal(n.endpoint, 'unix:///var/run/docker.sock');
  t.same(n.driverOpts, {
    'env.BUILDKIT_STEP_LOG_MAX_SPEED': '10485760',
    'env.JAEGER_TRACE': 'localhost:6831',
    image: 'moby/buildkit:latest',
    network: 'host',
    'env.BUILDKIT_STEP_LOG_MAX_SIZE': '10485760',
  });
  t.equal(n.status, 'running');
  t.same(n.flags, ['--debug', '--allow-insecure-entitlement', 'security.insecure', '--allow-insecure-entitlement', 'network.host']);
  t.equal(n.buildkitVersion, 'v0.10.6');
  t.same(n.platforms, ['linux/arm64', 'linux/arm/v7', 'linux/arm/v6']);
  t.same(n.fixedPlatforms, ['linux/arm64']);
  t.equal(n.labels['org.mobyproject.buildkit.worker.oci.process-mode'], 'sandbox');
  t.equal(Object.keys(n.labels).length, 6);
  t.equal(n.gcPolicy.length, 4);
  t.same(n.gcPolicy[0], { All: 'false', Filters: 'type==source.local,type==exec.cachemount,type==source.git.checkout', 'Keep Duration': '48h0m0s', 'Keep Bytes': '488.3MiB' });
  t.same(n.gcPolicy[3], { All: 'true', 'Keep Bytes': '24.21GiB' });
  t.same(n.files, {});
});

t.test('inspect: actions-toolkit fixture (new labels, Features skipped, trimmed File# blocks)', async (t) => {
  const b = parseInspect(fixture('inspect-at-inspect11.txt'));
  const n = b.nodes[0]!;
  t.equal(n.buildkitVersion, '37657a1');
  t.same(n.flags.slice(-1), ['--allow-insecure-entitlement=network.host']);
  t.equal(n.platforms.length, 12);
  t.same(n.fixedPlatforms, []);
  t.notOk('Cache export' in n.labels, 'Features are not labels');
  t.equal(Object.keys(n.labels).length, 6);
  t.same(n.files, {
    'buildkitd.toml': 'debug = true\ninsecure-entitlements = ["network.host", "security.insecure"]\ntrace = true\n\n[log]\n  format = "text"\n',
    'foo.txt': 'foo = bar\nbaz = qux\n',
  });
});

t.test('inspect: current buildx, fresh builder (inactive, File# with trailing-space lines)', async (t) => {
  t.same(parseInspect(fixture('inspect-current-fresh.txt')), {
    name: 'ci-builder',
    driver: 'docker-container',
    lastActivity: '2026-08-20 10:44:14 +0000 UTC',
    nodes: [
      {
        name: 'ci-builder0',
        endpoint: 'unix:///var/run/docker.sock',
        driverOpts: { image: 'registry.internal/moby/buildkit:v0.13.2', network: 'host' },
        status: 'inactive',
        flags: ['--allow-insecure-entitlement=network.host'],
        platforms: [],
        fixedPlatforms: [],
        labels: {},
        gcPolicy: [],
        files: { 'buildkitd.toml': "[registry]\n[registry.'docker.io']\nmirrors = ['mirror.internal:5000']\n" },
      },
    ],
  });
});

t.test('inspect: current buildx after bootstrap', async (t) => {
  const n = parseInspect(fixture('inspect-current-bootstrapped.txt')).nodes[0]!;
  t.equal(n.status, 'running');
  t.equal(n.buildkitVersion, 'v0.13.2');
  t.same(n.platforms, ['linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3', 'linux/386']);
  t.equal(n.labels['org.mobyproject.buildkit.worker.hostname'], 'myhost');
  t.same(n.gcPolicy, [{ All: 'false', Filters: 'type==source.local,type==exec.cachemount,type==source.git.checkout', 'Keep Duration': '48h0m0s', 'Max Used Space': '488.3MiB' }]);
  t.equal(n.files['buildkitd.toml'], "[registry]\n[registry.'docker.io']\nmirrors = ['mirror.internal:5000']\n");
});

t.test('inspect: buildx v0.12 layout, two nodes, one failing', async (t) => {
  const b = parseInspect(fixture('inspect-v0.12-running.txt'));
  t.equal(b.nodes.length, 2);
  const [a, c] = b.nodes;
  t.equal(a!.status, 'running');
  t.same(a!.flags, ['--debug', '--allow-insecure-entitlement', 'security.insecure']);
  t.equal(a!.buildkitVersion, 'v0.12.5');
  t.same(a!.fixedPlatforms, ['linux/amd64']);
  t.equal(a!.driverOpts.image, '127.0.0.1:5000/moby/buildkit:v0.12.5@sha256:4c1f8c9e1a5b0e6d7f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80');
  t.same(a!.gcPolicy[1], { All: 'true', 'Keep Bytes': '9.313GiB' });
  t.equal(c!.name, 'ci-builder1');
  t.equal(c!.endpoint, 'tcp://127.0.0.1:2376');
  t.equal(c!.status, 'error');
  t.equal(c!.error, 'Cannot connect to the Docker daemon at tcp://127.0.0.1:2376. Is the docker daemon running?');
  t.equal(c!.driverOpts['env.HTTP_PROXY'], 'http://proxy.corp:3128 "quoted"');

  const fresh = parseInspect(fixture('inspect-v0.12-fresh.txt'));
  t.equal(fresh.lastActivity, undefined);
  t.equal(fresh.nodes[0]!.status, 'inactive');
  t.equal(fresh.nodes[0]!.buildkitVersion, undefined);
  t.same(fresh.nodes[0]!.flags, []);
  t.same(fresh.nodes[0]!.platforms, ['linux/arm64']);
});

t.test('inspect: builder-level error, CRLF and a file without trailing newline', async (t) => {
  const b = parseInspect('Name:   broken\r\nDriver: docker-container\r\nError:  open /x: permission denied\r\n');
  t.same(b, { name: 'broken', driver: 'docker-container', error: 'open /x: permission denied', nodes: [] });
  const f = parseInspect('Name:   b\nDriver: docker-container\n\nNodes:\nName:     b0\nEndpoint: default\nStatus:   inactive\nFile#x:\n > a\n > b\n');
  t.equal(f.nodes[0]!.files.x, 'a\nb');
});

t.test('inspect: refuses what is not inspect output', async (t) => {
  t.throws(() => parseInspect(''), /no Name line/);
  t.throws(() => parseInspect('ERROR: no builder "x" found\n'), /line 1: expected the builder Name line first/);
  t.throws(() => parseInspect('Name: x\nDriver: y\n\nNodes:\nEndpoint: z\n'), /node detail before a node Name/);
  t.throws(() => parseInspect('Name: x\nDriver: y\n\nNodes:\nName: n\nDriver Options: image=bare\n'), /line 6: cannot read driver options/);
});

t.test('ls --format json: v0.36 alphabetical keys, Current, node errors', async (t) => {
  t.same(parseLsJson(fixture('ls-json-v0.36.txt')), [
    {
      name: 'multiarch-builder',
      driver: 'docker-container',
      dynamic: false,
      current: false,
      lastActivity: '2026-08-26T13:28:34Z',
      nodes: [
        {
          name: 'multiarch-builder0',
          endpoint: 'orbstack',
          flags: ['--allow-insecure-entitlement=network.host'],
          driverOpts: {},
          files: {},
          platforms: [],
          labels: {},
          status: 'error',
          error: 'unable to parse docker host `orbstack`',
        },
      ],
    },
    {
      name: 'default',
      driver: 'docker-container',
      dynamic: false,
      current: true,
      lastActivity: '2026-08-09T07:20:36Z',
      nodes: [{ name: 'default', endpoint: 'default', flags: [], driverOpts: {}, files: {}, platforms: [], labels: {}, status: 'inactive' }],
    },
  ]);
});

t.test('ls --format json: a bootstrapped node', async (t) => {
  const [b] = parseLsJson(fixture('ls-json-v0.26-bootstrapped.txt'));
  t.equal(b!.nodes[0]!.version, 'v0.22.0');
  t.equal(b!.nodes[0]!.driverOpts.image, 'docker.io/moby/buildkit:buildx-stable-1');
  t.same(b!.nodes[0]!.platforms, ['linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3', 'linux/amd64/v4', 'linux/386']);
  t.equal(b!.nodes[0]!.labels['org.mobyproject.buildkit.worker.executor'], 'oci');
});

t.test('ls --format json: v0.13–v0.20 duplicates collapse, struct key order, zero time, base64 files', async (t) => {
  const list = parseLsJson(fixture('ls-json-v0.19-duplicated.txt'));
  t.same(
    list.map((b) => b.name),
    ['ci-builder', 'default'],
  );
  const [ci, def] = list;
  t.equal(ci!.current, undefined, 'no Current before v0.24');
  t.equal(ci!.lastActivity, '2026-11-22T09:15:02Z');
  t.equal(def!.lastActivity, undefined, 'zero time means unknown');
  t.equal(def!.driver, 'docker');
  t.equal(ci!.nodes[0]!.files['buildkitd.toml'], "[registry]\n[registry.'docker.io']\nmirrors = ['127.0.0.1:5000']\n");
  t.equal(ci!.nodes[0]!.version, 'v0.19.0');
});

t.test('ls --format json: refuses the table and broken lines', async (t) => {
  t.same(parseLsJson(''), []);
  t.throws(() => parseLsJson('NAME/NODE  DRIVER/ENDPOINT  STATUS  BUILDKIT  PLATFORMS\n'), /line 1: not JSON/);
  t.throws(() => parseLsJson('{"Name":"a","Driver":"docker"}\n{"Nodes":[]}\n'), /line 2: not a builder object/);
});
