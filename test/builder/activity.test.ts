// builderActivity / drainBuilder over a scripted docker runner: which command asks BuildKit for each
// driver and node state, and what a drain does with each answer. The real answers are covered by
// test/docker/history.test.ts (captured output) and test/e2e/real-shared-runners.test.ts.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { builderActivity, drainBuilder, withMarker } from '../../src/builder/activity.js';
import type { BuilderInfo, NodeInfo } from '../../src/docker/parse.js';
import { fakeRunner as scripted } from '../helpers/fake-runner.js';
import type { CommandResult } from '../../src/docker/runner.js';

/** The scripted runner, with no lease in the daemon (`docker ps` lists none) unless `leases` says. */
function fakeRunner(answer: (args: string[]) => Partial<CommandResult>, leases = '') {
  const runner = scripted((args) => (args[0] === 'ps' ? { stdout: leases } : answer(args)));
  return Object.assign(runner, { buildkitCalls: () => runner.calls.filter((c) => c[0] !== 'ps') });
}

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/history/${name}`, import.meta.url), 'utf8');

function node(over: Partial<NodeInfo> = {}): NodeInfo {
  return { name: 'b0', endpoint: 'unix:///run/docker.sock', driverOpts: {}, status: 'running', flags: [], platforms: [], fixedPlatforms: [], labels: {}, gcPolicy: [], files: {}, ...over };
}

function builder(driver: string, nodes: NodeInfo[] = [node()]): BuilderInfo {
  return { name: 'b', driver, nodes };
}

const log = () => {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(`info: ${m}`), warn: (m: string) => lines.push(`warn: ${m}`), debug: () => {}, level: 'normal' as const };
};

t.test('docker-container: buildctl debug histories inside each running node; a stopped node is not asked', async (t) => {
  const runner = fakeRunner((a) => (a.includes('buildx_buildkit_b0') ? { stdout: fixture('h34-active-json.txt') } : { stdout: fixture('h12-active-json.txt') }));
  const r = await builderActivity(runner, builder('docker-container', [node(), node({ name: 'b1', endpoint: 'other-context' }), node({ name: 'b2', status: 'stopped' })]));
  t.same(r.known && r.active.map((b) => b.ref), ['y3kzhncyx8gzic8e4oxz9tcm8', 'ullit856pwz5rb9bu6epz7ot8', 'qb5btyqmh05kad1tiijt3iz84']);
  t.same(runner.buildkitCalls(), [
    ['exec', 'buildx_buildkit_b0', 'buildctl', 'debug', 'histories', '--format', '{{json .}}'],
    ['--context', 'other-context', 'exec', 'buildx_buildkit_b1', 'buildctl', 'debug', 'histories', '--format', '{{json .}}'],
  ]);
});

t.test('docker-container: a container that is not running runs no build', async (t) => {
  const runner = fakeRunner(() => ({ exitCode: 1, stderr: 'Error response from daemon: container 0123 is not running\n' }));
  t.same(await builderActivity(runner, builder('docker-container')), { known: true, active: [] });
});

t.test('docker-container on BuildKit 0.11: debug monitor for two seconds', async (t) => {
  const runner = fakeRunner((a) => (a.includes('histories') ? { exitCode: 1, stderr: 'No help topic for \'histories\'\n' } : { stdout: fixture('m12-active.txt') }));
  const r = await builderActivity(runner, builder('docker-container'));
  t.same(r.known && r.active.map((b) => b.ref), ['qb5btyqmh05kad1tiijt3iz84']);
  t.match(runner.buildkitCalls()[1], ['exec', 'buildx_buildkit_b0', 'sh', '-c', /buildctl debug monitor/]);
});

t.test('kubernetes: docker buildx history ls; remote: never asked (removing it leaves BuildKit running)', async (t) => {
  const runner = fakeRunner(() => ({ stdout: fixture('bxh34-active.json') }));
  const k = await builderActivity(runner, builder('kubernetes'));
  t.same(k.known && k.active.map((b) => b.ref), ['i101plvhjwb30inhvojz7mtcu']);
  t.same(runner.calls, [['buildx', 'history', 'ls', '--builder', 'b', '--format', 'json']]);
  const none = fakeRunner(() => (t.fail('no docker call for remote'), {}));
  t.same(await builderActivity(none, builder('remote')), { known: true, active: [] });
});

t.test('drain: when BuildKit cannot tell, it warns and goes on (the old behaviour)', async (t) => {
  const runner = fakeRunner(() => ({ exitCode: 1, stderr: "buildx: 'history' is not a buildx command\n" }));
  const l = log();
  await drainBuilder({ runner, log: l, info: builder('kubernetes'), why: 'driver options changed', timeoutMs: 60_000 });
  t.match(l.lines, [/^warn: cannot tell whether builds run on builder b: docker buildx history ls failed .*needs buildx 0\.23/]);
});

t.test('drain: waits while a build runs, then returns; a zero drain gives up at once naming it', async (t) => {
  let polls = 0;
  const busyTwice = fakeRunner((a) => ({ stdout: a[0] === 'exec' && polls++ < 2 ? fixture('h12-active-json.txt') : '' }));
  const l = log();
  await drainBuilder({ runner: busyTwice, log: l, info: builder('docker-container'), why: 'x', timeoutMs: 60_000, pollMs: 1 });
  t.equal(polls, 3, 'asked until the build was gone');
  t.match(l.lines, [/^info: waiting for 1 build\(s\) on builder b to finish before recreating it \(0s of up to 1m00s\): qb5btyqmh05kad1tiijt3iz84/, /^info: builds on builder b have finished/]);
  const busy = fakeRunner(() => ({ stdout: fixture('h12-active-json.txt') }));
  await t.rejects(drainBuilder({ runner: busy, log: log(), info: builder('docker-container'), why: 'engine image a → b', timeoutMs: 0 }), {
    exitCode: 1,
    message: /^builder b must be recreated \(engine image a → b\) but 1 build\(s\) still run on it after 0s: qb5btyqmh05kad1tiijt3iz84/,
  });
});

t.test('docker-container: a prefixed build holding the builder in the daemon counts as a running build', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const createdAt = new Date(Date.now() - 5000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC');
  const hold = `id1\tbuildx-bootstrap-hold.abc.tok.${now}\tio.buildx-bootstrap.lease=hold,io.buildx-bootstrap.builder=b,io.buildx-bootstrap.holder=ffffffffffff-1-4242,io.buildx-bootstrap.host=runner-7\t${createdAt}\n`;
  const runner = fakeRunner(() => ({ stdout: '' }), hold);
  const r = await builderActivity(runner, builder('docker-container'));
  t.same(r.known && r.active.map((b) => b.ref), ['prefixed build of pid 4242 on runner-7'], 'before BuildKit has seen it');
  t.same(runner.calls[0], ['ps', '-a', '--no-trunc', '--filter', 'label=io.buildx-bootstrap.builder=b', '--format', '{{.ID}}\t{{.Names}}\t{{.Labels}}\t{{.CreatedAt}}']);
  const stale = fakeRunner(() => ({ stdout: '' }), hold.replace(`.${now}\t`, `.${now - 120}\t`));
  t.same(await builderActivity(stale, builder('docker-container')), { known: true, active: [] }, 'a hold not renewed for over 60s does not count');
  t.same(stale.calls.find((c) => c[0] === 'rm'), ['rm', '-f', 'id1'], 'and is removed');
});

t.test('the marker driver option goes on docker-container and kubernetes builders only', async (t) => {
  t.same(withMarker('docker-container', { network: 'host' }), { network: 'host', 'env.BUILDX_BOOTSTRAP': '1' });
  t.same(withMarker('kubernetes', {}), { 'env.BUILDX_BOOTSTRAP': '1' });
  t.same(withMarker('remote', { cacert: '/ca.pem' }), { cacert: '/ca.pem' }, 'remote takes no env options');
});
