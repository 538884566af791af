// Command-line parsing: one table of options, each either a CLI switch or a config override
// (merged as the `flags` layer, validated with the config schema).
import { UsageError } from '../errors.js';
import { setPath } from '../config/load.js';
import { splitMirror } from '../config/schema.js';

export const COMMANDS = ['create', 'resolve', 'lock', 'plan', 'doctor', 'rm', 'init', 'mirror', 'image', 'env'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface ParsedArgs {
  command: CommandName;
  json: boolean;
  quiet: boolean;
  debug: boolean;
  help: boolean;
  version: boolean;
  configFile: string | undefined;
  /** Config overrides from flags (raw, validated later with source `flags`). */
  flags: Record<string, unknown>;
  /** `lock --check` */
  check: boolean;
  /** `init --force`, `rm --force` */
  force: boolean;
  /** `rm --keep-state` */
  keepState: boolean;
  /** `rm --stale` */
  stale: boolean;
  /** `rm --stale --older-than DURATION` (raw; validated by the command) */
  olderThan: string | undefined;
  /** The command after `--` in prefix mode. */
  exec: string[] | undefined;
  /** `mirror IMAGE…` */
  images: string[];
  /** `mirror --to HOST[:PORT][/PATH]` */
  to: string | undefined;
  /** `mirror --dry-run` */
  dryRun: boolean;
  /** `--no-load`: prefix mode leaves a tagged build without an output in the builder's cache. */
  noLoad: boolean;
  /** `--build-cache-branch NAME`: the branch the build cache is written for (default: CI or git). */
  buildCacheBranch: string | undefined;
  /** `image --push REF` */
  push: string | undefined;
  /** `image --base-images` */
  baseImages: boolean;
  /** `env --remove` */
  remove: boolean;
}

interface OptionSpec {
  names: string[];
  /** Value placeholder for help; absent for switches. */
  value?: string;
  help: string;
  apply(args: ParsedArgs, value: string): void;
}

const cfg =
  (path: string[], parse: (v: string, prev: unknown) => unknown = (v) => v) =>
  (args: ParsedArgs, value: string): void => {
    let prev: unknown = args.flags;
    for (const k of path) prev = (prev as Record<string, unknown> | undefined)?.[k];
    setPath(args.flags, path, parse(value, prev));
  };
const append = (v: string, prev: unknown): unknown[] => [...((prev as unknown[]) ?? []), v];
const appendList = (v: string, prev: unknown): unknown[] => [...((prev as unknown[]) ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export const OPTIONS: OptionSpec[] = [
  { names: ['-c', '--config'], value: 'FILE', help: 'configuration file (default: searched by cosmiconfig)', apply: (a, v) => (a.configFile = v) },
  { names: ['--json'], help: 'print the result as JSON on stdout', apply: (a) => (a.json = true) },
  { names: ['-q', '--quiet'], help: 'print nothing but errors', apply: (a) => (a.quiet = true) },
  { names: ['--debug'], help: 'verbose progress; errors include the command transcript', apply: (a) => (a.debug = true) },
  { names: ['-h', '--help'], help: 'show this help', apply: (a) => (a.help = true) },
  { names: ['-V', '--version'], help: 'print the buildx-bootstrap version', apply: (a) => (a.version = true) },
  { names: ['--buildkit-version'], value: 'SPEC', help: 'BuildKit version: range (^0.18), exact (v0.18.2) or tag (buildx-stable-1)', apply: cfg(['buildkit', 'version']) },
  { names: ['--image'], value: 'REPO', help: 'engine image repository (default moby/buildkit)', apply: cfg(['buildkit', 'image']) },
  { names: ['--rootless'], help: 'use the -rootless image flavour', apply: (a) => setPath(a.flags, ['buildkit', 'rootless'], true) },
  { names: ['--mirror'], value: 'HOST[/PATH]', help: 'registry mirror, repeatable, tried in order (replaces configured mirrors)', apply: cfg(['mirrors'], (v, prev) => [...((prev as unknown[]) ?? []), splitMirror(v)]) },
  { names: ['--no-upstream'], help: 'never contact the mirrored registry itself', apply: (a) => setPath(a.flags, ['upstream'], false) },
  { names: ['--name'], value: 'NAME', help: 'builder name (default buildx-bootstrap-<hash of what defines the builder>)', apply: cfg(['builder', 'name']) },
  { names: ['--driver'], value: 'DRIVER', help: 'auto | docker | docker-container | kubernetes | remote', apply: cfg(['builder', 'driver']) },
  { names: ['--platform'], value: 'PLATFORMS', help: 'fixed platforms for the builder node, repeatable or comma-separated', apply: cfg(['builder', 'platforms'], appendList) },
  {
    names: ['--driver-opt'],
    value: 'KEY=VALUE',
    help: 'driver option, repeatable',
    apply: (a, v) => {
      const eq = v.indexOf('=');
      if (eq <= 0) throw new UsageError(`invalid --driver-opt "${v}"`, { hint: 'use --driver-opt key=value, e.g. --driver-opt network=host' });
      setPath(a.flags, ['builder', 'driverOpts', v.slice(0, eq)], v.slice(eq + 1));
    },
  },
  { names: ['--endpoint'], value: 'CONTEXT|URL', help: 'docker context or endpoint URL for the builder', apply: cfg(['builder', 'endpoint']) },
  { names: ['--buildkitd-config'], value: 'FILE', help: 'base buildkitd.toml merged under the generated sections', apply: cfg(['buildkitd', 'config']) },
  { names: ['--buildkitd-flag'], value: 'FLAG', help: 'extra buildkitd flag, repeatable', apply: cfg(['buildkitd', 'flags'], append) },
  { names: ['--cache-dir'], value: 'DIR', help: 'directory the engine image is saved to / loaded from between jobs', apply: cfg(['cache', 'dir']) },
  { names: ['--build-cache'], value: 'TYPE', help: 'prefix mode build cache: auto | registry | local | inline | off (default auto)', apply: cfg(['buildCache', 'type']) },
  { names: ['--no-build-cache'], help: 'prefix mode: add no --cache-from/--cache-to (same as --build-cache off)', apply: (a) => setPath(a.flags, ['buildCache', 'type'], 'off') },
  { names: ['--build-cache-branch'], value: 'BRANCH', help: 'branch the build cache is read and written for (default: CI variables, else git)', apply: (a, v) => (a.buildCacheBranch = v) },
  { names: ['--lockfile'], value: 'FILE', help: 'lockfile path (default buildx-bootstrap.lock.json)', apply: cfg(['lockfile']) },
  { names: ['--probe-timeout'], value: 'DURATION', help: 'give up on a registry after this long (default 2s)', apply: cfg(['timeouts', 'probe']) },
  { names: ['--hedge'], value: 'DURATION', help: 'start the next registry after this long (default 250ms)', apply: cfg(['timeouts', 'hedge']) },
  { names: ['--bootstrap-timeout'], value: 'DURATION', help: 'limit for bringing the builder up (default 120s)', apply: cfg(['timeouts', 'bootstrap']) },
  { names: ['--drain-timeout'], value: 'DURATION', help: 'wait this long for running builds before recreating a drifted builder (default 10m)', apply: cfg(['timeouts', 'drain']) },
  {
    names: ['--no-load'],
    help: 'prefix mode: do not load a tagged build without an output into the local image store',
    apply: (a) => (a.noLoad = true),
  },
  { names: ['--check'], help: 'lock: fail (exit 4) when the lockfile is stale instead of writing it', apply: (a) => (a.check = true) },
  { names: ['-f', '--force'], help: 'init: overwrite existing files; rm: remove even while builds run on it', apply: (a) => (a.force = true) },
  { names: ['--keep-state'], help: 'rm: keep the BuildKit state volume', apply: (a) => (a.keepState = true) },
  { names: ['--stale'], help: 'rm: remove every idle builder buildx-bootstrap made that was not used for --older-than', apply: (a) => (a.stale = true) },
  { names: ['--older-than'], value: 'DURATION', help: 'rm --stale: unused for at least this long (default 7d)', apply: (a, v) => (a.olderThan = v) },
  { names: ['--to'], value: 'HOST[/PATH]', help: 'mirror: copy into this registry (default: the mirror configured for each image)', apply: (a, v) => (a.to = v) },
  { names: ['--dry-run'], help: 'mirror: only HEAD requests; say what would be copied', apply: (a) => (a.dryRun = true) },
  { names: ['--push'], value: 'REF', help: 'image: build linux/amd64 and linux/arm64 and push as REF (tag: the version, unless REF names one)', apply: (a, v) => (a.push = v) },
  { names: ['--base-images'], help: 'image: print the images the CI image is built from, one per line', apply: (a) => (a.baseImages = true) },
  { names: ['--remove'], help: "env: remove the job's docker config directory (after_script)", apply: (a) => (a.remove = true) },
];

const BY_NAME = new Map(OPTIONS.flatMap((o) => o.names.map((n) => [n, o] as const)));

export function parseArgs(argv: string[]): ParsedArgs {
  const args: ParsedArgs = {
    command: 'create',
    json: false,
    quiet: false,
    debug: false,
    help: false,
    version: false,
    configFile: undefined,
    flags: {},
    check: false,
    force: false,
    keepState: false,
    stale: false,
    olderThan: undefined,
    exec: undefined,
    images: [],
    to: undefined,
    dryRun: false,
    noLoad: false,
    buildCacheBranch: undefined,
    push: undefined,
    baseImages: false,
    remove: false,
  };
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      args.exec = argv.slice(i + 1);
      if (args.exec.length === 0) throw new UsageError('nothing to run after --', { hint: 'write the command after --, e.g. buildx-bootstrap -- docker buildx build .' });
      break;
    }
    if (token.startsWith('-') && token !== '-') {
      const eq = token.startsWith('--') ? token.indexOf('=') : -1;
      const name = eq > 0 ? token.slice(0, eq) : token;
      const spec = BY_NAME.get(name);
      if (!spec) throw new UsageError(`unknown option ${name}`, { hint: 'run buildx-bootstrap --help for the options' });
      let value = '';
      if (spec.value) {
        if (eq > 0) value = token.slice(eq + 1);
        else {
          const next = argv[i + 1];
          if (next === undefined || (next.startsWith('-') && next.length > 1)) {
            throw new UsageError(`option ${name} needs a value`, { hint: `write ${name} ${spec.value}` });
          }
          value = next;
          i++;
        }
      } else if (eq > 0) throw new UsageError(`option ${name} takes no value`, { hint: `write ${name} alone` });
      spec.apply(args, value);
      continue;
    }
    if (command === 'mirror') {
      args.images.push(token);
      continue;
    }
    if (command !== undefined) throw new UsageError(`unexpected argument "${token}"`, { hint: 'to run a command after creating the builder, put it after --' });
    if (!(COMMANDS as readonly string[]).includes(token)) {
      throw new UsageError(`unknown command "${token}"`, { hint: `commands: ${COMMANDS.join(', ')}; to run a program after create, put it after --` });
    }
    command = token;
  }
  if (command) args.command = command as CommandName;
  if (args.exec && args.command !== 'create' && args.command !== 'plan') {
    throw new UsageError(`-- <command> cannot follow "${args.command}"`, { hint: 'prefix mode is: buildx-bootstrap [plan] [options] -- <command…>' });
  }
  if ((args.to !== undefined || args.dryRun) && args.command !== 'mirror') throw new UsageError(`${args.to !== undefined ? '--to' : '--dry-run'} only applies to mirror`, { hint: 'run buildx-bootstrap mirror --to HOST[/PATH] [--dry-run] [IMAGE…]' });
  if (args.noLoad && !args.exec) throw new UsageError('--no-load only applies to prefix mode', { hint: 'write buildx-bootstrap --no-load -- docker buildx build …' });
  if ((args.push !== undefined || args.baseImages) && args.command !== 'image') throw new UsageError(`${args.push !== undefined ? '--push' : '--base-images'} only applies to image`, { hint: 'run buildx-bootstrap image [--push REF]' });
  if (args.remove && args.command !== 'env') throw new UsageError('--remove only applies to env', { hint: 'run buildx-bootstrap env --remove' });
  if (args.check && args.command !== 'lock') throw new UsageError('--check only applies to lock', { hint: 'run buildx-bootstrap lock --check' });
  if (args.stale && args.command !== 'rm') throw new UsageError('--stale only applies to rm', { hint: 'run buildx-bootstrap rm --stale [--older-than 7d]' });
  if (args.buildCacheBranch !== undefined && !args.exec) throw new UsageError('--build-cache-branch only applies to prefix mode', { hint: 'run buildx-bootstrap --build-cache-branch NAME -- docker buildx build …' });
  if (args.olderThan !== undefined && !args.stale) throw new UsageError('--older-than only applies to rm --stale', { hint: 'run buildx-bootstrap rm --stale --older-than 7d' });
  return args;
}

export function helpText(version: string): string {
  const opts = OPTIONS.map((o) => {
    const left = `  ${o.names.join(', ')}${o.value ? ` ${o.value}` : ''}`;
    return `${left.padEnd(34)} ${o.help}`;
  });
  return [
    `buildx-bootstrap ${version} — bring up a pinned, mirror-configured BuildKit builder`,
    '',
    'Usage:',
    '  buildx-bootstrap [create] [options]          create or reuse the builder, print its name',
    '  buildx-bootstrap [options] -- <command…>     create, then run the command with BUILDX_BUILDER set',
    '  buildx-bootstrap resolve [--json]            print the pinned engine image reference',
    '  buildx-bootstrap lock [--check]              write (or check) the lockfile',
    '  buildx-bootstrap plan [--json] [-- <cmd…>]   show what create (or prefix mode) would do; changes nothing',
    '  buildx-bootstrap doctor [--json]             check docker, buildx, DinD context, registries, quota, mirrors,',
    '                                               lockfile; exits with the code of the first failing check',
    '  buildx-bootstrap rm [--force]                remove the builder and its generated config (not while',
    '                                               a build runs on it, unless --force)',
    '  buildx-bootstrap rm --stale [--older-than D] remove idle builders buildx-bootstrap made, unused for D (7d)',
    '  buildx-bootstrap init [--force]              write .buildx-bootstraprc.yaml and ci/buildx-bootstrap/ snippets',
    '  buildx-bootstrap env [--remove]              print `export DOCKER_CONFIG=…` lines: the credentials we know for the',
    '                                               build in a later step (eval "$(buildx-bootstrap env)"); --remove',
    '                                               deletes that directory (after_script)',
    '  buildx-bootstrap mirror [--to HOST[/PATH]] [--dry-run] [--json] [IMAGE…]',
    '                                               copy the engine image, mirror.images and IMAGEs, whole,',
    '                                               into the internal registry (3: a source unreadable, 1: push refused)',
    '  buildx-bootstrap image [--push REF]          build the CI image (docker:cli + Node + buildx-bootstrap) from this',
    '                                               package through the mirrors; --push: linux/amd64+arm64 to REF',
    '',
    'Options:',
    ...opts,
    '',
    'Exit codes: 0 ok, 1 docker/buildx failed, 2 usage or configuration error,',
    '            3 no registry could serve the engine image, 4 lockfile mismatch, 130/143 interrupted.',
    '',
  ].join('\n');
}
