// Bundles the CLI into dist/ with esbuild. Start-up is dominated by module loading, so one
// bundled entry with per-command chunks (loaded lazily through dynamic import) keeps it cheap.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { cli: 'src/cli/run.ts' },
  outdir: 'dist',
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
  // CommonJS dependencies bundled into ESM need a real require().
  banner: { js: "import { createRequire as __bxbCreateRequire } from 'node:module'; const require = __bxbCreateRequire(import.meta.url);" },
});
