// Where credentials come from, as a user arranges them: config.json, a credential helper on
// PATH, DOCKER_AUTH_CONFIG, GitLab CI variables.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Secrets } from '../../src/io.js';
import { createCredentialStore, normalizeRegistryHost } from '../../src/registry/credentials.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function store(env: Record<string, string | undefined>) {
  const secrets = new Secrets();
  return { secrets, credentials: createCredentialStore({ env, secrets }) };
}

t.test('config.json auths: host keys with or without scheme, Docker Hub key, username/password fields', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      auths: {
        'registry.example.com:5000': { auth: b64('alice:pa:ss-word') },
        'https://harbor.corp.example': { auth: b64('robot$ci:Harbor-Secret') },
        'https://index.docker.io/v1/': { auth: b64('hubuser:Hub-Token-123') },
        'plain.example': { username: 'u', password: 'Plain-Pass' },
        'token.example': { identitytoken: 'Identity-Token-xyz' },
      },
    }),
  });
  const { credentials, secrets } = store({ DOCKER_CONFIG: dir });
  t.same(await credentials.get('registry.example.com:5000'), { username: 'alice', password: 'pa:ss-word' });
  t.same(await credentials.get('harbor.corp.example'), { username: 'robot$ci', password: 'Harbor-Secret' });
  t.same(await credentials.get('harbor.corp.example:443'), { username: 'robot$ci', password: 'Harbor-Secret' });
  t.same(await credentials.get('registry-1.docker.io'), { username: 'hubuser', password: 'Hub-Token-123' });
  t.same(await credentials.get('docker.io'), { username: 'hubuser', password: 'Hub-Token-123' });
  t.same(await credentials.get('plain.example'), { username: 'u', password: 'Plain-Pass' });
  t.same(await credentials.get('token.example'), { identityToken: 'Identity-Token-xyz' });
  t.equal(await credentials.get('registry.example.com'), undefined, 'the port is part of the key');
  t.equal(await credentials.get('elsewhere.example'), undefined);
  t.equal(
    secrets.redact(`pa:ss-word Harbor-Secret ${b64('alice:pa:ss-word')} Identity-Token-xyz`),
    '**** **** **** ****',
    'every secret found is redacted from output',
  );
});

t.test('a missing or broken config.json means no credentials, with a warning for the broken one', async (t) => {
  const root = t.testdir({ empty: {}, broken: { 'config.json': '{"auths": {' } });
  const none = store({ DOCKER_CONFIG: join(root, 'empty') });
  t.equal(await none.credentials.get('registry.example.com'), undefined);
  t.same(none.credentials.warnings(), []);
  const broken = store({ DOCKER_CONFIG: join(root, 'broken') });
  t.equal(await broken.credentials.get('registry.example.com'), undefined);
  t.match(broken.credentials.warnings()[0], /config\.json: not valid JSON/);
});

t.test('HOME/.docker is used when DOCKER_CONFIG is unset', async (t) => {
  const home = t.testdir({ '.docker': { 'config.json': JSON.stringify({ auths: { 'r.example': { auth: b64('h:Home-Pass') } } }) } });
  const { credentials } = store({ HOME: home });
  t.same(await credentials.get('r.example'), { username: 'h', password: 'Home-Pass' });
});

function writeHelper(binDir: string, name: string, logFile: string): void {
  // A fake docker-credential-<name> implementing the `get` action of the helper protocol. Each
  // helper logs its own name and answers with its own credentials, so a test can tell which one
  // was asked and whose credentials were used.
  const script = [
    '#!/bin/sh',
    `[ "$1" = get ] || { echo "unsupported $1" >&2; exit 2; }`,
    'read -r server',
    `echo "${name} $server" >> '${logFile}'`,
    'case "$server" in',
    `  helper.example|per-host.example) echo '{"ServerURL":"'"$server"'","Username":"${name}-user","Secret":"${name}-Secret-1"}' ;;`,
    '  https://index.docker.io/v1/) echo \'{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"Hub-Identity-Token"}\' ;;',
    '  broken.example) echo "keychain locked" >&2; exit 3 ;;',
    '  *) echo "credentials not found in native keychain"; exit 1 ;;',
    'esac',
    '',
  ].join('\n');
  const file = join(binDir, `docker-credential-${name}`);
  writeFileSync(file, script);
  chmodSync(file, 0o755);
}

t.test('credHelpers and credsStore run docker-credential-<name> get with the server URL on stdin', async (t) => {
  const root = t.testdir({ bin: {}, conf: {} });
  const bin = join(root, 'bin');
  const log = join(root, 'helper.log');
  writeHelper(bin, 'store', log);
  writeHelper(bin, 'perhost', log);
  writeFileSync(
    join(root, 'conf', 'config.json'),
    JSON.stringify({
      credsStore: 'store',
      credHelpers: { 'per-host.example': 'perhost' },
      auths: { 'fallback.example': { auth: b64('file-user:File-Pass') }, 'helper.example': {}, 'per-host.example': { auth: b64('file-user:File-Pass') } },
    }),
  );
  const { credentials, secrets } = store({ DOCKER_CONFIG: join(root, 'conf'), PATH: `${bin}:/usr/bin:/bin` });
  t.same(await credentials.get('helper.example'), { username: 'store-user', password: 'store-Secret-1' }, 'credsStore answers for a host with no credHelpers entry');
  t.same(await credentials.get('registry-1.docker.io'), { identityToken: 'Hub-Identity-Token' }, 'Username <token> is an identity token');
  t.same(await credentials.get('fallback.example'), { username: 'file-user', password: 'File-Pass' }, 'not found in the store → auths');
  t.same(await credentials.get('per-host.example'), { username: 'perhost-user', password: 'perhost-Secret-1' }, "credHelpers wins over credsStore and over auths: the per-host helper's credentials are used");
  t.equal(await credentials.get('broken.example'), undefined);
  t.same(
    readFileSync(log, 'utf8').trim().split('\n'),
    ['store helper.example', 'store https://index.docker.io/v1/', 'store fallback.example', 'perhost per-host.example', 'store broken.example'],
    'each host asked exactly one helper: per-host.example only its credHelpers entry, the rest the credsStore',
  );
  t.equal(credentials.warnings().length, 1, 'only the failing helper is reported, not "not found"');
  t.match(credentials.warnings()[0], 'docker-credential-store failed for broken.example (exit 3): keychain locked');
  t.equal(secrets.redact('store-Secret-1 perhost-Secret-1 Hub-Identity-Token'), '**** **** ****');
  await credentials.get('helper.example');
  t.equal(readFileSync(log, 'utf8').trim().split('\n').length, 5, 'one helper call per host');
});

t.test('a helper that is not installed is a warning, not a crash', async (t) => {
  const root = t.testdir({ conf: { 'config.json': JSON.stringify({ credsStore: 'desktop' }) }, bin: {} });
  const { credentials } = store({ DOCKER_CONFIG: join(root, 'conf'), PATH: join(root, 'bin') });
  t.equal(await credentials.get('r.example'), undefined);
  t.match(credentials.warnings()[0], 'credential helper docker-credential-desktop could not run (ENOENT)');
});

t.test('DOCKER_AUTH_CONFIG is used, ahead of config.json', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ auths: { 'r.example': { auth: b64('file:File-Pass') } } }) });
  const env = {
    DOCKER_CONFIG: dir,
    DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'r.example': { auth: b64('env:Env-Pass-1') }, 'https://only-env.example': { auth: b64('e2:Env-Pass-2') } } }),
  };
  const { credentials, secrets } = store(env);
  t.same(await credentials.get('r.example'), { username: 'env', password: 'Env-Pass-1' });
  t.same(await credentials.get('only-env.example'), { username: 'e2', password: 'Env-Pass-2' });
  t.equal(secrets.redact(env.DOCKER_AUTH_CONFIG), '****', 'the whole variable is a secret');
  const bad = store({ DOCKER_AUTH_CONFIG: 'not json' });
  t.equal(await bad.credentials.get('r.example'), undefined);
  t.match(bad.credentials.warnings()[0], 'DOCKER_AUTH_CONFIG is not valid JSON');
});

t.test('GitLab CI: project registry and Dependency Proxy variables', async (t) => {
  const home = t.testdir();
  const env = {
    HOME: home,
    CI_REGISTRY: 'registry.gitlab.example:5050',
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: 'Job-Token-abc123',
    CI_DEPENDENCY_PROXY_SERVER: 'gitlab.example:443',
    CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX: 'gitlab.example:443/my-group/dependency_proxy/containers',
    CI_DEPENDENCY_PROXY_USER: 'gitlab-ci-token',
    CI_DEPENDENCY_PROXY_PASSWORD: 'Proxy-Token-xyz789',
  };
  const { credentials, secrets } = store(env);
  t.same(await credentials.get('registry.gitlab.example:5050'), { username: 'gitlab-ci-token', password: 'Job-Token-abc123' });
  t.same(await credentials.get('gitlab.example:443'), { username: 'gitlab-ci-token', password: 'Proxy-Token-xyz789' });
  t.same(await credentials.get('gitlab.example'), { username: 'gitlab-ci-token', password: 'Proxy-Token-xyz789' }, 'default port 443 is the same host');
  t.equal(await credentials.get('registry.gitlab.example'), undefined);
  t.equal(secrets.redact('Job-Token-abc123 / Proxy-Token-xyz789'), '**** / ****', 'job secrets are redacted before any lookup');

  const prefixOnly = store({ HOME: home, CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX: 'gl.example:8443/g/dependency_proxy/containers', CI_DEPENDENCY_PROXY_USER: 'u', CI_DEPENDENCY_PROXY_PASSWORD: 'Proxy-Pass' });
  t.same(await prefixOnly.credentials.get('gl.example:8443'), { username: 'u', password: 'Proxy-Pass' }, 'host of the image prefix');
});

t.test('registry keys normalise like docker ConvertToHostname', async (t) => {
  t.equal(normalizeRegistryHost('https://index.docker.io/v1/'), 'docker.io');
  t.equal(normalizeRegistryHost('registry-1.docker.io'), 'docker.io');
  t.equal(normalizeRegistryHost('HTTP://Registry.Example.com:5000/some/path'), 'registry.example.com:5000');
  t.equal(normalizeRegistryHost('harbor.example:443'), 'harbor.example');
});

t.test('credentials from a helper reach a real registry', async (t) => {
  const { requireBinaries } = await import('../helpers/integration.js');
  if (!requireBinaries(t, ['docker-registry'])) return;
  const { startRegistry } = await import('../helpers/registry.js');
  const { pushEngineTags } = await import('../helpers/engine-image.js');
  const { createRegistryClient } = await import('../../src/registry/client.js');
  const reg = await startRegistry(t, { basicAuth: { 'helper-user': 'Helper-Secret-1' } });
  await pushEngineTags(reg, { tags: { 'v0.18.2': {} }, auth: { username: 'helper-user', password: 'Helper-Secret-1' } });
  const root = t.testdir({ bin: {}, conf: {} });
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  const file = join(bin, 'docker-credential-reg');
  writeFileSync(file, `#!/bin/sh\nread -r s\n[ "$s" = "${reg.host}" ] && echo '{"ServerURL":"${reg.host}","Username":"helper-user","Secret":"Helper-Secret-1"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`);
  chmodSync(file, 0o755);
  writeFileSync(join(root, 'conf', 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'reg' } }));
  const env = { DOCKER_CONFIG: join(root, 'conf'), PATH: `${bin}:/usr/bin:/bin` };
  const secrets = new Secrets();
  const client = createRegistryClient({ host: reg.host }, { credentials: createCredentialStore({ env, secrets }), secrets, env, timeoutMs: 5000 });
  t.teardown(() => client.close());
  t.same(await client.listTags('moby/buildkit'), ['v0.18.2']);
});

// Found by test/properties/registry.test.ts: the warning quoted a failing helper's stdout, credential and all.
t.test('a helper that fails after printing a credential: the warning does not quote it', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ credsStore: 'fake' }) });
  const s = createCredentialStore({
    env: { DOCKER_CONFIG: dir },
    secrets: new Secrets(),
    runHelper: async () => ({ code: 1, stdout: '{"Username":"ci","Secret":"hunter2-secret"}\n', stderr: '' }),
  });
  t.equal(await s.get('harbor.corp'), undefined);
  t.same(s.warnings(), ['credential helper docker-credential-fake failed for harbor.corp (exit 1)']);
  const plain = createCredentialStore({ env: { DOCKER_CONFIG: dir }, secrets: new Secrets(), runHelper: async () => ({ code: 1, stdout: 'keychain locked\n', stderr: '' }) });
  await plain.get('harbor.corp');
  t.match(plain.warnings()[0], /\(exit 1\): keychain locked$/, 'a plain error message is still shown');
});
