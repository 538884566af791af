// Errors a user can act on. Each carries the exit code from product.md ("Exit codes") and a hint;
// only src/cli/ renders them and exits. Anything that is not a BxbError is a bug and is shown with
// its stack.

export const ExitCode = {
  ok: 0,
  dockerFailed: 1,
  usage: 2,
  noRegistry: 3,
  lockMismatch: 4,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  /** What to do about it; rendered after the message. */
  hint?: string;
  /** Longer transcript (failing command's output), shown with --debug only. */
  transcript?: string;
  cause?: unknown;
}

export class BxbError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  readonly transcript: string | undefined;

  constructor(message: string, exitCode: number, details: ErrorDetails = {}) {
    // One line whatever the user's input held: values quoted in messages (a build arg, an
    // environment variable, a config key) may carry newlines or control characters; long ones are cut.
    super(clipLongValues(escapeControl(message)), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = details.hint === undefined ? undefined : clipLongValues(details.hint);
    this.transcript = details.transcript;
  }
}

/** Longer quoted values are cut in messages; a file path or key path is far shorter. */
const MAX_QUOTED = 120;
/** Unquoted runs (an option name, a path) are cut only when no real path is that long. */
const MAX_UNQUOTED = 1024;
const KEEP = 40;
const MAX_MESSAGE = 4096;

/**
 * Cuts the long user values an error echoes — `"abc…" (100000 characters)` — keeping their start,
 * so a pasted 100 kB value still gives a short message that names the file and key. Every
 * BxbError's message and hint pass through here; the rest of the message stays as written.
 */
export function clipLongValues(text: string): string {
  const clipped = text
    .replace(/"((?:[^"\\]|\\.)*)"/g, (whole, inner: string) => (inner.length > MAX_QUOTED ? `"${cut(inner)}…" (${shownLength(inner)} characters)` : whole))
    .replace(new RegExp(`[^\\s"]{${MAX_UNQUOTED + 1},}`, 'g'), (run) => `${cut(run)}… (${run.length} characters)`);
  // A value with both spaces and stray quotes escapes both rules: cap the whole, keeping its start.
  return clipped.length > MAX_MESSAGE ? `${clipped.slice(0, MAX_MESSAGE)}… (${clipped.length} characters)` : clipped;
}

function cut(value: string): string {
  // Do not end on half an escape sequence or half a surrogate pair.
  return value.slice(0, KEEP).replace(/\\$/, '').replace(/[\ud800-\udbff]$/, '');
}

/** The value's own length: a JSON-escaped one is counted unescaped. */
function shownLength(inner: string): number {
  if (!inner.includes('\\')) return inner.length;
  try {
    return (JSON.parse(`"${inner}"`) as string).length;
  } catch {
    return inner.length;
  }
}

/** Bad flags or arguments. Exit 2. */
export class UsageError extends BxbError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.usage, details);
  }
}

/** One configuration problem: where it is and what is wrong. */
export interface ConfigProblem {
  /** Dotted key path, e.g. `mirrors[0].host`; empty for the file as a whole. */
  path: string;
  message: string;
  /** File, `environment` or `flags`. */
  source: string;
}

/** Invalid configuration; lists every problem at once. Exit 2. */
export class ConfigError extends BxbError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[], details: ErrorDetails = {}) {
    super(ConfigError.summarize(problems), ExitCode.usage, {
      hint: details.hint ?? 'fix the listed keys; see the Configuration section of the README',
      ...details,
    });
    this.problems = problems;
  }

  static summarize(problems: ConfigProblem[]): string {
    const parts = problems.map((p) => `${p.source}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
    const head = problems.length === 1 ? 'invalid configuration' : `invalid configuration (${problems.length} problems)`;
    return `${head}: ${parts.join('; ')}`;
  }
}

/** A docker or buildx command failed. Exit 1. */
export class DockerError extends BxbError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.dockerFailed, details);
  }
}

/** A file the command exists to write could not be written (full disk, read-only file system). Exit 1. */
export class FileWriteError extends BxbError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.dockerFailed, details);
  }
}

/** No candidate registry could serve the engine image. Exit 3. */
export class NoRegistryError extends BxbError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.noRegistry, details);
  }
}

/** A registry served a digest other than the locked one, or the lock is stale. Exit 4. */
export class LockMismatchError extends BxbError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, ExitCode.lockMismatch, details);
  }
}

/** The run was interrupted by a signal; cleanup has happened. Exit 130/143. */
export class InterruptedError extends BxbError {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`, signal === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm);
    this.signal = signal;
  }
}

/** Control characters as JSON escapes (`\n`, `\u0000`). */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

export function isBxbError(error: unknown): error is BxbError {
  return error instanceof BxbError;
}
