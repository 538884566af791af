// listr2 task lists as the readable spine of a command. On a terminal it draws progress; in CI or
// when piped it prints plain timestamped lines; --quiet prints nothing. Everything goes to stderr:
// stdout carries only the command's result.
import type { ListrTask } from 'listr2';
import type { Io, LogLevel } from '../io.js';

export async function runTasks<Ctx extends object>(tasks: ListrTask<Ctx>[], ctx: Ctx, io: Io, level: LogLevel): Promise<Ctx> {
  const { Listr, ListrLogger, ProcessOutput, PRESET_TIMESTAMP } = await import('listr2');
  const stream = io.stderr as unknown as NodeJS.WriteStream;
  const logger = new ListrLogger({ processOutput: new ProcessOutput(stream, stream) });
  // The drawing renderer needs a known width: a pty without one (columns 0) gets plain lines.
  const columns = (io.stderr as { columns?: number }).columns ?? 0;
  const tty = Boolean(io.stderr.isTTY) && columns > 0 && !io.env.CI && level !== 'debug';
  const list = new Listr<Ctx>(tasks, {
    ctx,
    exitOnError: true,
    registerSignalListeners: false,
    renderer: level === 'quiet' ? 'silent' : tty ? 'default' : 'verbose',
    rendererOptions: tty
      ? { logger, collapseSubtasks: false, removeEmptyLines: true }
      : { logger, timestamp: PRESET_TIMESTAMP, logTitleChange: false },
  } as ConstructorParameters<typeof Listr<Ctx>>[1]);
  return list.run();
}
