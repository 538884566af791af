// Shared pieces of the property tests (test/properties/): what "ends well" means for a parser fed
// hostile input, run sizes that keep the suite fast on two cores, and generators of hostile text.
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BxbError } from '../../src/errors.js';

/**
 * Runs per property. FC_RUNS_SCALE (e.g. 20 for a long local hunt) multiplies them; the suite's
 * default keeps each property file to a few seconds.
 */
export function runs(n: number): { numRuns: number } {
  const scale = Number(process.env.FC_RUNS_SCALE ?? 1);
  return { numRuns: Math.max(1, Math.round(n * (Number.isFinite(scale) && scale > 0 ? scale : 1))) };
}

/**
 * `run()` either returns, or throws a BxbError with exit code `exitCode` whose message passes
 * `message`; anything else (a TypeError, a RangeError, a plain Error, a wrong exit code) is
 * rethrown so fast-check reports and shrinks the input.
 */
export function endsWell<T>(run: () => T, exitCode: number, message: RegExp): T | undefined {
  try {
    return run();
  } catch (error) {
    expectDocumented(error, exitCode, message);
    return undefined;
  }
}

export async function endsWellAsync<T>(run: () => Promise<T>, exitCode: number, message: RegExp): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    expectDocumented(error, exitCode, message);
    return undefined;
  }
}

function expectDocumented(error: unknown, exitCode: number, message: RegExp): void {
  if (!(error instanceof BxbError)) throw error;
  if (error.exitCode !== exitCode) throw new Error(`exit code ${error.exitCode}, expected ${exitCode}: ${error.message}`);
  if (!message.test(error.message)) throw new Error(`message ${JSON.stringify(error.message)} does not match ${message}`);
  if (error.message.includes('\n')) throw new Error(`message is not one line: ${JSON.stringify(error.message)}`);
}

/** Text as a file read with utf8 would give it: any bytes, invalid UTF-8 and NULs included. */
export const bytesAsText = (maxLength = 2048): fc.Arbitrary<string> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString('utf8'));

/** Strings mixing ASCII, full Unicode (lone surrogates included), control characters and NUL. */
export const hostileString = (maxLength = 200): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.fullUnicodeString({ maxLength }),
    fc.string16bits({ maxLength }),
    fc.array(fc.constantFrom('\0', '\r', '\n', '\t', '\\', '`', '"', "'", '$', '{', '}', '=', ',', ':', '/', '@', ' ', '\uFEFF', '\uFFFD'), { maxLength }).map((a) => a.join('')),
  );

/** Splices `pieces` into `text` at random places: how a fuzzer mutates a fixture. */
export const mutated = (seeds: string[], pieces: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.nat(40), pieces), { maxLength: 6 }))
    .map(([seed, edits]) =>
      edits.reduce((text, [at, cut, piece]) => {
        const i = text.length ? at % (text.length + 1) : 0;
        return text.slice(0, i) + piece + text.slice(i + cut);
      }, seed),
    );

/** The Dockerfile fixtures (test/fixtures/dockerfiles), the seed corpus of Dockerfile properties and fuzzing. */
export function dockerfileFixtures(): string[] {
  const dir = fileURLToPath(new URL('../fixtures/dockerfiles/', import.meta.url));
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(`${dir}${f}`, 'utf8'));
}
