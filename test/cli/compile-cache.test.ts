// The V8 code cache of dist/'s chunks (bin/compile-cache.js): written once, used after, replaced
// when V8 refuses it, and never a reason for a command to fail or say anything. Each test runs a
// private copy of bin/ + dist/ so the checkout's own cache is left alone.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { BIN } from '../helpers/bin.js';
import { startRefusingPort } from '../helpers/net.js';

const REPO = join(BIN, '..', '..');

/** A copy of the package (bin/, dist/ without its cache, package.json) and a project using it. */
async function install(t: Test, configFile = 'buildx-bootstrap.config.cjs'): Promise<{ run: (env?: Record<string, string>) => { code: number | null; stdout: string; stderr: string }; cache: string }> {
  const dir = t.testdir({ project: {} });
  cpSync(join(REPO, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  cpSync(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true, filter: (src) => !src.includes('.v8-cache') });
  const { port } = await startRefusingPort();
  // A JavaScript config file: cosmiconfig loads it with import() (then require), through node's
  // own loaders, from a chunk that holds a real import().
  const config = `{ buildkit: { version: 'v0.18.2', image: '127.0.0.1:${port}/moby/buildkit' } }`;
  writeFileSync(join(dir, 'project', configFile), configFile.endsWith('.mjs') ? `export default ${config};\n` : `module.exports = ${config};\n`);
  const run = (env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'buildx-bootstrap.js'), 'resolve'], {
      cwd: join(dir, 'project'),
      env: { PATH: process.env.PATH, HOME: dir, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    // Timestamps and durations differ from run to run; nothing else may.
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^\[\d\d:\d\d:\d\d\] /gm, '').replace(/\(\d+ ms\)/g, '(N ms)') };
  };
  return { run, cache: join(dir, 'dist', '.v8-cache') };
}

const entries = (cache: string): Map<string, number> => new Map(readdirSync(cache).map((f) => [f, statSync(join(cache, f)).ino]));

t.test('the first run writes the cache, later runs use it and write nothing', async (t) => {
  const { run, cache } = await install(t);
  const first = run();
  t.equal(first.code, 3, 'resolve against a closed port: no registry could serve');
  t.match(first.stderr, /127\.0\.0\.1:\d+/, 'the .cjs config file was loaded (its registry is named)');
  const written = entries(cache);
  t.ok([...written.keys()].some((f) => f.startsWith('cli.cjs.')), `an entry for dist/cli.cjs (have ${[...written.keys()].join(', ')})`);
  t.notOk([...written.keys()].some((f) => f.endsWith('.tmp')), 'no temp file left');

  const second = run();
  t.same(second, first, 'same exit code and output with the cache');
  t.same(entries(cache), written, 'every entry was accepted: none rewritten (same inode), none added');
});

t.test('an entry V8 refuses is replaced; the command does not notice', async (t) => {
  const { run, cache } = await install(t);
  const first = run();
  const [name] = [...entries(cache).keys()].filter((f) => f.startsWith('cli.cjs.'));
  const garbage = Buffer.from('not a V8 code cache '.repeat(40));
  writeFileSync(join(cache, name!), garbage);
  t.same(run(), first, 'same exit code and output');
  t.not(readFileSync(join(cache, name!)).toString(), garbage.toString(), 'the refused entry was rewritten');
  const again = entries(cache);
  t.same(run(), first);
  t.same(entries(cache), again, 'and the new entry is accepted');
});

t.test('BXB_COMPILE_CACHE=0 runs without reading or writing a cache', async (t) => {
  const { run, cache } = await install(t);
  const r = run({ BXB_COMPILE_CACHE: '0' });
  t.equal(r.code, 3);
  t.notOk(existsSync(cache), 'no cache directory');
});

t.test('a cache that cannot be written costs nothing but the cache', async (t) => {
  const { run, cache } = await install(t);
  writeFileSync(cache, 'a file where the directory would go');
  const r = run();
  t.equal(r.code, 3);
  t.same(r, run({ BXB_COMPILE_CACHE: '0' }), 'exactly what a run without the cache says: nothing about the cache');
});

t.test('an ES-module config file loads on cached runs as on the first', async (t) => {
  const { run } = await install(t, 'buildx-bootstrap.config.mjs');
  const first = run();
  t.equal(first.code, 3, `the .mjs config was read: ${first.stderr}`);
  t.match(first.stderr, /127\.0\.0\.1:\d+\/moby\/buildkit/);
  t.same(run(), first);
  t.same(run(), first);
});
