// The Engine API module against a real dockerd 20.10: over the unix socket, over TCP with mutual
// TLS from the environment, and through a docker context's endpoint and TLS files. Each answer
// is compared with what the docker CLI prints for the same call, and `command` shows the API
// answered (not a silent fall-back to the CLI).
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEngineClient, resolveEngineEndpoint, withEngineApi } from '../../src/docker/engine/index.js';
import { daemonImageStore, imageStoreFromDriverStatus, inspectDaemon } from '../../src/docker/daemon.js';
import { inspectLocalImages } from '../../src/docker/images.js';
import { createDockerRunner, type DockerRunner } from '../../src/docker/runner.js';
import { sha256 } from '../../src/state.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { writeTar } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { startRegistry } from '../helpers/registry.js';
import { createRegistryAuth } from '../../src/docker/registry-auth.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { Secrets } from '../../src/io.js';

const viaApi = /\(engine API /;

function runners(env: Record<string, string | undefined>): { cli: DockerRunner; api: DockerRunner } {
  const cli = createDockerRunner({ env });
  return { cli, api: withEngineApi(cli) };
}

async function importImage(d: Dockerd, dir: string, ref: string): Promise<void> {
  const tar = join(dir, 'rootfs.tar');
  writeFileSync(tar, writeTar([{ name: 'hello.txt', type: 'file', data: Buffer.from(`hello ${ref}\n`) }]));
  const r = await d.docker(['import', tar, ref]);
  if (r.code !== 0) throw new Error(r.stderr);
}

t.test('endpoint resolution follows the docker CLI (pure files, no daemon)', async (t) => {
  const dir = t.testdir({});
  const env = { HOME: dir, DOCKER_CONFIG: dir };
  t.match(await resolveEngineEndpoint(env), { kind: 'unix', socketPath: '/var/run/docker.sock' }, 'nothing set: the default socket');
  t.match(await resolveEngineEndpoint({ ...env, DOCKER_HOST: 'tcp://127.0.0.1:2375' }), { kind: 'tcp', host: '127.0.0.1', port: 2375, tls: undefined });
  t.equal(await resolveEngineEndpoint({ ...env, DOCKER_HOST: 'ssh://me@127.0.0.1' }), undefined, 'ssh:// is the CLI\'s job');
  const id = sha256('ctx');
  mkdirSync(join(dir, 'contexts', 'meta', id), { recursive: true });
  writeFileSync(join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: 'ctx', Endpoints: { docker: { Host: 'unix:///tmp/ctx.sock' } } }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ currentContext: 'ctx' }));
  t.match(await resolveEngineEndpoint(env), { kind: 'unix', socketPath: '/tmp/ctx.sock' }, 'config.json currentContext');
  t.match(await resolveEngineEndpoint({ ...env, DOCKER_HOST: 'unix:///tmp/h.sock' }), { socketPath: '/tmp/h.sock' }, 'DOCKER_HOST beats currentContext');
  t.match(await resolveEngineEndpoint({ ...env, DOCKER_HOST: 'unix:///tmp/h.sock', DOCKER_CONTEXT: 'ctx' }), { socketPath: '/tmp/ctx.sock' }, 'DOCKER_CONTEXT beats DOCKER_HOST');
  t.equal(await resolveEngineEndpoint({ ...env, DOCKER_CONTEXT: 'missing' }), undefined, 'an unknown context is left to the CLI');
});

t.test('the image store is read from /info DriverStatus (pure)', async (t) => {
  t.equal(imageStoreFromDriverStatus([['driver-type', 'io.containerd.snapshotter.v1']]), 'containerd', 'Docker 29 default');
  t.equal(imageStoreFromDriverStatus([['Backing Filesystem', 'extfs'], ['Supports d_type', 'true']]), 'classic', 'overlay2 graph driver');
  t.equal(imageStoreFromDriverStatus([['driver-type', 'something-else']]), 'classic');
  t.equal(imageStoreFromDriverStatus(null), 'classic', 'vfs reports no pairs');
});

t.test('unix socket: version, image inspect, tag, save, load and container inspect match the CLI', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker'])) return;
  const d = await startDockerd(t);
  const dir = t.testdir({});
  const env = { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'cfg'), ...d.env };
  const { cli, api } = runners(env);

  const version = await api.run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}']);
  t.match(version.command, viaApi);
  t.equal(version.stdout, (await cli.run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}'])).stdout);
  t.same(await inspectDaemon(api), await inspectDaemon(cli));
  const store = await api.run(['info', '--format', '{{json .DriverStatus}}']);
  t.match(store.command, viaApi);
  t.equal(store.stdout, (await cli.run(['info', '--format', '{{json .DriverStatus}}'])).stdout, 'DriverStatus as the CLI prints it');
  t.equal(await daemonImageStore(api), 'classic', "Debian's dockerd 20.10 keeps the classic image store");

  await importImage(d, dir, 'local/one:v1');
  const facts = await inspectLocalImages(api, ['local/one:v1', 'local/absent:v1']);
  t.equal(facts.get('local/one:v1')?.present, true);
  t.equal(facts.get('local/absent:v1')?.present, false, 'a missing image is told apart from a failure');
  t.same(facts, await inspectLocalImages(cli, ['local/one:v1', 'local/absent:v1']), 'the same facts as through the CLI');

  const id = (await api.run(['image', 'inspect', '--format', '{{.Id}}', 'local/one:v1'])).stdout.trim();
  t.match(id, /^sha256:[0-9a-f]{64}$/);
  const missing = await api.run(['image', 'inspect', '--format', '{{.Id}}', 'local/absent:v1']);
  t.equal(missing.exitCode, 1);
  t.match(missing.stderr, /No such image: local\/absent:v1/);

  const tagged = await api.run(['tag', id, 'localhost:1/alias/one:v2']);
  t.match(tagged, { exitCode: 0, command: viaApi });
  t.match((await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'localhost:1/alias/one:v2'])).stdout.trim(), id, 'the daemon has the new tag (registry host with a port)');

  const tar = join(dir, 'one.tar');
  t.match(await api.run(['save', '-o', tar, 'local/one:v1']), { exitCode: 0, command: viaApi });
  t.ok(statSync(tar).size > 1024, 'save streamed the image to the file');
  t.match(readFileSync(tar).subarray(0, 1024).toString('latin1'), /\0/, 'a tar archive');
  const badSave = await api.run(['save', '-o', join(dir, 'absent.tar'), 'local/absent:v1']);
  t.equal(badSave.exitCode, 1);
  t.notOk(existsSync(join(dir, 'absent.tar')), 'no partial file left behind');

  t.equal((await d.docker(['rmi', 'local/one:v1', 'localhost:1/alias/one:v2'])).code, 0);
  const loaded = await api.run(['load', '-i', tar]);
  t.match(loaded, { exitCode: 0, command: viaApi });
  t.equal((await cli.run(['image', 'inspect', '--format', '{{.Id}}', 'local/one:v1'])).stdout.trim(), id, 'load brought the same image back');
  const notTar = join(dir, 'not.tar');
  writeFileSync(notTar, 'this is not a tar archive');
  const badLoad = await api.run(['load', '-i', notTar]);
  t.equal(badLoad.exitCode, 1, 'a broken archive fails like docker load does');
  t.ok(badLoad.stderr.trim(), 'with the daemon\'s reason');
  const noArchive = await api.run(['load', '-i', join(dir, 'missing.tar')]);
  t.equal(noArchive.exitCode, 1, 'a missing archive fails like docker load does');
  t.match(noArchive.stderr, /missing\.tar.*no such file or directory/, 'naming the file');

  t.equal((await d.docker(['create', '--name', 'c1', '--network', 'none', 'local/one:v1', '/hello.txt'])).code, 0);
  const container = await api.run(['container', 'inspect', '--format', '{{.Image}}', 'c1']);
  t.match(container, { exitCode: 0, stdout: `${id}\n`, command: viaApi });
  t.equal((await api.run(['container', 'inspect', '--format', '{{.Image}}', 'nope'])).exitCode, 1);

  // The lease image's import (an empty layer from stdin), as `docker import - REF` prints it.
  const imported = await api.run(['import', '-', 'local/lease:1'], { input: '\0'.repeat(1024) });
  t.match(imported, { exitCode: 0, command: viaApi, stdout: /^sha256:[0-9a-f]{64}\n$/ });
  t.equal((await cli.run(['image', 'inspect', '--format', '{{.Id}}', 'local/lease:1'])).stdout, imported.stdout, 'the daemon has it under that name and ID');
  const notTarImport = await api.run(['import', '-', 'local/lease:2'], { input: 'not a tar archive' });
  t.equal(notTarImport.exitCode, 1, 'a broken archive fails like docker import does');
});

t.test('TCP with mutual TLS: from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH and from a docker context', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker', 'openssl'])) return;
  const d = await startDockerd(t, { tls: true });
  const dir = t.testdir({});
  const env = { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'cfg'), ...d.env };
  const { cli, api } = runners(env);
  const version = await api.run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}']);
  t.match(version, { exitCode: 0, command: viaApi });
  t.equal(version.stdout, (await cli.run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}'])).stdout);

  // Without the client certificate the daemon refuses the handshake: the CLI answers instead,
  // with its own wording, as it would have without the API.
  const noCerts = { ...env, DOCKER_CERT_PATH: join(dir, 'empty') };
  mkdirSync(noCerts.DOCKER_CERT_PATH, { recursive: true });
  const refused = await withEngineApi(createDockerRunner({ env: noCerts })).run(['version', '--format', '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}']);
  t.not(refused.exitCode, 0);
  t.notMatch(refused.command, viaApi, 'fell back to the CLI');

  const certs = d.certPath!;
  const created = await cli.run(['context', 'create', 'dind', '--docker', `host=${d.host},ca=${join(certs, 'ca.pem')},cert=${join(certs, 'cert.pem')},key=${join(certs, 'key.pem')}`]);
  t.equal(created.exitCode, 0, created.stderr);
  const ctxEnv = { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'cfg'), DOCKER_CONTEXT: 'dind' };
  const endpoint = await resolveEngineEndpoint(ctxEnv);
  t.match(endpoint, { kind: 'tcp', host: '127.0.0.1', tls: { skipVerify: false } });
  const info = await (await createEngineClient(endpoint!)).json<{ Version: string }>({ path: '/version' });
  t.equal(`${info?.Version}`, version.stdout.split(' ')[0], 'the context\'s TLS files reach the same daemon');
});

t.test('pull from an htpasswd registry with the credentials resolve reads: X-Registry-Auth over the API, the per-run config for the CLI; nothing on disk after', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker', 'docker-registry'])) return;
  const [d, registry] = await Promise.all([startDockerd(t), startRegistry(t, { basicAuth: { 'gitlab-ci-token': 'Job-Token-abc123' } })]);
  const dir = t.testdir({ home: {} });
  const image = buildEngineImage({ version: 'v0.0.1', platforms: ['linux/amd64'], index: false, flavour: 'base-image' });
  await pushImage(registry, 'group/project/mirror/library/base', ['1'], image, { auth: { username: 'gitlab-ci-token', password: 'Job-Token-abc123' } });
  const ref = `${registry.host}/group/project/mirror/library/base:1`;
  const env = {
    PATH: process.env.PATH,
    HOME: join(dir, 'home'),
    TMPDIR: dir,
    ...d.env,
    CI_REGISTRY: registry.host,
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: 'Job-Token-abc123',
  };
  const { cli, api } = runners(env);
  const auth = createRegistryAuth({ env, credentials: createCredentialStore({ env, secrets: new Secrets() }), hosts: [registry.host] });
  const registryAuth = { header: await auth.engineAuthHeader(registry.host), cliEnv: () => auth.childEnv() };

  const anonymous = await api.run(['pull', ref]);
  t.equal(anonymous.exitCode, 1, 'without credentials the daemon is refused');
  t.match(anonymous.stderr, /no basic auth credentials|unauthorized/i);

  const viaApiPull = await api.run(['pull', ref], { registryAuth });
  t.match(viaApiPull, { exitCode: 0, command: viaApi }, `the API pull succeeds: ${viaApiPull.stderr}`);
  t.match(viaApiPull.stdout, /Downloaded newer image|Image is up to date|Pull complete/, 'progress as the CLI shows it');
  t.equal(auth.dir, undefined, 'the API pull wrote no docker config');
  await registry.settle();
  t.ok(registry.requestLog().some((l) => /^HEAD \/v2\/group\/project\/mirror\/library\/base\/manifests\/1 200$/.test(l)), `the registry served the manifest to the authenticated pull: ${registry.requestLog().join(', ')}`);

  t.equal((await d.docker(['rmi', ref])).code, 0);
  const viaCli = await cli.run(['pull', ref], { registryAuth });
  t.equal(viaCli.exitCode, 0, `the docker CLI pull (BXB_ENGINE_API=0, ssh://) succeeds with the per-run config: ${viaCli.stderr}`);
  t.notMatch(viaCli.command, /Job-Token/, 'no secret in the argv');
  const privateDir = auth.dir!;
  t.ok(existsSync(privateDir));
  await auth.dispose();
  t.notOk(existsSync(privateDir), 'the per-run config is gone after the run');
  t.notOk(existsSync(join(dir, 'home', '.docker', 'config.json')), "no docker config was written in the user's home");
});
