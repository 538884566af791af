import t from 'tap';
import { directTag, parseVersionSpec, selectTag } from '../../src/resolve/version-spec.js';

// The moby/buildkit tag families (facts §8), in the unsorted order registry 2.8 lists them.
const TAGS = [
  'v0.18.1', 'v0.18.2-rootless', 'v0.17.3', 'v0.18.2', 'v0.18.2-ubuntu', 'v0.19.0-rc1', 'v0.19.0-rc2-rootless',
  'v0.19.0-rc2', 'v0.19.0-rc2-ubuntu', 'v0.13.0-beta1', 'v0.18.1-rootless', 'latest', 'rootless', 'buildx-stable-1',
  'buildx-stable-1-rootless', 'master', 'master-rootless', 'nightly', 'v0.20.0-ubuntu', 'v0.10.0',
];
const plain = { rootless: false };
const rootless = { rootless: true };

t.test('a range picks the highest final release, never a prerelease or another flavour', async (t) => {
  t.equal(selectTag(parseVersionSpec('^0.18'), TAGS, plain), 'v0.18.2');
  t.equal(selectTag(parseVersionSpec('0.18'), TAGS, plain), 'v0.18.2');
  t.equal(selectTag(parseVersionSpec('>=0.17 <0.18.2'), TAGS, plain), 'v0.18.1');
  t.equal(selectTag(parseVersionSpec('*'), TAGS, plain), 'v0.18.2', '-rc and -ubuntu-only versions are not chosen');
  t.equal(selectTag(parseVersionSpec('^0.20'), TAGS, plain), undefined, 'v0.20.0-ubuntu alone does not satisfy');
  t.equal(selectTag(parseVersionSpec('^1'), TAGS, plain), undefined);
});

t.test('a range that names a prerelease admits prereleases', async (t) => {
  t.equal(selectTag(parseVersionSpec('^0.19.0-rc1'), TAGS, plain), 'v0.19.0-rc2');
  t.equal(selectTag(parseVersionSpec('>=0.13.0-beta1 <0.14'), TAGS, plain), 'v0.13.0-beta1');
  t.equal(selectTag(parseVersionSpec('^0.19'), TAGS, plain), undefined, 'without a named prerelease, rc tags are ignored');
});

t.test('rootless picks the -rootless flavour, which semver must not read as a prerelease', async (t) => {
  t.equal(selectTag(parseVersionSpec('^0.18'), TAGS, rootless), 'v0.18.2-rootless');
  t.equal(selectTag(parseVersionSpec('<0.18.2'), TAGS, rootless), 'v0.18.1-rootless');
  t.equal(selectTag(parseVersionSpec('^0.19.0-rc1'), TAGS, rootless), 'v0.19.0-rc2-rootless');
  t.equal(selectTag(parseVersionSpec('^0.17'), TAGS, rootless), undefined, 'v0.17.3 has no rootless twin here');
});

t.test('exact versions and plain tags name one tag, in the asked flavour', async (t) => {
  t.equal(directTag(parseVersionSpec('v0.18.2'), plain), 'v0.18.2');
  t.equal(directTag(parseVersionSpec('0.18.2'), plain), 'v0.18.2', 'BuildKit tags carry the v');
  t.equal(directTag(parseVersionSpec('v0.19.0-rc1'), rootless), 'v0.19.0-rc1-rootless');
  t.equal(directTag(parseVersionSpec('buildx-stable-1'), plain), 'buildx-stable-1');
  t.equal(directTag(parseVersionSpec('buildx-stable-1'), rootless), 'buildx-stable-1-rootless');
  t.equal(directTag(parseVersionSpec('master'), rootless), 'master-rootless');
  t.equal(directTag(parseVersionSpec('latest'), rootless), 'rootless', 'latest has no latest-rootless');
  t.equal(directTag(parseVersionSpec('v0.18.2-rootless'), rootless), 'v0.18.2-rootless', 'not doubled');
  t.equal(directTag(parseVersionSpec('^0.18'), plain), undefined, 'a range needs the tag list');
  t.equal(selectTag(parseVersionSpec('v0.18.2'), TAGS, plain), 'v0.18.2');
  t.equal(selectTag(parseVersionSpec('v0.18.3'), TAGS, plain), undefined, 'an exact tag must be listed');
  t.equal(selectTag(parseVersionSpec('nightly'), TAGS, rootless), undefined, 'nightly-rootless is not listed');
});

t.test('10,000 tags in registry order', async (t) => {
  const tags: string[] = [];
  for (let minor = 0; minor < 100; minor++) {
    for (let patch = 0; patch < 25; patch++) {
      tags.push(`v1.${minor}.${patch}`, `v1.${minor}.${patch}-rootless`, `v1.${minor}.${patch}-ubuntu`, `v1.${minor}.${patch}-rc1`);
    }
  }
  tags.reverse();
  t.equal(tags.length, 10_000);
  t.equal(selectTag(parseVersionSpec('^1.42'), tags, plain), 'v1.99.24', 'caret on 1.x spans minors');
  t.equal(selectTag(parseVersionSpec('~1.42.3'), tags, plain), 'v1.42.24');
  t.equal(selectTag(parseVersionSpec('~1.42.3'), tags, rootless), 'v1.42.24-rootless');
  t.equal(selectTag(parseVersionSpec('1.7.x'), tags, plain), 'v1.7.24');
});
