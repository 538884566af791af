import t from 'tap';
import { hostPlatform, normalizePlatform, splitPlatforms } from '../../src/dockerfile/platform.js';

t.test('platforms normalise the way BuildKit compares them', async (t) => {
  const cases: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['LINUX/ARM64', 'linux/arm64'],
    ['arm64', 'linux/arm64'],
    ['linux/386', 'linux/386'],
    ['windows/amd64', 'windows/amd64'],
  ];
  for (const [input, want] of cases) t.equal(normalizePlatform(input), want, input);
  t.throws(() => normalizePlatform('linux/amd64/v2/x'), /invalid platform/);
  t.throws(() => normalizePlatform(''), /invalid platform/);
  t.same(splitPlatforms(['linux/amd64,linux/arm64', 'linux/aarch64', ' ']), ['linux/amd64', 'linux/arm64']);
  t.equal(hostPlatform('x64'), 'linux/amd64');
  t.equal(hostPlatform('arm64'), 'linux/arm64');
});
