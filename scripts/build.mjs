// Bundles the CLI into dist/ with esbuild. Start-up is dominated by module loading, so:
//  1. one bundled entry with per-command chunks (loaded lazily through dynamic import), and
//  2. every chunk turned into CommonJS (`.cjs`) and loaded with require(): Node 20's ES-module
//     loader costs ~9 ms per `resolve` run on these machines (async file reads, a link and an
//     instantiate step per chunk, several chunk waves), `require()` of the same chunks does not
//     (measured with `npm run bench`; see README "Speed").
// Step 2 is a per-file syntax transform of step 1's output, so the chunking is esbuild's own. A
// dynamic import of one of our chunks or of a node builtin becomes a deferred require(); any
// other dynamic import (cosmiconfig loading a user's `.mjs` config) stays a real import().
import { build, transform } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const STAGE = join(ROOT, 'dist', '.esm');

rmSync(DIST, { recursive: true, force: true });
await build({
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
  // cosmiconfig loads TypeScript only for a .ts config file; it is the user's, never bundled.
  external: ['typescript'],
  // The CommonJS step below gives every chunk its own __filename; import.meta.url is that file.
  define: { 'import.meta.url': '__bxbModuleUrl' },
});

const LOCAL_CHUNK = /(["'])\.\/([^"'/]+)\.js\1/g;
// After the transform: `import("./x.cjs")` / `import("node:…")` with a literal argument only.
const DEFERRED_IMPORT = /\bimport\((["'])(\.\/[^"'/]+\.cjs|node:[a-z_/]+)\1\)/g;

for (const name of readdirSync(STAGE)) {
  const esm = readFileSync(join(STAGE, name), 'utf8').replace(LOCAL_CHUNK, '$1./$2.cjs$1');
  const { code } = await transform(esm, { format: 'cjs', platform: 'node', target: 'node20', loader: 'js', logLevel: 'warning' });
  const cjs = code.replace(DEFERRED_IMPORT, (_, q, spec) => `Promise.resolve().then(() => require(${q}${spec}${q}))`);
  const header = cjs.includes('__bxbModuleUrl') ? "const __bxbModuleUrl = require('node:url').pathToFileURL(__filename).href;\n" : '';
  writeFileSync(join(DIST, name.replace(/\.js$/, '.cjs')), header + cjs);
}
rmSync(STAGE, { recursive: true, force: true });
