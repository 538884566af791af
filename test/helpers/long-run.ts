// A build step that lasts until the test ends it. A build that must outlast a sequence (to be seen
// running, or to be caught if a builder is pulled out from under it) ends as soon as the sequence
// is done rather than after a fixed sleep: its `RUN` shell exits 0 on SIGUSR1, which the test sends
// by pid — every container process of the test's own dockerd is in this machine's process table.
// Unended, it lasts an hour, far past any build's timeout, so a missed end fails the test.
import { randomUUID } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes a context into `dir` (busybox-static copied in, then the long RUN); returns its marker. */
export function writeLongRunContext(dir: string): string {
  const marker = `bxb-long-run-${randomUUID()}`;
  copyFileSync('/bin/busybox', join(dir, 'busybox'));
  const script = "trap 'exit 0' USR1; /bin/busybox sleep 3600 & wait";
  writeFileSync(join(dir, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', `RUN ["/bin/busybox", "sh", "-c", ${JSON.stringify(script)}, "${marker}"]`, ''].join('\n'));
  return marker;
}

/** Pids of the running RUN shells carrying `marker`. */
export function longRunPids(marker: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (argv[1] === 'sh' && argv.includes(marker)) pids.push(Number(pid));
  }
  return pids;
}

/** Ends the RUN carrying `marker`; returns how many processes carried it (one, when the build is where the test thinks). */
export function endLongRun(marker: string): number {
  const pids = longRunPids(marker);
  for (const pid of pids) process.kill(pid, 'SIGUSR1');
  return pids.length;
}
