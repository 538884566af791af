// Parallel runs against one daemon serialise on a lock per (endpoint, builder name); the waiting
// ones then find the builder made and reuse it. Two locks: a file under the state directory
// (proper-lockfile: mkdir-based, across processes, detects a stale lock left by a killed run) that
// guards buildx's store in this $DOCKER_CONFIG, and — for a builder whose container lives on the
// daemon this run talks to — the daemon lease (src/docker/leases.ts) every client of that daemon
// sees, which also makes a run that may remove the builder wait for the prefixed builds on it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError, InterruptedError } from '../errors.js';
import type { Logger } from '../io.js';
import { acquireLeaseLock, LEASE_WAIT_MARGIN_MS, LeaseUnavailableError } from '../docker/leases.js';
import type { DockerRunner } from '../docker/runner.js';
import { isWriteRefusal } from '../owned-temp.js';
import { shortHash, stateDir } from '../state.js';

export type Release = () => Promise<void>;

export async function acquireBuilderLock(
  env: Record<string, string | undefined>,
  endpointKey: string,
  name: string,
  opts: {
    log: Logger;
    timeoutMs: number;
    signal?: AbortSignal | undefined;
    /** Also take the builder's lock in this daemon, kept at most `holdMs` (its staleness bound). */
    daemon?: { runner: DockerRunner; holdMs: number } | undefined;
  },
): Promise<Release> {
  const releaseFile = await acquireStateLock(env, endpointKey, name, opts);
  if (!opts.daemon) return releaseFile;
  try {
    // Waits until a killed holder's lock would have expired, and a little longer.
    const wait = { ...opts, timeoutMs: Math.max(opts.timeoutMs, opts.daemon.holdMs + LEASE_WAIT_MARGIN_MS) };
    const releaseLease = await acquireLeaseLock(opts.daemon.runner, name, opts.daemon.holdMs, wait);
    return async () => {
      await releaseLease().catch(() => undefined);
      await releaseFile();
    };
  } catch (error) {
    if (error instanceof LeaseUnavailableError) {
      opts.log.warn(`${error.message}; builder ${name} is locked for this $DOCKER_CONFIG only`);
      return releaseFile;
    }
    await releaseFile();
    throw error;
  }
}

async function acquireStateLock(
  env: Record<string, string | undefined>,
  endpointKey: string,
  name: string,
  opts: { log: Logger; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<Release> {
  const dir = join(stateDir(env), 'locks');
  const file = join(dir, `${shortHash(`${endpointKey}\n${name}`)}.lock`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(file, `${endpointKey} ${name}\n`, { flag: 'a' });
  } catch (error) {
    // A full or read-only state directory never costs the job; the write of the builder's files
    // warns about it later (bring-up.ts), and the daemon lease still serialises.
    if (!isWriteRefusal(error)) throw error;
    opts.log.debug(`no file lock on builder ${name}: ${error.code} at ${file}`);
    return async () => undefined;
  }
  return acquireFileLock(file, `builder ${name}`, opts);
}

/** Waits for the lock on `file` (which must exist) up to `timeoutMs`; `what` names it in messages. */
export async function acquireFileLock(file: string, what: string, opts: { log: Logger; timeoutMs: number; signal?: AbortSignal | undefined }): Promise<Release> {
  const mod = await import('proper-lockfile');
  // CommonJS module: bundled, its functions sit on the default export.
  const lockfile = typeof mod.lock === 'function' ? mod : (mod as unknown as { default: typeof mod }).default;
  const started = Date.now();
  let told = false;
  for (;;) {
    try {
      const release = await lockfile.lock(file, { realpath: false, stale: 30_000, update: 5_000, retries: 0 });
      return async () => {
        await release().catch(() => undefined);
      };
    } catch (error) {
      if (isWriteRefusal(error)) return async () => undefined;
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    }
    if (!told) {
      opts.log.info(`waiting for another buildx-bootstrap working on ${what}…`);
      told = true;
    }
    if (opts.signal?.aborted) throw new InterruptedError(opts.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
    if (Date.now() - started > opts.timeoutMs) {
      throw new DockerError(`another buildx-bootstrap held the lock on ${what} for more than ${Math.round(opts.timeoutMs / 1000)}s`, {
        hint: `if no other run is active, remove ${file}.lock`,
      });
    }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 150));
  }
}
