// The full create pipeline as a listr task list: docker and buildx facts, the engine image made
// local, buildkitd.toml, and convergence. Loaded only when the no-op fast path does not apply.
import type { CommandContext } from '../context.js';
import { runTasks } from '../cli/tasks.js';
import type { LoadedConfig } from '../config/load.js';
import { bringUpBuilder, type BringUpResult } from './bring-up.js';
import {
  appendArgsFor,
  builderSpec,
  checkPinForMirrors,
  createArgsFor,
  startFacts,
  makeRegistryAuth,
  pinFromLock,
  renderConfigFor,
  resolvePin,
  versionOfTag,
  type BuildkitdConfigText,
  type EnginePin,
  type Facts,
} from './pipeline.js';
import { applicableLock } from '../resolve/index.js';
import type { DriverChoice } from './driver.js';
import { cacheProblem, findLocalEngineImage, pullEngineImage, saveToCache, withCacheProblem, type CacheLoad, type CacheOutcome, type EarlyPull, type LocalEngineImage } from '../docker/engine-image.js';
import type { DockerRunner } from '../docker/runner.js';
import type { BuildxFacts } from '../docker/buildx.js';
import { buildUseArgs } from '../docker/buildx-args.js';
import { check } from '../docker/runner.js';
import type { RegistryAuth } from '../docker/registry-auth.js';
import { parseImageRef } from '../registry/reference.js';
import { prepareLeaseImage } from '../docker/leases.js';

export interface CreateState {
  loaded?: LoadedConfig;
  /** The run's registry credentials for docker and BuildKit; disposed by the command at the end. */
  auth?: RegistryAuth;
  runner?: DockerRunner;
  facts?: Facts;
  driver?: DriverChoice;
  pin?: EnginePin;
  local?: LocalEngineImage;
  /** The cached engine image's load, started at the beginning of the run. */
  preload?: CacheLoad | undefined;
  /** The locked engine image's pull, started at the beginning of the run. */
  earlyPull?: EarlyPull | undefined;
  toml?: BuildkitdConfigText;
  result?: BringUpResult;
  builder?: string;
}

/** The full pipeline as a task list: facts, engine image, config, converge. */
export async function fullCreate(ctx: CommandContext, state: CreateState): Promise<void> {
  const { io, log } = ctx;
  const need = <K extends keyof CreateState>(key: K): NonNullable<CreateState[K]> => state[key]!;
  let buildx: Promise<BuildxFacts> | undefined;
  let partial: Omit<Facts, 'buildx'> | undefined;
  const withBuildx = async (s: CreateState): Promise<Facts> => {
    s.facts ??= { ...partial!, buildx: await buildx! };
    return s.facts;
  };
  await runTasks<CreateState>(
    [
      {
        title: 'Check docker and buildx',
        task: async (_s, task) => {
          const early = startFacts(ctx, need('runner'), { createContext: true });
          buildx = early.buildx;
          const facts = await early.facts;
          task.title = `docker ${facts.daemon.serverVersion} (${facts.daemon.platform}), driver ${need('driver').driver}`;
          // The buildx version arrives while the engine image is made local; Facts is whole once it does.
          partial = facts;
        },
      },
      {
        title: 'Use the docker driver',
        enabled: (s) => s.driver?.driver === 'docker',
        task: async (s) => {
          await withBuildx(s);
          const name = s.driver!.contextBuilder;
          check(await need('runner').run(buildUseArgs(name), { timeoutMs: 30_000 }), `docker buildx use ${name}`, 'check the docker context');
          s.builder = name;
        },
      },
      {
        title: 'Pin the engine image',
        enabled: (s) => s.driver?.driver !== 'docker' && s.driver?.driver !== 'remote',
        task: async (s, task) => {
          const { config } = need('loaded');
          const platform = partial!.daemon.platform;
          const runner = need('runner');
          const lock = await applicableLock(config, log);
          // The cache directory is tried once per digest; an unusable copy is replaced after the pull.
          const local = { cacheDir: config.cache.dir, log, signal: io.signal, timeoutMs: config.timeouts.bootstrap, cacheOutcomes: new Map<string, CacheOutcome>(), preload: s.preload, earlyPull: s.earlyPull };
          const pullsLocally = s.driver!.driver === 'docker-container';
          // A builder container on this daemon is made under a daemon lease: once the pin is known
          // good, its image is made beside the engine image's pull or load, not on the way to the builder.
          const leaseAhead = (): void => {
            if (pullsLocally && !config.builder.endpoint) prepareLeaseImage(runner, io.signal);
          };
          // A fresh lockfile pins without asking any registry; a copy on the daemon or in the
          // cache directory then brings the builder up with every registry unreachable.
          if (lock) {
            s.pin = pinFromLock(lock, platform);
            checkPinForMirrors(config, s.pin);
            // Not for a cached tar the lockfile does not pin: a run that then fails leaves nothing.
            if (s.preload) void s.preload.holdsLocked.then((held) => held && leaseAhead());
            else leaseAhead();
            if (pullsLocally) s.local = await findLocalEngineImage(runner, s.pin, local);
          }
          if (!s.pin || (pullsLocally && !s.local)) {
            // The buildx check (a plugin start, slow on a busy machine) runs meanwhile, not first:
            // a run it dooms still fails with its error, which wins over any registry failure.
            const looked = s.pin?.reference;
            try {
              const resolving = resolvePin(ctx, config, lock, platform);
              resolving.catch(() => undefined); // awaited below
              // The run's credentials (the pull needs them) are made while the registries are asked.
              if (pullsLocally) s.auth ??= await makeRegistryAuth(ctx, config);
              s.pin = await resolving;
              checkPinForMirrors(config, s.pin);
              leaseAhead();
              if (pullsLocally) {
                // The daemon was just asked for this very reference and its image IDs: not again.
                const present = s.pin.reference === looked ? undefined : await findLocalEngineImage(runner, s.pin, local);
                s.local = present ?? (await pullEngineImage(runner, s.pin, { ...local, registryAuth: await pullAuth(ctx, s, s.pin.reference) }));
              }
            } catch (error) {
              await withBuildx(s);
              // What failed first was the cache file: name it before the registries.
              throw withCacheProblem(error, s.pin && cacheProblem(local, s.pin.digest));
            }
          }
          if (s.local) await saveToCache(runner, s.pin, s.local.imageId, local);
          task.title = `Engine image ${s.pin.reference}${s.local ? ` (${describeLocal(s.local)})` : ''}`;
        },
      },
      {
        title: 'Render buildkitd.toml',
        enabled: (s) => s.driver?.driver !== 'docker' && s.driver?.driver !== 'remote',
        task: async (s) => {
          s.toml = await renderConfigFor(need('loaded').config);
        },
      },
      {
        title: 'Converge the builder',
        enabled: (s) => s.driver?.driver !== 'docker',
        task: async (s, task) => {
          const { config } = need('loaded');
          const facts = await withBuildx(s);
          const driver = s.driver!.driver as 'docker-container' | 'kubernetes' | 'remote';
          const image = s.local?.ref ?? s.pin?.reference ?? '';
          const spec = builderSpec(config, driver, image, s.pin?.digest ?? '', s.toml?.sha ?? '', facts);
          const createArgs = createArgsFor(spec, facts.buildx.version, io.env, config.timeouts);
          s.result = await bringUpBuilder({
            runner: need('runner'),
            env: io.env,
            log,
            signal: io.signal,
            buildxVersion: facts.buildx.version,
            spec,
            configText: s.toml?.text ?? '',
            expectedVersion: s.pin ? versionOfTag(s.pin.tag) : undefined,
            expectedImageId: s.local?.imageId,
            endpointKey: facts.endpointKey,
            createArgs,
            appendArgs: appendArgsFor(spec, facts.buildx.version, io.env),
            timeouts: config.timeouts,
            pinLock: s.pin?.lock,
            tlsContext: facts.tlsContext,
          });
          s.builder = spec.name;
          const node = s.result.info.nodes[0];
          const version = node?.buildkitVersion ?? (s.pin ? `${s.pin.tag}, the pinned image ID` : 'unknown');
          task.title = `Builder ${spec.name} ${s.result.decision.action === 'reuse' ? 'reused' : s.result.decision.action === 'create' ? 'created' : 'recreated'} (BuildKit ${version}, buildx ${facts.buildx.version})`;
        },
      },
    ],
    state,
    io,
    log.level,
  );
}

/** The pull's credentials: the same store the resolve read, sent per request (or the CLI's per-run config). */
async function pullAuth(ctx: CommandContext, s: CreateState, reference: string): Promise<NonNullable<Parameters<typeof pullEngineImage>[2]['registryAuth']>> {
  const auth = (s.auth ??= await makeRegistryAuth(ctx, s.loaded!.config));
  const host = parseImageRef(reference).registry;
  return { header: await auth.engineAuthHeader(host), cliEnv: () => auth.childEnv() };
}

function describeLocal(local: LocalEngineImage): string {
  switch (local.how) {
    case 'present':
      return 'already on the daemon';
    case 'present-by-id':
      return 'on the daemon by image ID';
    case 'cache':
      return 'loaded from the cache directory';
    case 'pulled':
      return 'pulled';
  }
}
