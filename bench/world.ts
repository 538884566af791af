// A long-lived bench world for profiling by hand: the same dockerd (real engines), mirror and
// buildx plugin as bench/create.ts, a locked project with a cache dir; prints an env file and
// stays up until SIGTERM/SIGINT (then stops everything by pid).
//   node --import=@tapjs/typescript/import bench/world.ts /tmp/world.env &
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEngines, installRealBuildx, pushRealEngineImage, startEngineDockerd } from '../test/helpers/engines.js';
import { startRegistry } from '../test/helpers/registry.js';

const teardowns: (() => unknown)[] = [];
const host = { teardown: (fn: () => unknown) => teardowns.push(fn) };
const engines = findEngines();
const buildx = engines.buildx.at(-1)!;
const kit = engines.buildkit.at(-1)!;
const work = mkdtempSync(join(tmpdir(), 'bxb-world-'));
teardowns.push(() => rmSync(work, { recursive: true, force: true }));
const [dockerd, mirror] = await Promise.all([startEngineDockerd(host), startRegistry(host)]);
await pushRealEngineImage(mirror, kit);
const env = { PATH: process.env.PATH, HOME: work, ...installRealBuildx(host, buildx, { dockerConfig: join(work, 'docker-config') }).env, ...dockerd.env };
const project = join(work, 'project');
mkdirSync(project);
writeFileSync(join(project, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { image: `${mirror.host}/moby/buildkit`, version: kit.version }, builder: { name: 'bench' }, cache: { dir: join(work, 'cache') } }));
writeFileSync(process.argv[2]!, `${Object.entries({ ...env, PROJECT: project, MIRROR: mirror.host, TAG: kit.version }).map(([k, v]) => `export ${k}='${v}'`).join('\n')}\n`);
const stop = async (): Promise<void> => {
  for (const fn of teardowns.reverse()) await fn();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => undefined, 1 << 30);
