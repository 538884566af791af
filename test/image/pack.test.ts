// The package tarball `image` builds the CI image from: the same files `npm pack` packs (npm
// itself is the reference), laid out as npm lays them out (`package/…`, executable bits kept), and
// a dist/ that needs nothing from node_modules (the image installs no dependencies).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageFiles, packPackage, readManifest, tarballName } from '../../src/image/pack.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

t.test('the file list is the one npm pack makes for this repository', async (t) => {
  if (!existsSync(join(REPO, 'dist', 'cli.cjs'))) return t.fail('dist/ is not built (npm run build)');
  const npm = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'silent' } })) as { files: { path: string }[] }[];
  const expected = npm[0]!.files.map((f) => f.path).sort();
  const ours = await packageFiles(REPO, await readManifest(REPO));
  t.same(ours, expected, 'same files as npm pack');
  t.ok(ours.includes('Dockerfile'), 'the package ships the Dockerfile');
});

t.test('the tarball: package/ entries, executable bin, what tar extracts', async (t) => {
  const root = t.testdir({
    'package.json': JSON.stringify({ name: '@scope/tool', version: '1.2.3', files: ['bin/', 'lib', '!lib/cache', 'missing.txt'] }),
    bin: { 'tool.js': '#!/usr/bin/env node\n' },
    lib: { 'a.js': 'a', cache: { 'x.bin': 'not packed' }, node_modules: { dep: { 'index.js': 'not packed' } } },
    'other.txt': 'not listed',
  });
  chmodSync(join(root, 'bin', 'tool.js'), 0o755);
  const manifest = await readManifest(root);
  t.same(await packageFiles(root, manifest), ['bin/tool.js', 'lib/a.js', 'package.json']);
  t.equal(tarballName(manifest), 'scope-tool-1.2.3.tgz', 'named as npm names it');
  const out = join(root, 'out');
  mkdirSync(out);
  const name = await packPackage(root, out);
  const listing = execFileSync('tar', ['-tvzf', join(out, name)], { encoding: 'utf8' }).trim().split('\n');
  t.same(listing.map((l) => l.split(/\s+/).pop()).sort(), ['package/bin/tool.js', 'package/lib/a.js', 'package/package.json']);
  t.match(listing.find((l) => l.endsWith('tool.js')), /^-rwxr-xr-x/, 'the bin keeps its executable bit');
  t.match(listing.find((l) => l.endsWith('a.js')), /^-rw-r--r--/, 'other files are 0644');
  const x = join(root, 'x');
  mkdirSync(x);
  execFileSync('tar', ['-xzf', join(out, name), '-C', x]);
  t.equal(readFileSync(join(x, 'package', 'lib', 'a.js'), 'utf8'), 'a');
});

t.test('a glob in files is refused, not half-understood', async (t) => {
  const root = t.testdir({ 'package.json': JSON.stringify({ name: 'x', version: '1.0.0', files: ['dist/*.js'] }) });
  await t.rejects(packageFiles(root, await readManifest(root)), /files entry "dist\/\*\.js" is a glob/);
});

t.test('dist/ requires nothing but Node built-ins (the image installs no dependencies)', async (t) => {
  const dist = join(REPO, 'dist');
  if (!existsSync(join(dist, 'cli.cjs'))) return t.fail('dist/ is not built (npm run build)');
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const outside = new Set<string>();
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.cjs'))) {
    const text = readFileSync(join(dist, file), 'utf8');
    for (const m of text.matchAll(/\brequire\((["'])([^"']+)\1\)/g)) {
      const spec = m[2]!;
      if (spec.startsWith('.') || builtins.has(spec)) continue;
      outside.add(spec);
    }
  }
  // typescript: cosmiconfig loads it only for a user's .ts config file (scripts/build.mjs).
  outside.delete('typescript');
  t.same([...outside], [], 'no package outside dist/ is required');
});
