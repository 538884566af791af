// Scale-out for real: the `remote` driver against a real buildkitd that this test starts on the
// host (loopback TCP, mutual TLS from harness certificates), and a two-node docker-container
// builder across two engine dockerds, linux/amd64 on the first and linux/386 on the second, with
// one `--platform linux/amd64,linux/386` build producing both. Both buildx versions.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireEngines, startEngineDockerd, type RealBuildkit } from '../helpers/engines.js';
import { pairs, realWorld, lastLine, tempDir } from '../helpers/real-world.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { makeCa, makeClientCert, makeServerCert } from '../helpers/tls.js';
import { dockerOutput } from '../helpers/docker-out.js';

t.setTimeout(600_000);

function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${lastLine(r)}\n${r.stderr.slice(-3000)}` : ''}`);
}

interface HostBuildkitd {
  addr: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  root: string;
}

/** A real buildkitd on the host (OCI worker, Debian runc) on loopback TCP with mutual TLS; stopped by pid. */
async function startHostBuildkitd(t: Test, kit: RealBuildkit): Promise<HostBuildkitd> {
  const dir = tempDir(t, 'bxb-buildkitd-');
  const ca = await makeCa(dir);
  const server = await makeServerCert(ca, dir);
  const client = await makeClientCert(ca, dir);
  const root = join(dir, 'root');
  mkdirSync(root);
  const port = await freePort();
  const addr = `tcp://127.0.0.1:${port}`;
  const log = openSync(join(dir, 'buildkitd.log'), 'a');
  const child = spawn(
    kit.buildkitd,
    ['--addr', addr, '--tlscacert', ca.certFile, '--tlscert', server.certFile, '--tlskey', server.keyFile, '--root', root, '--oci-worker=true', '--containerd-worker=false'],
    { stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  t.teardown(async () => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  const tls = ['--addr', addr, '--tlscacert', ca.certFile, '--tlscert', client.certFile, '--tlskey', client.keyFile];
  for (let i = 0; ; i++) {
    const r = await run(kit.buildctl, [...tls, 'debug', 'workers']);
    if (r.code === 0) break;
    if (child.exitCode !== null || i > 100) throw new Error(`buildkitd did not come up: ${readFileSync(join(dir, 'buildkitd.log'), 'utf8').slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return { addr, ca: ca.certFile, clientCert: client.certFile, clientKey: client.keyFile, root };
}

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const engines = requireEngines(t);
for (const pair of engines ? pairs(engines) : []) {
  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: the remote driver over mutual TLS, a real build`, async (t) => {
    const w = await realWorld(t, pair);
    const kitd = await startHostBuildkitd(t, pair.kit);
    const dir = w.project(
      { builder: { name: 'far', driver: 'remote', endpoint: kitd.addr, driverOpts: { cacert: kitd.ca, cert: kitd.clientCert, key: kitd.clientKey } } },
      { Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\n', 'hello.txt': 'built far away\n' },
    );
    const r = await runCli(['--', 'docker', 'buildx', 'build', '--output', 'type=local,dest=out', '.'], { cwd: dir, env: w.env });
    ok(t, r, 'build through the remote builder');
    t.equal(readFileSync(join(dir, 'out', 'hello.txt'), 'utf8'), 'built far away\n', 'the build produced its output');
    const inspect = await w.docker(['buildx', 'inspect', 'far']);
    t.match(inspect.stdout, /Driver:\s+remote/, 'a remote builder');
    t.match(inspect.stdout, new RegExp(`Endpoint:\\s+${kitd.addr}`), 'at the host buildkitd');
    t.match(inspect.stdout, /Status:\s+running/);
    const du = await run(pair.kit.buildctl, ['--addr', kitd.addr, '--tlscacert', kitd.ca, '--tlscert', kitd.clientCert, '--tlskey', kitd.clientKey, 'du', '--verbose']);
    t.equal(du.code, 0, du.stderr);
    t.match(du.stdout, /local source for context/, 'the host buildkitd holds the build context: the build ran there');
    t.same((await dockerOutput(w.dockerd, ['ps', '-aq'])).trim(), '', 'no BuildKit container on the daemon');
  });

  t.test(`buildx ${pair.buildx.version} + BuildKit ${pair.kit.version}: two nodes on two daemons, one build for linux/amd64 and linux/386`, async (t) => {
    const w = await realWorld(t, pair);
    const second = await startEngineDockerd(t);
    const config = {
      buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: pair.kit.version },
      builder: {
        name: 'wide',
        platforms: ['linux/amd64'],
        driverOpts: { network: 'host' },
        nodes: [{ endpoint: second.host, name: 'wide-386', platforms: ['linux/386'], driverOpts: { network: 'host' } }],
      },
    };
    // Each platform's RUN records the platform it was built for. The machine's static busybox is
    // amd64, so `uname -m` says x86_64 on both nodes; which node built which platform is shown by
    // each node's own build cache below.
    const dockerfile = 'FROM scratch\nCOPY busybox /bin/busybox\nARG TARGETPLATFORM\nRUN ["/bin/busybox", "sh", "-c", "echo $TARGETPLATFORM > /platform.txt"]\n';
    const dir = w.project(config, { Dockerfile: dockerfile });
    await run('cp', ['/bin/busybox', join(dir, 'busybox')]);
    const r = await runCli(['--', 'docker', 'buildx', 'build', '--platform', 'linux/amd64,linux/386', '--output', 'type=local,dest=out', '.'], { cwd: dir, env: w.env });
    ok(t, r, 'the two-platform build');
    const inspect = await w.docker(['buildx', 'inspect', 'wide']);
    t.match(inspect.stdout, /Name:\s+wide-386/, 'the second node is part of the builder');
    const first = (await dockerOutput(w.dockerd, ['ps', '--format', '{{.Names}}'])).trim();
    const other = (await dockerOutput(second, ['ps', '--format', '{{.Names}}'])).trim();
    t.equal(first, 'buildx_buildkit_wide0', 'one BuildKit container on the first daemon');
    t.equal(other, 'buildx_buildkit_wide-386', 'one on the second');
    t.ok(existsSync(join(dir, 'out', 'linux_amd64', 'platform.txt')) && existsSync(join(dir, 'out', 'linux_386', 'platform.txt')), 'both platforms were built');
    t.equal(readFileSync(join(dir, 'out', 'linux_amd64', 'platform.txt'), 'utf8').trim(), 'linux/amd64', 'a RUN step ran for linux/amd64');
    t.equal(readFileSync(join(dir, 'out', 'linux_386', 'platform.txt'), 'utf8').trim(), 'linux/386', 'and one for linux/386');
    for (const [d, name] of [[w.dockerd, 'buildx_buildkit_wide0'], [second, 'buildx_buildkit_wide-386']] as const) {
      // Each node's cache holds an exec record of its own platform's RUN (the build arg differs).
      const du = await d.docker(['exec', name, 'buildctl', 'du', '--verbose']);
      t.match(du.stdout, /local source for context/, `${name} got the build context`);
      t.match(du.stdout, /mount \/ from exec/, `${name} ran a RUN step`);
    }
  });
}
