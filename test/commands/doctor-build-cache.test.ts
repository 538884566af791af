// doctor's build-cache line (issue 20 item 9): where prefix mode's cache goes, and whether the
// docker config — what buildx's session hands BuildKit — has credentials for its registry.
import t from 'tap';
import { join } from 'node:path';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { buildCacheCheck, type DoctorFacts } from '../../src/doctor/checks.js';
import { buildCacheFacts } from '../../src/doctor/facts.js';

const cfg = (over: Partial<Config['buildCache']> = {}, dir = ''): Config => ({ ...defaultConfig(), cache: { dir }, buildCache: { ...defaultConfig().buildCache, ...over } });
const check = (config: Config, env: Record<string, string>) => buildCacheCheck({ buildCache: buildCacheFacts(config, env) } as DoctorFacts);

t.test('GitLab registry without a docker login: a warning with the login line', async (t) => {
  const home = t.testdir({ '.docker': { 'config.json': '{"auths":{}}' } });
  const env = { HOME: home, GITLAB_CI: 'true', CI_REGISTRY_IMAGE: 'registry.gitlab.example:5050/grp/app' };
  const [c] = check(cfg(), env);
  t.equal(c?.verdict, 'warn');
  t.match(c?.detail, /^registry registry\.gitlab\.example:5050\/grp\/app\/cache: BuildKit reads and writes it with the docker config's credentials, which have none for registry\.gitlab\.example:5050; run docker login/);
});

t.test('credentials in the docker config (auths with a URL key, or a helper): ok', async (t) => {
  const home = t.testdir({ '.docker': { 'config.json': JSON.stringify({ auths: { 'https://registry.gitlab.example:5050/v1/': { auth: 'eDp5' } } }) } });
  t.match(check(cfg({ ref: 'registry.gitlab.example:5050/grp/c' }), { HOME: home }), [{ verdict: 'ok', detail: /the docker config has credentials for registry\.gitlab\.example:5050/ }]);
  const dockerConfig = t.testdir({ 'config.json': JSON.stringify({ credHelpers: { 'ecr.example': 'ecr-login' } }) });
  t.match(check(cfg({ ref: 'ecr.example/app/cache' }), { DOCKER_CONFIG: dockerConfig }), [{ verdict: 'ok' }]);
});

t.test('loopback registry, local directory, off', async (t) => {
  const home = t.testdir({});
  t.match(check(cfg({ ref: '127.0.0.1:5000/c' }), { HOME: home }), [{ verdict: 'ok', detail: /loopback registry, no credentials needed/ }]);
  t.match(check(cfg({}, '/ci/cache'), { HOME: home }), [{ verdict: 'ok', detail: `local: ${join('/ci/cache', 'build')} (cache that directory between jobs)` }]);
  t.match(check(cfg(), { HOME: home }), [{ verdict: 'ok', detail: /^off: no cache/ }]);
});
