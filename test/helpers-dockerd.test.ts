// The dockerd harness itself: two private daemons side by side (a unix socket one and a
// DinD-like TLS one), each reachable only through what startDockerd hands back.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { requireBinaries as requireBinariesLoose } from './helpers/integration.js';
import { startDockerd } from './helpers/dockerd.js';
import { loadLocalOnlyImage } from './helpers/local-image.js';

// integration.ts types `t.skip` as (message) => void, narrower than tap's overloads; bridge it here.
const requireBinaries = (t: Test, names: string[]): boolean =>
  requireBinariesLoose(t as unknown as Parameters<typeof requireBinariesLoose>[0], names);

t.test('a unix-socket daemon and a TLS daemon run at the same time', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker', 'containerd', 'openssl'])) return;
  const [plain, tls] = await Promise.all([startDockerd(t), startDockerd(t, { tls: true })]);

  t.match(plain.host, /^unix:\/\/\/tmp\/bxd-[^/]+\/docker\.sock$/);
  t.ok(plain.host.length < 100, 'socket path fits the 108-byte limit');
  t.match(tls.env, { DOCKER_HOST: /^tcp:\/\/127\.0\.0\.1:\d+$/, DOCKER_TLS_VERIFY: '1' });
  t.ok(tls.env.DOCKER_CERT_PATH && existsSync(`${tls.env.DOCKER_CERT_PATH}/ca.pem`) && existsSync(`${tls.env.DOCKER_CERT_PATH}/cert.pem`) && existsSync(`${tls.env.DOCKER_CERT_PATH}/key.pem`));

  // Each daemon has its own store: a volume made on one is not seen by the other.
  t.equal((await plain.docker(['volume', 'create', 'only-on-plain'])).code, 0);
  const onTls = await tls.docker(['volume', 'ls', '-q']);
  t.equal(onTls.code, 0, onTls.stderr);
  t.notMatch(onTls.stdout, /only-on-plain/);
  t.match((await plain.docker(['volume', 'ls', '-q'])).stdout, /only-on-plain/);

  // The TLS daemon refuses a client without the certs.
  const { execFile } = await import('node:child_process');
  const noCerts = await new Promise<number>((resolve) =>
    execFile('docker', ['version'], { env: { PATH: process.env.PATH, HOME: plain.dir, DOCKER_HOST: tls.host, DOCKER_CONFIG: `${plain.dir}/nocfg` }, timeout: 20_000 }, (err) =>
      resolve(err ? 1 : 0),
    ),
  );
  t.equal(noCerts, 1, 'plain client rejected by the --tlsverify daemon');

  const pid = plain.pid;
  await plain.stop();
  t.notOk(existsSync(plain.dir), 'stop removes the instance dir');
  t.throws(() => process.kill(pid, 0), 'dockerd process is gone');
  await tls.stop();
  t.notOk(existsSync(tls.dir));
});

t.test('dockerd 29 runs beside itself with the containerd store and the classic store, each with its own containerd', async (t) => {
  const { requireDaemon, startEngineDockerd } = await import('./helpers/engines.js');
  if (!requireDaemon(t, 'dockerd-29-containerd')) return;
  const [cd, classic] = await Promise.all([startEngineDockerd(t, { daemon: 'dockerd-29-containerd' }), startEngineDockerd(t, { daemon: 'dockerd-29-classic' })]);
  t.equal(cd.imageStore, 'containerd', 'the default store of a fresh dockerd 29');
  t.equal(classic.imageStore, 'classic', 'with --feature containerd-snapshotter=false');
  t.match((await cd.docker(['version', '--format', '{{.Server.Version}}'])).stdout, /^\d+\./);
  // Each daemon supervises its own containerd, with its state under that daemon's own directory.
  const cmdlines = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  });
  for (const d of [cd, classic]) {
    const own = cmdlines.filter((argv) => /(^|\/)containerd$/.test(argv[0] ?? '') && argv.some((a) => a.startsWith(`${d.dir}/`)));
    t.equal(own.length, 1, `one containerd under ${d.daemon}'s own directory`);
  }
  // A container runs on each (runc 1.5 behind the capability shim): the time namespace dockerd 29 asks for.
  for (const d of [cd, classic]) {
    await loadLocalOnlyImage(t, d, 'bxb-test/sh:1', { how: 'import', applets: ['sh', 'echo'] });
    const run = await d.docker(['run', '--rm', '--network', 'none', 'bxb-test/sh:1', '/bin/echo', 'hello']);
    t.equal(run.stdout, 'hello\n', `a container runs on the ${d.imageStore} store${run.code ? `: ${run.stderr}` : ''}`);
  }
  const image = await cd.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RepoDigests}}', 'bxb-test/sh:1']);
  t.match(image.stdout, /^sha256:[0-9a-f]{64} \["bxb-test\/sh@sha256:[0-9a-f]{64}"\]/, 'containerd store: even an imported image has a repo digest');
  const onClassic = await classic.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'bxb-test/sh:1']);
  t.equal(onClassic.stdout.trim(), '[]', 'classic store: an imported image has none');
});
