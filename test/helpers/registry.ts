// Real registries for tests: Debian's `docker-registry serve CONFIG` (distribution 2.8.2) on
// 127.0.0.1:<free port> with a temp storage dir. Variants: plain HTTP, htpasswd Basic auth, TLS
// with a CA the harness makes, Bearer tokens from test/helpers/token-server.ts, and pull-through
// cache (`proxy.remoteurl`), like Harbor/Nexus in front of Docker Hub.
//
// Requests are counted from the registry's access log (gorilla CombinedLoggingHandler on stdout,
// DIST@v2.8.2 registry/registry.go), so a test can assert that a registry was never contacted.
// The harness's own requests (readiness polls, pushes) carry HARNESS_USER_AGENT and are left out.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, harnessRequest, harnessTempDir, HARNESS_USER_AGENT, type TeardownHost } from './net.js';
import { makeCa, makeServerCert, type CertAuthority } from './tls.js';
import type { TokenServer } from './token-server.js';
import bcrypt from 'bcryptjs';

export interface RegistryOptions {
  /** htpasswd Basic auth with these users. */
  basicAuth?: Record<string, string>;
  /** Bearer-token auth against this token server (start it with startTokenServer). */
  tokenAuth?: TokenServer;
  /** Serve HTTPS with a certificate from a fresh CA (or from `ca` when given). */
  tls?: boolean | { ca?: CertAuthority; dnsNames?: string[] };
  /** Pull-through cache of this upstream registry URL (`proxy.remoteurl`). */
  proxy?: { remoteUrl: string; username?: string; password?: string };
  /** Reuse a storage dir (e.g. pre-seeded); default: a fresh temp dir. */
  storageDir?: string;
  /** Bound on the start-up wait; default 20 s. */
  startTimeoutMs?: number;
}

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  scheme: 'http' | 'https';
  storageDir: string;
  /** The registry's CA certificate (PEM file) when it serves TLS. */
  caFile: string | undefined;
  /** PEM text of that CA. */
  caCert: string | undefined;
  pid: number;
  /** HTTP requests the registry served to anything but the harness itself. */
  requests(): number;
  /** `METHOD /path STATUS` of those requests, in log order. */
  requestLog(): string[];
  accessLog(): AccessLogEntry[];
  /**
   * Waits until every request answered so far is in the access log (the log line is written
   * after the response, so read counts after this). Throws when that cannot be shown within
   * its bound, rather than let a count read a partial log.
   */
  settle(): Promise<void>;
  /** Everything the registry printed (for failure diagnostics). */
  output(): string;
  stop(): Promise<void>;
}

// `"GET /v2/ HTTP/1.1" 200 2 "" "UA"` — Apache combined format written by gorilla/handlers.
const SETTLE_TIMEOUT_MS = 10_000;

const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

export async function startRegistry(t: TeardownHost, opts: RegistryOptions = {}): Promise<RunningRegistry> {
  let lastError: unknown;
  // The free port is only reserved until we close it; retry if another process grabbed it.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(t, opts);
    } catch (error) {
      lastError = error;
      if (!/address already in use/i.test(String(error))) break;
    }
  }
  throw lastError;
}

async function startOnce(t: TeardownHost, opts: RegistryOptions): Promise<RunningRegistry> {
  const workDir = harnessTempDir('bxb-registry-');
  let stopped = false;
  let child: ChildProcess | undefined;
  // Resolves when the process exited and its stdout/stderr (the access log) were read to the end.
  let closed: Promise<void> = Promise.resolve();
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 5000);
      await closed;
      clearTimeout(timer);
    }
    rmSync(workDir, { recursive: true, force: true });
  };
  t.teardown(stop);

  const storageDir = opts.storageDir ?? join(workDir, 'storage');
  mkdirSync(storageDir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  // Sent on every answer: the readiness probe knows it reached this registry, not another one
  // started at the same moment that took the same free port (this one then exits, port in use).
  const marker = randomBytes(8).toString('hex');

  const http: Record<string, unknown> = {
    addr: host,
    secret: randomBytes(16).toString('hex'),
    headers: { 'X-Content-Type-Options': ['nosniff'], 'X-Bxb-Registry': [marker] },
  };
  let ca: CertAuthority | undefined;
  if (opts.tls) {
    const tlsOpts = typeof opts.tls === 'object' ? opts.tls : {};
    ca = tlsOpts.ca ?? (await makeCa(workDir));
    const server = await makeServerCert(ca, workDir, 'registry', tlsOpts.dnsNames ?? []);
    http.tls = { certificate: server.certFile, key: server.keyFile };
  }
  let auth: Record<string, unknown> | undefined;
  if (opts.basicAuth) {
    const file = join(workDir, 'htpasswd');
    writeFileSync(file, `${Object.entries(opts.basicAuth).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`).join('\n')}\n`);
    auth = { htpasswd: { realm: 'basic-realm', path: file } };
  } else if (opts.tokenAuth) {
    const ts = opts.tokenAuth;
    auth = { token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootcertbundle: ts.rootCertFile } };
  }
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http,
    ...(auth ? { auth } : {}),
    ...(opts.proxy
      ? {
          proxy: {
            remoteurl: opts.proxy.remoteUrl,
            ...(opts.proxy.username ? { username: opts.proxy.username, password: opts.proxy.password ?? '' } : {}),
          },
        }
      : {}),
  };
  // JSON is YAML; the registry's parser (yaml.v2) reads it as is.
  const configFile = join(workDir, 'config.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  let output = '';
  const entries: AccessLogEntry[] = [];
  let pending = '';
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const m = ACCESS_LINE.exec(line);
      if (m) entries.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), userAgent: m[4]! });
    }
  };
  // A clean environment: distribution maps REGISTRY_* variables onto its config.
  child = spawn('docker-registry', ['serve', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: workDir },
  });
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  closed = new Promise<void>((resolve) => child!.once('close', () => resolve()));
  const spawnError = new Promise<never>((_, reject) => {
    child!.once('error', (e) => reject(new Error(`docker-registry could not start: ${e.message}`)));
    child!.once('exit', (code, signal) =>
      reject(new Error(`docker-registry exited (${code ?? signal}) during start-up: ${lastLines(output)}`)),
    );
  });
  spawnError.catch(() => undefined);

  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://${host}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  for (;;) {
    const probe = harnessRequest(`${url}/v2/`, { ca: ca?.cert, timeoutMs: 1000 }).then(
      (r) => (r.status === 200 || r.status === 401) && r.headers['x-bxb-registry'] === marker,
      () => false,
    );
    if (await Promise.race([probe, spawnError])) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry on ${host} not ready after ${opts.startTimeoutMs ?? 20_000} ms: ${lastLines(output)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const visible = (): AccessLogEntry[] => entries.filter((e) => !e.userAgent.includes(HARNESS_USER_AGENT));
  let settleCounter = 0;
  return {
    url,
    host,
    port,
    scheme,
    storageDir,
    caFile: ca?.certFile,
    caCert: ca?.cert,
    pid: child.pid!,
    requests: () => visible().length,
    requestLog: () => visible().map((e) => `${e.method} ${e.path} ${e.status}`),
    accessLog: () => visible().map((e) => ({ ...e })),
    output: () => output,
    settle: async () => {
      // A stopped registry's log is complete once its output streams closed.
      if (stopped) return closed;
      // The registry logs requests in the order it answers them; once the marker (sent after
      // every request under test was answered) is in the log, so is everything before it.
      const marker = `/v2/?bxb-settle=${++settleCounter}`;
      const answered = await harnessRequest(`${url}${marker}`, { ca: ca?.cert, timeoutMs: SETTLE_TIMEOUT_MS }).then(
        () => undefined,
        (e: unknown) => String(e),
      );
      if (answered !== undefined) throw new Error(`registry ${host}: settle request failed (${answered}); request counts would be partial`);
      const until = Date.now() + SETTLE_TIMEOUT_MS;
      while (!entries.some((e) => e.path === marker)) {
        if (Date.now() > until) throw new Error(`registry ${host}: settle marker not in the access log after ${SETTLE_TIMEOUT_MS} ms; request counts would be partial`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop,
  };
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}
