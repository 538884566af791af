// Fuzz targets (run by scripts/fuzz.mjs): one input string in, and either a result or the
// documented error out. Anything else thrown is a finding. Same oracle as test/properties/.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderBuildkitdConfig } from '../../src/buildkitd/render.js';
import { describeJsonError } from '../../src/config/json-error.js';
import { environmentLayer } from '../../src/config/load.js';
import { validateConfigLayer } from '../../src/config/schema.js';
import { analyzeDockerfile } from '../../src/dockerfile/dockerfile.js';
import { BxbError, type ConfigProblem } from '../../src/errors.js';
import { parseLockfile } from '../../src/resolve/lockfile.js';

export interface FuzzTarget {
  /** Seed corpus: the test fixtures and templates. */
  seeds(root: string): string[];
  /** Words the mutator splices in. */
  dictionary: string[];
  run(input: string): void;
}

function documented(error: unknown, exitCode: number, message: RegExp): void {
  if (!(error instanceof BxbError)) throw error;
  if (error.exitCode !== exitCode || !message.test(error.message) || error.message.includes('\n')) {
    throw new Error(`undocumented error (exit ${error.exitCode}): ${error.message}`);
  }
}

const files = (dir: string, filter: (name: string) => boolean = () => true): string[] =>
  readdirSync(dir)
    .filter(filter)
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));

export const targets: Record<string, FuzzTarget> = {
  dockerfile: {
    seeds: (root) => files(join(root, 'test/fixtures/dockerfiles')),
    dictionary: ['FROM ', 'AS ', 'ARG ', 'COPY --from=', 'RUN --mount=type=bind,from=', 'ONBUILD ', '--platform=$BUILDPLATFORM ', '${A:-b}', '${A:+b}', '${A#*}', '$A', '\\\n', '`\n', '# escape=`\n', '# syntax=docker/dockerfile:1\n', '<<EOF\n', '\nEOF\n', '<<-EOT', '"', "'", '[', ']', '\n', '\r\n', ' ', '\t', '\0', 'scratch', 'alpine:3@sha256:'],
    run(input) {
      // The first line, when it starts with `args:`, holds build args (`K=V;K2=V2`): BUILDKIT_SYNTAX and ARG overrides.
      let text = input;
      const buildArgs: Record<string, string> = {};
      if (input.startsWith('args:')) {
        const nl = input.indexOf('\n');
        for (const kv of input.slice(5, nl < 0 ? undefined : nl).split(';')) {
          const eq = kv.indexOf('=');
          if (eq > 0) buildArgs[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        text = nl < 0 ? '' : input.slice(nl + 1);
      }
      try {
        analyzeDockerfile(text, { file: 'Dockerfile', buildArgs, buildPlatform: 'linux/amd64', platforms: ['linux/amd64', 'linux/arm64'] });
      } catch (error) {
        documented(error, 2, /^(Dockerfile:(\d+: |\s)|--build-arg BUILDKIT_SYNTAX: )/);
      }
    },
  },
  config: {
    seeds: (root) => [
      ...files(join(root, 'templates'), (f) => f.endsWith('.toml')).map((s) => `toml:${s}`),
      'json:{"buildkit":{"version":"^0.18","image":"moby/buildkit"},"mirrors":[{"host":"harbor.corp","path":"proxy","ca":"/x.pem"}],"registries":{"harbor.corp":{"insecure":true}},"timeouts":{"probe":"5s"}}',
      'env:BUILDX_BOOTSTRAP_MIRRORS=harbor.corp/proxy,127.0.0.1:5000\nBUILDX_BOOTSTRAP_PLATFORMS=linux/amd64 linux/arm64\nBUILDX_BOOTSTRAP_ROOTLESS=yes\nBUILDX_BOOTSTRAP_PROBE_TIMEOUT=3s',
      `lock:${JSON.stringify({ lockfileVersion: 1, image: 'docker.io/moby/buildkit', spec: '^0.18', rootless: false, tag: 'v0.18.2', digest: `sha256:${'a'.repeat(64)}`, source: 'docker.io/moby/buildkit', platforms: { 'linux/amd64': { manifest: `sha256:${'b'.repeat(64)}`, config: `sha256:${'c'.repeat(64)}` } } }, null, 2)}`,
    ],
    dictionary: ['json:', 'env:', 'toml:', 'lock:', '{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e999', '"__proto__"', '"mirrors"', '"host"', '"registries"', '[registry."docker.io"]\n', 'mirrors = [ "x" ]\n', '\\u', '\\ud800', 'BUILDX_BOOTSTRAP_', '=', '\n', '\0', 'sha256:'],
    run(input) {
      const colon = input.indexOf(':');
      const kind = input.slice(0, colon);
      const text = input.slice(colon + 1);
      const problems: ConfigProblem[] = [];
      try {
        if (kind === 'json') {
          let raw: unknown;
          try {
            raw = JSON.parse(text);
          } catch (error) {
            if (/\n/.test(describeJsonError(error, text))) throw new Error('JSON error message is not one line');
            return;
          }
          validateConfigLayer(raw, 'buildx-bootstrap.json', problems);
        } else if (kind === 'env') {
          const env: Record<string, string> = {};
          for (const line of text.split('\n')) {
            const eq = line.indexOf('=');
            if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
          }
          const layer = environmentLayer(env, problems);
          validateConfigLayer(layer, 'environment', problems);
        } else if (kind === 'toml') {
          renderBuildkitdConfig({ mirrors: [], registries: {}, base: { text, file: '/etc/buildkitd.toml' } });
        } else if (kind === 'lock') {
          parseLockfile(text, '/repo/buildx-bootstrap.lock');
        }
      } catch (error) {
        documented(error, 2, /^invalid configuration/);
      }
    },
  },
};
