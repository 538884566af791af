// The one place that spawns docker. Every call is an argv array through execa (no shell). The
// runner never throws on a non-zero exit: callers decide what a failure means, usually through
// `check`, which turns it into a one-line DockerError carrying the command's last stderr line.
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
  /**
   * Registry credentials for a `pull`: the Engine API sends `header` as X-Registry-Auth; the docker
   * CLI gets `cliEnv()` (the per-run DOCKER_CONFIG, src/docker/registry-auth.ts) merged into its
   * environment. Either way nothing is written to the user's docker config.
   */
  registryAuth?: { header: string | undefined; cliEnv: () => Promise<Record<string, string>> };
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
      // execa is the design's process layer (product.md: every external command is an argv
      // array through execa). It loads on the first spawn only: the no-op re-run and the daemon
      // facts go through the Engine API (src/docker/engine/) and never pay for it.
      const { execa } = await import('execa');
      const authEnv = opts.registryAuth ? await opts.registryAuth.cliEnv() : {};
      const argv = [...globalArgs, ...args];
      const command = [binary, ...argv].join(' ');
      options.onCommand?.(command);
      const child = execa(binary, argv, {
        env: { ...options.env, ...opts.env, ...authEnv },
        extendEnv: false,
        reject: false,
        stripFinalNewline: false,
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
        ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
        ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      });
      if (opts.onStderrLine && child.stderr) forEachLine(child.stderr, opts.onStderrLine);
      if (opts.onStdoutLine && child.stdout) forEachLine(child.stdout, opts.onStdoutLine);
      const r = await child;
      if (r.failed && r.exitCode === undefined) {
        const reason = r.isCanceled ? 'was interrupted' : r.timedOut ? `timed out after ${opts.timeoutMs} ms` : r.signal ? `was killed by ${r.signal}` : `could not start (${r.code ?? r.shortMessage})`;
        return { exitCode: -1, stdout: String(r.stdout ?? ''), stderr: `${String(r.stderr ?? '')}\n${command} ${reason}`, command };
      }
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), command };
    },
  };
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
