// buildx argv, built by pure functions per buildx version (the setup-buildx-action / actions-toolkit
// way: data in, string[] out, tested as exact arrays). Every array starts with `buildx`; the docker
// runner adds `docker` and any global flags. Nothing here passes a flag the given buildx lacks —
// buildx answers an unknown flag with exit 125 (buildx-facts §1.1).
import { semver } from '../lazy.cjs';
import { UsageError } from '../errors.js';

export type CreateDriver = 'docker-container' | 'kubernetes' | 'remote';

/** What one builder node is made of; shared by `create` and `create --append`. */
interface NodeArgsInput {
  /** Detected buildx version, e.g. `0.19.3` (a leading `v` or a pre-release suffix is fine). */
  buildxVersion: string;
  name: string;
  driver: CreateDriver;
  /** Docker context or host (docker-container), BuildKit address (remote); none for kubernetes. */
  endpoint?: string;
  /** Engine image `ref@digest` for `--driver-opt image=`; ignored for remote (it runs no image). */
  image: string;
  /** Other driver options; `image` is not allowed here (it comes from `image`). */
  driverOpts: Record<string, string>;
  buildkitdFlags: string[];
  /** Absolute path of the rendered buildkitd.toml. */
  configFile?: string;
  platforms: string[];
}

export interface CreateArgsInput extends NodeArgsInput {
  use: boolean;
  bootstrap: boolean;
  /** `--timeout`; passed only to buildx >= 0.32 (older ones hard-code 20s and reject the flag). */
  timeoutSeconds?: number;
}

/** `name` is the existing builder the node joins. */
export interface AppendNodeArgsInput extends NodeArgsInput {
  /** Name of the new node; buildx picks `<builder><index>` when omitted. */
  node?: string;
}

/** First buildx version that knows each `--driver-opt` key, per driver (buildx-facts §1.3, `git log -S` in BX). */
const DRIVER_OPT_SINCE: Record<CreateDriver, Record<string, string>> = {
  'docker-container': {
    image: '0.4.0',
    network: '0.4.0',
    'env.*': '0.4.0',
    'cgroup-parent': '0.7.0',
    memory: '0.12.0',
    'memory-swap': '0.12.0',
    'cpu-period': '0.12.0',
    'cpu-quota': '0.12.0',
    'cpu-shares': '0.12.0',
    'cpuset-cpus': '0.12.0',
    'cpuset-mems': '0.12.0',
    'restart-policy': '0.13.0',
    'default-load': '0.14.0',
    'provenance-add-gha': '0.30.0',
    'allow-untrusted-image': '0.36.0',
  },
  // The facts sheet lists the kubernetes and remote keys without first versions; they are checked
  // for existence only.
  kubernetes: Object.fromEntries(
    [
      'image', 'namespace', 'replicas', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage',
      'persistent-volume-claim.requests.storage', 'limits.cpu', 'limits.memory', 'limits.ephemeral-storage',
      'rootless', 'schedulername', 'serviceaccount', 'nodeselector', 'annotations', 'labels', 'tolerations',
      'loadbalance', 'qemu.install', 'qemu.image', 'buildkit-root-volume-memory', 'default-load', 'timeout', 'env.*',
    ].map((k) => [k, '0.0.0']),
  ),
  remote: { cacert: '0.0.0', cert: '0.0.0', key: '0.0.0', servername: '0.0.0', 'default-load': '0.0.0' },
};

/**
 * The newest buildx the key table above was read from (BX HEAD v0.36.0-54). For a newer buildx a key
 * missing from the table may be new, so it is passed on and buildx itself judges it.
 */
const KEY_TABLE_VERSION = '0.36.0';

const NAME = /^[a-zA-Z][a-zA-Z0-9.\-_]*$/;

/** `0.19.3` from `v0.19.3`, `0.32.0-rc1`, `0.19.2-desktop.1`; pre-releases count as their release. */
function coreVersion(version: string): string {
  const v = semver().coerce(version)?.version;
  if (!v) throw new UsageError(`not a buildx version: "${version}"`, { hint: 'pass the version reported by docker buildx version, e.g. 0.19.3' });
  return v;
}

function atLeast(version: string, min: string): boolean {
  return semver().gte(coreVersion(version), min);
}

function checkName(name: string, what = 'builder name'): void {
  if (name === 'default') throw new UsageError('"default" is reserved by buildx for the docker driver builder', { hint: 'choose another builder name' });
  if (!NAME.test(name)) {
    throw new UsageError(`invalid ${what} "${name}"`, { hint: 'start with a letter; use letters, digits and . _ - only' });
  }
}

function checkDriver(driver: string): asserts driver is CreateDriver {
  if (driver === 'docker') {
    // BX driver/manager.go: the docker driver's factory does not allow instances.
    throw new UsageError('the docker driver cannot be created: each docker context already has its builder', {
      hint: 'use the builder named after the docker context (default) instead of creating one',
    });
  }
  if (!(driver in DRIVER_OPT_SINCE)) {
    throw new UsageError(`unknown buildx driver "${driver}"`, { hint: 'use docker-container, kubernetes or remote' });
  }
}

/** `env.FOO` matches the `env.*` row. */
function tableKey(key: string): string {
  return key.startsWith('env.') ? 'env.*' : key;
}

function checkDriverOpts(version: string, driver: CreateDriver, opts: Record<string, string>): void {
  const table = DRIVER_OPT_SINCE[driver];
  const knownTable = !atLeast(version, semver().inc(KEY_TABLE_VERSION, 'minor')!);
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'image') {
      throw new UsageError('driver option "image" is set by buildx-bootstrap from the resolved engine image', {
        hint: 'remove image from builder.driverOpts; choose the image with buildkit.image and buildkit.version',
      });
    }
    if (key === 'env.') throw new UsageError('driver option "env." has no variable name', { hint: 'write env.NAME=value' });
    if (/[\r\n]/.test(value)) throw new UsageError(`driver option "${key}" has a line break in its value`, { hint: 'driver option values are single-line' });
    const since = table[tableKey(key)];
    if (since === undefined) {
      if (knownTable) {
        throw new UsageError(`driver option "${key}" does not exist for the ${driver} driver`, {
          hint: `known options: ${Object.keys(table).filter((k) => k !== 'image').join(', ')}`,
        });
      }
      continue;
    }
    if (!atLeast(version, since) && !impliedDefaultLoad(version, key, value)) {
      throw new UsageError(`driver option "${key}" needs buildx ${since} or later (found ${coreVersion(version)})`, {
        hint: `upgrade buildx, or remove ${key} from builder.driverOpts`,
      });
    }
    if (driver === 'remote' && (key === 'cacert' || key === 'cert' || key === 'key') && !value.startsWith('/')) {
      // BX driver/remote/factory.go: `non-absolute path '…' provided for …`
      throw new UsageError(`driver option "${key}" must be an absolute path, got "${value}"`, { hint: 'give the TLS file of the remote BuildKit as an absolute path' });
    }
  }
}

/**
 * One `--driver-opt` value. buildx reads each value as a CSV record (BX builder/builder.go
 * `csvToMap`), so a value with a comma or quote must be one quoted CSV field, `"k=a,b"`.
 */
export function driverOptArg(key: string, value: string): string {
  const field = `${key}=${value}`;
  return /[",]/.test(field) || /^\s|\s$/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

function driverOptArgs(image: string | undefined, opts: Record<string, string>): string[] {
  const out: string[] = [];
  if (image) out.push('--driver-opt', driverOptArg('image', image));
  for (const key of Object.keys(opts).sort()) out.push('--driver-opt', driverOptArg(key, opts[key]!));
  return out;
}

/** Characters google/shlex leaves alone outside quotes (`#` would start a comment at a word start). */
const SHLEX_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one word so google/shlex (what buildx splits `--buildkitd-flags` with) gives it back unchanged. */
export function shlexQuote(word: string): string {
  if (SHLEX_SAFE.test(word)) return word;
  // Inside single quotes google/shlex takes everything literally up to the next `'`; an embedded
  // `'` is closed, written in double quotes, and reopened.
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

/**
 * Splits like google/shlex v0.0.0-20191202100458-e7afc7fbc510 (vendored by buildx, BX
 * builder/builder.go `parseBuildkitdFlags`): blanks separate words; `'…'` is literal; `"…"` takes
 * `\` as an escape for any character; a `\` outside quotes escapes the next character; `#` at the
 * start of a word starts a comment to the end of the line.
 */
export function shlexSplit(input: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = input.length;
  const space = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  while (i < n) {
    while (i < n && space(input[i])) i++;
    if (i >= n) break;
    if (input[i] === '#') {
      while (i < n && input[i] !== '\n') i++;
      continue;
    }
    let word = '';
    while (i < n && !space(input[i])) {
      const c = input[i]!;
      if (c === "'") {
        const end = input.indexOf("'", i + 1);
        if (end < 0) throw new Error('EOF found when expecting closing quote');
        word += input.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        i++;
        for (;;) {
          if (i >= n) throw new Error('EOF found when expecting closing quote');
          const d = input[i]!;
          if (d === '"') break;
          if (d === '\\') {
            if (i + 1 >= n) throw new Error('EOF found after escape character');
            word += input[i + 1];
            i += 2;
          } else {
            word += d;
            i++;
          }
        }
        i++;
      } else if (c === '\\') {
        if (i + 1 >= n) throw new Error('EOF found after escape character');
        word += input[i + 1];
        i += 2;
      } else {
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** The `--buildkitd-flags` value: each flag quoted so buildx's shlex split returns the same list. */
export function joinBuildkitdFlags(flags: string[]): string {
  for (const flag of flags) {
    if (flag === '') throw new UsageError('empty buildkitd flag', { hint: 'remove the empty entry from buildkitd.flags' });
  }
  return flags.map(shlexQuote).join(' ');
}

function configFlag(version: string): string {
  // Renamed in BX commit 56fc68eb7 (v0.13.0); `--config` stays a hidden alias, but older buildx
  // knows only `--config`.
  return atLeast(version, '0.13.0') ? '--buildkitd-config' : '--config';
}

function checkRemote(input: { driver: CreateDriver; buildkitdFlags: string[]; configFile?: string | undefined; endpoint?: string | undefined }): void {
  if (input.driver !== 'remote') return;
  if (input.configFile) {
    // BX driver/remote/factory.go: `setting config file is not supported for remote driver`
    throw new UsageError('the remote driver takes no buildkitd.toml: the remote BuildKit daemon has its own configuration', {
      hint: 'configure mirrors in the remote buildkitd, or use the docker-container driver',
    });
  }
  if (input.buildkitdFlags.length) {
    throw new UsageError('the remote driver takes no buildkitd flags: the remote BuildKit daemon is already running', {
      hint: 'remove buildkitd.flags, or set them where the remote buildkitd is started',
    });
  }
  if (!input.endpoint) {
    throw new UsageError('the remote driver needs an endpoint', { hint: 'set builder.endpoint to the BuildKit address, e.g. tcp://buildkitd:1234' });
  }
}

function checkEndpoint(driver: CreateDriver, endpoint: string | undefined): void {
  if (driver === 'kubernetes' && endpoint) {
    // BX builder/builder.go: `kubernetes driver does not support endpoint args "…"`
    throw new UsageError(`the kubernetes driver takes no endpoint (got "${endpoint}")`, { hint: 'remove builder.endpoint; the cluster comes from KUBECONFIG' });
  }
}

/**
 * `default-load: false` is how a user turns off the result loading of prefix mode; it is also
 * what every buildx before 0.14 does (the key came in 0.14), so there it is not passed at all.
 */
function impliedDefaultLoad(version: string, key: string, value: string): boolean {
  return key === 'default-load' && /^(false|0|f)$/i.test(value.trim()) && !atLeast(version, DRIVER_OPT_SINCE['docker-container']['default-load']!);
}

/** Shared part of create and append: driver options, flags, config, platforms. */
function nodeArgs(input: {
  buildxVersion: string;
  driver: CreateDriver;
  image: string;
  driverOpts: Record<string, string>;
  buildkitdFlags: string[];
  configFile?: string | undefined;
  platforms: string[];
}): string[] {
  const args: string[] = [];
  const opts = Object.fromEntries(Object.entries(input.driverOpts).filter(([k, v]) => !(input.driver === 'docker-container' && impliedDefaultLoad(input.buildxVersion, k, v))));
  args.push(...driverOptArgs(input.driver === 'remote' ? undefined : input.image, opts));
  if (input.buildkitdFlags.length) args.push('--buildkitd-flags', joinBuildkitdFlags(input.buildkitdFlags));
  if (input.configFile) args.push(configFlag(input.buildxVersion), input.configFile);
  if (input.platforms.length) args.push('--platform', input.platforms.join(','));
  return args;
}

function checkNodeInput(input: NodeArgsInput): void {
  checkDriver(input.driver);
  coreVersion(input.buildxVersion);
  checkRemote(input);
  checkEndpoint(input.driver, input.endpoint);
  if (input.driver !== 'remote' && !input.image) {
    throw new UsageError(`the ${input.driver} driver needs an engine image`, { hint: 'this is a bug in buildx-bootstrap: the image was not resolved' });
  }
  checkDriverOpts(input.buildxVersion, input.driver, input.driverOpts);
}

/**
 * `buildx create` for a new builder: `--name`, `--driver` (always explicit: without it a
 * `tcp://` endpoint silently makes a remote builder, buildx-facts §1.2), `--driver-opt image=…`
 * then the other options sorted, `--buildkitd-flags`, `--buildkitd-config` (`--config` before
 * buildx 0.13), `--platform`, `--use`, `--bootstrap`, `--timeout` (buildx >= 0.32), endpoint last.
 */
export function buildCreateArgs(input: CreateArgsInput): string[] {
  checkName(input.name);
  checkNodeInput(input);
  const args = ['buildx', 'create', '--name', input.name, '--driver', input.driver, ...nodeArgs(input)];
  if (input.use) args.push('--use');
  if (input.bootstrap) args.push('--bootstrap');
  if (input.timeoutSeconds !== undefined && atLeast(input.buildxVersion, '0.32.0')) {
    // BX commit f4cc8638c: a Go duration; whole seconds keep it readable in `plan`.
    if (!Number.isFinite(input.timeoutSeconds) || input.timeoutSeconds <= 0) {
      throw new UsageError(`invalid bootstrap timeout ${input.timeoutSeconds}s`, { hint: 'set timeouts.bootstrap to a positive duration' });
    }
    args.push('--timeout', `${Math.ceil(input.timeoutSeconds)}s`);
  }
  if (input.endpoint) args.push(input.endpoint);
  return args;
}

/** `buildx create --append` adding one more node (multi-node / multi-platform builders). */
export function buildAppendNodeArgs(input: AppendNodeArgsInput): string[] {
  checkName(input.name);
  if (input.node !== undefined) checkName(input.node, 'node name');
  checkNodeInput(input);
  const args = ['buildx', 'create', '--name', input.name, '--driver', input.driver, '--append'];
  if (input.node) args.push('--node', input.node);
  args.push(...nodeArgs(input));
  if (input.endpoint) args.push(input.endpoint);
  return args;
}

/** `buildx rm NAME`; `--keep-state` keeps the `_state` volume (the build cache). */
export function buildRmArgs(name: string, opts: { keepState?: boolean } = {}): string[] {
  return ['buildx', 'rm', ...(opts.keepState ? ['--keep-state'] : []), name];
}

/** `buildx inspect NAME`; `--bootstrap` boots stopped nodes first (progress on stderr). */
export function buildInspectArgs(name: string, opts: { bootstrap?: boolean } = {}): string[] {
  return ['buildx', 'inspect', ...(opts.bootstrap ? ['--bootstrap'] : []), name];
}

/** `buildx use NAME` — the current builder for the current docker endpoint. */
export function buildUseArgs(name: string, opts: { default?: boolean; global?: boolean } = {}): string[] {
  return ['buildx', 'use', ...(opts.default ? ['--default'] : []), ...(opts.global ? ['--global'] : []), name];
}

/** `buildx ls`; `--format json` exists from buildx 0.13 (BX commit 20c947990), else the plain table. */
export function buildLsArgs(buildxVersion: string): string[] {
  return atLeast(buildxVersion, '0.13.0') ? ['buildx', 'ls', '--format', 'json'] : ['buildx', 'ls'];
}

/** `buildx version`. */
export function buildVersionArgs(): string[] {
  return ['buildx', 'version'];
}
