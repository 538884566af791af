// One way for a bench entry point to run: `main` gets a host whose teardowns (daemons,
// registries, work directories, each stopped by its pid) run in reverse order however main ends;
// an error prints its stack under the bench's name; the process exits with main's code (1 on error).
export interface BenchHost {
  teardown(fn: () => unknown): void;
}

export async function runBench(name: string, main: (host: BenchHost) => Promise<number>): Promise<never> {
  const teardowns: (() => unknown)[] = [];
  const host: BenchHost = { teardown: (fn) => void teardowns.push(fn) };
  let code = 1;
  try {
    code = await main(host);
  } catch (error) {
    process.stderr.write(`bench ${name}: ${(error as Error).stack ?? String(error)}\n`);
  } finally {
    for (const fn of teardowns.reverse()) {
      try {
        await fn();
      } catch (error) {
        process.stderr.write(`bench ${name}: teardown: ${(error as Error).message}\n`);
        code = code || 1;
      }
    }
  }
  process.exit(code);
}
