// What every command and the core it calls are handed: I/O, parsed arguments, the logger, the
// secret register and the configuration loader. It lives below both src/cli (which builds it) and
// src/builder, src/commands (which use it), so the core never imports the CLI layer.
import type { Io, Logger, Secrets } from './io.js';
import type { LoadedConfig } from './config/load.js';
import type { ParsedArgs } from './cli/args.js';

export interface CommandContext {
  io: Io;
  args: ParsedArgs;
  log: Logger;
  secrets: Secrets;
  /** Loads and validates configuration (file < environment < flags). */
  loadConfig(): Promise<LoadedConfig>;
  /** Writes the command's result to stdout (the only thing that goes there). */
  result(text: string): void;
}

export type Command = (ctx: CommandContext) => Promise<number>;
