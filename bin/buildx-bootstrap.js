#!/usr/bin/env node
// CommonJS on purpose (bin/package.json): `--version` alone answers without starting Node's ESM
// loader, which costs more than the rest of that answer; everything else loads the bundled CLI.
'use strict';
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  import('../dist/cli.js').then(async ({ run }) => {
    process.exitCode = await run(argv);
  });
}
