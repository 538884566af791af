// The bundled CLI (bin/ → dist/, built by npm test) run as a process, the way users run it: for
// tests of signals, parallel runs and exit codes that only a real process shows.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'buildx-bootstrap.js');

export interface BinResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface BinRun {
  child: ChildProcess;
  stderr(): string;
  done: Promise<BinResult>;
}

/** Spawns the CLI; killed with SIGKILL after `timeoutMs` (default 150 s) so no run outlives a test. */
export function runBin(args: string[], opts: { cwd: string; env: Record<string, string | undefined>; timeoutMs?: number; stdin?: string }): BinRun {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  // `stdin`: written to the process, then closed (default: no stdin).
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<BinResult>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 150_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, stderr: () => stderr, done };
}

/** Polls `check` every 50 ms; throws naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
