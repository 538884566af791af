// The effects half of `create`: given the decisions (spec, config text, engine image), converge the
// builder — reuse, or remove and create — under the per-daemon lock, verify it, record it, and
// never leave a half-made builder behind (failure or SIGINT/SIGTERM removes it).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerError, InterruptedError } from '../errors.js';
import type { Logger } from '../io.js';
import { builderDir, writeFileAtomic } from '../state.js';
import { isWriteRefusal } from '../owned-temp.js';
import { buildInspectArgs, buildUseArgs } from '../docker/buildx-args.js';
import { inspectBuilder, removeBuilder } from '../docker/buildx.js';
import { buildxStoreDir, readBuildxInstance } from '../docker/buildx-store.js';
import { parseInspect, type BuilderInfo } from '../docker/parse.js';
import { lastStderrLine, transcript, type DockerRunner } from '../docker/runner.js';
import { decideConverge, type BuilderSpec, type ConvergeAction } from './converge.js';
import { drainBuilder } from './activity.js';
import { readBuilderWithoutBuildx } from './quick-state.js';
import type { Lockfile } from '../resolve/lockfile.js';
import { acquireBuilderLock } from './lock.js';
import { lockLeaseMs } from '../docker/leases.js';

export function configFilePath(env: Record<string, string | undefined>, name: string): string {
  return join(builderDir(env, name), 'buildkitd.toml');
}

function recordPath(env: Record<string, string | undefined>, name: string): string {
  return join(builderDir(env, name), 'state.json');
}

export async function readRecord(env: Record<string, string | undefined>, name: string): Promise<BuilderSpec | undefined> {
  try {
    return JSON.parse(await readFile(recordPath(env, name), 'utf8')) as BuilderSpec;
  } catch {
    return undefined;
  }
}

/** Removes the generated files of a builder (its config and record). */
export async function removeBuilderFiles(env: Record<string, string | undefined>, name: string): Promise<void> {
  await rm(builderDir(env, name), { recursive: true, force: true });
}

/** The node name buildx gives the first node (`<builder>0`, buildx store/nodegroup.go). */
export function firstNodeName(name: string): string {
  return `${name}0`;
}

export interface BringUpInput {
  runner: DockerRunner;
  env: Record<string, string | undefined>;
  log: Logger;
  signal?: AbortSignal | undefined;
  buildxVersion: string;
  spec: BuilderSpec;
  /** Generated buildkitd.toml (empty: none passed). */
  configText: string;
  /** BuildKit version the engine image must report (`v0.18.2`), when the tag says it. */
  expectedVersion?: string | undefined;
  /** Image ID the builder container must run (docker-container on the local daemon). */
  expectedImageId?: string | undefined;
  /** Key of the docker endpoint, for the lock. */
  endpointKey: string;
  /** `buildx create …` argv (from the pure builders, so plan shows exactly this). */
  createArgs: string[];
  /** One `buildx create --append …` argv per extra node. */
  appendArgs: string[][];
  /** `drain`: how long a drifted builder with running builds is waited for (default 10m). */
  timeouts: { bootstrap: number; drain?: number };
  /** The lockfile the image was pinned from: its image IDs let the bring-up be checked without buildx. */
  pinLock?: Lockfile | undefined;
  /** The docker context made for TLS-from-environment DinD (the same daemon). */
  tlsContext?: string | undefined;
}

export interface BringUpResult {
  decision: ConvergeAction;
  info: BuilderInfo;
}

function interrupted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted ?? false;
}

function interruptError(signal: AbortSignal | undefined): InterruptedError {
  return new InterruptedError(signal?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
}

export async function bringUpBuilder(input: BringUpInput): Promise<BringUpResult> {
  const { runner, env, log, spec } = input;
  const drainMs = input.timeouts.drain ?? 600_000;
  // A run waiting on the lock may be behind one that drains the builder first.
  const lockMs = input.timeouts.bootstrap + drainMs + 60_000;
  // The daemon lease when the builder's container lives on the daemon this run talks to: every
  // client of that daemon sees it, and prefixed builds wait for it (src/docker/leases.ts).
  const onThisDaemon = spec.driver === 'docker-container' && (spec.endpoint === '' || spec.endpoint === input.tlsContext);
  const release = await acquireBuilderLock(env, input.endpointKey, spec.name, {
    log,
    timeoutMs: lockMs,
    signal: input.signal,
    daemon: onThisDaemon ? { runner, holdMs: lockLeaseMs({ bootstrap: input.timeouts.bootstrap, drain: drainMs }) } : undefined,
  });
  try {
    // No record in buildx's store: no builder, and no need to start buildx to hear it say so.
    const existing = (await readBuildxInstance(env, spec.name)) === undefined ? undefined : await inspectBuilder(runner, spec.name, { signal: input.signal });
    const recorded = await readRecord(env, spec.name);
    const decision = decideConverge(spec, existing, recorded);
    if (decision.action === 'reuse') {
      log.info(`reusing builder ${spec.name}: ${decision.reasons.join('; ')}`);
      const info = decision.start ? await bootstrap(input) : existing!;
      await verify(input, info);
      await makeCurrent({ runner, env, log, name: spec.name });
      return { decision, info };
    }
    if (decision.action === 'recreate') {
      log.info(`recreating builder ${spec.name}: ${decision.reasons.join('; ')}`);
      // Never under a running build: wait for them (bounded), checked right before the removal.
      await drainBuilder({ runner, log, info: existing!, why: decision.reasons.join('; '), timeoutMs: drainMs, signal: input.signal });
      await testPause(env, 'BXB_TEST_PAUSE_BEFORE_RM');
      await removeBuilder(runner, spec.name);
      await removeBuilderFiles(env, spec.name);
    } else {
      log.info(`creating builder ${spec.name}`);
    }
    if (interrupted(input.signal)) throw interruptError(input.signal);
    try {
      const { info, pinnedImageSeen } = await create(input);
      await verify(input, info, pinnedImageSeen);
      await writeStateFile(input, recordPath(env, spec.name), `${JSON.stringify(spec, null, 2)}\n`);
      return { decision, info };
    } catch (error) {
      await cleanUp(input);
      if (interrupted(input.signal)) throw interruptError(input.signal);
      throw error;
    }
  } finally {
    await release();
  }
}

/**
 * Test hook, read only when the variable is set (the tests set it): holds the run at a point until
 * the test lets it go — `<path>.reached` is written on arrival, the run goes on once `<path>`
 * exists. A state a test must hit exactly (a run between its drain check and its rm) without a sleep.
 */
async function testPause(env: Record<string, string | undefined>, variable: string): Promise<void> {
  const path = env[variable];
  if (!path) return;
  const { existsSync } = await import('node:fs');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${path}.reached`, `${process.pid}\n`);
  for (let i = 0; i < 6000 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Writes one of the builder's files in the state directory. A full or read-only file system costs
 * one warning per run, never the job: false when the file could not be written.
 */
async function writeStateFile(input: BringUpInput & { stateWarned?: boolean }, file: string, text: string): Promise<boolean> {
  try {
    await writeFileAtomic(file, text);
    return true;
  } catch (error) {
    if (!isWriteRefusal(error)) throw error;
    if (!input.stateWarned) {
      input.log.warn(`could not write ${file}: ${error.code} (${error.message}); the builder comes up all the same, but without its record the next run recreates it`);
      input.stateWarned = true;
    }
    return false;
  }
}

/** buildkitd.toml in a fresh temp directory, for the create calls when the state directory refused it. */
async function configElsewhere(text: string): Promise<{ file: string; remove: () => Promise<void> }> {
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'buildx-bootstrap-'));
  const file = join(dir, 'buildkitd.toml');
  await writeFileAtomic(file, text);
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The new builder; `pinnedImageSeen` when its container was already seen running the pinned image ID. */
async function create(input: BringUpInput): Promise<{ info: BuilderInfo; pinnedImageSeen: boolean }> {
  const { runner, env, spec, log } = input;
  const configFile = input.configText ? configFilePath(env, spec.name) : undefined;
  // buildx copies the file's content into its store at create (buildx store/nodegroup.go), so when
  // the state directory cannot hold it, a file elsewhere serves for the create calls alone.
  const elsewhere = configFile && !(await writeStateFile(input, configFile, input.configText)) ? await configElsewhere(input.configText) : undefined;
  const swap = (args: string[]): string[] => (elsewhere ? args.map((a) => (a === configFile ? elsewhere.file : a)) : args);
  // `create --bootstrap` (createArgs) boots the first node in the same plugin call.
  const booting = input.createArgs.includes('--bootstrap');
  if (booting) log.info(`bootstrapping builder ${spec.name}`);
  let created;
  try {
    created = await runner.run(swap(input.createArgs), {
      timeoutMs: 120_000 + (booting ? input.timeouts.bootstrap : 0),
      ...(input.signal ? { signal: input.signal } : {}),
      ...(booting ? { onStderrLine: (line: string) => log.debug(line) } : {}),
    });
    for (const args of created.exitCode === 0 && !interrupted(input.signal) ? input.appendArgs : []) {
      const appended = await runner.run(swap(args), { timeoutMs: 120_000, ...(input.signal ? { signal: input.signal } : {}) });
      if (appended.exitCode !== 0) {
        throw new DockerError(`docker buildx create --append failed: ${lastStderrLine(appended)}`, {
          hint: 'check the extra node endpoints in builder.nodes',
          transcript: transcript(appended),
        });
      }
    }
  } finally {
    await elsewhere?.remove();
  }
  if (interrupted(input.signal)) throw interruptError(input.signal);
  if (created.exitCode !== 0) {
    throw new DockerError(`docker buildx create failed: ${lastStderrLine(created)}`, {
      hint: 'run buildx-bootstrap plan to see the exact argv; --debug shows the buildx output',
      transcript: transcript(created),
    });
  }
  if (booting && !input.appendArgs.length) {
    const seen = await bootedWithoutBuildx(input);
    // verify() need not ask for the image again when this look saw the expected ID itself.
    if (seen) return { info: seen.info, pinnedImageSeen: seen.image === input.expectedImageId };
  }
  return { info: await bootstrap(input), pinnedImageSeen: false };
}

async function bootstrap(input: BringUpInput): Promise<BuilderInfo> {
  const { runner, spec, log } = input;
  log.info(`bootstrapping builder ${spec.name}`);
  const r = await runner.run(buildInspectArgs(spec.name, { bootstrap: true }), {
    timeoutMs: input.timeouts.bootstrap,
    ...(input.signal ? { signal: input.signal } : {}),
    onStderrLine: (line) => log.debug(line),
  });
  if (interrupted(input.signal)) throw interruptError(input.signal);
  if (r.exitCode !== 0) {
    throw new DockerError(`bootstrapping builder ${spec.name} failed: ${lastStderrLine(r) || `exit code ${r.exitCode}`}`, {
      hint: 'the builder was removed; --debug shows the buildx output (is the engine image runnable on this daemon?)',
      transcript: transcript(r),
    });
  }
  // `inspect --bootstrap` prints the inspect text once the nodes are up (buildx commands/inspect.go),
  // so no second inspect is needed.
  let info: BuilderInfo | undefined;
  try {
    info = parseInspect(r.stdout);
  } catch {
    info = await inspectBuilder(runner, spec.name, { signal: input.signal });
  }
  if (!info) throw new DockerError(`builder ${spec.name} vanished after bootstrap`, { hint: 'is another tool removing builders on this daemon?' });
  return info;
}

/**
 * After `create --bootstrap`: when the container runs the pinned image ID, the store and the
 * container tell what `buildx inspect` would (src/builder/quick-state.ts) — one daemon call
 * instead of a second plugin start. The BuildKit version is then the pinned image's, proven by
 * its ID rather than reported. Undefined: ask buildx.
 */
async function bootedWithoutBuildx(input: BringUpInput): Promise<{ info: BuilderInfo; image: string | undefined } | undefined> {
  const { spec } = input;
  if (!input.expectedImageId || !input.pinLock) return undefined;
  const quick = await readBuilderWithoutBuildx(input.runner, input.env, spec, input.pinLock, { tlsContext: input.tlsContext, signal: input.signal });
  const node = quick?.info?.nodes[0];
  if (!quick?.info || !quick.runsPinned || node?.status !== 'running') return undefined;
  return { info: quick.info, image: quick.image };
}

/** The builder runs, with the expected BuildKit and (unless already seen) the pinned image ID. */
async function verify(input: BringUpInput, info: BuilderInfo, pinnedImageSeen = false): Promise<void> {
  const { spec, runner } = input;
  const node = info.nodes[0];
  if (!node || node.status !== 'running') {
    throw new DockerError(`builder ${spec.name} is ${node?.status ?? 'without nodes'} after bootstrap${node?.error ? `: ${node.error}` : ''}`, {
      hint: 'run docker buildx inspect --bootstrap to see why it does not start',
    });
  }
  if (input.expectedVersion && node.buildkitVersion && node.buildkitVersion !== input.expectedVersion) {
    throw new DockerError(`builder ${spec.name} runs BuildKit ${node.buildkitVersion}, expected ${input.expectedVersion}`, {
      hint: 'the engine image tag does not contain the version it names; check the mirror serves the real moby/buildkit image',
    });
  }
  if (input.expectedImageId && !pinnedImageSeen && spec.driver === 'docker-container' && !spec.endpoint.includes('://')) {
    const container = `buildx_buildkit_${node.name}`;
    const r = await runner.run([...(spec.endpoint ? ['--context', spec.endpoint] : []), 'container', 'inspect', '--format', '{{.Image}}', container], { timeoutMs: 30_000 });
    const running = r.stdout.trim();
    if (r.exitCode === 0 && running && running !== input.expectedImageId) {
      throw new DockerError(`builder container ${container} runs image ${running}, expected the pinned ${input.expectedImageId}`, {
        hint: 'a registry served another image for the pinned tag; run buildx-bootstrap lock --check and compare the mirrors',
      });
    }
  }
}

/** `buildx use NAME` unless buildx's store already has it as the current builder. */
export async function makeCurrent(input: { runner: DockerRunner; env: Record<string, string | undefined>; log: Logger; name: string }): Promise<void> {
  try {
    const current = JSON.parse(await readFile(join(buildxStoreDir(input.env), 'current'), 'utf8')) as { Name?: string };
    if (current.Name === input.name) return;
  } catch {
    // no current builder recorded yet
  }
  const r = await input.runner.run(buildUseArgs(input.name), { timeoutMs: 30_000 });
  if (r.exitCode !== 0) input.log.warn(`docker buildx use ${input.name} failed: ${lastStderrLine(r)}`);
}

/** Removes a half-made builder: the store entry (buildx rm), then any container/volume left. */
async function cleanUp(input: BringUpInput): Promise<void> {
  const { runner, spec, log } = input;
  log.info(`removing the half-made builder ${spec.name}`);
  await removeBuilder(runner, spec.name).catch((e: unknown) => log.warn(String((e as Error).message)));
  if (spec.driver === 'docker-container' && !spec.endpoint.includes('://')) {
    const ctx = spec.endpoint ? ['--context', spec.endpoint] : [];
    const node = firstNodeName(spec.name);
    await runner.run([...ctx, 'rm', '-f', `buildx_buildkit_${node}`], { timeoutMs: 60_000 });
    await runner.run([...ctx, 'volume', 'rm', '-f', `buildx_buildkit_${node}_state`], { timeoutMs: 60_000 });
  }
  await removeBuilderFiles(input.env, spec.name);
}
