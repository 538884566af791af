// The full create pipeline as a listr task list: docker and buildx facts, the engine image made
// local, buildkitd.toml, and convergence. Loaded only when the no-op fast path does not apply.
import type { CommandContext } from '../context.js';
import { runTasks } from '../cli/tasks.js';
import type { LoadedConfig } from '../config/load.js';
import { bringUpBuilder, type BringUpResult } from './bring-up.js';
import {
  appendArgsFor,
  builderSpec,
  createArgsFor,
  gatherFacts,
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
import { findLocalEngineImage, pullEngineImage, saveToCache, type LocalEngineImage } from '../docker/engine-image.js';
import type { DockerRunner } from '../docker/runner.js';
import { buildUseArgs } from '../docker/buildx-args.js';
import { check } from '../docker/runner.js';

export interface CreateState {
  loaded?: LoadedConfig;
  runner?: DockerRunner;
  facts?: Facts;
  driver?: DriverChoice;
  pin?: EnginePin;
  local?: LocalEngineImage;
  toml?: BuildkitdConfigText;
  result?: BringUpResult;
  builder?: string;
}

/** The full pipeline as a task list: facts, engine image, config, converge. */
export async function fullCreate(ctx: CommandContext, state: CreateState): Promise<void> {
  const { io, log } = ctx;
  const need = <K extends keyof CreateState>(key: K): NonNullable<CreateState[K]> => state[key]!;
  await runTasks<CreateState>(
    [
      {
        title: 'Check docker and buildx',
        task: async (s, task) => {
          s.facts = await gatherFacts(ctx, need('runner'), { createContext: true });
          task.title = `docker ${s.facts.daemon.serverVersion} (${s.facts.daemon.platform}), buildx ${s.facts.buildx.version}, driver ${need('driver').driver}`;
        },
      },
      {
        title: 'Use the docker driver',
        enabled: (s) => s.driver?.driver === 'docker',
        task: async (s) => {
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
          const platform = need('facts').daemon.platform;
          const runner = need('runner');
          const lock = await applicableLock(config, log);
          const local = { cacheDir: config.cache.dir, log, signal: io.signal, timeoutMs: config.timeouts.bootstrap };
          const pullsLocally = s.driver!.driver === 'docker-container';
          // A fresh lockfile pins without asking any registry; a copy on the daemon or in the
          // cache directory then brings the builder up with every registry unreachable.
          if (lock) {
            s.pin = pinFromLock(lock, platform);
            if (pullsLocally) s.local = await findLocalEngineImage(runner, s.pin, local);
          }
          if (!s.pin || (pullsLocally && !s.local)) {
            s.pin = await resolvePin(ctx, config, lock, platform);
            if (pullsLocally) s.local = (await findLocalEngineImage(runner, s.pin, local)) ?? (await pullEngineImage(runner, s.pin, local));
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
          const facts = need('facts');
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
          });
          s.builder = spec.name;
          const node = s.result.info.nodes[0];
          task.title = `Builder ${spec.name} ${s.result.decision.action === 'reuse' ? 'reused' : s.result.decision.action === 'create' ? 'created' : 'recreated'} (BuildKit ${node?.buildkitVersion ?? 'unknown'})`;
        },
      },
    ],
    state,
    io,
    log.level,
  );
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
