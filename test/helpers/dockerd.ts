// Starts a private dockerd 20.10 (Debian docker.io) for one test: its own data-root, exec-root,
// pidfile and socket, no bridge/iptables, so it never touches the system daemon or the host's
// network. Without `--containerd`, dockerd 20.10 supervises its own containerd whose socket and
// state live under `<exec-root>/containerd` and `<data-root>/containerd` (MOBY@v20.10.24
// `cmd/dockerd/daemon_unix.go` initContainerD, `libcontainerd/supervisor`), so two instances with
// different roots run side by side. dockerd 29 (moby v2) does the same: its managed containerd
// keeps socket and state under `<exec-root>/containerd` and its root under the data-root, and
// with the containerd image store the images and snapshots live in that containerd, so
// per-instance exec-root and data-root keep two daemons and their stores apart (checked in
// test/helpers-dockerd.test.ts: one containerd per daemon, its argv under that daemon's dir).
// The containerd binary is the one on the daemon's PATH (`pathPrefix`).
//
// The `tls` variant listens on tcp://127.0.0.1:<free port> with --tlsverify and a CA/server/client
// set made with openssl, and hands back DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH the way the
// GitLab `docker:dind` service's clients see them.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { makeCa, makeClientCert, makeServerCert } from './tls.js';

const execFileP = promisify(execFile);

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface DockerdOptions {
  /** Listen on tcp://127.0.0.1:<free port> with mutual TLS instead of a unix socket. */
  tls?: boolean;
  /** With `tls`: this port instead of a free one (2376 for a client that derives tcp://docker:2376). */
  port?: number;
  /** With `tls`: extra DNS names in the server certificate (e.g. `docker`, GitLab's service alias). */
  tlsNames?: string[];
  /** dockerd binary (default /usr/sbin/dockerd). */
  dockerd?: string;
  /** Docker CLI used for the readiness probe (default `docker` from PATH). */
  dockerCli?: string;
  /** Extra dockerd arguments, e.g. ['--registry-mirror', 'http://127.0.0.1:5000']. */
  extraArgs?: string[];
  /** Bound for the readiness wait (default 30 s). */
  readyTimeoutMs?: number;
  /**
   * Directories put first on the daemon's PATH. dockerd starts the `containerd` it finds on PATH,
   * and containerd the `containerd-shim-runc-v2` it finds there (dockerd 29: engines.ts).
   */
  pathPrefix?: string[];
  /** Extra environment for the daemon process (e.g. DOCKER_MIN_API_VERSION). */
  daemonEnv?: Record<string, string>;
}

export interface DockerdEnv {
  DOCKER_HOST: string;
  DOCKER_TLS_VERIFY?: string;
  DOCKER_CERT_PATH?: string;
}

export interface Dockerd {
  /** `unix:///tmp/bxd-…/docker.sock` or `tcp://127.0.0.1:PORT`. */
  host: string;
  /** Environment a docker client needs to reach this daemon (merge over a clean env). */
  env: DockerdEnv;
  pid: number;
  /** Root of everything this instance owns (data-root, exec-root, certs, log). */
  dir: string;
  /** dockerd's own log, for diagnostics. */
  logFile: string;
  /** Client cert dir (ca.pem, cert.pem, key.pem) for the tls variant. */
  certPath?: string;
  /** Runs the docker CLI against this daemon; never throws on a non-zero exit. */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Stops the daemon (SIGTERM, bounded wait, SIGKILL) and removes its directories. Idempotent. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 15_000;

export async function startDockerd(t: TeardownHost, opts: DockerdOptions = {}): Promise<Dockerd> {
  // Unix socket paths are limited to 108 bytes and containerd nests its sockets under exec-root,
  // so the instance lives in a short /tmp dir rather than a (deep) t.testdir.
  const dir = mkdtempSync('/tmp/bxd-');
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'x');
  const pidfile = join(dir, 'dockerd.pid');
  const logFile = join(dir, 'dockerd.log');
  mkdirSync(dataRoot);
  mkdirSync(execRoot);

  const env: DockerdEnv = { DOCKER_HOST: '' };
  const args = [
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', pidfile,
    '--bridge=none', '--iptables=false', '--ip-forward=false', '--ip-masq=false',
    // No host config file may leak in (mirrors, insecure registries, …).
    '--config-file', writeEmptyDaemonJson(dir),
  ];
  let certPath: string | undefined;
  if (opts.tls) {
    const port = opts.port ?? (await freePort());
    const certs = await makeCerts(join(dir, 'certs'), opts.tlsNames);
    certPath = certs.clientDir;
    env.DOCKER_HOST = `tcp://127.0.0.1:${port}`;
    env.DOCKER_TLS_VERIFY = '1';
    env.DOCKER_CERT_PATH = certs.clientDir;
    args.push('-H', env.DOCKER_HOST, '--tlsverify', '--tlscacert', certs.ca, '--tlscert', certs.serverCert, '--tlskey', certs.serverKey);
  } else {
    env.DOCKER_HOST = `unix://${join(dir, 'docker.sock')}`;
    args.push('-H', env.DOCKER_HOST);
  }
  args.push(...(opts.extraArgs ?? []));

  const logFd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(opts.dockerd ?? '/usr/sbin/dockerd', args, {
    stdio: ['ignore', logFd, logFd],
    env: { PATH: [...(opts.pathPrefix ?? []), process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':'), ...(opts.daemonEnv ?? {}) },
  });
  closeSync(logFd);
  let exited = child.exitCode !== null;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const pid = child.pid ?? -1;

  const cli = opts.dockerCli ?? 'docker';
  const clientEnv = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: dir,
    DOCKER_CONFIG: join(dir, 'client-config'),
    ...env,
  });
  const docker: Dockerd['docker'] = (cmdArgs, o = {}) =>
    new Promise((resolve) => {
      const p = execFile(cli, cmdArgs, { env: clientEnv(), timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
      if (o.input !== undefined) p.stdin?.end(o.input);
      else p.stdin?.end();
    });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!exited && pid > 0) {
        signal(pid, 'SIGTERM');
        await Promise.race([exitedP, sleep(STOP_GRACE_MS)]);
        if (!exited) {
          signal(pid, 'SIGKILL');
          await Promise.race([exitedP, sleep(5_000)]);
        }
      }
      // After a clean stop dockerd has already stopped containerd and the shims; after a SIGKILL
      // they survive. Only processes whose command line names this instance's dir are touched.
      await killLeftovers(dir);
      await unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopped;
  };
  t.teardown(stop);

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      const log = safeRead(logFile);
      await stop();
      throw new Error(`dockerd exited before it was ready; log tail:\n${tail(log, 15)}`);
    }
    const r = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 });
    if (r.code === 0 && r.stdout.trim()) break;
    if (Date.now() > deadline) {
      const log = safeRead(logFile);
      await stop();
      throw new Error(`dockerd not ready within ${opts.readyTimeoutMs ?? 30_000} ms: ${r.stderr.trim()}\nlog tail:\n${tail(log, 15)}`);
    }
    await sleep(200);
  }

  return { host: env.DOCKER_HOST, env, pid, dir, logFile, ...(certPath ? { certPath } : {}), docker, stop };
}

function writeEmptyDaemonJson(dir: string): string {
  const f = join(dir, 'daemon.json');
  writeFileSync(f, '{}\n');
  return f;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

function tail(s: string, n: number): string {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

/** containerd and containerd-shim processes of this instance (their argv contain `dir`). */
async function killLeftovers(dir: string): Promise<void> {
  const mine: number[] = [];
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const pid = Number(ent);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${ent}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.split('\0').some((a) => a.startsWith(dir + '/'))) mine.push(pid);
  }
  if (mine.length === 0) return;
  for (const pid of mine) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && mine.some(alive)) await sleep(100);
  for (const pid of mine) if (alive(pid)) signal(pid, 'SIGKILL');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Lazily unmounts whatever (overlay, shm, netns) is still mounted under `dir`, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const points = safeRead('/proc/self/mountinfo')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      await execFileP('umount', ['-l', p], { timeout: 10_000 });
    } catch {
      // best effort; rmSync reports what is still busy
    }
  }
}

export { freePort };

/** CA + server cert (IP SAN 127.0.0.1) + client cert, laid out as `docker:dind` writes /certs. */
export async function makeCerts(dir: string, serverNames: string[] = []): Promise<{ ca: string; serverCert: string; serverKey: string; clientDir: string }> {
  const client = join(dir, 'client');
  mkdirSync(client, { recursive: true });
  const ca = await makeCa(dir, 'ca', 'bxb test dind CA');
  const server = await makeServerCert(ca, dir, 'server', serverNames);
  const pair = await makeClientCert(ca, dir, 'client-cert');
  // DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem.
  writeFileSync(join(client, 'ca.pem'), ca.cert);
  writeFileSync(join(client, 'cert.pem'), pair.cert);
  writeFileSync(join(client, 'key.pem'), pair.key, { mode: 0o600 });
  return { ca: ca.certFile, serverCert: server.certFile, serverKey: server.keyFile, clientDir: client };
}
