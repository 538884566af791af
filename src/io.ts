// The process boundary, passed in so the whole CLI runs in-process in tests (gitlab-ci-local's
// handler(args, output) idea): streams, environment, working directory, and an abort signal
// raised on SIGINT/SIGTERM.

export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Io {
  stdout: OutStream;
  stderr: OutStream;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted with reason `SIGINT`/`SIGTERM` when the run is interrupted. */
  signal?: AbortSignal;
}

export type LogLevel = 'quiet' | 'normal' | 'debug';

/** Progress and messages, always on stderr; stdout is only for results. */
export interface Logger {
  readonly level: LogLevel;
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** Removes every secret (passwords, tokens, auth strings) from text before it is shown. */
export class Secrets {
  private readonly values = new Set<string>();

  add(secret: string | undefined): void {
    // Very short values would redact ordinary words; a real secret is never that short.
    if (secret && secret.length >= 4) this.values.add(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.values) out = out.split(s).join('****');
    return out;
  }
}

export function createLogger(io: Io, level: LogLevel, secrets: Secrets, clock: () => Date = () => new Date()): Logger {
  // Plain timestamped lines when not on a terminal (CI logs), in the same [HH:MM:SS] form as the
  // task list's lines; bare lines on a terminal.
  const stamp = (): string => (io.stderr.isTTY ? '' : `[${clock().toTimeString().slice(0, 8)}] `);
  const line = (text: string): void => {
    io.stderr.write(`${stamp()}${secrets.redact(text)}\n`);
  };
  return {
    level,
    info: (m) => level !== 'quiet' && line(m),
    warn: (m) => level !== 'quiet' && line(`warning: ${m}`),
    debug: (m) => level === 'debug' && line(`debug: ${m}`),
  };
}
