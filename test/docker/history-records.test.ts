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

t.test('the record and the export logs in one exec: the image shell runs buildctl twice, the parts come back apart', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { fakeRunner } = await import('../helpers/fake-runner.js');
  const { recordReader } = await import('../../src/docker/history.js');
  // A stand-in buildctl on the PATH of a real `sh`: the script our exec sends runs as written.
  const dir = mkdtempSync(join(tmpdir(), 'bxb-buildctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'histories.txt'), fixture('h34-mixed-json.txt'));
  const exportLog = '#9 exporting cache to registry\n#9 ERROR: error writing manifest blob: 400 Bad Request\n';
  writeFileSync(join(dir, 'logs.txt'), exportLog);
  const stub = (logsExit: number) =>
    `#!/bin/sh\ncase "$2" in histories) cat '${dir}/histories.txt';; logs) [ "$5" = ullit856pwz5rb9bu6epz7ot8 ] || exit 9; cat '${dir}/logs.txt' >&2; exit ${logsExit};; esac\n`;
  const run = (logsExit: number) => (args: string[]) => {
    writeFileSync(join(dir, 'buildctl'), stub(logsExit), { mode: 0o755 });
    const [, container, ...argv] = args;
    t.equal(container, 'buildx_buildkit_b0');
    t.equal(argv[0], 'sh', 'through the image shell');
    const stdout = execFileSync(argv[0]!, argv.slice(1), { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8' });
    return { stdout };
  };
  const ok = fakeRunner(run(0));
  const both = await recordReader(ok, { kind: 'container', container: 'buildx_buildkit_b0' }).recordsAndExportErrors('ullit856pwz5rb9bu6epz7ot8');
  t.equal(ok.calls.length, 1, 'one docker exec');
  t.match(both.records, { known: true });
  t.match(both.records.known && both.records.records.find((r) => r.ref === 'ullit856pwz5rb9bu6epz7ot8'), { cachedSteps: 0, totalSteps: 7 }, 'the histories part');
  t.same(both.errors, { known: true, errors: ['error writing manifest blob: 400 Bad Request'] }, "the logs part, its stderr included");

  const failing = fakeRunner(run(3));
  const failed = await recordReader(failing, { kind: 'container', container: 'buildx_buildkit_b0' }).recordsAndExportErrors('ullit856pwz5rb9bu6epz7ot8');
  t.match(failed.records, { known: true }, 'the record still known');
  t.match(failed.errors, { known: false, why: /buildctl debug logs in buildx_buildkit_b0 failed/ }, 'a failing logs read is said, not taken for "no error"');
});

t.test('an engine image without a shell: the record and the logs in two execs', async (t) => {
  const { fakeRunner } = await import('../helpers/fake-runner.js');
  const { recordReader } = await import('../../src/docker/history.js');
  const runner = fakeRunner((args) => {
    if (args[2] === 'sh') return { exitCode: 127, stderr: 'OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file not found in $PATH' };
    if (args[4] === 'histories') return { stdout: fixture('h34-mixed-json.txt') };
    return { stderr: '#4 exporting cache\n#4 DONE 0.3s\n' };
  });
  const both = await recordReader(runner, { kind: 'container', container: 'c' }).recordsAndExportErrors('ullit856pwz5rb9bu6epz7ot8');
  t.same(runner.calls.map((c) => c.slice(2, 5).join(' ').replace(/^sh -c .*/, 'sh -c SCRIPT')), ['sh -c SCRIPT', 'buildctl debug histories', 'buildctl debug logs'], 'the shell first, then the two calls');
  t.match(both.records.known && both.records.records.find((r) => r.ref === 'ullit856pwz5rb9bu6epz7ot8'), { totalSteps: 7 });
  t.same(both.errors, { known: true, errors: [] });
});
