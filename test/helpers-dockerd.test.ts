// The dockerd harness itself: two private daemons side by side (a unix socket one and a
// DinD-like TLS one), each reachable only through what startDockerd hands back.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { requireBinaries as requireBinariesLoose } from './helpers/integration.js';
import { startDockerd } from './helpers/dockerd.js';

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
