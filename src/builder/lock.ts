// Parallel runs against one daemon serialise on a lock per (endpoint, builder name); the waiting
// ones then find the builder made and reuse it. proper-lockfile gives an mkdir-based lock that
// works across processes and detects a stale lock left by a killed run.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError, InterruptedError } from '../errors.js';
import type { Logger } from '../io.js';
import { shortHash, stateDir } from '../state.js';

export type Release = () => Promise<void>;

export async function acquireBuilderLock(
  env: Record<string, string | undefined>,
  endpointKey: string,
  name: string,
  opts: { log: Logger; timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<Release> {
  const dir = join(stateDir(env), 'locks');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${shortHash(`${endpointKey}\n${name}`)}.lock`);
  await writeFile(file, `${endpointKey} ${name}\n`, { flag: 'a' });
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
