#!/usr/bin/env node
// CommonJS on purpose (bin/package.json): `--version` alone answers without loading the CLI, and
// the CLI itself is CommonJS chunks (scripts/build.mjs says why), loaded lazily per command and
// compiled through V8's code cache (compile-cache.js).
'use strict';
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  const path = require('node:path');
  const dist = path.join(__dirname, '..', 'dist');
  const writeCache = require('./compile-cache.js').install(dist);
  require(path.join(dist, 'cli.cjs'))
    .run(argv)
    .then((code) => {
      process.exitCode = code;
      writeCache();
    });
}
