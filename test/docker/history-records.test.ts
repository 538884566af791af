// One build's record for the build-cache report (issue 20 item 6): step counts from captured real
// `buildctl debug histories` / `docker buildx history ls` output (test/fixtures/history/), export
// errors from a build's plain progress log, and which record is ours.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { cacheExportErrors, parseBuildxHistoryRecords, parseHistoryRecords, pickRecord } from '../../src/docker/history.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/history/${name}`, import.meta.url), 'utf8');

t.test('step counts from buildctl 0.12 and 0.34 histories and buildx history ls', async (t) => {
  const h12 = parseHistoryRecords(fixture('h12-mixed-json.txt'));
  t.match(h12.find((r) => r.ref === 'errv4cy9z0g5xxm9ujjc46kvs'), { cachedSteps: 2, totalSteps: 5, completedAt: '2026-11-29T05:52:54.886Z' });
  t.match(h12.find((r) => r.ref === 'qb5btyqmh05kad1tiijt3iz84'), { cachedSteps: 0, totalSteps: 5 }, 'numCachedSteps omitted = 0');
  const h34 = parseHistoryRecords(fixture('h34-mixed-json.txt'));
  t.match(h34.find((r) => r.ref === 'ullit856pwz5rb9bu6epz7ot8'), { cachedSteps: 0, totalSteps: 7, createdAt: '2026-11-29T05:52:45.842Z' }, 'protobuf {seconds, nanos} timestamps');
  const bx = parseBuildxHistoryRecords(fixture('bxh12-active.json'));
  t.match(bx.find((r) => r.ref === 'errv4cy9z0g5xxm9ujjc46kvs'), { cachedSteps: 2, totalSteps: 5 }, 'buildx refs lose their builder/node prefix');
});

t.test('our record: the metadata ref, else the newest since the build started', async (t) => {
  const records = parseHistoryRecords(fixture('h12-mixed-json.txt'));
  t.equal(pickRecord(records, { ref: 'qb5btyqmh05kad1tiijt3iz84', startedAt: 0 })?.ref, 'qb5btyqmh05kad1tiijt3iz84');
  t.equal(pickRecord(records, { startedAt: Date.parse('2026-11-29T05:52:00Z') })?.ref, 'axn86hz2yarbeqkl0gjdnu99l', 'newest created after the start');
  t.equal(pickRecord(records, { startedAt: Date.parse('2026-11-29T06:00:00Z') }), undefined, 'none since the start');
});

t.test("a bake target's record without a ref: the one importing its cache, else the one naming its Dockerfile", async (t) => {
  // Two targets built side by side: app (Dockerfile, cache key 3c9c8293), tool (tool.Dockerfile, a983f072).
  for (const [file, host] of [['h12-bake-json.txt', '127.0.0.1:44103'], ['h34-bake-json.txt', '127.0.0.1:46011']] as const) {
    const records = parseHistoryRecords(fixture(file));
    const all = { startedAt: 0 };
    // The Dockerfile given here matches neither: only the cache import can tell.
    const app = pickRecord(records, { ...all, attrs: { filename: 'x', target: undefined, cacheImport: `${host}/grp/app/cache:cache-main-3c9c8293` } });
    const tool = pickRecord(records, { ...all, attrs: { filename: 'x', target: undefined, cacheImport: `${host}/grp/app/cache:cache-main-a983f072` } });
    t.ok(app && tool && app.ref !== tool.ref, `${file}: two targets, two records`);
    t.equal(app?.frontendAttrs?.filename, 'Dockerfile', `${file}: app's record is the one importing app's cache`);
    t.equal(tool?.frontendAttrs?.filename, 'tool.Dockerfile', `${file}: tool's record is the one importing tool's cache`);
    t.equal(pickRecord(records, { ...all, attrs: { filename: 'tool.Dockerfile', target: undefined, cacheImport: 'elsewhere/c:x' } })?.ref, tool?.ref, `${file}: no record imports it: the Dockerfile tells`);
    t.equal(pickRecord(records, { ...all, attrs: { filename: 'Dockerfile', target: 'prod' } }), undefined, `${file}: another stage: no record`);
  }
});

t.test('export errors: only the cache-export step, never a failed import', async (t) => {
  const log = [
    '#1 [internal] load build definition from Dockerfile',
    '#1 DONE 0.0s',
    '#3 importing cache manifest from 127.0.0.1:5000/app/cache:cache-feature-x-3c9c8293',
    '#3 ERROR: failed to configure registry cache importer: 127.0.0.1:5000/app/cache:cache-feature-x-3c9c8293: not found',
    '#9 exporting cache to registry',
    '#9 preparing build cache for export',
    '#9 writing layer sha256:0b1c 0.1s done',
    '#9 ERROR: error writing manifest blob: failed commit on ref "sha256:9f": unexpected status from PUT request to http://127.0.0.1:5000/v2/app/cache/manifests/cache-main-3c9c8293: 400 Bad Request',
    '#10 exporting to client directory',
    '#10 DONE 0.0s',
  ].join('\n');
  t.same(cacheExportErrors(log), ['error writing manifest blob: failed commit on ref "sha256:9f": unexpected status from PUT request to http://127.0.0.1:5000/v2/app/cache/manifests/cache-main-3c9c8293: 400 Bad Request']);
  t.same(cacheExportErrors('#4 exporting cache\n#4 preparing build cache for export 0.2s done\n#4 DONE 0.3s\n'), [], 'a written cache: no error');
});
