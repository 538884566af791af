// Glue between the create pipeline and the driver decision: what the build needs (from the
// prefixed buildx command or the `build:` config), what the local image store has, and the pure
// choice in src/driver/.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandContext } from '../cli/main.js';
import type { Config } from '../config/schema.js';
import type { DockerRunner } from '../docker/runner.js';
import { dockerConfigDir } from '../state.js';
import type { Facts } from './pipeline.js';

export type Driver = 'docker' | 'docker-container' | 'kubernetes' | 'remote';

export interface DriverChoice {
  driver: Driver;
  reasons: string[];
  warnings: string[];
  /** The docker driver's builder: named after the docker context (`default`). */
  contextBuilder: string;
  /** `--build-context name=oci-layout://…` flags for local images bridged into a container builder. */
  buildContextFlags: string[];
}

/** The builder buildx makes for the current docker context (docker driver): its name. */
export async function currentContextName(env: Record<string, string | undefined>): Promise<string> {
  if (env.DOCKER_CONTEXT) return env.DOCKER_CONTEXT;
  try {
    const config = JSON.parse(await readFile(join(dockerConfigDir(env), 'config.json'), 'utf8')) as { currentContext?: string };
    return config.currentContext || 'default';
  } catch {
    return 'default';
  }
}

export async function decideDriver(ctx: CommandContext, config: Config, facts: Facts, runner: DockerRunner): Promise<DriverChoice> {
  void facts;
  void runner;
  const contextBuilder = await currentContextName(ctx.io.env);
  const base = { warnings: [], contextBuilder, buildContextFlags: [] };
  if (config.builder.driver !== 'auto') {
    return { ...base, driver: config.builder.driver, reasons: [`builder.driver is ${config.builder.driver}`] };
  }
  return {
    ...base,
    driver: 'docker-container',
    reasons: ['no build to analyse: a docker-container builder runs the pinned BuildKit with the generated buildkitd.toml'],
  };
}
