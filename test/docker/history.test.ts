import { readFileSync } from 'node:fs';
import t from 'tap';
import { describeBuilds, formatAge, parseBuildxHistoryLs, parseHistoriesJson, parseMonitor } from '../../src/docker/history.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/history/${name}`, import.meta.url), 'utf8');

t.test('buildctl debug histories (BuildKit v0.12.5): running builds have no CompletedAt, times are RFC 3339', async (t) => {
  t.same(parseHistoriesJson(fixture('h12-active-json.txt')), [{ ref: 'qb5btyqmh05kad1tiijt3iz84', startedAt: '2026-11-29T05:51:05.361Z' }]);
  t.same(parseHistoriesJson(fixture('h12-done-json.txt')), [], 'a finished build is not active');
  t.same(parseHistoriesJson(fixture('h12-mixed-json.txt')), [{ ref: 'axn86hz2yarbeqkl0gjdnu99l', startedAt: '2026-11-29T05:53:06.203Z' }], 'only the running one of three');
});

t.test('buildctl debug histories (BuildKit v0.34.2): protobuf {seconds, nanos} timestamps', async (t) => {
  t.same(parseHistoriesJson(fixture('h34-active-json.txt')), [
    { ref: 'y3kzhncyx8gzic8e4oxz9tcm8', startedAt: '2026-11-29T05:52:45.835Z' },
    { ref: 'ullit856pwz5rb9bu6epz7ot8', startedAt: '2026-11-29T05:52:45.842Z' },
  ]);
  t.same(parseHistoriesJson(fixture('h34-mixed-json.txt')).map((b) => b.ref), ['i101plvhjwb30inhvojz7mtcu']);
  t.same(parseHistoriesJson(''), [], 'an idle BuildKit prints nothing with --format');
});

t.test('buildctl debug histories: a line that is not JSON is an error, not "idle"', async (t) => {
  t.throws(() => parseHistoriesJson(fixture('h34-active.txt')), /unexpected buildctl debug histories line/);
});

t.test('buildctl debug monitor: STARTED events of the running builds, both versions', async (t) => {
  t.same(parseMonitor(fixture('m12-active.txt')).map((b) => b.ref), ['qb5btyqmh05kad1tiijt3iz84']);
  t.same(parseMonitor(fixture('m34-active.txt')).map((b) => b.ref), ['y3kzhncyx8gzic8e4oxz9tcm8', 'ullit856pwz5rb9bu6epz7ot8']);
  t.same(parseMonitor('event: STARTED ref:a\nevent: STARTED ref:b\nevent: COMPLETE ref:a\n  cache: 0/5\n').map((b) => b.ref), ['b'], 'a build that completes while watched is not active');
});

t.test('docker buildx history ls --format json (buildx v0.38.2): status Running, ref without the builder/node prefix', async (t) => {
  t.same(parseBuildxHistoryLs(fixture('bxh12-active.json')), [{ ref: 'axn86hz2yarbeqkl0gjdnu99l', startedAt: '2026-11-29T05:53:06.203Z' }]);
  t.same(parseBuildxHistoryLs(fixture('bxh34-active.json')).map((b) => b.ref), ['i101plvhjwb30inhvojz7mtcu']);
});

t.test('describeBuilds names each build and how long it has run', async (t) => {
  const now = Date.parse('2026-11-29T05:55:06.203Z');
  t.equal(describeBuilds([{ ref: 'abc', startedAt: '2026-11-29T05:53:06.203Z' }, { ref: 'def', startedAt: undefined }], now), 'abc (running 2m00s), def');
  t.equal(formatAge(3 * 86_400_000), '3d');
  t.equal(formatAge(5_400_000), '1h30m');
});
