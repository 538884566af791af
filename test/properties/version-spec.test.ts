// exactVersion() decides "exact pin" without loading semver (start-up cost, issue 9). It must say
// what semver.valid() says for every text the old semver-based check looked at, or a pin would
// silently become a range or a tag (another image) — so it is checked against semver itself.
import fc from 'fast-check';
import semverValid from 'semver/functions/valid.js';
import t from 'tap';
import { exactVersion, parseVersionSpec } from '../../src/resolve/version-spec.js';
import { runs } from '../helpers/properties.js';

// The shape the semver-based check was given (anything else was never exact).
const SHAPE = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/;
const bySemver = (text: string): string | undefined => {
  const m = SHAPE.exec(text);
  return m ? (semverValid(m[1]!) ?? undefined) : undefined;
};

const num = fc.oneof(fc.constantFrom('0', '00', '01', '1', '10', '9007199254740991', '9007199254740992', '99999999999999999999'), fc.nat().map(String));
const preId = fc.oneof(num, fc.constantFrom('rc1', 'beta', 'alpha-2', '-', '0a', 'x', ''), fc.stringMatching(/^[0-9A-Za-z-]{0,6}$/));
const shaped = fc
  .tuple(fc.constantFrom('', 'v', 'V', '=', ' '), num, num, num, fc.array(preId, { maxLength: 4 }), fc.constantFrom('', '+build', '.', '-', '+'))
  .map(([v, a, b, c, pre, tail]) => `${v}${a}.${b}.${c}${pre.length ? `-${pre.join('.')}` : ''}${tail}`);
const noise = fc.stringMatching(/^[v0-9.xX^~<>=*| -]{0,16}$/);

t.test('exactVersion agrees with semver.valid on every version-shaped text', async () => {
  fc.assert(
    fc.property(fc.oneof(shaped, noise), (text) => {
      if (exactVersion(text) !== bySemver(text)) throw new Error(`${JSON.stringify(text)}: exactVersion ${exactVersion(text)}, semver ${bySemver(text)}`);
    }),
    runs(3000),
  );
});

t.test('the edges semver draws', async (t) => {
  t.equal(exactVersion('v0.18.2'), '0.18.2');
  t.equal(exactVersion('0.19.0-rc1.2'), '0.19.0-rc1.2');
  t.equal(exactVersion('01.2.3'), undefined, 'leading zero in a number');
  t.equal(exactVersion('1.2.3-01'), undefined, 'leading zero in a numeric prerelease identifier');
  t.equal(exactVersion('1.2.3-0a'), '1.2.3-0a', 'an alphanumeric identifier may start with 0');
  t.equal(exactVersion('1.2.3-rc..1'), undefined, 'empty identifier');
  t.equal(exactVersion('9007199254740992.0.0'), undefined, 'past Number.MAX_SAFE_INTEGER');
  const longest = `1.2.3-${'a'.repeat(250)}`; // 256 characters: semver's MAX_LENGTH
  t.equal(exactVersion(longest), longest);
  t.equal(exactVersion(`${longest}a`), undefined, 'longer than semver takes');
  t.equal(exactVersion(`v${longest}`), longest, 'the v does not count');
  t.equal(bySemver(`${longest}a`), undefined, 'semver draws the same line');
  t.same(parseVersionSpec('01.2.3'), { kind: 'tag', spec: '01.2.3', tag: '01.2.3' }, 'not exact, not a range: a tag, as before');
});
