// The BuildKit settings that need a builder of our own are named as the user wrote them.
import t from 'tap';
import { buildkitConfigReasons } from '../../src/builder/driver.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';

function config(buildkit: Partial<Config['buildkit']>, buildkitd: Partial<Config['buildkitd']> = {}): Config {
  const c = defaultConfig();
  return { ...c, buildkit: { ...c.buildkit, ...buildkit }, buildkitd: { ...c.buildkitd, ...buildkitd } };
}

t.test('each reason names the key the user set, and only that', async (t) => {
  const cases: [string, Config, string[]][] = [
    ['defaults', config({}), []],
    ['only buildkit.image', config({ image: '127.0.0.1:5000/moby/buildkit' }), ['buildkit.image is 127.0.0.1:5000/moby/buildkit']],
    ['only buildkit.version', config({ version: '^0.18' }), ['buildkit.version pins BuildKit ^0.18']],
    ['both', config({ version: 'v0.18.2', image: 'harbor.corp/moby/buildkit' }), ['buildkit.version pins BuildKit v0.18.2', 'buildkit.image is harbor.corp/moby/buildkit']],
    ['buildkitd settings', config({}, { config: 'base.toml', flags: ['--debug'] }), ['buildkitd.config sets a BuildKit daemon config', 'buildkitd.flags sets BuildKit daemon flags']],
  ];
  for (const [name, c, want] of cases) t.same(buildkitConfigReasons(c), want, name);
});
