// Runs the whole CLI in-process (main(argv, io)) and captures what a user would see.
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/io.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** Sees stderr as it is written (to act when a run reaches a point, e.g. starts waiting). */
  onStderr?: (text: string) => void;
}

export async function runCli(argv: string[], opts: CliOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => ((stderr += s), opts.onStderr?.(s)), isTTY: false },
    env: opts.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
    cwd: opts.cwd ?? process.cwd(),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
