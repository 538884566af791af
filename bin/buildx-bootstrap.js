#!/usr/bin/env node
// CommonJS on purpose (bin/package.json): `--version` alone answers without loading the CLI, and
// the CLI itself is CommonJS chunks (scripts/build.mjs says why), loaded lazily per command.
'use strict';
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  require('../dist/cli.cjs')
    .run(argv)
    .then((code) => {
      process.exitCode = code;
    });
}
