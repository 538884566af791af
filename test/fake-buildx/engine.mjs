// The docker-container driver, driven through the real docker CLI against the real daemon the way
// BX driver/docker-container/driver.go does it through the API: Info (container state), Version
// (`buildkitd --version`, 4 fields), Bootstrap (pull → local fallback → create → copy config →
// start → `buildctl debug workers` with back-off), Rm. The container is NOT privileged: privileged
// containers cannot start on the test machines (runc "unable to apply caps").
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BuildxError, atLeast } from './util.mjs';

export const DEFAULT_IMAGE = 'moby/buildkit:buildx-stable-1';

/** Runs docker with the given global args; resolves {code, stdout, stderr}. */
export function dockerRunner(cx, endpoint) {
  const bin = cx.env.DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND || 'docker';
  const env = { ...cx.env };
  delete env.DOCKER_CLI_PLUGIN_SOCKET;
  delete env.DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND;
  const globals = ['--config', cx.configDir];
  // `default` is the environment's own daemon: same flags and env as this invocation got.
  if (endpoint === undefined || endpoint === 'default') {
    globals.push(...cx.dockerGlobalArgs);
  } else if (cx.contexts().includes(endpoint)) {
    globals.push('--context', endpoint);
    for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_TLS']) delete env[k];
  } else {
    globals.push('-H', endpoint, ...cx.tlsArgs);
    delete env.DOCKER_HOST;
    delete env.DOCKER_CONTEXT;
  }
  return (args, { input } = {}) =>
    new Promise((resolve) => {
      const p = spawn(bin, [...globals, ...args], { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', (err) => resolve({ code: 127, stdout, stderr: String(err.message) }));
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      if (p.stdin) {
        // docker may exit before reading its input; the EPIPE is not the command's result.
        p.stdin.on('error', () => undefined);
        p.stdin.end(input);
      }
    });
}

/** The message the API error would carry: the CLI's last meaningful stderr line. */
export function dockerError(r) {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines[lines.length - 1] ?? `docker exited ${r.code}`).replace(/^Error:\s+/, '');
}

export const containerName = (node) => `buildx_buildkit_${node}`;

// What the stand-in image cannot tell us through BuildKit's worker API: a typical amd64 worker.
const WORKER_PLATFORMS = ['linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3', 'linux/386'];

/** Loads a node's driver data as buildx LoadNodes(WithData) does. */
export async function loadNode(cx, ng, node) {
  const n = { ...node, status: undefined, err: undefined, version: '', platforms: [], labels: {}, gc: [] };
  if (ng.Driver !== 'docker-container') {
    n.err = `fake buildx: driver ${ng.Driver} is not emulated`;
    return n;
  }
  const docker = dockerRunner(cx, node.Endpoint);
  const name = containerName(node.Name);
  const r = await docker(['container', 'inspect', '--format', '{{.State.Running}} {{.Config.Hostname}}', name]);
  if (r.code !== 0) {
    if (/no such (container|object)/i.test(r.stderr)) {
      n.status = 'inactive';
      return n;
    }
    n.err = dockerError(r);
    return n;
  }
  const [running, hostname] = r.stdout.trim().split(' ');
  n.status = running === 'true' ? 'running' : 'stopped';
  if (n.status !== 'running') return n;
  const ver = await docker(['exec', name, 'buildkitd', '--version']);
  if (ver.code !== 0) {
    n.err = ver.stderr.trim() ? `${ver.stderr}: exit code ${ver.code}` : `exit code ${ver.code}`;
    return n;
  }
  const fields = ver.stdout.trim().split(/\s+/);
  if (fields.length !== 4) {
    n.err = `unexpected version format: ${ver.stdout}`;
    return n;
  }
  n.version = fields[2];
  n.platforms = WORKER_PLATFORMS;
  const net = node.DriverOpts?.network === 'host' ? 'host' : 'bridge';
  n.labels = {
    'org.mobyproject.buildkit.worker.executor': 'oci',
    'org.mobyproject.buildkit.worker.hostname': hostname ?? '',
    'org.mobyproject.buildkit.worker.network': net === 'host' ? 'host' : 'cni',
    'org.mobyproject.buildkit.worker.oci.process-mode': 'sandbox',
    'org.mobyproject.buildkit.worker.selinux.enabled': 'false',
    'org.mobyproject.buildkit.worker.snapshotter': 'overlayfs',
  };
  n.gc = [{ all: false, filter: ['type==source.local,type==exec.cachemount,type==source.git.checkout'], keepDuration: 172800000000000, bytes: 512000000 }];
  return n;
}

/** BuildKit's plain progress printer, enough for one `[internal] booting buildkit` vertex. */
export function plainProgress(cx) {
  const quiet = cx.env.BUILDKIT_PROGRESS === 'quiet';
  const w = (s) => {
    if (!quiet) process.stderr.write(s);
  };
  const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  return {
    async vertex(name, fn) {
      const t0 = Date.now();
      w(`#1 ${name}\n`);
      const sub = {
        async wrap(label, f) {
          const t1 = Date.now();
          w(`#1 ${label}\n`);
          try {
            return await f();
          } finally {
            w(`#1 ${label} ${secs(t1)} done\n`);
          }
        },
      };
      try {
        const res = await fn(sub);
        w(`#1 DONE ${secs(t0)}\n`);
        return res;
      } catch (err) {
        w(`#1 ERROR: ${err.message}\n------\n > ${name}:\n------\n`);
        throw err;
      }
    },
  };
}

/** Boots one docker-container node (BX Driver.Bootstrap). */
export async function bootNode(cx, ng, node, progress) {
  const docker = dockerRunner(cx, node.Endpoint);
  const name = containerName(node.Name);
  const opts = node.DriverOpts ?? {};
  await progress.vertex('[internal] booting buildkit', async (sub) => {
    const ins = await docker(['container', 'inspect', '--format', '{{.State.Running}}', name]);
    if (ins.code === 0) {
      await sub.wrap(`starting container ${name}`, async () => {
        const st = await docker(['start', name]);
        if (st.code !== 0) throw new BuildxError(dockerError(st));
        await waitReady(docker, name);
      });
      return;
    }
    if (!/no such (container|object)/i.test(ins.stderr)) throw new BuildxError(dockerError(ins));

    const image = opts.image || DEFAULT_IMAGE;
    let pullErr;
    await sub.wrap(`pulling image ${image}`, async () => {
      const p = await docker(['pull', image]);
      if (p.code !== 0) pullErr = new BuildxError(dockerError(p));
    });
    const ii = await docker(['image', 'inspect', '--format', '{{.Id}}', image]);
    if (ii.code !== 0) {
      if (pullErr) throw pullErr;
      throw new BuildxError(`failed to inspect pulled image ${image}: ${dockerError(ii)}`);
    }
    if (pullErr) {
      // BX commit acaf251f0 (v0.36) shortened the message.
      const label = atLeast(cx.v, 0, 36) ? `using local image ${image}` : `pulling failed, using local image ${image}`;
      await sub.wrap(label, async () => {});
    }

    await sub.wrap(`creating container ${name}`, async () => {
      const args = ['create', '--name', name, '--init', '--restart', opts['restart-policy'] || 'unless-stopped'];
      const vol = await docker(['volume', 'create', `${name}_state`]);
      if (vol.code !== 0) throw new BuildxError(dockerError(vol));
      args.push('--mount', `type=volume,source=${name}_state,target=/var/lib/buildkit`);
      if (opts.network) args.push('--network', opts.network);
      const limits = { memory: '--memory', 'memory-swap': '--memory-swap', 'cpu-period': '--cpu-period', 'cpu-quota': '--cpu-quota', 'cpu-shares': '--cpu-shares', 'cpuset-cpus': '--cpuset-cpus', 'cpuset-mems': '--cpuset-mems' };
      for (const [k, flag] of Object.entries(limits)) if (opts[k]) args.push(flag, opts[k]);
      const info = await docker(['info', '--format', '{{.CgroupDriver}}']);
      if (info.code === 0 && info.stdout.trim() === 'cgroupfs') args.push('--cgroup-parent', opts['cgroup-parent'] || '/docker/buildx');
      for (const [k, v] of Object.entries(opts)) if (k.startsWith('env.')) args.push('-e', `${k.slice(4)}=${v}`);
      args.push(image);
      const files = node.Files ?? {};
      if (files['buildkitd.toml'] !== undefined) args.push('--config', '/etc/buildkit/buildkitd.toml');
      args.push(...(node.Flags ?? []));
      const cr = await docker(args);
      if (cr.code !== 0 && !/Conflict/.test(cr.stderr)) throw new BuildxError(dockerError(cr));
      if (cr.code === 0) {
        await copyFiles(docker, name, files);
        const st = await docker(['start', name]);
        if (st.code !== 0) throw new BuildxError(dockerError(st));
      }
      await waitReady(docker, name);
    });
  });
}

/** BX tar.go: files land under /etc/buildkit (dirs 0755, files 0644) before the first start. */
async function copyFiles(docker, name, files) {
  const entries = Object.entries(files);
  if (entries.length === 0) return;
  const tmp = mkdtempSync(join(tmpdir(), 'bxb-fake-cp-'));
  try {
    for (const [rel, b64] of entries) {
      const f = join(tmp, 'etc', 'buildkit', rel);
      mkdirSync(dirname(f), { recursive: true, mode: 0o755 });
      writeFileSync(f, Buffer.from(b64, 'base64'), { mode: 0o644 });
    }
    const r = await docker(['cp', join(tmp, 'etc'), `${name}:/`]);
    if (r.code !== 0) throw new BuildxError(dockerError(r));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** BX Driver.wait: up to 15 retries of `buildctl debug workers`, back-off try*120ms. */
async function waitReady(docker, name) {
  // Test knob: a slow buildkitd start, so a test can interrupt a bootstrap half-way.
  const delay = Number(process.env.BXB_FAKE_BUILDX_READY_DELAY_MS || 0);
  if (delay > 0) await new Promise((res) => setTimeout(res, delay));
  // Test knob: a buildkitd that never becomes ready (the container and its volume exist by now),
  // so a test can check that a failed bootstrap leaves nothing behind.
  if (process.env.BXB_FAKE_BUILDX_BOOT_FAIL) {
    throw new BuildxError(`failed to bootstrap ${name}: buildkitd did not start (injected by BXB_FAKE_BUILDX_BOOT_FAIL)`);
  }
  for (let attempt = 1; ; attempt++) {
    const r = await docker(['exec', name, 'buildctl', 'debug', 'workers']);
    if (r.code === 0) return;
    if (attempt > 15) {
      const logs = await docker(['logs', name]);
      if (logs.stdout) process.stderr.write(logs.stdout);
      if (logs.stderr) process.stderr.write(logs.stderr);
      throw new BuildxError(dockerError(r));
    }
    await new Promise((res) => setTimeout(res, attempt * 120));
  }
}

/** BX Driver.Rm(force=true, rmVolume, rmDaemon). */
export async function rmNode(cx, node, { keepState, keepDaemon }) {
  const docker = dockerRunner(cx, node.Endpoint);
  const name = containerName(node.Name);
  const ins = await docker(['container', 'inspect', '--format', '{{range .Mounts}}{{.Name}} {{end}}', name]);
  if (ins.code !== 0) {
    if (/no such (container|object)/i.test(ins.stderr)) return;
    throw new BuildxError(dockerError(ins));
  }
  if (keepDaemon) return;
  const rm = await docker(['rm', '-f', '-v', name]);
  if (rm.code !== 0) throw new BuildxError(dockerError(rm));
  if (!keepState && ins.stdout.split(' ').includes(`${name}_state`)) {
    const rv = await docker(['volume', 'rm', `${name}_state`]);
    if (rv.code !== 0) throw new BuildxError(dockerError(rv));
  }
}
