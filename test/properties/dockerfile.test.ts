// Property tests of the Dockerfile reader (src/dockerfile/*.ts): whatever a user writes, it
// ends in the images it needs or a one-line UsageError (exit 2) naming `Dockerfile:<line>` with a
// line inside the file (or just `Dockerfile:` for a --target that is not there, the build arg for a
// bad BUILDKIT_SYNTAX) — never a
// TypeError, a RangeError or a hang.
import fc from 'fast-check';
import t from 'tap';
import { analyzeDockerfile, detectSyntax } from '../../src/dockerfile/dockerfile.js';
import { bytesAsText, dockerfileFixtures, endsWell, hostileString, mutated, runs } from '../helpers/properties.js';

const FIXTURES = dockerfileFixtures();

/** Analyses as the CLI does, and checks a failure names a line that exists. */
function analyzeEndsWell(text: string, buildArgs: Record<string, string> = {}, target?: string, platforms?: string[]): void {
  const lines = Math.max(1, text.split('\n').length);
  let line = 0;
  const needs = endsWell(
    () => analyzeDockerfile(text, { file: 'Dockerfile', buildArgs, buildPlatform: 'linux/amd64', ...(target ? { target } : {}), ...(platforms ? { platforms } : {}) }),
    2,
    /^(Dockerfile:(\d+: |\s)|--build-arg BUILDKIT_SYNTAX: )/,
  );
  if (needs === undefined) {
    const failed = failureLine(text, buildArgs, target, platforms);
    if (failed !== undefined && (failed < 1 || failed > lines)) throw new Error(`error on line ${failed} of a ${lines}-line file`);
    return;
  }
  for (const image of needs.images) {
    for (const use of image.uses) {
      line = use.line;
      if (use.kind === 'syntax' && line === 0 && buildArgs.BUILDKIT_SYNTAX?.trim()) continue; // from the build arg
      if (line < 1 || line > lines) throw new Error(`use on line ${line} of a ${lines}-line file`);
    }
  }
}

function failureLine(text: string, buildArgs: Record<string, string> = {}, target?: string, platforms?: string[]): number | undefined {
  try {
    analyzeDockerfile(text, { file: 'Dockerfile', buildArgs, buildPlatform: 'linux/amd64', ...(target ? { target } : {}), ...(platforms ? { platforms } : {}) });
    return undefined;
  } catch (e) {
    const m = /^Dockerfile:(\d+): /.exec((e as Error).message);
    return m ? Number(m[1]) : undefined;
  }
}

const word = fc.oneof(
  fc.constantFrom('alpine', 'busybox:1.36', 'ghcr.io/a/b:1', '$BASE', '${BASE:-alpine}', '${X:+a}', 'base', 'AS', 'as', 'build', 'scratch', '--platform=$BUILDPLATFORM', '--from=build', '--mount=type=bind,from=base,target=/x', '"q"', "'s'", '\\', '`', '<<EOF', '<<-EOT', '["a","b"]', '[1]', '='),
  hostileString(12),
);
const instruction = fc.constantFrom('FROM', 'ARG', 'COPY', 'RUN', 'ONBUILD', 'ADD', 'ENV', 'from', 'copy', 'EOF', 'EOT', '#', '# syntax=docker/dockerfile:1', '# escape=`', '# escape=\\', '', 'UNKNOWN');
const line = fc.tuple(instruction, fc.array(word, { maxLength: 6 }), fc.constantFrom('', '\\', '`', ' \\', '\r')).map(([i, ws, end]) => `${i} ${ws.join(' ')}${end}`);
const dockerfileish = fc.array(line, { maxLength: 25 }).map((ls) => `${ls.join('\n')}\n`);

t.test('structured Dockerfiles of random instructions end in images or Dockerfile:<line>', async () => {
  fc.assert(
    fc.property(dockerfileish, fc.dictionary(fc.constantFrom('BASE', 'X', 'TAG', 'BUILDKIT_SYNTAX'), hostileString(20)), (text, args) => analyzeEndsWell(text, args)),
    runs(600),
  );
});

t.test('fixtures mutated with hostile splices end in images or Dockerfile:<line>', async () => {
  const piece = fc.oneof(word, fc.constantFrom('\n', '\\\n', '`\n', '\nFROM ', '\nARG ', '\n# escape=`\n', '\0', '\uD800', '<<EOF\n', '\nEOF\n'));
  fc.assert(fc.property(mutated(FIXTURES, piece), fc.constantFrom(undefined, 'build', 'runtime', 'nope'), (text, target) => analyzeEndsWell(text, {}, target, ['linux/amd64', 'linux/arm64/v8'])), runs(600));
});

t.test('random bytes, NULs and invalid UTF-8 end in images or Dockerfile:<line>', async () => {
  fc.assert(fc.property(bytesAsText(1024), (text) => analyzeEndsWell(text)), runs(300));
  fc.assert(fc.property(hostileString(400), (text) => analyzeEndsWell(`FROM ${text}\n`)), runs(300));
});

t.test('huge values: long lines, many continuations, deep stage chains stay bounded', async (t) => {
  const long = `FROM ${'a'.repeat(200_000)}\n`;
  analyzeEndsWell(long);
  const continued = `FROM \\\n${'  \\\n'.repeat(20_000)}alpine\n`;
  analyzeEndsWell(continued);
  const chain = ['FROM alpine AS s0', ...Array.from({ length: 2000 }, (_, i) => `FROM s${i} AS s${i + 1}`)].join('\n');
  const needs = analyzeDockerfile(chain, { file: 'Dockerfile', buildArgs: {}, buildPlatform: 'linux/amd64' });
  t.same(needs.images.map((i) => i.ref), ['docker.io/library/alpine:latest'], 'a 2000-stage chain still reaches its one image');
  const args = `${Array.from({ length: 5000 }, (_, i) => `ARG A${i}=$A${Math.max(0, i - 1)}x`).join('\n')}\nFROM alpine:$A4999\n`;
  analyzeEndsWell(args);
  t.equal(failureLine(`FROM alpine\nRUN <<EOF\n${'x\n'.repeat(10_000)}`), 2, 'an unterminated heredoc names its opening line');
});

t.test('detectSyntax never throws and only reports a leading directive', async () => {
  fc.assert(
    fc.property(fc.oneof(bytesAsText(512), mutated(FIXTURES, word)), (text) => {
      const found = detectSyntax(text);
      if (found && (found.line < 1 || found.line > text.split('\n').length)) throw new Error(`syntax on line ${found.line}`);
    }),
    runs(500),
  );
});
