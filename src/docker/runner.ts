// The one place that spawns docker. Every call is an argv array through child_process (no shell). The
// runner never throws on a non-zero exit: callers decide what a failure means, usually through
// `check`, which turns it into a one-line DockerError carrying the command's last stderr line.
import { spawn } from 'node:child_process';
import { DockerError } from '../errors.js';
import type { Secrets } from '../io.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** `docker …` as run, for transcripts. */
  command: string;
}

export interface RunOptions {
  /** Text fed to stdin. */
  input?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra environment for this call. */
  env?: Record<string, string>;
  /** Called with each stderr line as it arrives (progress). */
  onStderrLine?: (line: string) => void;
  /** Called with each stdout line as it arrives (`docker pull` writes its progress there). */
  onStdoutLine?: (line: string) => void;
}

export interface DockerRunner {
  /** Runs `docker [global args] …args`. Resolves with the result whatever the exit code. */
  run(args: string[], opts?: RunOptions): Promise<CommandResult>;
  /** The docker binary, global args and environment used, for transcripts and child processes. */
  readonly binary: string;
  readonly globalArgs: readonly string[];
  readonly env: Record<string, string | undefined>;
}

export interface DockerRunnerOptions {
  env: Record<string, string | undefined>;
  /** Docker CLI binary (default `docker` from PATH). */
  binary?: string;
  /** Global flags before the subcommand, e.g. `['--context', 'x']`. */
  globalArgs?: string[];
  /** Receives each command as it starts, for --debug. */
  onCommand?: (command: string) => void;
}

export function createDockerRunner(options: DockerRunnerOptions): DockerRunner {
  const binary = options.binary ?? 'docker';
  const globalArgs = options.globalArgs ?? [];
  return {
    binary,
    globalArgs,
    env: options.env,
    async run(args, opts = {}) {
      const argv = [...globalArgs, ...args];
      const command = [binary, ...argv].join(' ');
      options.onCommand?.(command);
      const r = await spawnCollect(binary, argv, { ...opts, env: { ...options.env, ...opts.env } });
      if (r.exitCode === undefined) {
        const reason = r.canceled ? 'was interrupted' : r.timedOut ? `timed out after ${opts.timeoutMs} ms` : r.spawnError ? `could not start (${r.spawnError})` : `was killed by ${r.signal}`;
        return { exitCode: -1, stdout: r.stdout, stderr: `${r.stderr}\n${command} ${reason}`, command };
      }
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, command };
    },
  };
}

interface Collected {
  exitCode: number | undefined;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  canceled: boolean;
  spawnError: string | undefined;
}

/**
 * node:child_process directly (no shell): loading execa cost more start-up time than every other
 * module of a docker call together. SIGTERM on timeout or abort, SIGKILL 5 s later if need be.
 */
function spawnCollect(file: string, argv: string[], opts: Omit<RunOptions, 'env'> & { env: Record<string, string | undefined> }): Promise<Collected> {
  return new Promise((resolve) => {
    const out: Collected = { exitCode: undefined, signal: null, stdout: '', stderr: '', timedOut: false, canceled: false, spawnError: undefined };
    if (opts.signal?.aborted) {
      out.canceled = true;
      resolve(out);
      return;
    }
    const child = spawn(file, argv, { env: opts.env as NodeJS.ProcessEnv, stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), 5000);
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          out.timedOut = true;
          stop();
        }, opts.timeoutMs)
      : undefined;
    const onAbort = (): void => {
      out.canceled = true;
      stop();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
    if (opts.onStderrLine) forEachLine(child.stderr!, opts.onStderrLine);
    if (opts.onStdoutLine) forEachLine(child.stdout!, opts.onStdoutLine);
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // a child that exits without reading its input
      child.stdin!.end(opts.input);
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      out.spawnError = e.code ?? e.message;
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      out.exitCode = out.timedOut || out.canceled || out.spawnError || code === null ? undefined : code;
      out.signal = signal;
      resolve(out);
    });
  });
}

function forEachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = '';
  stream.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(line);
  });
}

/** The last non-empty stderr line, where docker and buildx put the reason (`ERROR: …`). */
export function lastStderrLine(result: Pick<CommandResult, 'stderr'>): string {
  const lines = result.stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

export function transcript(result: CommandResult, secrets?: Secrets): string {
  const text = `$ ${result.command}\n(exit ${result.exitCode})\n${result.stdout}${result.stderr}`;
  return secrets ? secrets.redact(text) : text;
}

/**
 * Returns the result when the command succeeded, else throws a DockerError:
 * `<what> failed: <last stderr line>` with the hint and the transcript for --debug.
 */
export function check(result: CommandResult, what: string, hint: string, secrets?: Secrets): CommandResult {
  if (result.exitCode === 0) return result;
  const reason = lastStderrLine(result) || `exit code ${result.exitCode}`;
  throw new DockerError(`${what} failed: ${reason}`, { hint, transcript: transcript(result, secrets) });
}
