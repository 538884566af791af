import type Range = require('semver/classes/range.js');
import type SemVer = require('semver/classes/semver.js');
import type coerce = require('semver/functions/coerce.js');
import type gt = require('semver/functions/gt.js');
import type gte = require('semver/functions/gte.js');
import type inc = require('semver/functions/inc.js');
import type lt = require('semver/functions/lt.js');
import type parse = require('semver/functions/parse.js');
import type validRange = require('semver/ranges/valid.js');

/** The semver functions this package uses, loaded on the first call (see lazy.cjs). */
export declare function semver(): {
  Range: typeof Range;
  SemVer: typeof SemVer;
  coerce: typeof coerce;
  gt: typeof gt;
  gte: typeof gte;
  inc: typeof inc;
  lt: typeof lt;
  parse: typeof parse;
  validRange: typeof validRange;
};

/** node:crypto, loaded on the first call (see lazy.cjs). */
export declare function crypto(): typeof import('node:crypto');
