// Bundles the CLI into dist/ with esbuild. Start-up is dominated by module loading (issue 9,
// README "Speed"), so:
//  1. one bundled entry with per-command chunks, loaded lazily through dynamic import;
//  2. every chunk turned into CommonJS (`.cjs`) and loaded with require(): Node 20's ES-module
//     loader cost ~9 ms of a `resolve` run here (async reads, link and instantiate per chunk,
//     several waves), require() of the same chunks does not. A dynamic import of one of our
//     chunks or of a node builtin becomes a deferred require(); any other dynamic import
//     (cosmiconfig loading a user's `.mjs` config) stays a real import();
//  3. the chunks nearly every command loads (the CLI, `resolve`, the registry client and what
//     they require) merged into dist/cli.cjs, so a run opens and compiles one file instead of
//     ~20; each merged chunk keeps a one-line stub file, so the other chunks require it as before.
// Steps 2 and 3 rework step 1's output, so the chunking itself stays esbuild's.
import { build, transform } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const STAGE = join(DIST, '.esm');
/** Entry modules whose chunks (and everything they require up front) start in dist/cli.cjs. */
const STARTUP = ['src/cli/run.ts', 'src/commands/resolve.ts', 'src/registry/client.ts', 'src/registry/credentials.ts'];

rmSync(DIST, { recursive: true, force: true });
const { metafile } = await build({
  entryPoints: { cli: join(ROOT, 'src/cli/run.ts') },
  outdir: STAGE,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  // cosmiconfig loads TypeScript only for a .ts config file; it is the user's, never bundled.
  external: ['typescript'],
  // Step 2 gives every chunk its own __filename; import.meta.url is that file.
  define: { 'import.meta.url': '__bxbModuleUrl' },
});

// ---- step 2: CommonJS ----------------------------------------------------------------------
const LOCAL_CHUNK = /(["'])\.\/([^"'/]+)\.js\1/g;
// After the transform: `import("./x.cjs")` / `import("node:…")` with a literal argument only.
const DEFERRED_IMPORT = /\bimport\((["'])(\.\/[^"'/]+\.cjs|node:[a-z_/]+)\1\)/g;
// A require the transform wrote for a static import (deferred ones sit inside `() => …`).
const STATIC_REQUIRE = /(?<!=> )\brequire\("\.\/([^"/]+\.cjs)"\)/g;

const chunks = new Map(); // name.cjs -> CommonJS source
const entryChunk = new Map(); // src path -> name.cjs
for (const [out, info] of Object.entries(metafile.outputs)) {
  const name = basename(out).replace(/\.js$/, '.cjs');
  if (info.entryPoint) entryChunk.set(info.entryPoint, name);
  const esm = readFileSync(join(ROOT, out), 'utf8').replace(LOCAL_CHUNK, '$1./$2.cjs$1');
  const { code } = await transform(esm, { format: 'cjs', platform: 'node', target: 'node20', loader: 'js', logLevel: 'warning' });
  const cjs = code.replace(DEFERRED_IMPORT, (_, q, spec) => `Promise.resolve().then(() => require(${q}${spec}${q}))`);
  // Strict, as the ES modules they were: the tests ran this code with ESM semantics.
  const header = cjs.includes('__bxbModuleUrl') ? "const __bxbModuleUrl = require('node:url').pathToFileURL(__filename).href;\n" : '';
  chunks.set(name, `'use strict';\n${header}${cjs}`);
}
rmSync(STAGE, { recursive: true, force: true });

// ---- step 3: the start-up set in one file ----------------------------------------------------
const startup = new Set();
const visit = (name) => {
  if (startup.has(name)) return;
  startup.add(name);
  for (const [, dep] of chunks.get(name).matchAll(STATIC_REQUIRE)) visit(dep);
};
for (const entry of STARTUP) {
  const name = entryChunk.get(entry);
  if (!name) throw new Error(`build: ${entry} is no longer an entry chunk; update STARTUP in ${relative(ROOT, fileURLToPath(import.meta.url))}`);
  visit(name);
}

const merged = [
  "'use strict';",
  '// Chunks merged by scripts/build.mjs (step 3): each runs on first require, as its own file would.',
  'const __bxbChunks = {',
  ...[...startup].map((name) => `${JSON.stringify(name)}: function (exports, require, module, __filename, __dirname) {\n${chunks.get(name)}\n},`),
  '};',
  'const __bxbLoaded = new Map();',
  'function __bxbRequire(id) {',
  "  const name = id.startsWith('./') ? id.slice(2) : undefined;",
  '  if (name === undefined || !(name in __bxbChunks)) return require(id);',
  '  let module = __bxbLoaded.get(name);',
  '  if (module) return module.exports;',
  '  module = { exports: {} };',
  '  __bxbLoaded.set(name, module);',
  '  __bxbChunks[name].call(module.exports, module.exports, __bxbRequire, module, `${__dirname}/${name}`, __dirname);',
  '  return module.exports;',
  '}',
  '__bxbRequire.resolve = require.resolve;',
  '__bxbRequire.cache = require.cache;',
  'exports.__bxbRequire = __bxbRequire;',
  `Object.assign(exports, __bxbRequire(${JSON.stringify(`./${entryChunk.get('src/cli/run.ts')}`)}));`,
  '',
].join('\n');

for (const [name, code] of chunks) {
  if (name === 'cli.cjs') continue;
  const text = startup.has(name) ? `module.exports = require('./cli.cjs').__bxbRequire(${JSON.stringify(`./${name}`)});\n` : code;
  writeFileSync(join(DIST, name), text);
}
writeFileSync(join(DIST, 'cli.cjs'), merged);
