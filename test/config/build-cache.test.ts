// buildCache in the file, BUILDX_BOOTSTRAP_BUILD_CACHE / _REF and the flags (issue 20 item 1).
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { parseArgs } from '../../src/cli/args.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';

const env = (extra: Record<string, string> = {}): Record<string, string | undefined> => ({ PATH: process.env.PATH, ...extra });

t.test('defaults: type auto, mode max, no ref, derived key', async (t) => {
  const { config } = await loadConfig({ cwd: t.testdir({}), env: env() });
  t.same(config.buildCache, { type: 'auto', ref: '', mode: 'max', key: '' });
});

t.test('file < environment < flags', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.yaml': 'buildCache:\n  type: local\n  ref: registry.example/app/cache\n  mode: min\n  key: web\n' });
  const file = await loadConfig({ cwd: dir, env: env() });
  t.same(file.config.buildCache, { type: 'local', ref: 'registry.example/app/cache', mode: 'min', key: 'web' });
  const fromEnv = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_BUILD_CACHE: 'registry', BUILDX_BOOTSTRAP_BUILD_CACHE_REF: 'other.example:5000/c' }) });
  t.same(fromEnv.config.buildCache, { type: 'registry', ref: 'other.example:5000/c', mode: 'min', key: 'web' });
  const flags = parseArgs(['--no-build-cache', '--', 'docker', 'buildx', 'build', '.']).flags;
  const fromFlags = await loadConfig({ cwd: dir, env: env({ BUILDX_BOOTSTRAP_BUILD_CACHE: 'registry' }), flags });
  t.equal(fromFlags.config.buildCache.type, 'off', '--no-build-cache beats the environment');
  t.same(parseArgs(['--build-cache', 'inline']).flags, { buildCache: { type: 'inline' } });
  t.equal(parseArgs(['--build-cache-branch', 'feature/x', '--', 'docker', 'buildx', 'build', '.']).buildCacheBranch, 'feature/x');
  t.throws(() => parseArgs(['--build-cache-branch', 'x']), /--build-cache-branch only applies to prefix mode/);
});

t.test('bad values: every problem named with its source, exit 2', async (t) => {
  const dir = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify({ buildCache: { type: 'gha', ref: 'registry.example/app:cache', mode: 'all', key: 'Has Space', extra: 1 } }) });
  const err = await loadConfig({ cwd: dir, env: env() }).catch((e: unknown) => e);
  t.ok(err instanceof ConfigError);
  const message = (err as Error).message;
  t.match(message, /buildCache\.type: "gha" is not one of auto, registry, local, inline, off/);
  t.match(message, /buildCache\.ref: "registry\.example\/app:cache" must be a repository without tag or digest/);
  t.match(message, /buildCache\.mode: "all" is not one of max, min/);
  t.match(message, /buildCache\.key: "Has Space" must be/);
  t.match(message, /buildCache\.extra: unknown key/);
  const cli = await runCli(['plan', '--build-cache', 'sometimes'], { cwd: t.testdir({}), env: env() });
  t.equal(cli.code, 2);
  t.match(cli.stderr, /flags: buildCache\.type: "sometimes" is not one of/);
  const envBad = await loadConfig({ cwd: t.testdir({}), env: env({ BUILDX_BOOTSTRAP_BUILD_CACHE_REF: 'UPPER/Case' }) }).catch((e: unknown) => e);
  t.match((envBad as Error).message, /environment: buildCache\.ref/);
});
