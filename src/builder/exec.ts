// Prefix mode: run the user's command with BUILDX_BUILDER set, stdio passed through, SIGINT and
// SIGTERM forwarded, and its exit code returned (128+n when a signal ended it, as shells do).
import { constants } from 'node:os';
import { DockerError } from '../errors.js';
import type { Io } from '../io.js';

/** `extraEnv`: the per-run docker config (src/docker/registry-auth.ts) and anything else the command needs. */
export async function runPrefixed(command: string[], builder: string, io: Io, extraEnv: Record<string, string> = {}): Promise<number> {
  const { execa } = await import('execa');
  const [file, ...args] = command as [string, ...string[]];
  const inherit = io.stdout === process.stdout && io.stderr === process.stderr;
  const child = execa(file, args, {
    env: { ...io.env, ...extraEnv, BUILDX_BUILDER: builder },
    extendEnv: false,
    cwd: io.cwd,
    reject: false,
    stdin: inherit ? 'inherit' : 'ignore',
    stdout: inherit ? 'inherit' : 'pipe',
    stderr: inherit ? 'inherit' : 'pipe',
    // The child gets the signal itself; we wait for it to exit with its own code.
    forceKillAfterDelay: false,
  });
  if (!inherit) {
    child.stdout?.on('data', (chunk: Buffer) => io.stdout.write(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => io.stderr.write(chunk.toString()));
  }
  const forward = (): void => {
    const reason = io.signal?.reason;
    child.kill(reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
  };
  io.signal?.addEventListener('abort', forward, { once: true });
  try {
    const result = await child;
    if (result.exitCode !== undefined) return result.exitCode;
    if (result.signal) return 128 + (constants.signals[result.signal] ?? 0);
    throw new DockerError(`could not run ${file}: ${result.code ?? result.shortMessage}`, {
      hint: result.code === 'ENOENT' ? `check that ${file} is installed and on PATH` : 'check the command after --',
    });
  } finally {
    io.signal?.removeEventListener('abort', forward);
  }
}
