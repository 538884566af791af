// The world the command tests run in: a real dockerd, a loopback upstream registry and a mirror
// holding engine images, the emulated buildx plugin, project directories with a config file, and
// a local-only image that arrived by `docker load` (as from an earlier CI step).
import type { Test } from 'tap';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDockerd, type Dockerd } from './dockerd.js';
import { startRegistry, type RunningRegistry } from './registry.js';
import { pushEngineTags, type EngineImage } from './engine-image.js';
import { installFakeBuildx as installFake, type FakeBuildx, type FakeBuildxVersion } from './buildx.js';
import type { CliResult } from './cli.js';
import { dockerOutput } from './docker-out.js';

export const BINARIES = ['dockerd', 'docker', 'docker-registry', 'busybox'];

export interface World {
  dockerd: Dockerd;
  upstream: RunningRegistry;
  mirror: RunningRegistry;
  /** What the harness pushed to the mirror, per tag (the same images as on the upstream). */
  pushed: Record<string, EngineImage>;
}

export async function world(t: Test): Promise<World> {
  const [dockerd, upstream, mirror] = await Promise.all([startDockerd(t), startRegistry(t), startRegistry(t)]);
  const tags = { 'v0.18.2': {}, 'v0.19.1': {}, 'buildx-stable-1': 'v0.18.2' };
  await pushEngineTags(upstream, { tags });
  const pushed = await pushEngineTags(mirror, { tags });
  return { dockerd, upstream, mirror, pushed };
}

// One temp dir per call (t.testdir is one path per test, and a second call would wipe the first).
export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-create-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function installFakeBuildx(t: Test, opts: { version?: FakeBuildxVersion } = {}): FakeBuildx {
  return installFake(t as never, { ...opts, dockerConfig: join(tempDir(t), 'docker-config') });
}

export function project(t: Test, w: World, config: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = tempDir(t);
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${w.upstream.host}/moby/buildkit`, version: 'v0.18.2' }, ...config }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export function cliEnv(w: World, fake: FakeBuildx | string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env = typeof fake === 'string' ? { DOCKER_CONFIG: fake } : fake.env;
  return { PATH: process.env.PATH, HOME: env.DOCKER_CONFIG, ...env, ...w.dockerd.env, ...extra };
}

export async function containers(d: Dockerd): Promise<string[]> {
  return (await dockerOutput(d, ['ps', '-a', '--format', '{{.Names}} {{.ID}}'])).split('\n').filter((l) => l.startsWith('buildx_buildkit_'));
}

export function createCalls(calls: { args: string[] }[]): string[][] {
  return calls.map((c) => c.args).filter((a) => a[0] === 'create');
}

export function ok(t: Test, r: CliResult, what: string): void {
  t.equal(r.code, 0, `${what} exits 0${r.code ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
}

export { loadLocalOnlyImage } from './local-image.js';
export { runBin, until } from './bin.js';

/** Builders in the emulated plugin's store (`$DOCKER_CONFIG/buildx/instances`). */
export function instances(fake: FakeBuildx): string[] {
  const dir = join(fake.dockerConfig, 'buildx', 'instances');
  return existsSync(dir) ? readdirSync(dir) : [];
}
