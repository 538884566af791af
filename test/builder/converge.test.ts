import t from 'tap';
import { decideConverge, type BuilderSpec } from '../../src/builder/converge.js';
import type { BuilderInfo, NodeInfo } from '../../src/docker/parse.js';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;

function spec(over: Partial<BuilderSpec> = {}): BuilderSpec {
  return {
    name: 'ci',
    driver: 'docker-container',
    endpoint: '',
    daemon: 'unix:///var/run/docker.sock',
    image: `mirror.example/moby/buildkit:v0.18.2@${DIGEST_A}`,
    digest: DIGEST_A,
    driverOpts: { network: 'host' },
    buildkitdFlags: [],
    configSha: 'c1',
    platforms: [],
    nodes: [],
    ...over,
  };
}

function node(over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name: 'ci0',
    endpoint: 'unix:///var/run/docker.sock',
    driverOpts: { image: `mirror.example/moby/buildkit:v0.18.2@${DIGEST_A}`, network: 'host' },
    status: 'running',
    flags: ['--allow-insecure-entitlement=network.host'],
    buildkitVersion: 'v0.18.2',
    platforms: ['linux/amd64'],
    fixedPlatforms: [],
    labels: {},
    gcPolicy: [],
    files: {},
    ...over,
  };
}

function info(nodes: NodeInfo[] = [node()], driver = 'docker-container'): BuilderInfo {
  return { name: 'ci', driver, nodes };
}

t.test('no builder → create', async (t) => {
  t.same(decideConverge(spec(), undefined, undefined), { action: 'create', reasons: ['builder ci does not exist'] });
});

t.test('a matching running builder is reused without a restart', async (t) => {
  const d = decideConverge(spec(), info(), spec());
  t.equal(d.action, 'reuse');
  t.equal(d.action === 'reuse' && d.start, false);
});

t.test('a matching stopped builder is reused and started', async (t) => {
  const d = decideConverge(spec(), info([node({ status: 'stopped' })]), spec());
  t.equal(d.action, 'reuse');
  t.equal(d.action === 'reuse' && d.start, true);
  t.match(d.reasons.join(), /starting/);
});

t.test('drift is recreated and every difference is named', async (t) => {
  const cases: [string, Partial<BuilderSpec>, RegExp][] = [
    ['new digest', { digest: DIGEST_B, image: `mirror.example/moby/buildkit:v0.19.0@${DIGEST_B}` }, /engine image aaaaaaaaaaaa → bbbbbbbbbbbb/],
    ['new mirror config', { configSha: 'c2' }, /buildkitd\.toml changed/],
    ['flags', { buildkitdFlags: ['--debug'] }, /buildkitd flags \[\] → \[--debug\]/],
    ['platforms', { platforms: ['linux/arm64'] }, /platforms \[\] → \[linux\/arm64\]/],
    ['driver opts', { driverOpts: {} }, /driver options changed/],
    ['endpoint', { endpoint: 'tls-ctx' }, /endpoint \(current docker\) → tls-ctx/],
    ['another daemon', { daemon: 'tcp://127.0.0.1:2376' }, /docker endpoint unix:\/\/\/var\/run\/docker\.sock → tcp:\/\/127\.0\.0\.1:2376/],
  ];
  for (const [name, over, re] of cases) {
    const d = decideConverge(spec(over), info(), spec());
    t.equal(d.action, 'recreate', name);
    t.match(d.reasons.join('; '), re, name);
  }
});

t.test('same digest handed over under its local alias after a cache load is not drift', async (t) => {
  const byTag = spec({ image: 'localhost:1/buildx-bootstrap/moby/buildkit:v0.18.2' });
  const d = decideConverge(byTag, info([node({ driverOpts: { image: spec().image, network: 'host' } })]), spec());
  t.equal(d.action, 'reuse');
});

t.test('a builder we did not make, or changed behind our back, is recreated', async (t) => {
  t.match(decideConverge(spec(), info(), undefined), { action: 'recreate', reasons: [/not created by buildx-bootstrap/] });
  const tampered = info([node({ driverOpts: { image: 'moby/buildkit:buildx-stable-1' } })]);
  t.match(decideConverge(spec(), tampered, spec()), { action: 'recreate', reasons: [/changed outside buildx-bootstrap \(moby\/buildkit:buildx-stable-1\)/] });
  t.match(decideConverge(spec(), info([node()], 'kubernetes'), spec()), { action: 'recreate', reasons: [/driver kubernetes → docker-container/] });
});
