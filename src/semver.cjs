// semver, required on first use rather than imported. Importing it (even per function) runs its
// module set-up, ~40 regular expressions, before the first useful byte of every command: ~6 ms
// of a ~22 ms `node -e 0` on these machines. In this CommonJS file the require() calls sit inside
// a function, so esbuild still bundles them but runs them only when called, and the tests (which
// run the TypeScript sources) load this file as it is. Types: semver.d.cts.
'use strict';

let loaded;

exports.semver = function semver() {
  if (!loaded) {
    loaded = {
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
  return loaded;
};
