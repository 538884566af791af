// Modules required on first use rather than imported. An import runs the module's set-up before
// the first useful byte of every command, used or not: semver's (~40 regular expressions) costs
// ~4-6 ms of a ~22 ms `node -e 0` on these machines, node:crypto's ~2.5 ms, and `resolve` with an
// exact pin needs neither. In this CommonJS file the require() calls sit inside functions, so
// esbuild still bundles semver but runs it only when called, and the tests (which run the
// TypeScript sources) load this file as it is. Types: lazy.d.cts.
'use strict';

let semver;
let crypto;

/** The semver functions this package uses. */
exports.semver = function loadSemver() {
  if (!semver) {
    semver = {
      Range: require('semver/classes/range.js'),
      SemVer: require('semver/classes/semver.js'),
      coerce: require('semver/functions/coerce.js'),
      gt: require('semver/functions/gt.js'),
      gte: require('semver/functions/gte.js'),
      inc: require('semver/functions/inc.js'),
      lt: require('semver/functions/lt.js'),
      parse: require('semver/functions/parse.js'),
      validRange: require('semver/ranges/valid.js'),
    };
  }
  return semver;
};

/** node:crypto. */
exports.crypto = function loadCrypto() {
  if (!crypto) crypto = require('node:crypto');
  return crypto;
};
