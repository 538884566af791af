// Daemon-held leases (src/docker/leases.ts) on a REAL dockerd: the lock is exclusive across
// clients, a hold gives way to a lock and a lock's holder sees holds, and a killed holder's lease
// goes stale (gone process, expiry, no renewal) and is removed by the next run.
import t from 'tap';
import { spawn } from 'node:child_process';
import { acquireHold, acquireLeaseLock, HOLD_STALE_MS, listLeases, liveHolds, lockName, parseLease, staleReason, type Lease } from '../../src/docker/leases.js';
import { processTag } from '../../src/owned-temp.js';
import { createDockerRunner } from '../../src/docker/runner.js';
import { withEngineApi } from '../../src/docker/engine/index.js';
import { startDockerd } from '../helpers/dockerd.js';
import { requireBinaries } from '../helpers/integration.js';

const quiet = { info: () => undefined };

t.test('parseLease reads one docker ps line (pure)', async (t) => {
  const lock = parseLease('abc\tbuildx-bootstrap-lock.0123\tio.buildx-bootstrap.lease=lock,io.buildx-bootstrap.builder=b,io.buildx-bootstrap.holder=aa-1-2,io.buildx-bootstrap.expires=5000,io.buildx-bootstrap.host=h');
  t.same(lock, { id: 'abc', name: 'buildx-bootstrap-lock.0123', kind: 'lock', builder: 'b', holder: 'aa-1-2', host: 'h', expires: 5000, renewed: undefined, created: undefined });
  t.equal(parseLease('abc\tn\tio.buildx-bootstrap.lease=lock\t2026-12-07 20:40:21 +0100 CET')?.created, Date.parse('2026-12-07T19:40:21Z'), 'created, from CreatedAt');
  const hold = parseLease('def\tbuildx-bootstrap-hold.0123.tok.1700000000\tio.buildx-bootstrap.lease=hold,io.buildx-bootstrap.builder=b');
  t.equal(hold?.renewed, 1_700_000_000_000, 'a hold was renewed when its name says');
  t.equal(parseLease('x\tother\tcom.example=1'), undefined, 'not a lease');
});

t.test('staleness: a gone process, an expired lock, a hold not renewed (pure but for /proc)', async (t) => {
  const me = await processTag();
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const base: Lease = { id: 'x', name: 'n', kind: 'lock', builder: 'b', holder: me, host: 'h', expires: 10_000, renewed: undefined, created: undefined };
  t.equal(await staleReason(base, 5_000), undefined, 'a live lock before its expiry');
  t.match(await staleReason(base, 20_000), /expired/);
  t.match(await staleReason({ ...base, holder: me.replace(/-\d+$/, `-${dead.pid}`) }, 5_000), /is gone/, 'same boot and namespace, pid gone');
  t.equal(await staleReason({ ...base, holder: `ffffffffffff-1-${dead.pid}` }, 5_000), undefined, 'a pid of another boot is never looked up');
  const hold: Lease = { ...base, kind: 'hold', expires: undefined, renewed: 100_000 };
  t.equal(await staleReason(hold, 100_000 + HOLD_STALE_MS - 1), undefined);
  t.match(await staleReason(hold, 100_000 + HOLD_STALE_MS + 1), /not renewed/);
});

for (const via of ['the docker CLI', 'the Engine API'] as const) t.test(`with a real dockerd, through ${via}: exclusive lock, holds and locks see each other, stale leases removed`, async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker'])) return;
  const d = await startDockerd(t);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...d.env };
  const make = () => (via === 'the Engine API' ? withEngineApi(createDockerRunner({ env })) : createDockerRunner({ env }));
  const runner = make();
  const other = make(); // a second client of the same daemon
  if (via === 'the Engine API') {
    await createDockerRunner({ env }).run(['import', '-', 'buildx-bootstrap/lease:1'], { input: '\0'.repeat(1024) });
    t.match((await runner.run(['ps', '-a', '--no-trunc', '--filter', 'label=io.buildx-bootstrap.lease', '--format', '{{.ID}}\t{{.Names}}\t{{.Labels}}\t{{.CreatedAt}}'])).command, /engine API/, 'the lease calls go over the Engine API');
  }

  const release = await acquireLeaseLock(runner, 'b1', 60_000, { log: quiet, timeoutMs: 5_000 });
  t.ok((await d.docker(['ps', '-a', '--format', '{{.Names}}'])).stdout.includes(lockName('b1')), 'the lock is a container in the daemon');
  const second = await acquireLeaseLock(other, 'b1', 60_000, { log: quiet, timeoutMs: 1_000, pollMs: 100 }).then(
    () => 'acquired',
    (e: Error) => e.message,
  );
  t.match(second, /another buildx-bootstrap held the lock on builder b1 for more than 1s \(lock of pid \d+ on /, 'a second client cannot take it');
  t.equal((await acquireLeaseLock(other, 'b2', 60_000, { log: quiet, timeoutMs: 1_000 }).then(async (r) => (await r(), 'ok'))), 'ok', 'another builder has its own lock');

  // A hold waits while the lock is held, then holds.
  const messages: string[] = [];
  const holding = acquireHold(other, 'b1', { log: { info: (m) => messages.push(m) }, timeoutMs: 30_000, pollMs: 100 });
  await new Promise((r) => setTimeout(r, 600));
  t.match(messages.join('\n'), /waiting for another buildx-bootstrap working on builder b1 .* before the build starts/);
  t.same(await liveHolds(runner, 'b1'), [], 'while it gives way it holds nothing');
  await release();
  const hold = await holding;
  t.equal((await liveHolds(runner, 'b1')).length, 1, 'once the lock is gone the hold is there for a lock holder to see');
  // Renewal is a rename whose name carries the time (the holder does it every HOLD_RENEW_MS).
  const [held] = await listLeases(runner, 'b1');
  const later = Math.floor(Date.now() / 1000) + 1000;
  const renamed = held!.name.replace(/\.\d+$/, `.${later}`);
  t.equal((await runner.run(['rename', held!.id, renamed])).exitCode, 0, 'renamed');
  t.equal((await listLeases(other, 'b1'))[0]?.renewed, later * 1000, 'the renewal time another client reads');
  await hold.release();
  t.same(await listLeases(runner, 'b1'), [], 'released: no lease left');

  // A hold made before the lock: the lock holder sees it (and waits for it in its drain).
  const early = await acquireHold(runner, 'b5', { log: quiet, timeoutMs: 5_000 });
  const late = await acquireLeaseLock(other, 'b5', 60_000, { log: quiet, timeoutMs: 5_000 });
  t.equal((await liveHolds(other, 'b5')).length, 1, 'the lock holder sees the earlier hold');
  await early.release();
  t.same(await liveHolds(other, 'b5'), [], 'and sees it go');
  await late();

  // A lock left by a killed run: expired → the next run removes it and takes the lock.
  const killed = await acquireLeaseLock(runner, 'b3', -1, { log: quiet, timeoutMs: 1_000 });
  void killed; // never released, as if its process had been killed
  const notes: string[] = [];
  const next = await acquireLeaseLock(other, 'b3', 60_000, { log: { info: (m) => notes.push(m) }, timeoutMs: 5_000 });
  t.match(notes.join('\n'), /removing the stale lock on builder b3 .*expired/);
  await next();

  // A hold whose process is gone no longer counts (and is removed).
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  const tag = (await processTag()).replace(/-\d+$/, `-${child.pid}`);
  const r = await d.docker(['create', '--name', 'buildx-bootstrap-hold.x.y.' + Math.floor(Date.now() / 1000), '--label', 'io.buildx-bootstrap.lease=hold', '--label', 'io.buildx-bootstrap.builder=b4', '--label', `io.buildx-bootstrap.holder=${tag}`, 'buildx-bootstrap/lease:1', 'lease']);
  t.equal(r.code, 0, r.stderr);
  t.equal((await liveHolds(runner, 'b4')).length, 1, 'a hold of a live process counts');
  child.kill('SIGKILL');
  await new Promise((res) => child.on('exit', res));
  t.same(await liveHolds(runner, 'b4'), [], 'once its process is gone it does not');
  t.same(await listLeases(runner, 'b4'), [], 'and it was removed');
});

t.test('the lease image made ahead (while the engine image is pulled): the first lock on a fresh daemon is one create, no import on its way (scripted runner)', async (t) => {
  const { prepareLeaseImage } = await import('../../src/docker/leases.js');
  const { fakeRunner } = await import('../helpers/fake-runner.js');
  let imported = false;
  const answers = fakeRunner((args) => {
    if (args[0] === 'image') return imported ? { stdout: 'sha256:lease\n' } : { exitCode: 1, stderr: 'Error: No such image: buildx-bootstrap/lease:1' };
    if (args[0] === 'create') return imported ? { stdout: 'lockid\n' } : { exitCode: 125, stderr: 'Error response from daemon: No such image: buildx-bootstrap/lease:1' };
    return {};
  });
  // The import takes a while, as `docker import` does: the lock must wait for it, not race it.
  const runner = {
    ...answers,
    async run(args: string[]) {
      const r = await answers.run(args);
      if (args[0] === 'import') {
        await new Promise((resolve) => setTimeout(resolve, 100));
        imported = true;
      }
      return r;
    },
  };
  prepareLeaseImage(runner);
  prepareLeaseImage(runner); // a second call adds nothing
  const release = await acquireLeaseLock(runner, 'b', 60_000, { log: quiet, timeoutMs: 5_000 });
  t.same(answers.calls.map((c) => c[0]), ['image', 'import', 'create'], 'looked for, imported once, then the lock in one create');
  await release();
});
