import t from 'tap';
import {
  buildAppendNodeArgs,
  buildCreateArgs,
  buildInspectArgs,
  buildLsArgs,
  buildRmArgs,
  buildUseArgs,
  driverOptArg,
  joinBuildkitdFlags,
  shlexQuote,
  shlexSplit,
  type CreateArgsInput,
} from '../../src/docker/buildx-args.js';
import { UsageError } from '../../src/errors.js';

const IMAGE = '127.0.0.1:5000/moby/buildkit:v0.19.0@sha256:4c1f8c9e1a5b0e6d7f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80';

function input(over: Partial<CreateArgsInput>): CreateArgsInput {
  return {
    buildxVersion: '0.19.3',
    name: 'ci-builder',
    driver: 'docker-container',
    image: IMAGE,
    driverOpts: { network: 'host' },
    buildkitdFlags: ['--allow-insecure-entitlement=network.host'],
    configFile: '/state/buildkitd.toml',
    platforms: ['linux/amd64', 'linux/arm64'],
    use: true,
    bootstrap: true,
    timeoutSeconds: 120,
    ...over,
  };
}

t.test('create argv per buildx version', async (t) => {
  const cases: [string, Partial<CreateArgsInput>, string[]][] = [
    [
      'v0.12.1: --config, no --timeout',
      { buildxVersion: '0.12.1' },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`, '--driver-opt', 'network=host',
        '--buildkitd-flags', '--allow-insecure-entitlement=network.host', '--config', '/state/buildkitd.toml', '--platform', 'linux/amd64,linux/arm64', '--use', '--bootstrap'],
    ],
    [
      'v0.19.3: --buildkitd-config, no --timeout',
      {},
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`, '--driver-opt', 'network=host',
        '--buildkitd-flags', '--allow-insecure-entitlement=network.host', '--buildkitd-config', '/state/buildkitd.toml', '--platform', 'linux/amd64,linux/arm64', '--use', '--bootstrap'],
    ],
    [
      'v0.36.0: --timeout, endpoint last',
      { buildxVersion: '0.36.0', endpoint: 'tls-environment' },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`, '--driver-opt', 'network=host',
        '--buildkitd-flags', '--allow-insecure-entitlement=network.host', '--buildkitd-config', '/state/buildkitd.toml', '--platform', 'linux/amd64,linux/arm64', '--use', '--bootstrap',
        '--timeout', '120s', 'tls-environment'],
    ],
    [
      'v0.36.0 minimal: nothing optional',
      { buildxVersion: 'v0.36.0', driverOpts: {}, buildkitdFlags: [], configFile: undefined, platforms: [], use: false, bootstrap: false, timeoutSeconds: undefined },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`],
    ],
    [
      'other driver opts sorted after image',
      { buildxVersion: '0.36.0', driverOpts: { 'restart-policy': 'no', 'env.B': '2', 'env.A': '1', memory: '2g' }, timeoutSeconds: undefined },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`,
        '--driver-opt', 'env.A=1', '--driver-opt', 'env.B=2', '--driver-opt', 'memory=2g', '--driver-opt', 'restart-policy=no',
        '--buildkitd-flags', '--allow-insecure-entitlement=network.host', '--buildkitd-config', '/state/buildkitd.toml', '--platform', 'linux/amd64,linux/arm64', '--use', '--bootstrap'],
    ],
    [
      'kubernetes: image= too, no endpoint',
      { buildxVersion: '0.19.3', driver: 'kubernetes', driverOpts: { namespace: 'ci', replicas: '2' }, use: false },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'kubernetes', '--driver-opt', `image=${IMAGE}`, '--driver-opt', 'namespace=ci', '--driver-opt', 'replicas=2',
        '--buildkitd-flags', '--allow-insecure-entitlement=network.host', '--buildkitd-config', '/state/buildkitd.toml', '--platform', 'linux/amd64,linux/arm64', '--bootstrap'],
    ],
    [
      'remote: no image, no config, no flags, endpoint last',
      { buildxVersion: '0.36.0', driver: 'remote', endpoint: 'tcp://127.0.0.1:1234', image: '', driverOpts: { cacert: '/certs/ca.pem', servername: 'bk' }, buildkitdFlags: [], configFile: undefined, platforms: [] },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'remote', '--driver-opt', 'cacert=/certs/ca.pem', '--driver-opt', 'servername=bk', '--use', '--bootstrap',
        '--timeout', '120s', 'tcp://127.0.0.1:1234'],
    ],
    [
      'a pre-release counts as its release (0.32.0-rc1 has --timeout)',
      { buildxVersion: '0.32.0-rc1', driverOpts: {}, buildkitdFlags: [], configFile: undefined, platforms: [], use: false, bootstrap: false, timeoutSeconds: 1.2 },
      ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--driver-opt', `image=${IMAGE}`, '--timeout', '2s'],
    ],
  ];
  for (const [name, over, expected] of cases) t.same(buildCreateArgs(input(over)), expected, name);
});

t.test('buildkitd flags survive buildx shlex split exactly', async (t) => {
  const flags = ['--debug', '--oci-worker-gc-keepstorage', '10 GB', "it's", '#not-a-comment', 'a"b\\c', '--x=$HOME', 'ünïcode', '\ttab'];
  const args = buildCreateArgs(input({ buildkitdFlags: flags }));
  const value = args[args.indexOf('--buildkitd-flags') + 1]!;
  t.equal(value, `--debug --oci-worker-gc-keepstorage '10 GB' 'it'"'"'s' '#not-a-comment' 'a"b\\c' '--x=$HOME' 'ünïcode' '\ttab'`);
  t.same(shlexSplit(value), flags);
  t.throws(() => joinBuildkitdFlags(['--debug', '']), UsageError);
});

t.test('shlexSplit follows google/shlex', async (t) => {
  t.same(shlexSplit('--a "b c" \'d e\' f\\ g # comment\nh'), ['--a', 'b c', 'd e', 'f g', 'h']);
  t.same(shlexSplit('x#y "q\\"uote"'), ['x#y', 'q"uote']);
  t.same(shlexSplit('  '), []);
  t.throws(() => shlexSplit("'open"), /closing quote/);
  t.equal(shlexQuote('--allow-insecure-entitlement=network.host'), '--allow-insecure-entitlement=network.host');
});

t.test('driver option values with commas or quotes are one CSV field', async (t) => {
  t.equal(driverOptArg('nodeselector', 'kubernetes.io/arch=arm64,team=ci'), '"nodeselector=kubernetes.io/arch=arm64,team=ci"');
  t.equal(driverOptArg('env.MSG', 'say "hi"'), '"env.MSG=say ""hi"""');
  t.equal(driverOptArg('network', 'host'), 'network=host');
  const args = buildCreateArgs(input({ driver: 'kubernetes', driverOpts: { nodeselector: 'a=b,c=d' } }));
  t.ok(args.includes('"nodeselector=a=b,c=d"'));
});

t.test('create refuses what buildx would refuse, with exit 2 and a hint', async (t) => {
  const cases: [string, Partial<CreateArgsInput>, RegExp][] = [
    ['driver opt too new', { buildxVersion: '0.12.1', driverOpts: { 'restart-policy': 'no' } }, /driver option "restart-policy" needs buildx 0\.13\.0 or later \(found 0\.12\.1\)/],
    ['driver opt too new (0.36 key on 0.19)', { driverOpts: { 'allow-untrusted-image': 'true' } }, /"allow-untrusted-image" needs buildx 0\.36\.0/],
    ['unknown key for the driver', { driverOpts: { namespace: 'x' } }, /driver option "namespace" does not exist for the docker-container driver/],
    ['image in driver opts', { driverOpts: { image: 'moby/buildkit:latest' } }, /driver option "image" is set by buildx-bootstrap/],
    ['env. without name', { driverOpts: { 'env.': 'x' } }, /"env\." has no variable name/],
    ['remote with config', { driver: 'remote', endpoint: 'tcp://127.0.0.1:1234', buildkitdFlags: [] }, /remote driver takes no buildkitd\.toml/],
    ['remote with flags', { driver: 'remote', endpoint: 'tcp://127.0.0.1:1234', configFile: undefined }, /remote driver takes no buildkitd flags/],
    ['remote without endpoint', { driver: 'remote', configFile: undefined, buildkitdFlags: [] }, /remote driver needs an endpoint/],
    ['remote relative cert', { driver: 'remote', endpoint: 'tcp://h:1', configFile: undefined, buildkitdFlags: [], driverOpts: { cacert: 'ca.pem' } }, /"cacert" must be an absolute path/],
    ['kubernetes endpoint', { driver: 'kubernetes', endpoint: 'tls-environment' }, /kubernetes driver takes no endpoint/],
    ['docker driver', { driver: 'docker' as 'remote' }, /docker driver cannot be created/],
    ['reserved name', { name: 'default' }, /"default" is reserved/],
    ['invalid name', { name: '1builder' }, /invalid builder name "1builder"/],
    ['garbage version', { buildxVersion: 'latest' }, /not a buildx version: "latest"/],
    ['no image', { image: '' }, /docker-container driver needs an engine image/],
  ];
  for (const [name, over, re] of cases) {
    t.throws(() => buildCreateArgs(input(over)), re, name);
    try {
      buildCreateArgs(input(over));
    } catch (e) {
      t.ok(e instanceof UsageError && e.exitCode === 2 && e.hint, `${name}: UsageError with a hint`);
    }
  }
});

t.test('a buildx newer than the key table passes unknown keys on', async (t) => {
  const args = buildCreateArgs(input({ buildxVersion: '0.37.0', driverOpts: { 'brand-new': 'yes' }, timeoutSeconds: undefined }));
  t.ok(args.includes('brand-new=yes'));
  t.throws(() => buildCreateArgs(input({ buildxVersion: '0.36.9', driverOpts: { 'brand-new': 'yes' } })), /does not exist/);
});

t.test('append a node', async (t) => {
  t.same(
    buildAppendNodeArgs({
      buildxVersion: '0.19.3',
      name: 'ci-builder',
      driver: 'docker-container',
      node: 'arm-node',
      endpoint: 'arm-context',
      image: IMAGE,
      driverOpts: { network: 'host' },
      buildkitdFlags: [],
      configFile: '/state/buildkitd.toml',
      platforms: ['linux/arm64'],
    }),
    ['buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container', '--append', '--node', 'arm-node', '--driver-opt', `image=${IMAGE}`,
      '--driver-opt', 'network=host', '--buildkitd-config', '/state/buildkitd.toml', '--platform', 'linux/arm64', 'arm-context'],
  );
  t.same(
    buildAppendNodeArgs({ buildxVersion: '0.12.1', name: 'b', driver: 'docker-container', image: IMAGE, driverOpts: {}, buildkitdFlags: [], configFile: '/c.toml', platforms: [] }),
    ['buildx', 'create', '--name', 'b', '--driver', 'docker-container', '--append', '--driver-opt', `image=${IMAGE}`, '--config', '/c.toml'],
  );
});

t.test('rm, inspect, use, ls', async (t) => {
  t.same(buildRmArgs('ci-builder'), ['buildx', 'rm', 'ci-builder']);
  t.same(buildRmArgs('ci-builder', { keepState: true }), ['buildx', 'rm', '--keep-state', 'ci-builder']);
  t.same(buildInspectArgs('ci-builder'), ['buildx', 'inspect', 'ci-builder']);
  t.same(buildInspectArgs('ci-builder', { bootstrap: true }), ['buildx', 'inspect', '--bootstrap', 'ci-builder']);
  t.same(buildUseArgs('ci-builder'), ['buildx', 'use', 'ci-builder']);
  t.same(buildLsArgs('0.12.1'), ['buildx', 'ls']);
  t.same(buildLsArgs('0.13.0'), ['buildx', 'ls', '--format', 'json']);
  t.same(buildLsArgs('0.36.0'), ['buildx', 'ls', '--format', 'json']);
});

t.test('default-load: false (the opt-out of prefix mode loading) is what buildx before 0.14 does anyway: not passed there', async (t) => {
  const opts = (version: string, value: string): string[] => buildCreateArgs(input({ buildxVersion: version, driverOpts: { 'default-load': value } })).filter((a, i, all) => all[i - 1] === '--driver-opt' && !a.startsWith('image='));
  t.same(opts('0.12.1', 'false'), [], 'buildx 0.12: not passed (it has no such option and never loads by itself)');
  t.same(opts('0.19.3', 'false'), ['default-load=false'], 'buildx 0.19: passed');
  t.throws(() => opts('0.12.1', 'true'), /driver option "default-load" needs buildx 0\.14\.0 or later \(found 0\.12\.1\)/, 'asking 0.12 to load by itself is still refused');
});
