// Runs the user's bake command with `--print` (argv from bakePrintArgs): buildx evaluates the
// bake definition in the user's working directory and environment and prints its targets as JSON.
// Nothing is built; stdin is not read (a definition on stdin is never printed this way).
import type { Io } from '../io.js';

const PRINT_TIMEOUT_MS = 60_000;

/** The printed JSON, or why there is none (buildx's own last error line). */
export async function printBake(argv: string[], io: Pick<Io, 'env' | 'cwd'>): Promise<{ json: string } | { error: string }> {
  const { execa } = await import('execa');
  const [file, ...args] = argv as [string, ...string[]];
  const r = await execa(file, args, { env: io.env, extendEnv: false, cwd: io.cwd, reject: false, stdin: 'ignore', timeout: PRINT_TIMEOUT_MS });
  const stderr = String(r.stderr ?? '');
  if (r.exitCode !== 0) {
    const last = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).pop();
    return { error: `bake --print failed: ${last ?? (r.timedOut ? `timed out after ${PRINT_TIMEOUT_MS / 1000}s` : `exit code ${r.exitCode ?? r.code}`)}` };
  }
  return { json: String(r.stdout ?? '') };
}
