// The credentials we hand to docker and buildx (src/docker/registry-auth.ts), as the docker CLI
// will read them: the per-run DOCKER_CONFIG layers only what we alone know over the user's config,
// keeps the rest of the user's directory reachable, honours docker/cli's helper precedence, and
// leaves nothing behind; the Engine API pull gets an X-Registry-Auth header.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Secrets } from '../../src/io.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { everyFile, filesHolding } from '../helpers/files.js';
import { buildCredentialHosts, createRegistryAuth, encodeRegistryAuth, HELPER_NAME, hostOf } from '../../src/docker/registry-auth.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const JOB_TOKEN = 'glcbt-Job-Token-1234567890';

function setup(t: Test, userConfig: Record<string, unknown> | undefined, env: Record<string, string> = {}) {
  const root = t.testdir({ home: {}, tmp: {}, bin: {} });
  const dockerDir = join(root, 'home', '.docker');
  mkdirSync(join(dockerDir, 'cli-plugins'), { recursive: true });
  mkdirSync(join(dockerDir, 'contexts', 'meta'), { recursive: true });
  writeFileSync(join(dockerDir, 'cli-plugins', 'docker-buildx'), '#!/bin/sh\n', { mode: 0o755 });
  const configText = userConfig ? `${JSON.stringify(userConfig, null, 4)}\n` : undefined;
  if (configText) writeFileSync(join(dockerDir, 'config.json'), configText);
  const fullEnv: Record<string, string> & { TMPDIR: string; HOME: string } = {
    HOME: join(root, 'home'),
    TMPDIR: join(root, 'tmp'),
    PATH: `${join(root, 'bin')}:${process.env.PATH ?? ''}`,
    CI_REGISTRY: 'registry.gitlab.example',
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: JOB_TOKEN,
    ...env,
  };
  const secrets = new Secrets();
  const credentials = createCredentialStore({ env: fullEnv, secrets });
  const auth = createRegistryAuth({ env: fullEnv, credentials, hosts: ['registry.gitlab.example', 'harbor.corp.example:8443'] });
  return { root, dockerDir, configText, env: fullEnv, auth, secrets };
}

/** A credential helper on PATH that logs each call and answers from a fixed table. */
function fakeHelper(binDir: string, name: string, table: Record<string, { Username: string; Secret: string }>): string {
  const log = join(binDir, `${name}.log`);
  const script = `#!/bin/sh
read url
echo "$1 $url" >> '${log}'
case "$url" in
${Object.entries(table)
  .map(([k, v]) => `  '${k}') echo '${JSON.stringify({ ServerURL: k, ...v })}'; exit 0;;`)
  .join('\n')}
esac
echo 'credentials not found in native keychain'
exit 1
`;
  writeFileSync(join(binDir, `docker-credential-${name}`), script, { mode: 0o755 });
  return log;
}

/** What `docker-credential-<name> get` answers for `url` in the child's environment. */
function askHelper(env: Record<string, string>, name: string, url: string): { code: number; stdout: string } {
  const r = spawnSync(`docker-credential-${name}`, ['get'], { input: `${url}\n`, env, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout };
}

t.test('no helper configured: our hosts get `auths` entries in a private copy; the user config is untouched and removed with the run', async (t) => {
  const user = { auths: { 'other.example': { auth: b64('me:Mine-Secret') } }, currentContext: 'default', psFormat: 'table {{.ID}}' };
  const { dockerDir, configText, env, auth } = setup(t, user);
  const child = await auth.childEnv();
  const dir = child.DOCKER_CONFIG!;
  t.not(dir, dockerDir, 'a directory of its own');
  t.ok(dir.startsWith(env.TMPDIR), 'under TMPDIR');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'only the user can enter it');
  const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }>; currentContext: string; psFormat: string };
  t.equal(statSync(join(dir, 'config.json')).mode & 0o777, 0o600, 'the config with the secret is readable by the user only');
  t.same(written.auths['registry.gitlab.example'], { auth: b64(`gitlab-ci-token:${JOB_TOKEN}`) }, 'the job token for $CI_REGISTRY, under the exact host');
  t.same(written.auths['other.example'], user.auths['other.example'], "the user's own entries stay");
  t.equal(written.psFormat, user.psFormat, 'and every other setting');
  t.notOk('harbor.corp.example:8443' in written.auths, 'a host without credentials gets no entry');
  t.equal(readlinkSync(join(dir, 'cli-plugins')), join(dockerDir, 'cli-plugins'), 'cli-plugins stay reachable');
  t.equal(readlinkSync(join(dir, 'contexts')), join(dockerDir, 'contexts'), 'contexts stay reachable');
  t.equal(child.BUILDX_CONFIG, join(dockerDir, 'buildx'), "buildx's store stays the user's");
  t.notOk(child.PATH, 'no helper, no PATH change');
  t.equal(readFileSync(join(dockerDir, 'config.json'), 'utf8'), configText, "the user's config.json is byte-identical");
  const report = await auth.report();
  t.same(report, [
    { host: 'registry.gitlab.example', source: 'CI_REGISTRY_USER/CI_REGISTRY_PASSWORD', handedOver: true },
    { host: 'harbor.corp.example:8443', source: undefined, handedOver: false },
  ]);
  await auth.dispose();
  t.notOk(existsSync(dir), 'the private directory is gone');
  t.same(everyFile(env.TMPDIR), [], 'nothing is left under TMPDIR');
  t.same(filesHolding([env.HOME], 'gitlab-ci-token', JOB_TOKEN), [], 'no file under HOME holds the token');
});

t.test('a global credsStore: our hosts go to our helper through credHelpers, which answers for them and nothing else; the secret is never in argv, env or config.json', async (t) => {
  const { root, configText, dockerDir, env, auth } = setup(t, { credsStore: 'desktop', auths: { 'registry.gitlab.example': {} } });
  const storeLog = fakeHelper(join(root, 'bin'), 'desktop', { 'mine.example': { Username: 'me', Secret: 'Desktop-Secret' } });
  const child = await auth.childEnv();
  const childEnv = { ...env, ...child };
  const written = JSON.parse(readFileSync(join(child.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { credsStore: string; credHelpers: Record<string, string>; auths: Record<string, unknown> };
  t.equal(written.credsStore, 'desktop', "the user's store still answers for every other host");
  t.same(written.credHelpers, { 'registry.gitlab.example': HELPER_NAME }, 'our host is routed to our helper (auths would be ignored under a credsStore)');
  t.notMatch(JSON.stringify(written), JOB_TOKEN, 'config.json holds no secret');
  t.notMatch(JSON.stringify(child), JOB_TOKEN, 'nor does the environment');
  const answer = askHelper(childEnv, HELPER_NAME, 'registry.gitlab.example');
  t.equal(answer.code, 0);
  t.same(JSON.parse(answer.stdout), { ServerURL: 'registry.gitlab.example', Username: 'gitlab-ci-token', Secret: JOB_TOKEN }, 'our helper answers for our host');
  const other = askHelper(childEnv, HELPER_NAME, 'mine.example');
  t.equal(other.code, 1, 'and for no other host');
  t.match(other.stdout, /credentials not found/);
  t.same(JSON.parse(askHelper(childEnv, 'desktop', 'mine.example').stdout).Secret, 'Desktop-Secret', "the user's store still answers for its hosts");
  t.match(readFileSync(storeLog, 'utf8'), /get registry\.gitlab\.example/, 'the store was asked first for our host (it had nothing)');
  t.equal(readFileSync(join(dockerDir, 'config.json'), 'utf8'), configText, "the user's config.json is byte-identical");
  const dir = child.DOCKER_CONFIG!;
  await auth.dispose();
  t.notOk(existsSync(dir), 'the helper and its secret file are gone with the run');
});

t.test("a credHelpers entry of the user's that answers for the host wins: nothing of ours is added, the child keeps the user's config", async (t) => {
  const { root, env, auth } = setup(t, { credHelpers: { 'registry.gitlab.example': 'corp' } });
  const log = fakeHelper(join(root, 'bin'), 'corp', { 'registry.gitlab.example': { Username: 'robot', Secret: 'Corp-Secret' } });
  t.same(await auth.childEnv(), {}, 'no private config: docker and buildx read the user\'s, where the helper answers');
  t.equal(auth.dir, undefined, 'no directory made');
  t.same(JSON.parse(askHelper(env, 'corp', 'registry.gitlab.example').stdout).Secret, 'Corp-Secret');
  t.match(readFileSync(log, 'utf8'), /get registry\.gitlab\.example/, 'the helper was asked');
  t.same((await auth.report())[0], { host: 'registry.gitlab.example', source: 'credHelpers (docker-credential-corp)', handedOver: false }, 'doctor names the helper as the source');
  await auth.dispose();
});

t.test('the engine pull header carries the credential for the host as the Engine API reads it', async (t) => {
  const { auth } = setup(t, undefined);
  const header = await auth.engineAuthHeader('registry.gitlab.example');
  t.same(JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), { username: 'gitlab-ci-token', password: JOB_TOKEN, serveraddress: 'registry.gitlab.example' });
  t.equal(await auth.engineAuthHeader('harbor.corp.example:8443'), undefined, 'no credential, no header');
  t.same(JSON.parse(Buffer.from(encodeRegistryAuth({ identityToken: 'Id-Tok' }, 'registry-1.docker.io'), 'base64url').toString('utf8')), { identitytoken: 'Id-Tok', serveraddress: 'https://index.docker.io/v1/' }, 'Docker Hub under its auth key');
  t.equal(auth.dir, undefined, 'the header needs no directory');
});

t.test('the hosts BuildKit will ask, spelled as it asks them (pure)', async (t) => {
  const mirrors = [
    { host: 'harbor.corp.example', path: 'dockerhub-proxy', for: 'docker.io', ca: '', http: false, insecure: false },
    { host: 'gitlab.example.com:443', path: 'group/dependency_proxy/containers', for: 'docker.io', ca: '', http: false, insecure: false, origin: 'gitlab-dependency-proxy' },
  ];
  const hosts = buildCredentialHosts(
    { mirrors, registries: { 'ghcr.io': {} } },
    { CI_REGISTRY: 'gitlab.example.com:5050', CI_DEPENDENCY_PROXY_SERVER: 'gitlab.example.com:443', DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'https://quay.io/v1/': { auth: 'x' } } }) },
  );
  t.same(hosts, ['harbor.corp.example', 'gitlab.example.com:443', 'docker.io', 'ghcr.io', 'gitlab.example.com:5050', 'quay.io']);
  t.equal(hostOf('gitlab.example.com:5050/group/project/cache:main'), 'gitlab.example.com:5050', 'a cache reference names its host');
  t.equal(hostOf('library/alpine'), 'docker.io');
});

