// The whole CLI as a function of (argv, io) → exit code, callable in-process by tests. Only this
// directory renders errors and decides exit codes; commands throw BxbError subclasses.
import { BxbError, ExitCode, InterruptedError, isBxbError } from '../errors.js';
import { createLogger, Secrets, type Io } from '../io.js';
import { loadConfig } from '../config/load.js';
import type { Command, CommandContext } from '../context.js';
import { VERSION } from '../version.js';
import { helpText, parseArgs, type CommandName, type ParsedArgs } from './args.js';

export type { Command, CommandContext } from '../context.js';


// Commands load lazily: start-up cost is module loading, and each command needs different parts.
const COMMAND_TABLE: Record<CommandName, () => Promise<{ run: Command }>> = {
  create: () => import('../commands/create.js'),
  resolve: () => import('../commands/resolve.js'),
  lock: () => import('../commands/lock.js'),
  plan: () => import('../commands/plan.js'),
  doctor: () => import('../commands/doctor.js'),
  rm: () => import('../commands/rm.js'),
  init: () => import('../commands/init.js'),
  mirror: () => import('../commands/mirror.js'),
  env: () => import('../commands/env.js'),
  image: () => import('../commands/image.js'),
};

export function renderError(error: BxbError, secrets: Secrets, debug: boolean): string {
  const hint = error.hint ? ` — ${error.hint}` : '';
  const line = `buildx-bootstrap: ${error.message}${hint}`.replace(/\s*\n\s*/g, ' ');
  const transcript = debug && error.transcript ? `\n${error.transcript.trimEnd()}` : '';
  return secrets.redact(`${line}${transcript}\n`);
}

export async function main(argv: string[], io: Io): Promise<number> {
  const secrets = new Secrets();
  let args: ParsedArgs | undefined;
  try {
    args = parseArgs(argv);
    if (args.version) {
      io.stdout.write(`${VERSION}\n`);
      return ExitCode.ok;
    }
    if (args.help) {
      io.stdout.write(helpText(VERSION));
      return ExitCode.ok;
    }
    const log = createLogger(io, args.quiet ? 'quiet' : args.debug ? 'debug' : 'normal', secrets);
    const parsed = args;
    const ctx: CommandContext = {
      io,
      args: parsed,
      log,
      secrets,
      loadConfig: () => loadConfig({ cwd: io.cwd, env: io.env, configFile: parsed.configFile, flags: parsed.flags }),
      result: (text) => {
        io.stdout.write(secrets.redact(text.endsWith('\n') ? text : `${text}\n`));
      },
    };
    const { run } = await COMMAND_TABLE[args.command]();
    return await run(ctx);
  } catch (error) {
    const reason = io.signal?.aborted ? io.signal.reason : undefined;
    const failure = reason === 'SIGINT' || reason === 'SIGTERM' ? new InterruptedError(reason) : error;
    if (isBxbError(failure)) {
      io.stderr.write(renderError(failure, secrets, args?.debug ?? false));
      return failure.exitCode;
    }
    const e = failure as Error;
    io.stderr.write(secrets.redact(`buildx-bootstrap: internal error (this is a bug, please report it): ${e?.stack ?? String(e)}\n`));
    return ExitCode.dockerFailed;
  }
}
