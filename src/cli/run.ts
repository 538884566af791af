// Process entry: wires the real process into main(), turning SIGINT/SIGTERM into an abort the
// commands clean up after (exit 130/143).
import { VERSION } from '../version.js';

export async function run(argv: string[]): Promise<number> {
  // `--version` alone answers before the CLI is loaded (start-up is module loading); anything
  // else, including --version among other arguments, goes through the full parser.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const { main } = await import('./main.js');
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143); // second signal: give up now
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await main(argv, {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      signal: controller.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
