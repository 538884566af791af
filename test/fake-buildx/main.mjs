// Entry of the emulated buildx: the CLI plugin protocol (facts §3), docker global flags before
// `buildx`, invocation log, then the subcommands. Exit codes: 0, 1 (`ERROR: …`), 125 (flag errors).
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildxError, buildxVersion } from './util.mjs';

// docker/cli global flags (cli/flags/options.go); value flags take the next arg unless `=` is used.
const GLOBAL_VALUE = new Set(['--config', '-c', '--context', '-H', '--host', '-l', '--log-level', '--tlscacert', '--tlscert', '--tlskey']);
const GLOBAL_BOOL = new Set(['-D', '--debug', '--tls', '--tlsverify']);

export const LOG_NAME = 'bxb-fake-buildx.jsonl';

export async function run(argv) {
  try {
    if (argv.length === 1 && argv[0] === 'docker-cli-plugin-metadata') {
      const v = buildxVersion(process.env);
      // docker/cli's plugin library encodes with a 5-space indent.
      process.stdout.write(
        JSON.stringify({ SchemaVersion: '0.1.0', Vendor: 'Docker Inc.', Version: `v${v.version}`, ShortDescription: 'Docker Buildx' }, null, 5) + '\n',
      );
      record(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), argv, []);
      return 0;
    }
    const cx = context(argv, process.env);
    record(cx.configDir, argv, cx.rest, await buildChecks(cx.rest));
    const { dispatch } = await import('./commands.mjs');
    return await dispatch(cx);
  } catch (err) {
    if (err instanceof BuildxError) {
      process.stderr.write(err.raw ? `${err.message}\n` : `ERROR: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`ERROR: fake buildx bug: ${err?.stack ?? err}\n`);
    return 1;
  }
}

// `build` is not executed; what it would read from the client side is checked now and logged.
async function buildChecks(args) {
  const sub = args.find((a, i) => !a.startsWith('-') && !(i > 0 && args[i - 1] === '--builder'));
  if (sub !== 'build' && sub !== 'b') return {};
  const { checkOciLayoutContexts } = await import('./layout.mjs');
  return { ociLayouts: checkOciLayoutContexts(args) };
}

function record(configDir, argv, args, extra = {}) {
  try {
    mkdirSync(configDir, { recursive: true });
    const env = {};
    for (const k of ['BUILDX_BUILDER', 'DOCKER_HOST', 'DOCKER_CONTEXT', 'BUILDX_CONFIG']) if (process.env[k] !== undefined) env[k] = process.env[k];
    appendFileSync(join(configDir, LOG_NAME), JSON.stringify({ argv, args, env, pid: process.pid, ...extra }) + '\n');
  } catch {
    // recording is best effort: a read-only config dir must not change what the plugin does
  }
}

/** Splits docker global flags, `buildx`, and the rest; resolves config dir and docker endpoint. */
export function context(argv, env) {
  const g = { hosts: [] };
  const dockerGlobalArgs = [];
  const tlsArgs = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === 'buildx') break;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    let value;
    if (GLOBAL_VALUE.has(flag)) {
      value = flag !== a ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new BuildxError(`flag needs an argument: ${flag}`);
    } else if (GLOBAL_BOOL.has(flag)) {
      value = flag !== a ? a.slice(eq + 1) !== 'false' : true;
    } else if (/^-H./.test(a)) {
      g.hosts.push(a.slice(2).replace(/^=/, ''));
      continue;
    } else {
      break; // not a docker global flag: treat as the start of the buildx args
    }
    switch (flag) {
      case '--config': g.config = value; break;
      case '-c': case '--context': g.context = value; break;
      case '-H': case '--host': g.hosts.push(value); break;
      case '-l': case '--log-level': g.logLevel = value; break;
      case '-D': case '--debug': g.debug = value; break;
      default: g[flag.slice(2)] = value;
    }
    if (flag !== '--config') dockerGlobalArgs.push(...(typeof value === 'string' ? [flag, value] : value ? [flag] : []));
    if (flag.startsWith('--tls')) tlsArgs.push(...(typeof value === 'string' ? [flag, value] : value ? [flag] : []));
  }
  if (argv[i] === 'buildx') i++;
  const rest = argv.slice(i);

  const configDir = g.config || env.DOCKER_CONFIG || join(homedir(), '.docker');
  const storeDir = env.BUILDX_CONFIG || join(configDir, 'buildx');
  let configJson = {};
  try {
    configJson = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8'));
  } catch {}

  // docker/cli ResolveContextName: --context, then -H/DOCKER_HOST (→ default), DOCKER_CONTEXT, config.
  const currentContext = g.context || (g.hosts.length || env.DOCKER_HOST ? 'default' : env.DOCKER_CONTEXT || configJson.currentContext || 'default');
  const defaultHost = g.hosts[0] || env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  const tlsEnabled = Boolean(g.tls || g.tlsverify || env.DOCKER_TLS_VERIFY);
  let contextList;
  const cx = {
    argv,
    rest,
    env,
    globals: g,
    dockerGlobalArgs,
    tlsArgs,
    configDir,
    storeDir,
    v: buildxVersion(env),
    currentContext,
    defaultHost,
    /** Default context whose TLS material came from flags/env (DinD): TLSData != nil in buildx. */
    defaultTls: currentContext === 'default' && tlsEnabled,
    /** GetCurrentEndpoint: the host for the default context, else the context name. */
    currentEndpoint: currentContext === 'default' ? defaultHost : currentContext,
    contexts() {
      if (!contextList) {
        contextList = ['default'];
        const meta = join(configDir, 'contexts', 'meta');
        if (existsSync(meta)) {
          for (const d of readdirSync(meta)) {
            try {
              contextList.push(JSON.parse(readFileSync(join(meta, d, 'meta.json'), 'utf8')).Name);
            } catch {}
          }
        }
        contextList.sort();
      }
      return contextList;
    },
  };
  return cx;
}
