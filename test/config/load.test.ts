import t from 'tap';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { parseDuration } from '../../src/config/schema.js';
import { runCli } from '../helpers/cli.js';

const env = (extra: Record<string, string> = {}): Record<string, string | undefined> => ({ PATH: process.env.PATH, ...extra });

t.test('defaults apply when no config file exists', async (t) => {
  const dir = t.testdir({});
  const { config, file } = await loadConfig({ cwd: dir, env: env() });
  t.equal(file, undefined);
  t.equal(config.buildkit.image, 'moby/buildkit');
  t.equal(config.buildkit.version, 'buildx-stable-1');
  t.equal(config.builder.name, '', 'unset: derived later from what defines the builder');
  t.same(config.timeouts, { probe: 2000, hedge: 250, bootstrap: 120_000, drain: 600_000 });
  t.equal(config.lockfile, join(dir, 'buildx-bootstrap.lock.json'));
});

t.test('a YAML rc file is found from a subdirectory and its paths are relative to it', async (t) => {
  const dir = t.testdir({
    'package.json': '{"name":"app"}',
    '.buildx-bootstraprc.yaml': [
      'buildkit:',
      '  version: "^0.18"',
      'mirrors:',
      '  - host: harbor.corp.example',
      '    path: /dockerhub-proxy/',
      '    ca: certs/ca.pem',
      '  - nexus.corp.example:8443/docker',
      'cache:',
      '  dir: .cache/buildkit',
      'timeouts: { probe: 1.5s, hedge: 100ms }',
      '',
    ].join('\n'),
    certs: { 'ca.pem': 'x' },
    sub: {},
  });
  const { config, file } = await loadConfig({ cwd: join(dir, 'sub'), env: env() });
  t.equal(file, join(dir, '.buildx-bootstraprc.yaml'));
  t.equal(config.buildkit.version, '^0.18');
  t.same(
    config.mirrors.map((m) => [m.host, m.path, m.for, m.ca]),
    [
      ['harbor.corp.example', 'dockerhub-proxy', 'docker.io', join(dir, 'certs/ca.pem')],
      ['nexus.corp.example:8443', 'docker', 'docker.io', ''],
    ],
  );
  t.equal(config.cache.dir, join(dir, '.cache/buildkit'));
  t.same(config.timeouts, { probe: 1500, hedge: 100, bootstrap: 120_000, drain: 600_000 });
});

t.test('package.json key is read', async (t) => {
  const dir = t.testdir({ 'package.json': JSON.stringify({ name: 'app', 'buildx-bootstrap': { builder: { name: 'ci' } } }) });
  const { config } = await loadConfig({ cwd: dir, env: env() });
  t.equal(config.builder.name, 'ci');
});

t.test('precedence: defaults < file < environment < flags', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify({ buildkit: { version: 'v0.17.0', image: 'corp.example/moby/buildkit' }, builder: { name: 'from-file' } }) });
  const { config } = await loadConfig({
    cwd: dir,
    env: env({ BUILDX_BOOTSTRAP_VERSION: '^0.18', BUILDX_BOOTSTRAP_NAME: 'from-env', BUILDX_BOOTSTRAP_UPSTREAM: 'false' }),
    flags: { builder: { name: 'from-flags' } },
  });
  t.equal(config.buildkit.image, 'corp.example/moby/buildkit', 'file beats defaults');
  t.equal(config.buildkit.version, '^0.18', 'environment beats file');
  t.equal(config.upstream, false);
  t.equal(config.builder.name, 'from-flags', 'flags beat environment');
});

t.test('every problem is reported at once, with key path and source', async (t) => {
  const dir = t.testdir({
    '.buildx-bootstraprc.yml': [
      'buildkit:',
      '  version: "not a version!"',
      '  image: moby/buildkit:v0.18.0',
      '  colour: blue',
      'mirrors:',
      '  - host: https://harbor.corp.example',
      '  - path: x',
      'builder:',
      '  driver: podman',
      '  name: default',
      '  platforms: [linux]',
      'timeouts: { probe: soon }',
      'upstream: "yes"',
      '',
    ].join('\n'),
  });
  const error = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_FROB: '1' }) }).catch((e: unknown) => e);
  t.type(error, ConfigError);
  const problems = (error as ConfigError).problems.map((p) => `${p.source === 'environment' ? 'env' : 'file'} ${p.path}`);
  t.same(problems.sort(), [
    'env BUILDX_BOOTSTRAP_FROB',
    'file buildkit.colour',
    'file buildkit.image',
    'file buildkit.version',
    'file builder.driver',
    'file builder.name',
    'file builder.platforms[0]',
    'file mirrors[0].host',
    'file mirrors[1].host',
    'file timeouts.probe',
    'file upstream',
  ].sort());
  t.match((error as ConfigError).message, /invalid configuration \(11 problems\)/);
});

t.test('the CLI reports configuration errors in one line with exit 2', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': '{"buildkit": {"version": 5, "imag": "x"}, "lockfile": false}' });
  const r = await runCli(['resolve'], { cwd: dir });
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.equal(r.stderr.trim().split('\n').length, 1);
  t.match(r.stderr, /\.buildx-bootstraprc\.json: buildkit\.imag: unknown key/);
  t.match(r.stderr, /lockfile: expected a string, got a boolean/);
});

t.test('a config file that does not parse names the file and the line', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'buildkit:\n  version: [\n' });
  const r = await runCli(['resolve', '--config', 'bad.yaml'], { cwd: dir });
  t.equal(r.code, 2);
  t.match(r.stderr, /bad\.yaml: cannot be parsed: .*\(\d+:\d+\)/);
  const missing = await runCli(['resolve', '--config', 'nope.yaml'], { cwd: dir });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /nope\.yaml: file not found/);
});

t.test('the GitLab Dependency Proxy becomes the last mirror', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify({ mirrors: ['harbor.corp.example/proxy'] }) });
  const { config } = await loadConfig({
    cwd: dir,
    env: env({ CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX: 'gitlab.example.com:443/my-group/dependency_proxy/containers' }),
  });
  t.same(
    config.mirrors.map((m) => `${m.host}/${m.path}`),
    ['harbor.corp.example/proxy', 'gitlab.example.com:443/my-group/dependency_proxy/containers'],
  );
  t.equal(config.mirrors[1]?.origin, 'gitlab-dependency-proxy');
});

t.test('durations', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('2s'), 2000);
  t.equal(parseDuration('1m30s'), 90_000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration(300), 300);
  t.equal(parseDuration('300'), 300);
  t.equal(parseDuration('2 s'), undefined);
  t.equal(parseDuration('soon'), undefined);
  t.equal(parseDuration(-1), undefined);
});

t.test('the search stops at the project root and finds .config/ files', async (t) => {
  const dir = t.testdir({
    '.buildx-bootstraprc.json': JSON.stringify({ builder: { name: 'outside' } }),
    app: { 'package.json': '{"name":"app"}', '.config': { 'buildx-bootstraprc.yaml': 'builder:\n  name: inside\n' }, src: {} },
    other: { 'package.json': '{"name":"other"}' },
  });
  t.equal((await loadConfig({ cwd: join(dir, 'app', 'src'), env: env() })).config.builder.name, 'inside');
  const other = await loadConfig({ cwd: join(dir, 'other'), env: env() });
  t.equal(other.file, undefined, 'a config above the project root is not used');
  t.equal(other.config.builder.name, '');
});

t.test('a JSON config that does not parse names the file, line and column', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': '{\n  "builder": {\n    "name": "x",\n  }\n}\n' });
  const r = await runCli(['resolve'], { cwd: dir });
  t.equal(r.code, 2);
  t.match(r.stderr, /\.buildx-bootstraprc\.json: cannot be parsed: .*\(4:3\)/);
});

t.test('timeouts.drain: file, BUILDX_BOOTSTRAP_DRAIN_TIMEOUT and days as a unit', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify({ timeouts: { drain: '2m' } }) });
  t.equal((await loadConfig({ cwd: dir, env: env() })).config.timeouts.drain, 120_000, 'from the file');
  t.equal((await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_DRAIN_TIMEOUT: '1d' }) })).config.timeouts.drain, 86_400_000, 'environment beats file');
  await t.rejects(loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_DRAIN_TIMEOUT: 'forever' }) }), /timeouts\.drain/);
});

t.test('every config file form the README lists is found and read', async (t) => {
  const forms: [string, string][] = [
    ['.buildx-bootstraprc', 'builder:\n  name: rc-yaml\n'],
    ['.buildx-bootstraprc', '{"builder": {"name": "rc-json"}}\n'],
    ['.buildx-bootstraprc.json', '{"builder": {"name": "rc-dot-json"}}\n'],
    ['.buildx-bootstraprc.yaml', 'builder: { name: rc-dot-yaml }\n'],
    ['.buildx-bootstraprc.yml', 'builder: { name: rc-dot-yml }\n'],
    ['.buildx-bootstraprc.js', 'export default { builder: { name: "rc-dot-js" } };\n'],
    ['.buildx-bootstraprc.mjs', 'export default { builder: { name: "rc-dot-mjs" } };\n'],
    ['.buildx-bootstraprc.cjs', 'module.exports = { builder: { name: "rc-dot-cjs" } };\n'],
    ['buildx-bootstrap.config.js', 'export default { builder: { name: "config-js" } };\n'],
    ['buildx-bootstrap.config.mjs', 'export default { builder: { name: "config-mjs" } };\n'],
    ['buildx-bootstrap.config.cjs', 'module.exports = { builder: { name: "config-cjs" } };\n'],
    ['buildx-bootstrap.config.ts', 'const name: string = "config-ts";\nexport default { builder: { name } };\n'],
  ];
  for (const [file, text] of forms) {
    // A package.json with "type": "module" is the project root, as in a real ESM project.
    const dir = t.testdir({ 'package.json': '{"name":"app","type":"module"}', [file]: text, sub: {} });
    const expected = /(rc|config)-[a-z-]+/.exec(text)![0];
    const { config, file: found } = await loadConfig({ cwd: join(dir, 'sub'), env: env() });
    t.equal(found, join(dir, file), `${file} is found from a subdirectory`);
    t.equal(config.builder.name, expected, `${file} (${expected}) is read`);
  }
});

t.test('BUILDX_BOOTSTRAP_CONFIG names the file (relative to the cwd), ahead of the search; --config beats it', async (t) => {
  const dir = t.testdir({
    '.buildx-bootstraprc.json': '{"builder": {"name": "searched"}}',
    ci: { 'bxb.yaml': 'builder:\n  name: from-variable\nlockfile: locks/bxb.lock.json\n', 'other.json': '{"builder": {"name": "from-flag"}}' },
  });
  const viaEnv = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_CONFIG: 'ci/bxb.yaml' }) });
  t.equal(viaEnv.file, join(dir, 'ci', 'bxb.yaml'));
  t.equal(viaEnv.config.builder.name, 'from-variable');
  t.equal(viaEnv.config.lockfile, join(dir, 'ci', 'locks', 'bxb.lock.json'), 'paths in it are relative to that file');
  const viaFlag = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_CONFIG: 'ci/bxb.yaml' }), configFile: 'ci/other.json' });
  t.equal(viaFlag.config.builder.name, 'from-flag');
  const missing = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_CONFIG: 'nope.yaml' }) }).catch((e: unknown) => e);
  t.ok(missing instanceof ConfigError, 'a named file that does not exist is a configuration error');
  t.match((missing as ConfigError).message, /nope\.yaml: file not found/);
});

t.test('every BUILDX_BOOTSTRAP_* variable the README lists is read into its key', async (t) => {
  const dir = t.testdir({ 'base.toml': '', certs: {} });
  const { config } = await loadConfig({
    cwd: dir,
    env: env({
      BUILDX_BOOTSTRAP_VERSION: '^0.18',
      BUILDX_BOOTSTRAP_IMAGE: 'corp.example/moby/buildkit',
      BUILDX_BOOTSTRAP_ROOTLESS: 'true',
      BUILDX_BOOTSTRAP_MIRRORS: 'harbor.corp/dockerhub-proxy, nexus.corp:8443',
      BUILDX_BOOTSTRAP_UPSTREAM: '0',
      BUILDX_BOOTSTRAP_BUILDKITD_CONFIG: 'base.toml',
      BUILDX_BOOTSTRAP_NAME: 'env-builder',
      BUILDX_BOOTSTRAP_DRIVER: 'docker-container',
      BUILDX_BOOTSTRAP_PLATFORMS: 'linux/amd64,linux/arm64',
      BUILDX_BOOTSTRAP_ENDPOINT: 'my-context',
      BUILDX_BOOTSTRAP_CACHE_DIR: '.cache/engine',
      BUILDX_BOOTSTRAP_LOCKFILE: 'locks/l.json',
      BUILDX_BOOTSTRAP_PROBE_TIMEOUT: '1.5s',
      BUILDX_BOOTSTRAP_HEDGE: '100ms',
      BUILDX_BOOTSTRAP_BOOTSTRAP_TIMEOUT: '3m',
      BUILDX_BOOTSTRAP_DRAIN_TIMEOUT: '20m',
      BUILDX_BOOTSTRAP_STATE_DIR: join(dir, 'state'),
    }),
  });
  t.equal(config.buildkit.version, '^0.18');
  t.equal(config.buildkit.image, 'corp.example/moby/buildkit');
  t.equal(config.buildkit.rootless, true);
  t.same(config.mirrors.map((m) => [m.host, m.path, m.for]), [['harbor.corp', 'dockerhub-proxy', 'docker.io'], ['nexus.corp:8443', '', 'docker.io']], '_MIRRORS: comma-separated host[/path]');
  t.equal(config.upstream, false);
  t.equal(config.buildkitd.config, join(dir, 'base.toml'), 'paths from the environment are relative to the cwd');
  t.equal(config.builder.name, 'env-builder');
  t.equal(config.builder.driver, 'docker-container');
  t.same(config.builder.platforms, ['linux/amd64', 'linux/arm64']);
  t.equal(config.builder.endpoint, 'my-context');
  t.equal(config.cache.dir, join(dir, '.cache/engine'));
  t.equal(config.lockfile, join(dir, 'locks/l.json'));
  t.same(config.timeouts, { probe: 1500, hedge: 100, bootstrap: 180_000, drain: 1_200_000 });

  const bad = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_DRIVER: 'podman', BUILDX_BOOTSTRAP_PROBE_TIMEOUT: 'soon' }) }).catch((e: unknown) => e);
  t.ok(bad instanceof ConfigError);
  t.match((bad as ConfigError).message, /environment: builder\.driver: [^;]*podman/);
  t.match((bad as ConfigError).message, /environment: timeouts\.probe/);
});

t.test('an unknown BUILDX_BOOTSTRAP_* variable is an error (exit 2) naming it', async (t) => {
  const dir = t.testdir({});
  const r = await runCli(['plan'], { cwd: dir, env: env({ BUILDX_BOOTSTRAP_MIRROR: 'harbor.corp' }) });
  t.equal(r.code, 2);
  t.match(r.stderr, /^buildx-bootstrap: .*environment: BUILDX_BOOTSTRAP_MIRROR: unknown variable \(known: .*BUILDX_BOOTSTRAP_MIRRORS/m);
  t.equal(r.stdout, '');
});

// Found by test/properties/config.test.ts.
t.test('hostile input: a __proto__ variable, a JSON error V8 words without a position, newlines in values', async (t) => {
  const dir = t.testdir({ 'nul.json': '\0', 'token.json': '{\n  "buildkit": {},\n  "x",\n  "y": 1\n}\n' });
  const proto = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP___proto__: 'x' }) }).catch((e: unknown) => e);
  t.type(proto, ConfigError, 'an unknown variable, not a TypeError');
  t.match((proto as Error).message, 'environment: BUILDX_BOOTSTRAP___proto__: unknown variable');
  const nul = await loadConfig({ cwd: dir, env: env(), configFile: join(dir, 'nul.json') }).catch((e: unknown) => e);
  t.match((nul as Error).message, `${join(dir, 'nul.json')}: cannot be parsed: Unexpected token '\\u0000' (1:1)`);
  const token = await loadConfig({ cwd: dir, env: env(), configFile: join(dir, 'token.json') }).catch((e: unknown) => e);
  t.match((token as Error).message, /cannot be parsed: Unexpected token ',' \(3:\d+\)$/);
  const newline = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_VERSION: 'a\nb' }) }).catch((e: unknown) => e);
  t.equal((newline as Error).message.split('\n').length, 1, 'the message stays one line');
  t.match((newline as Error).message, 'a\\nb');
});
