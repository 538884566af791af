// Property tests of the buildx output parsers (src/docker/parse.ts) on the verbatim fixtures
// mutated, truncated and replaced by random bytes: each ends in a result or a one-line DockerError
// (exit 1) naming the buildx command it read — never a TypeError or a RangeError.
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseBuildxVersion, parseDriverOpts, parseInspect, parseLsJson } from '../../src/docker/parse.js';
import { bytesAsText, endsWell, hostileString, mutated, runs } from '../helpers/properties.js';

const dir = fileURLToPath(new URL('../fixtures/buildx/', import.meta.url));
const fixtures = (prefix: string): string[] => readdirSync(dir).filter((f) => f.startsWith(prefix)).sort().map((f) => readFileSync(`${dir}${f}`, 'utf8'));

const piece = fc.oneof(
  hostileString(12),
  fc.constantFrom('\n', '\r\n', '\t', ' > ', 'Name:', 'Driver:', 'Nodes:', 'Labels:', 'GC Policy rule#0:', 'File#buildkitd.toml:', 'Driver Options:', ' image="x\\U7fffffff"', '\\x', '\\', '"', '{', '}', '[', ']', '"Nodes":', '"Name":1', 'null'),
);
const truncated = (seeds: string[]): fc.Arbitrary<string> => fc.tuple(fc.constantFrom(...seeds), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1)));

const cases: [string, (text: string) => unknown, string[], RegExp][] = [
  ['docker buildx version', parseBuildxVersion, fixtures('version-'), /^unexpected output of docker buildx version: /],
  ['docker buildx inspect', parseInspect, fixtures('inspect-'), /^unexpected output of docker buildx inspect[,:] /],
  ['docker buildx ls --format json', parseLsJson, fixtures('ls-json-'), /^unexpected output of docker buildx ls --format json, line \d+: /],
];

for (const [command, parse, seeds, message] of cases) {
  t.test(`${command}: any output ends in a result or a DockerError naming the command`, async () => {
    fc.assert(fc.property(fc.oneof(mutated(seeds, piece), truncated(seeds), bytesAsText(600)), (text) => void endsWell(() => parse(text), 1, message)), runs(700));
  });
}

t.test('driver options: any text ends in options or a DockerError', async () => {
  const opts = fc.array(fc.tuple(fc.oneof(fc.constantFrom('image', 'network', 'env.X'), hostileString(6)), fc.oneof(hostileString(20), fc.constantFrom('\\U0010ffff', '\\U00110000', '\\xff', '\\777', '\\q', '\\u12'))), { maxLength: 4 }).map((kv) => kv.map(([k, v]) => `${k}="${v}"`).join(' '));
  fc.assert(fc.property(fc.oneof(opts, hostileString(60)), (text) => void endsWell(() => parseDriverOpts(text), 1, /^(cannot read driver options|invalid escape)/)), runs(1500));
});
