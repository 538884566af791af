// Temp files a killed save left in a shared directory: removed when their writer is provably gone
// or they went unwritten longer than the save may take; a save in progress — this process, a live
// one, or one of another boot or container that is still writing — is never touched.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownedTempName, processTag, removeAbandonedTemps } from '../src/owned-temp.js';

t.test('removeAbandonedTemps keeps saves in progress and removes what killed ones left', async (t) => {
  const dir = t.testdir({});
  const me = await processTag();
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  t.teardown(() => live.kill('SIGKILL'));
  const tar = join(dir, 'buildkit-abc.tar');
  const mine = await ownedTempName(tar);
  t.match(mine, new RegExp(`buildkit-abc\\.tar\\.${me}\\.tmp$`), 'the name carries boot, PID namespace and pid');
  const names = {
    mine,
    dead: `${tar}.${me.replace(/-\d+$/, `-${dead.pid}`)}.tmp`,
    live: `${tar}.${me.replace(/-\d+$/, `-${live.pid}`)}.tmp`,
    otherBootRecent: `${tar}.ffffffffffff-1-${dead.pid}.tmp`,
    otherBootOld: `${tar}.ffffffffffff-1-${live.pid}.tmp`,
    unownedOld: `${tar}.old-style.tmp`,
    notOurs: join(dir, 'other.tar.x-1-1.tmp'),
  };
  for (const f of Object.values(names)) writeFileSync(f, 'partial');
  const old = new Date(Date.now() - 10 * 60_000);
  utimesSync(names.otherBootOld, old, old);
  utimesSync(names.unownedOld, old, old);
  const removed = await removeAbandonedTemps(dir, 'buildkit-', 5 * 60_000);
  t.same(removed.sort(), [names.dead, names.otherBootOld, names.unownedOld].map((f) => f.slice(dir.length + 1)).sort(), 'the dead writer’s, and the ones unwritten for longer than the save may take');
  t.same(
    readdirSync(dir).sort(),
    [names.mine, names.live, names.otherBootRecent, names.notOurs].map((f) => f.slice(dir.length + 1)).sort(),
    'this process’s, a live one’s, a recent one of another boot (its pid means nothing here), and other files stay',
  );
  t.same(await removeAbandonedTemps(join(dir, 'missing'), 'buildkit-', 1), [], 'a missing directory is nothing to clean');
});
