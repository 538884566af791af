// The Engine API behind the runner interface: the daemon calls the tool makes most (daemon version
// and mirrors, image inspect, tag, load, save, container inspect, pull with X-Registry-Auth) are
// answered over the API, in the shape the docker CLI prints them, so every caller, `plan` and the
// tests stay as they are. Every other call — buildx, context and cleanup commands, anything with
// global flags — goes to the CLI runner, and so does any call when the daemon cannot be reached
// over the API, so the CLI's own error wording reaches the user unchanged.
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import type { CommandResult, DockerRunner, RunOptions } from '../runner.js';
import { EngineUnreachable, engineMessage, type EngineClient, type EngineResponse } from './client.js';

type Handler = (client: EngineClient, args: string[], opts: RunOptions) => Promise<Omit<CommandResult, 'command'>>;

const VERSION_FORMAT = '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}';
const ok = (stdout: string): Omit<CommandResult, 'command'> => ({ exitCode: 0, stdout, stderr: '' });
const failed = (stderr: string): Omit<CommandResult, 'command'> => ({ exitCode: 1, stdout: '', stderr: `${stderr}\n` });
const fromDaemon = (res: EngineResponse): Omit<CommandResult, 'command'> => failed(`Error response from daemon: ${engineMessage(res)}`);
const path = (name: string): string => encodeURI(name).replace(/[?#]/g, encodeURIComponent);
const common = (opts: RunOptions): { timeoutMs?: number; signal?: AbortSignal } => ({
  ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  ...(opts.signal ? { signal: opts.signal } : {}),
});

interface ImageJson {
  Id: string;
}

/** `repo[:tag]` split the way docker tag does: the tag is after the last `:` that follows the last `/`. */
function splitRepoTag(target: string): { repo: string; tag: string } {
  const colon = target.lastIndexOf(':');
  return colon > target.lastIndexOf('/') ? { repo: target.slice(0, colon), tag: target.slice(colon + 1) } : { repo: target, tag: 'latest' };
}

async function inspectImages(client: EngineClient, refs: string[], opts: RunOptions): Promise<{ found: unknown[]; missing: string[] }> {
  const answers = await Promise.all(refs.map((ref) => client.call({ path: `/images/${path(ref)}/json`, ...common(opts) })));
  const found: unknown[] = [];
  const missing: string[] = [];
  answers.forEach((res, i) => {
    if (res.status === 200) found.push(JSON.parse(res.body.toString('utf8')));
    else if (res.status === 404) missing.push(refs[i]!);
    else throw new Error(engineMessage(res));
  });
  return { found, missing };
}

/** Each handler answers exactly one argv shape; `undefined` from `match` means "the CLI's job". */
function match(args: string[]): Handler | undefined {
  const [a, b, c, d, ...rest] = args;
  if (a === 'version' && b === '--format' && c === VERSION_FORMAT && args.length === 3) {
    return async (client, _args, opts) => {
      const v = await client.json<{ Version: string; Os: string; Arch: string }>({ path: '/version', ...common(opts) });
      return v ? ok(`${v.Version} ${v.Os}/${v.Arch}\n`) : failed('Error response from daemon: no version');
    };
  }
  if (a === 'info' && b === '--format' && c === '{{json .RegistryConfig.Mirrors}}' && args.length === 3) {
    return async (client, _args, opts) => {
      const info = await client.json<{ RegistryConfig?: { Mirrors?: string[] | null } }>({ path: '/info', ...common(opts) });
      return ok(`${JSON.stringify(info?.RegistryConfig?.Mirrors ?? null)}\n`);
    };
  }
  if (a === 'info' && b === '--format' && c === '{{json .DriverStatus}}' && args.length === 3) {
    return async (client, _args, opts) => {
      const info = await client.json<{ DriverStatus?: unknown }>({ path: '/info', ...common(opts) });
      return ok(`${JSON.stringify(info?.DriverStatus ?? null)}\n`);
    };
  }
  if (a === 'image' && b === 'inspect' && c === '--format' && d === '{{.Id}}' && rest.length === 1) {
    return async (client, _args, opts) => {
      const ref = rest[0]!;
      const image = await client.json<ImageJson>({ path: `/images/${path(ref)}/json`, ...common(opts) });
      return image ? ok(`${image.Id}\n`) : failed(`Error response from daemon: No such image: ${ref}`);
    };
  }
  if (a === 'image' && b === 'inspect' && args.length > 2 && args.slice(2).every((r) => !r.startsWith('-'))) {
    return async (client, _args, opts) => {
      const { found, missing } = await inspectImages(client, args.slice(2), opts);
      const stderr = missing.map((m) => `Error response from daemon: No such image: ${m}\n`).join('');
      return { exitCode: missing.length ? 1 : 0, stdout: `${JSON.stringify(found, null, 4)}\n`, stderr };
    };
  }
  if (a === 'container' && b === 'inspect' && c === '--format' && (d === '{{.Image}}' || d === '{{.State.Status}} {{.Image}}') && rest.length === 1) {
    return async (client, _args, opts) => {
      const container = await client.json<{ Image: string; State?: { Status?: string } }>({ path: `/containers/${path(rest[0]!)}/json`, ...common(opts) });
      if (!container) return failed(`Error response from daemon: No such container: ${rest[0]}`);
      return ok(d === '{{.Image}}' ? `${container.Image}\n` : `${container.State?.Status ?? ''} ${container.Image}\n`);
    };
  }
  if (a === 'tag' && b && c && args.length === 3) {
    return async (client, _args, opts) => {
      const res = await client.call({ method: 'POST', path: `/images/${path(b)}/tag`, query: splitRepoTag(c), ...common(opts) });
      return res.status === 201 || res.status === 200 ? ok('') : fromDaemon(res);
    };
  }
  if (a === 'load' && b === '-i' && c && args.length === 3) {
    return async (client, _args, opts) => {
      // 1 MiB reads and a Content-Length: with node's 64 KiB default the ~90 MB engine tar went up
      // in ~1,400 chunked writes and the load took ~100 ms longer than `docker load -i` (bench).
      let size: number;
      try {
        size = (await stat(c)).size;
      } catch (error) {
        return failed(`cannot read ${c}: ${(error as Error).message}`);
      }
      const body = createReadStream(c, { highWaterMark: 1 << 20 });
      const res = await client.call({ method: 'POST', path: '/images/load', query: { quiet: '1' }, body, contentLength: size, contentType: 'application/x-tar', ...common(opts) });
      if (res.status !== 200) return fromDaemon(res);
      // A JSON message stream: `{"stream":"Loaded image ID: …\n"}` lines, or `{"error":"…"}`.
      let stdout = '';
      for (const line of res.body.toString('utf8').split('\n').filter(Boolean)) {
        const m = JSON.parse(line) as { stream?: string; error?: string; errorDetail?: { message?: string } };
        if (m.error || m.errorDetail) return failed(m.errorDetail?.message ?? m.error ?? 'load failed');
        stdout += m.stream ?? '';
      }
      return ok(stdout);
    };
  }
  if (a === 'save' && b === '-o' && c && d && rest.length === 0) {
    return async (client, _args, opts) => {
      // A 4 MiB write buffer keeps the daemon's stream flowing while earlier chunks are written
      // (batched): with the 16 KiB default each 64 KiB chunk waited for its write, and saving the
      // ~90 MB engine image took ~40% longer than `docker save -o`; now it is on par.
      // Opened first: a file that cannot be created (read-only or missing directory) is the
      // command's failure, as with `docker save -o`, not an error event nobody listens to yet.
      let file;
      try {
        file = await open(c, 'w');
      } catch (error) {
        return failed(`failed to save image: ${(error as Error).message}`);
      }
      const sink = file.createWriteStream({ highWaterMark: 4 << 20 });
      const res = await client.stream({ path: '/images/get', query: { names: d }, ...common(opts) }, sink).catch((error: unknown) => {
        sink.destroy();
        throw error;
      });
      if (res.status === 200) return ok('');
      sink.destroy(); // never written to: close the file before it goes
      await rm(c, { force: true });
      return fromDaemon(res);
    };
  }
  if (a === 'pull' && b && !b.startsWith('-') && args.length === 2) return pullImage;
  if (a === 'import' && b === '-' && c && !c.startsWith('-') && args.length === 3) return importImage;
  return leaseCall(args);
}

/** `docker ps --format` of the leases (src/docker/leases.ts PS_FORMAT): one line per container. */
const LEASE_PS_FORMAT = '{{.ID}}\t{{.Names}}\t{{.Labels}}\t{{.CreatedAt}}';

/** `2026-12-07 20:40:21 +0000 UTC`, as the CLI prints CreatedAt for a daemon in UTC. */
function createdAt(unixSeconds: number): string {
  return `${new Date(unixSeconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} +0000 UTC`;
}

/**
 * The daemon calls of the leases (src/docker/leases.ts), in the exact argv shapes it makes: a
 * prefixed build makes four of them, each a CLI start otherwise.
 */
function leaseCall(args: string[]): Handler | undefined {
  const [a, b, c, d, e, f, g, ...rest] = args;
  if (a === 'ps' && b === '-a' && c === '--no-trunc' && d === '--filter' && e?.startsWith('label=') && f === '--format' && g === LEASE_PS_FORMAT && rest.length === 0) {
    return async (client, _args, opts) => {
      const res = await client.call({ path: '/containers/json', query: { all: '1', filters: JSON.stringify({ label: [e.slice('label='.length)] }) }, ...common(opts) });
      if (res.status !== 200) return fromDaemon(res);
      const list = JSON.parse(res.body.toString('utf8')) as { Id: string; Names?: string[]; Labels?: Record<string, string>; Created: number }[];
      const lines = list.map((x) => [x.Id, (x.Names ?? []).map((n) => n.replace(/^\//, '')).join(','), Object.entries(x.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','), createdAt(x.Created)].join('\t'));
      return ok(lines.map((l) => `${l}\n`).join(''));
    };
  }
  if (a === 'create' && b === '--pull' && c === 'never' && d === '--name' && e && f === '--network' && g) {
    const labels: Record<string, string> = {};
    let i = 0;
    while (rest[i] === '--label' && rest[i + 1]?.includes('=')) {
      const kv = rest[i + 1]!;
      labels[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
      i += 2;
    }
    const [image, ...cmd] = rest.slice(i);
    if (!image || image.startsWith('-')) return undefined;
    return async (client, _args, opts) => {
      const body = JSON.stringify({ Image: image, Cmd: cmd, Labels: labels, HostConfig: { NetworkMode: g } });
      const res = await client.call({ method: 'POST', path: '/containers/create', query: { name: e }, body: Readable.from([body]), contentLength: Buffer.byteLength(body), contentType: 'application/json', ...common(opts) });
      if (res.status !== 201) return fromDaemon(res);
      return ok(`${(JSON.parse(res.body.toString('utf8')) as { Id: string }).Id}\n`);
    };
  }
  if (a === 'rm' && b === '-f' && c && args.length === 3) {
    return async (client, _args, opts) => {
      const res = await client.call({ method: 'DELETE', path: `/containers/${path(c)}`, query: { force: '1' }, ...common(opts) });
      return res.status === 204 || res.status === 200 ? ok(`${c}\n`) : fromDaemon(res);
    };
  }
  if (a === 'rename' && b && c && args.length === 3) {
    return async (client, _args, opts) => {
      const res = await client.call({ method: 'POST', path: `/containers/${path(b)}/rename`, query: { name: c }, ...common(opts) });
      return res.status === 204 || res.status === 200 ? ok('') : fromDaemon(res);
    };
  }
  return undefined;
}

/** `fromImage` and `tag` the way the docker CLI asks for `ref` (a digest wins over a tag: CLI ImagePull). */
export function pullQuery(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  const named = at >= 0 ? ref.slice(0, at) : ref;
  const { repo, tag } = splitRepoTag(named);
  return { fromImage: repo, tag: at >= 0 ? ref.slice(at + 1) : tag };
}

/**
 * `docker pull` over the API: the credentials come per request in X-Registry-Auth (registryAuth),
 * never from a file; the progress stream is read line by line (`{"status","id","progress"}`, or
 * `{"error"}` for a failure after the 200).
 */
const pullImage: Handler = async (client, args, opts) => {
  const ref = args[1]!;
  let pending = '';
  let error: string | undefined;
  const lines: string[] = [];
  const onMessage = (text: string): void => {
    if (!text.trim()) return;
    let m: { status?: string; id?: string; progress?: string; error?: string; errorDetail?: { message?: string } };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return;
    }
    if (m.error || m.errorDetail) {
      error = m.errorDetail?.message ?? m.error;
      return;
    }
    const line = `${m.id ? `${m.id}: ` : ''}${m.status ?? ''}${m.progress ? ` ${m.progress}` : ''}`;
    // Progress bars repeat per chunk; the CLI without a terminal prints status changes only.
    if (m.progress) return;
    lines.push(line);
    opts.onStdoutLine?.(line);
  };
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) onMessage(p);
      done();
    },
  });
  const header = opts.registryAuth?.header;
  const res = await client.stream(
    { method: 'POST', path: '/images/create', query: pullQuery(ref), ...(header ? { headers: { 'X-Registry-Auth': header } } : {}), ...common(opts) },
    sink,
  );
  onMessage(pending);
  if (res.status !== 200) return fromDaemon(res);
  if (error) return { exitCode: 1, stdout: lines.map((l) => `${l}\n`).join(''), stderr: `${error}\n` };
  return ok(lines.map((l) => `${l}\n`).join(''));
};

/**
 * `docker import - REF` with the archive as the run's input (the lease image, src/docker/leases.ts):
 * `POST /images/create?fromSrc=-`, the ID printed as the CLI prints it. A CLI start fewer, on the
 * way to a fresh daemon's first builder.
 */
const importImage: Handler = async (client, args, opts) => {
  if (opts.input === undefined) throw new EngineUnreachable('docker import - without input: the CLI reads its stdin');
  const { repo, tag } = splitRepoTag(args[2]!);
  const body = Buffer.from(opts.input, 'utf8');
  const res = await client.call({ method: 'POST', path: '/images/create', query: { fromSrc: '-', repo, tag }, body: Readable.from([body]), contentLength: body.length, contentType: 'application/x-tar', ...common(opts) });
  if (res.status !== 200) return fromDaemon(res);
  // A JSON message stream: `{"status":"sha256:…"}`, or `{"error":"…"}`.
  let id = '';
  for (const line of res.body.toString('utf8').split('\n').filter(Boolean)) {
    const m = JSON.parse(line) as { status?: string; error?: string; errorDetail?: { message?: string } };
    if (m.error || m.errorDetail) return failed(m.errorDetail?.message ?? m.error ?? 'import failed');
    if (m.status?.startsWith('sha256:')) id = m.status;
  }
  return ok(`${id}\n`);
};

/**
 * Wraps the CLI runner: API-answerable calls go to the Engine API client, the rest (and any
 * fallback) to `cli`. `client` is asked for lazily, once: undefined means the endpoint is one only
 * the CLI can reach (ssh://), and every call goes to the CLI.
 */
export function createEngineRunner(cli: DockerRunner, connect: () => Promise<EngineClient | undefined>, onCommand?: (command: string) => void): DockerRunner {
  let connecting: Promise<EngineClient | undefined> | undefined;
  return {
    binary: cli.binary,
    globalArgs: cli.globalArgs,
    env: cli.env,
    async run(args, opts = {}) {
      const handler = cli.globalArgs.length === 0 ? match(args) : undefined;
      const client = handler ? await (connecting ??= connect().catch(() => undefined)) : undefined;
      if (!handler || !client) return cli.run(args, opts);
      const command = `docker ${args.join(' ')} (engine API ${client.endpoint.label})`;
      onCommand?.(command);
      try {
        return { ...(await handler(client, args, opts)), command };
      } catch (error) {
        if (opts.signal?.aborted) return { exitCode: -1, stdout: '', stderr: `${command} was interrupted`, command };
        // Unreachable over the API (or an answer we could not read): the CLI says it its way.
        if (error instanceof EngineUnreachable || error instanceof SyntaxError) return cli.run(args, opts);
        return { exitCode: 1, stdout: '', stderr: `${(error as Error).message}\n`, command };
      }
    },
  };
}
