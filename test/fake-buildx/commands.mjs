// The buildx subcommands the tool uses, per emulated version. Sources: BX commands/{create,inspect,
// ls,rm,use,version}.go, builder/builder.go (Create, parseBuildkitdFlags, csvToMap,
// validateEndpoint), store/nodegroup.go (Update), driver/docker-container/factory.go, at tags
// v0.12.1, v0.19.3, v0.21.0 and v0.36.0.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildxError, atLeast, csvFields, goQuote, goTime, makeUsage, parseFlags, rfc3339, shlexSplit, tabwrite } from './util.mjs';
import { Store } from './store.mjs';
import { bootNode, loadNode, plainProgress, rmNode } from './engine.mjs';

const NAME_RE = /^[a-zA-Z][a-zA-Z0-9.\-_]*$/;
const ROOT_FLAGS = { builder: { type: 'string' }, debug: { type: 'bool', short: 'D' } };

export async function dispatch(cx) {
  // buildx root persistent flags may come before the subcommand.
  const rest = [...cx.rest];
  cx.builderFlag = undefined;
  while (rest.length && rest[0].startsWith('-')) {
    const a = rest.shift();
    if (a === '--builder') cx.builderFlag = rest.shift();
    else if (a.startsWith('--builder=')) cx.builderFlag = a.slice(10);
    else if (a === '-D' || a === '--debug') cx.debug = true;
    else if (a === '--help' || a === '-h') return help();
    else throw makeUsage(cx.v, 'docker buildx', 'docker buildx [OPTIONS] COMMAND').flagError(`unknown flag: ${a}`);
  }
  const [cmd, ...args] = rest;
  switch (cmd) {
    case 'version':
      process.stdout.write(`github.com/docker/buildx v${cx.v.version} ${cx.v.revision}\n`);
      return 0;
    case 'create':
      return create(cx, args);
    case 'inspect':
      return inspect(cx, args);
    case 'ls':
      return ls(cx, args);
    case 'rm':
      return rm(cx, args);
    case 'use':
      return use(cx, args);
    case 'bake':
    case 'f':
      // Reading a bake definition (HCL, compose, JSON) is buildx's own; the emulation does not
      // pretend to. Tests of bake's targets run on the real plugin (test/e2e/real-load.test.ts).
      if (args.includes('--print')) throw new BuildxError('fake buildx: bake --print is not emulated');
      return 0; // recorded by main.mjs, not executed
    case 'build':
    case 'b':
      return 0; // recorded by main.mjs, not executed
    case undefined:
      return help();
    default:
      throw new BuildxError(`fake buildx: "${cmd}" is not emulated`);
  }
}

function help() {
  process.stdout.write('\nUsage:  docker buildx [OPTIONS] COMMAND\n\nExtended build capabilities with BuildKit\n');
  return 0;
}

function withRoot(spec) {
  return { ...ROOT_FLAGS, ...spec };
}

function parse(cx, cmd, use, spec, args) {
  const r = parseFlags(args, withRoot(spec), makeUsage(cx.v, `docker buildx ${cmd}`, `docker buildx ${use}`));
  if (r.opts.builder) cx.builderFlag = r.opts.builder;
  return r;
}

// ---------------------------------------------------------------- create

function createSpec(v) {
  const s = {
    name: { type: 'string' },
    driver: { type: 'string' },
    node: { type: 'string' },
    platform: { type: 'array' },
    'driver-opt': { type: 'array' },
    'buildkitd-flags': { type: 'string' },
    config: { type: 'string' },
    bootstrap: { type: 'bool' },
    append: { type: 'bool' },
    leave: { type: 'bool' },
    use: { type: 'bool' },
  };
  if (atLeast(v, 0, 13)) s['buildkitd-config'] = { type: 'string' }; // BX 56fc68eb7
  if (atLeast(v, 0, 32)) s.timeout = { type: 'string' }; // BX f4cc8638c
  return s;
}

const REMOTE_SCHEMES = ['docker-container', 'kube-pod', 'npipe', 'ssh', 'tcp', 'unix'];

async function create(cx, argv) {
  const v = cx.v;
  const { opts, args } = parse(cx, 'create', 'create [OPTIONS] [CONTEXT|ENDPOINT]', createSpec(v), argv);
  if (args.length > 1) {
    throw new BuildxError(`"docker buildx create" requires at most 1 argument.\nSee 'docker buildx create --help'.\n\nUsage:  docker buildx create [OPTIONS] [CONTEXT|ENDPOINT]\n\nCreate a new builder instance`);
  }
  if (opts.leave) throw new BuildxError('fake buildx: create --leave is not emulated');
  const endpointArg = args[0] ?? '';
  const warn = (m) => process.stderr.write(`WARNING: ${m}\n`);
  const store = new Store(cx.storeDir);
  const release = await store.lock();
  let ng;
  let created;
  try {
    if (opts.name === 'default') throw new BuildxError('default is a reserved name and cannot be used to identify builder instance');
    if (opts.append && !opts.name) {
      if (atLeast(v, 0, 13)) throw new BuildxError('append requires a builder name');
      warn('append used without name, creating a new instance instead');
    }
    let name = opts.name || generateName(store);
    if (!opts.append && cx.contexts().includes(name)) {
      if (atLeast(v, 0, 13)) throw new BuildxError(`instance name ${goQuote(name)} already exists as context builder`);
      warn(`instance name ${goQuote(name)} already exists as context builder`);
    }
    name = validateName(name);
    const existing = store.get(name);
    if (!existing && opts.append && opts.name) {
      if (atLeast(v, 0, 13)) throw new BuildxError(`failed to find instance ${goQuote(opts.name)} for append`);
      warn(`failed to find ${goQuote(opts.name)} for append, creating a new instance instead`);
    }
    let driver = opts.driver;
    if (!driver) {
      if (existing) driver = existing.Driver;
      else if (!endpointArg && cx.env.BUILDKIT_HOST) driver = 'remote';
      else driver = REMOTE_SCHEMES.some((s) => endpointArg.startsWith(`${s}://`)) ? 'remote' : 'docker-container';
    }
    if (existing) {
      if (!opts.node && !opts.append) {
        throw new BuildxError(
          atLeast(v, 0, 13)
            ? `existing instance for ${goQuote(name)} but no append mode, specify the node name to make changes for existing instances`
            : `existing instance for ${goQuote(name)} but no append mode, specify --node to make changes for existing instances`,
        );
      }
      if (driver !== existing.Driver) throw new BuildxError(`existing instance for ${goQuote(name)} but has mismatched driver ${goQuote(existing.Driver)}`);
    }
    if (driver === 'docker') throw new BuildxError('additional instances of driver "docker" cannot be created');
    if (!['docker-container', 'kubernetes', 'remote'].includes(driver)) throw new BuildxError(`failed to find driver ${goQuote(driver)}`);

    const driverOpts = csvToMap(opts['driver-opt']);
    let configFile = opts['buildkitd-config'] ?? opts.config ?? '';
    if (!configFile) {
      // confutil BuildKitConfigFile (v0.9+): a default file in the buildx config dir.
      const def = join(cx.storeDir, 'buildkitd.default.toml');
      if (existsSync(def)) configFile = def;
    }
    const flags = await buildkitdFlags(v, opts['buildkitd-flags'], driver, driverOpts, configFile);

    let ep;
    let setEp;
    if (driver === 'kubernetes') {
      if (endpointArg) throw new BuildxError(`kubernetes driver does not support endpoint args ${goQuote(endpointArg)}`);
      ep = `kubernetes:///${name}?deployment=${opts.node || `buildkit-${name}0`}&kubeconfig=`;
      setEp = false;
    } else if (driver === 'remote') {
      ep = endpointArg || cx.env.BUILDKIT_HOST;
      if (!ep) throw new BuildxError('no remote endpoint provided');
      setEp = true;
    } else if (endpointArg) {
      ep = validateEndpoint(cx, endpointArg);
      setEp = true;
    } else {
      if (cx.defaultTls) {
        throw new BuildxError(
          atLeast(v, 0, 13)
            ? 'could not create a builder instance with TLS data loaded from environment. Please use `docker context create <context-name>` to create a context for current environment and then create a builder instance with context set to <context-name>'
            : 'could not create a builder instance with TLS data loaded from environment. Please use `docker context create <context-name>` to create a context for current environment and then create a builder instance with `docker buildx create <context-name>`',
        );
      }
      ep = cx.currentEndpoint;
      setEp = false;
    }

    const original = existing ? structuredClone(existing) : undefined;
    ng = existing ?? { Name: name, Driver: driver, Nodes: [], Dynamic: false };
    await updateNodeGroup(v, ng, { node: opts.node, ep, platforms: opts.platform, setEp, append: opts.append, flags, configFile, driverOpts }, warn);
    store.save(ng);

    // LoadNodes: the driver factory validates driver opts, then Info() talks to the daemon.
    for (const node of ng.Nodes) {
      const err = validateDriverOpts(v, ng.Driver, node.DriverOpts ?? {}) ?? (await loadNode(cx, ng, node)).err;
      if (err) {
        if (original) store.save(original);
        else store.remove(ng.Name);
        throw new BuildxError(`failed to initialize builder ${ng.Name} (${node.Name}): ${err}`);
      }
    }
    if (opts.use && ep) store.setCurrent(cx.currentEndpoint, ng.Name, false, false);
    created = ng;
  } finally {
    release();
  }

  if (opts.bootstrap) await boot(cx, created);
  process.stdout.write(`${created.Name}\n`);
  return 0;
}

function validateName(name) {
  if (!NAME_RE.test(name)) throw new BuildxError(`invalid name ${name}, name needs to start with a letter and may not contain symbols, except ._-`);
  return name.toLowerCase();
}

// A small stand-in for docker's namesgenerator (store.GenerateName).
const ADJ = ['eager', 'festive', 'gracious', 'jolly', 'nifty', 'quirky', 'sharp', 'vigilant'];
const NOUN = ['beaver', 'curie', 'hopper', 'lovelace', 'noether', 'pascal', 'turing', 'wozniak'];
function generateName(store) {
  for (let i = 0; i < 100; i++) {
    const n = `${ADJ[Math.floor(Math.random() * ADJ.length)]}_${NOUN[Math.floor(Math.random() * NOUN.length)]}`;
    if (!store.get(n)) return n;
  }
  throw new BuildxError('failed to generate random name');
}

function csvToMap(values) {
  if (!values.length) return null;
  const m = {};
  for (const s of values) {
    for (const f of csvFields(s)) {
      const i = f.indexOf('=');
      if (i < 0) throw new BuildxError(`invalid value ${goQuote(f)}, expecting k=v`);
      m[f.slice(0, i)] = f.slice(i + 1);
    }
  }
  return m;
}

/** BX parseBuildkitdFlags (v0.13+ adds the network.host entitlement, BX e008b846b). */
async function buildkitdFlags(v, input, driver, driverOpts, configFile) {
  let res = input ? shlexSplit(input) : null;
  if (!atLeast(v, 0, 13)) return res;
  res ??= [];
  const allowed = [];
  for (let i = 0; i < res.length; i++) {
    const a = res[i];
    if (a === '--allow-insecure-entitlement' && i + 1 < res.length) allowed.push(res[++i]);
    else if (a.startsWith('--allow-insecure-entitlement=')) allowed.push(a.slice(29));
  }
  let inConf = false;
  if (configFile) {
    const conf = await loadConfigForFlags(v, configFile);
    inConf = Array.isArray(conf?.['insecure-entitlements']) && conf['insecure-entitlements'].includes('network.host');
  }
  const hasHost = allowed.includes('network.host');
  if (driverOpts?.network === 'host' && !hasHost && driver === 'docker-container') res.push('--allow-insecure-entitlement=network.host');
  else if (allowed.length === 0 && !inConf && (driver === 'kubernetes' || driver === 'docker-container')) res.push('--allow-insecure-entitlement=network.host');
  return res;
}

/** v0.13–v0.31 read the file with LoadConfigTree (missing → ignored); v0.32+ with BuildKit's LoadFile. */
async function loadConfigForFlags(v, file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT' && !atLeast(v, 0, 32)) return undefined;
    throw new BuildxError(`failed to load config from ${file}: open ${file}: ${errnoText(err)}`);
  }
  return parseConfig(file, text, 'failed to parse config: ');
}

async function parseConfig(file, text, prefix) {
  const { parseToml } = await import('./toml.mjs');
  try {
    return parseToml(text);
  } catch (err) {
    throw new BuildxError(`${prefix}toml: ${String(err.message).split('\n')[0]}`);
  }
}

function errnoText(err) {
  return err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
}

/** BX confutil.LoadConfigFiles: read at create time, re-serialised, stored base64 in Files. */
async function loadConfigFiles(v, file) {
  let text;
  try {
    text = readFileSync(file, 'utf8').slice(0, 1 << 20);
  } catch (err) {
    if (err.code === 'ENOENT') throw new BuildxError(`buildkit configuration file not found: ${file}: stat ${file}: no such file or directory`);
    throw new BuildxError(`invalid buildkit configuration file: ${file}: ${errnoText(err)}`);
  }
  const modern = atLeast(v, 0, 32);
  const conf = await parseConfig(file, text, modern ? `failed to load buildkit configuration file: ${file}: failed to parse config: ` : 'failed to parse config: ');
  const files = {};
  const reg = conf.registry;
  if (reg && typeof reg === 'object') {
    for (const [host, rc] of Object.entries(reg)) {
      if (!rc || typeof rc !== 'object') throw new BuildxError(`invalid registry config for ${goQuote(host)}`);
      const pfx = `certs/${host.replace(/[^a-zA-Z0-9.-]/g, '_')}`;
      const take = (p, what) => {
        const rel = `${pfx}/${p.split('/').pop()}`;
        try {
          files[rel] = readFileSync(p).toString('base64');
        } catch (err) {
          throw new BuildxError(`failed to read ${what} file: ${p}: open ${p}: ${errnoText(err)}`);
        }
        return `/etc/buildkit/${rel}`;
      };
      if (Array.isArray(rc.ca)) rc.ca = rc.ca.map((p) => take(p, 'CA'));
      if (Array.isArray(rc.keypair)) {
        rc.keypair = rc.keypair.map((kp) => {
          const out = {};
          if (kp.key) out.key = take(kp.key, 'key');
          if (kp.cert) out.cert = take(kp.cert, 'cert');
          return out;
        });
      }
    }
  }
  const { marshalV1, marshalV2 } = await import('./toml.mjs');
  files['buildkitd.toml'] = Buffer.from(modern ? marshalV2(conf) : marshalV1(conf)).toString('base64');
  return files;
}

function validateEndpoint(cx, ep) {
  if (cx.contexts().includes(ep)) return ep === 'default' ? cx.defaultHost : ep;
  // docker/opts.ParseHost: a bare host means tcp on the default port.
  const m = /^([a-z]+):\/\/(.*)$/.exec(ep);
  if (!m) return `tcp://${ep.includes(':') ? ep : `${ep}:${cx.defaultTls ? 2376 : 2375}`}`;
  if (!['tcp', 'unix', 'npipe', 'fd', 'ssh'].includes(m[1])) throw new BuildxError(`failed to parse endpoint ${ep}: Invalid bind address format: ${ep}`);
  return ep;
}

function parsePlatforms(list) {
  const out = [];
  for (const item of list) {
    for (const p of item.split(',').map((s) => s.trim()).filter(Boolean)) {
      const parts = p.split('/');
      if (parts.length === 1) parts.unshift('linux');
      const [os, architecture, variant] = parts;
      out.push(variant ? { architecture, os, variant } : { architecture, os });
    }
  }
  return out.length ? out : null;
}

const fmtPlatform = (p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

async function updateNodeGroup(v, ng, o, warn) {
  let i = o.node ? ng.Nodes.findIndex((n) => n.Name === o.node) : -1;
  if (i === -1 && !o.append) {
    if (ng.Nodes.length > 0) throw new BuildxError(`node ${o.node} not found, did you mean to append?`);
    ng.Nodes = [];
  }
  const pp = parsePlatforms(o.platforms);
  const files = o.configFile ? await loadConfigFiles(v, o.configFile) : null;
  if (i !== -1) {
    const n = ng.Nodes[i];
    let restart = false;
    if (o.setEp) (n.Endpoint = o.ep), (restart = true);
    if (pp) n.Platforms = pp;
    if (o.flags) (n.Flags = o.flags), (restart = true);
    if (o.driverOpts) (n.DriverOpts = o.driverOpts), (restart = true);
    if (files) (n.Files = { ...(n.Files ?? {}), ...files }), (restart = true);
    if (restart) warn('new settings may not be used until builder is restarted');
    return;
  }
  let name = o.node;
  if (!name) for (let k = 0; ; k++) if (!ng.Nodes.some((n) => n.Name === `${ng.Name}${k}`)) {
    name = `${ng.Name}${k}`;
    break;
  }
  name = validateName(name);
  if (ng.Nodes.some((n) => n.Endpoint === o.ep) && o.ep) throw new BuildxError(`invalid duplicate endpoint ${o.ep}`);
  ng.Nodes.push({ Name: name, Endpoint: o.ep, Platforms: pp, DriverOpts: o.driverOpts, Flags: o.flags, Files: files });
}

/** BX driver/docker-container/factory.go New(): the keys each version knows. */
function validateDriverOpts(v, driver, opts) {
  if (driver !== 'docker-container') return `fake buildx: driver ${driver} is not emulated`;
  const known = ['network', 'image', 'memory', 'memory-swap', 'cpu-period', 'cpu-quota', 'cpu-shares', 'cpuset-cpus', 'cpuset-mems', 'cgroup-parent'];
  if (atLeast(v, 0, 13)) known.push('restart-policy');
  if (atLeast(v, 0, 14)) known.push('default-load');
  if (atLeast(v, 0, 30)) known.push('provenance-add-gha');
  if (atLeast(v, 0, 36)) known.push('allow-untrusted-image');
  for (const k of Object.keys(opts).sort()) {
    const val = opts[k];
    if (k.startsWith('env.')) {
      if (k === 'env.') return `invalid env option ${goQuote(k)}, expecting env.FOO=bar`;
      continue;
    }
    if (!known.includes(k)) return `invalid driver option ${k} for docker-container driver`;
    if (['cpu-period', 'cpu-quota', 'cpu-shares'].includes(k) && !/^[+-]?\d+$/.test(val)) return `strconv.ParseInt: parsing ${goQuote(val)}: invalid syntax`;
    if (['default-load', 'provenance-add-gha', 'allow-untrusted-image'].includes(k) && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(val)) {
      return `strconv.ParseBool: parsing ${goQuote(val)}: invalid syntax`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- resolving builders

/** A builder as buildx.New() sees it: a store NodeGroup or the docker-context builder. */
function resolveBuilder(cx, store, name) {
  if (name) {
    const ng = store.get(name);
    if (ng) return ng;
    if (cx.contexts().includes(name)) return contextBuilder(name);
    throw new BuildxError(`no builder ${goQuote(name)} found`);
  }
  return store.current(cx.currentEndpoint) ?? contextBuilder(cx.currentContext);
}

function contextBuilder(ctxName) {
  return { Name: ctxName, Driver: 'docker', Nodes: [{ Name: ctxName, Endpoint: ctxName, Platforms: null, DriverOpts: null, Flags: null, Files: null }], Dynamic: false, dockerContext: true };
}

async function loadNodes(cx, ng) {
  return Promise.all(
    ng.Nodes.map(async (node) => {
      if (ng.Driver === 'docker') return loadDockerNode(cx, node);
      const err = validateDriverOpts(cx.v, ng.Driver, node.DriverOpts ?? {});
      if (err) return { ...node, err, platforms: [], labels: {}, gc: [], version: '' };
      return loadNode(cx, ng, node);
    }),
  );
}

/** The docker driver: BuildKit inside dockerd. 20.10 is past buildx's version table (BX driver/docker/version.go). */
async function loadDockerNode(cx, node) {
  const { dockerRunner, dockerError } = await import('./engine.mjs');
  const r = await dockerRunner(cx, node.Endpoint)(['version', '--format', '{{.Server.Version}}']);
  const n = { ...node, version: '', platforms: [], labels: {}, gc: [] };
  if (r.code !== 0) return { ...n, err: dockerError(r) };
  return { ...n, status: 'running', version: 'v0.8+unknown', platforms: ['linux/amd64', 'linux/386'] };
}

async function boot(cx, ng) {
  const nodes = await loadNodes(cx, ng);
  const todo = nodes.filter((n) => !n.err && n.status !== 'running');
  if (ng.Driver !== 'docker-container' || todo.length === 0) return false;
  const progress = plainProgress(cx);
  for (const n of todo) await bootNode(cx, ng, n, progress);
  return true;
}

/** platformutil.FormatInGroups: fixed platforms (marked *) first, then the detected rest. */
function formatInGroups(manual, detected) {
  const m = (manual ?? []).map(fmtPlatform);
  return [...m.map((p) => `${p}*`), ...detected.filter((p) => !m.includes(p))];
}

// ---------------------------------------------------------------- inspect

async function inspect(cx, argv) {
  const spec = { bootstrap: { type: 'bool' } };
  if (atLeast(cx.v, 0, 32)) spec.timeout = { type: 'string' };
  const { opts, args } = parse(cx, 'inspect', 'inspect [NAME]', spec, argv);
  if (args.length > 1) throw new BuildxError(`"docker buildx inspect" requires at most 1 argument.\nSee 'docker buildx inspect --help'.\n\nUsage:  docker buildx inspect [NAME]\n\nInspect current builder instance`);
  const store = new Store(cx.storeDir);
  const ng = resolveBuilder(cx, store, args[0] || cx.builderFlag || cx.env.BUILDX_BUILDER);
  let nodes = await loadNodes(cx, ng);
  if (opts.bootstrap && (await boot(cx, ng))) nodes = await loadNodes(cx, ng);
  const old = !atLeast(cx.v, 0, 13);
  let t = `Name:\t${ng.Name}\nDriver:\t${ng.Driver}\n`;
  if (ng.LastActivity && !Number.isNaN(ng.LastActivity.getTime())) t += `Last Activity:\t${goTime(ng.LastActivity)}\n`;
  t += '\nNodes:\n';
  nodes.forEach((n, i) => {
    if (i) t += '\n';
    t += `Name:\t${n.Name}\nEndpoint:\t${n.Endpoint}\n`;
    const dopts = Object.entries(n.DriverOpts ?? {}).map(([k, val]) => `${k}=${goQuote(val)}`);
    if (dopts.length) t += `Driver Options:\t${dopts.join(' ')}\n`;
    if (n.err) {
      t += `Error:\t${n.err}\n`;
      return;
    }
    t += `Status:\t${n.status}\n`;
    if (n.Flags?.length) t += `${old ? 'Flags:' : 'BuildKit daemon flags:'}\t${n.Flags.join(' ')}\n`;
    if (n.version) t += `${old ? 'Buildkit:' : 'BuildKit version:'}\t${n.version}\n`;
    const pf = formatInGroups(n.Platforms, n.platforms);
    if (pf.length) t += `Platforms:\t${pf.join(', ')}\n`;
    const labels = Object.keys(n.labels).sort();
    if (labels.length) t += 'Labels:\n' + labels.map((k) => `\t${k}:\t${n.labels[k]}\n`).join('');
    n.gc.forEach((r, ri) => {
      t += `GC Policy rule#${ri}:\n\tAll:\t${r.all}\n`;
      if (r.filter.length) t += `\tFilters:\t${r.filter.join(' ')}\n`;
      if (r.keepDuration) t += `\tKeep Duration:\t${r.keepDuration / 3.6e12}h0m0s\n`;
      // Before buildx 0.18 only wire field 3 (keepBytes, now reservedSpace) is shown.
      if (!atLeast(cx.v, 0, 18)) {
        if (r.reserved) t += `\tKeep Bytes:\t${bytesSize(r.reserved)}\n`;
      } else {
        if (r.reserved) t += `\tReserved Space:\t${bytesSize(r.reserved)}\n`;
        if (r.maxUsed) t += `\tMax Used Space:\t${bytesSize(r.maxUsed)}\n`;
        if (r.minFree) t += `\tMin Free Space:\t${bytesSize(r.minFree)}\n`;
      }
    });
    if (atLeast(cx.v, 0, 18)) {
      for (const [f, b64] of Object.entries(n.Files ?? {})) {
        t += `File#${f}:\n`;
        for (const line of Buffer.from(b64, 'base64').toString('utf8').split('\n')) t += `\t> ${line}\n`;
      }
    }
  });
  process.stdout.write(tabwrite(t));
  return 0;
}

/** docker/go-units BytesSize (binary units, 4 significant digits). */
function bytesSize(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

// ---------------------------------------------------------------- ls

async function ls(cx, argv) {
  const v = cx.v;
  const spec = {};
  if (atLeast(v, 0, 13)) spec.format = { type: 'string' };
  if (atLeast(v, 0, 18)) spec['no-trunc'] = { type: 'bool' };
  if (atLeast(v, 0, 32)) spec.timeout = { type: 'string' };
  const { opts } = parse(cx, 'ls', 'ls', spec, argv);
  const store = new Store(cx.storeDir);
  const currentNg = store.current(cx.currentEndpoint);
  const builders = store.list();
  for (const c of cx.contexts()) if (!builders.some((b) => b.Name === c)) builders.push(contextBuilder(c));
  const loaded = await Promise.all(builders.map(async (b) => ({ b, nodes: await loadNodes(cx, b) })));
  const currentName = currentNg ? currentNg.Name : cx.currentContext;
  const format = opts.format ?? 'table';

  if (format === 'json') {
    for (const { b, nodes } of loaded) {
      const line = JSON.stringify(lsJson(v, b, nodes, b.Name === currentName)) + '\n';
      // v0.13–v0.20 printed each builder once per node as well (fixed in v0.21, BX 5e1ea62f9).
      const times = atLeast(v, 0, 21) ? 1 : 1 + nodes.length;
      for (let i = 0; i < times; i++) process.stdout.write(line);
    }
    return 0;
  }
  if (format !== 'table') throw new BuildxError(`fake buildx: ls --format ${format} is not emulated`);

  let t = 'NAME/NODE\tDRIVER/ENDPOINT\tSTATUS\tBUILDKIT\tPLATFORMS\n';
  let hasErr = false;
  for (const { b, nodes } of loaded) {
    if (!atLeast(v, 0, 13)) {
      t += `${b.Name}${b.Name === currentName ? ' *' : ''}\t${b.Driver}\t\t\t\n`;
      for (const n of nodes) {
        if (n.err) {
          hasErr = true;
          t += `  ${n.Name}\t${n.Endpoint}\terror\t\t\n`;
        } else t += `  ${n.Name}\t${n.Endpoint}\t${n.status}\t${n.version}\t${formatInGroups(n.Platforms, n.platforms).join(', ')}\n`;
      }
      continue;
    }
    t += `${b.Name}${b.Name === currentName ? '*' : ''}\t${b.Driver}\t\t\t\n`;
    for (const n of nodes) {
      if (n.err) hasErr = true;
      const pfs = formatInGroups(n.Platforms, n.platforms);
      const pf = atLeast(v, 0, 18) && !opts['no-trunc'] ? truncPlatforms(pfs) : pfs.join(', ');
      t += ` \\_ ${n.Name}\t \\_ ${n.Endpoint}\t${n.err ? 'error' : n.status ?? ''}\t${n.version}\t${pf}\n`;
    }
  }
  process.stdout.write(atLeast(v, 0, 13) ? tabwrite(t, { minwidth: 10, padding: 3 }) : tabwrite(t));
  if (hasErr) {
    let e = '\n';
    for (const { b, nodes } of loaded) for (const n of nodes) if (n.err) e += `Failed to get status for ${b.Name} (${n.Name}): ${n.err.trim()}\n`;
    process.stderr.write(e);
  }
  return 0;
}

function lsJson(v, b, nodes, current) {
  const nodeJson = (n) => {
    const o = { Name: n.Name, Endpoint: n.Endpoint };
    if (n.Flags?.length) o.Flags = n.Flags;
    if (n.DriverOpts && Object.keys(n.DriverOpts).length) o.DriverOpts = sortKeys(n.DriverOpts);
    if (n.Files && Object.keys(n.Files).length) o.Files = sortKeys(n.Files);
    const status = n.err ? 'error' : n.status;
    if (status) o.Status = status;
    if (n.version) o.Version = n.version;
    if (n.err) o.Err = n.err.trim();
    const pp = [...new Set([...(n.Platforms ?? []).map(fmtPlatform), ...n.platforms])];
    if (pp.length) o.Platforms = pp;
    if (n.gc.length) {
      o.GCPolicy = n.gc.map((r) =>
        atLeast(v, 0, 18)
          ? { all: r.all, filter: r.filter.length ? r.filter : null, keepDuration: r.keepDuration, reservedSpace: r.reserved ?? 0, maxUsedSpace: r.maxUsed ?? 0, minFreeSpace: r.minFree ?? 0 }
          : { all: r.all, filter: r.filter.length ? r.filter : null, keepDuration: r.keepDuration, keepBytes: r.reserved ?? 0 },
      );
    }
    if (Object.keys(n.labels).length) o.Labels = sortKeys(n.labels);
    // A running node lists its BuildKit worker IDs (seen in real v0.38.2; where it began is not
    // checked, so only the current emulation prints it). The ID is derived from the node name.
    if (status === 'running' && atLeast(v, 0, 36)) o.IDs = [workerId(`${b.Name}/${n.Name}`)];
    return o;
  };
  const la = b.LastActivity && !Number.isNaN(b.LastActivity.getTime()) ? rfc3339(b.LastActivity) : '0001-01-01T00:00:00Z';
  const o = { Name: b.Name, Driver: b.Driver, LastActivity: la, Dynamic: false, Nodes: nodes.map(nodeJson) };
  // v0.24+ re-marshals through a map: every level alphabetical, plus Current (BX a3180cbf3).
  return atLeast(v, 0, 24) ? deepSort({ ...o, Current: current }) : o;
}

/** A BuildKit-shaped worker ID (25 lower-case letters and digits), stable per node. */
function workerId(seed) {
  let h = 0x811c9dc5;
  let id = '';
  for (let i = 0; id.length < 25; i++) {
    h = Math.imul(h ^ seed.charCodeAt(i % seed.length) ^ i, 0x01000193) >>> 0;
    id += (h % 36).toString(36);
  }
  return id;
}

const sortKeys = (m) => Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
function deepSort(x) {
  if (Array.isArray(x)) return x.map(deepSort);
  if (x && typeof x === 'object') return Object.fromEntries(Object.keys(x).sort().map((k) => [k, deepSort(x[k])]));
  return x;
}

// BX commands/ls.go truncPlatforms (v0.18+), for up to 4 os/arch groups.
const MAJOR = ['linux/amd64', 'linux/arm64', 'linux/arm', 'linux/ppc64le', 'linux/s390x', 'linux/riscv64', 'linux/mips64'];
function truncPlatforms(pfs, max = 4) {
  const osArch = (p) => p.replace(/\*$/, '').split('/').slice(0, 2).join('/');
  const res = new Map();
  for (const m of MAJOR) for (const p of pfs) {
    if (res.size >= max) break;
    if (osArch(p) === m) res.set(m, [...(res.get(m) ?? []), p]);
  }
  const left = new Map();
  for (const p of pfs) {
    if (res.size >= max) break;
    const k = osArch(p);
    if (!res.has(k)) left.set(k, [...(left.get(k) ?? []), p]);
  }
  for (const [k, val] of left) res.set(k, val);
  const out = [];
  let count = 0;
  const group = (k) => {
    const g = res.get(k);
    if (g.length === 1) out.push(g[0]);
    else out.push(`${k}${g.some((p) => p.endsWith('*')) ? '*' : ''} (+${g.length})`);
    count += g.length;
  };
  const seen = new Set();
  for (const m of MAJOR) if (res.has(m)) (seen.add(m), group(m));
  for (const k of [...res.keys()].sort()) {
    if (out.length >= max) break;
    if (!seen.has(k)) group(k);
  }
  if (pfs.length - count > 0) out.push(`(${pfs.length - count} more)`);
  return out.join(', ');
}

// ---------------------------------------------------------------- rm / use

async function rm(cx, argv) {
  const spec = { 'keep-state': { type: 'bool' }, 'keep-daemon': { type: 'bool' }, 'all-inactive': { type: 'bool' }, force: { type: 'bool', short: 'f' } };
  if (atLeast(cx.v, 0, 32)) spec.timeout = { type: 'string' };
  const { opts, args } = parse(cx, 'rm', 'rm [OPTIONS] [NAME...]', spec, argv);
  if (opts['all-inactive']) throw new BuildxError('fake buildx: rm --all-inactive is not emulated');
  const store = new Store(cx.storeDir);
  const release = await store.lock();
  let failed = false;
  try {
    const names = args.length ? args : [cx.builderFlag || cx.env.BUILDX_BUILDER || (store.current(cx.currentEndpoint)?.Name ?? cx.currentContext)];
    for (const name of names) {
      try {
        const ng = resolveBuilder(cx, store, name);
        if (ng.dockerContext) throw new BuildxError(`context builder cannot be removed, run \`docker context rm ${ng.Name}\` to remove this context`);
        if (!opts['keep-daemon']) for (const node of ng.Nodes) if (ng.Driver === 'docker-container') await rmNode(cx, node, { keepState: opts['keep-state'], keepDaemon: false });
        store.remove(ng.Name);
        process.stderr.write(`${name} removed\n`);
      } catch (err) {
        if (!(err instanceof BuildxError)) throw err;
        failed = true;
        process.stderr.write(`failed to remove ${name}: ${err.message}\n`);
      }
    }
  } finally {
    release();
  }
  if (failed) throw new BuildxError('failed to remove one or more builders');
  return 0;
}

async function use(cx, argv) {
  const { opts, args } = parse(cx, 'use', 'use [OPTIONS] NAME', { default: { type: 'bool' }, global: { type: 'bool' } }, argv);
  if (args.length !== 1) throw new BuildxError(`"docker buildx use" requires exactly 1 argument.\nSee 'docker buildx use --help'.\n\nUsage:  docker buildx use [OPTIONS] NAME\n\nSet the current builder instance`);
  const name = args[0];
  const store = new Store(cx.storeDir);
  const release = await store.lock();
  try {
    if (!store.get(name)) {
      if (name === 'default' && name !== cx.currentContext) throw new BuildxError('run `docker context use default` to switch to default context');
      if (name === 'default' || name === cx.currentContext) {
        store.setCurrent(cx.currentEndpoint, '', false, false);
        return 0;
      }
      if (cx.contexts().includes(name)) throw new BuildxError(`run \`docker context use ${name}\` to switch to context ${name}`);
      throw new BuildxError(`failed to find instance ${goQuote(name)}: open ${join(cx.storeDir, 'instances', name.toLowerCase())}: no such file or directory`);
    }
    store.setCurrent(cx.currentEndpoint, name.toLowerCase(), Boolean(opts.global), Boolean(opts.default));
  } finally {
    release();
  }
  return 0;
}
