// Who wrote a temp file, or holds a daemon lease (src/docker/leases.ts), in a form a later run can
// judge: the pid, and the boot and PID namespace that pid belongs to. A run sharing the directory
// (the CI cache dir of several jobs, on one host or many) removes a temp file only when its writer
// is provably gone (same boot and namespace, pid not running) or when it was not written to for
// longer than the write may take. A pid from another namespace or host is never looked up: it
// names another process there.
import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

interface Identity {
  /** First 12 hex digits of /proc/sys/kernel/random/boot_id, `x` when unknown. */
  boot: string;
  /** PID namespace inode (`/proc/self/ns/pid`), `x` when unknown. */
  pidns: string;
}

let identity: Promise<Identity> | undefined;

function processIdentity(): Promise<Identity> {
  identity ??= (async () => {
    const boot = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (s) => s.replace(/[^0-9a-f]/g, '').slice(0, 12) || 'x',
      () => 'x',
    );
    const pidns = await readlink('/proc/self/ns/pid').then(
      (s) => /\[(\d+)\]/.exec(s)?.[1] ?? 'x',
      () => 'x',
    );
    return { boot, pidns };
  })();
  return identity;
}

/** `<boot>-<pidns>-<pid>`: this process, in a form another process can judge with `processGone`. */
export async function processTag(): Promise<string> {
  const { boot, pidns } = await processIdentity();
  return `${boot}-${pidns}-${process.pid}`;
}

const TAG = /([0-9a-fx]+)-(\d+|x)-(\d+)$/;
const OWNED = /\.([0-9a-fx]+-(?:\d+|x)-\d+)\.tmp$/;

/** `<file>.<boot>-<pidns>-<pid>.tmp`: the temp file this process writes `file` through. */
export async function ownedTempName(file: string): Promise<string> {
  return `${file}.${await processTag()}.tmp`;
}

/**
 * Whether the process a `processTag` names is known to be gone: same boot and PID namespace as
 * this one, and no such pid. False whenever it cannot tell (another host, container or boot).
 */
export async function processGone(tag: string): Promise<boolean> {
  const m = TAG.exec(tag);
  if (!m) return false;
  const [, boot, pidns, pid] = m;
  const me = await processIdentity();
  if (boot === 'x' || pidns === 'x' || boot !== me.boot || pidns !== me.pidns) return false;
  if (Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the `*.tmp` files in `dir` whose name starts with `prefix` and that a killed writer left:
 * its process is gone, or the file was not written to for `maxAgeMs` (the writer's own time
 * limit, after which it gives up). Returns the names removed; never throws.
 */
export async function removeAbandonedTemps(dir: string, prefix: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const file = join(dir, name);
    const owner = OWNED.exec(name)?.[1];
    let abandoned = owner !== undefined && (await processGone(owner));
    if (!abandoned) {
      const mtime = await stat(file).then((s) => s.mtimeMs, () => undefined);
      abandoned = mtime !== undefined && now - mtime > maxAgeMs;
    }
    if (abandoned && (await rm(file, { force: true }).then(() => true, () => false))) removed.push(name);
  }
  return removed;
}

/**
 * ENOSPC, EROFS, EDQUOT, EACCES…: the file system refused a write (as opposed to a bug). ENOENT
 * too: a recursive mkdir on a read-only file system reports the missing directory it could not make.
 */
export function isWriteRefusal(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return ['ENOSPC', 'EROFS', 'EDQUOT', 'EACCES', 'EPERM', 'EFBIG', 'EIO', 'ENOENT', 'ENOTDIR'].includes(code ?? '');
}
