// The CI cache across image stores (emulated buildx, real daemons): a runner upgraded between two
// jobs finds an engine tar saved by the other store. dockerd 20.10's classic store writes the
// legacy archive and names images by config digest; dockerd 29's containerd store writes an OCI
// layout and names them by manifest/index digest, so the ID a tar loads under matches none of the
// lock's digests. The tar is accepted by what it holds (the locked config for the daemon's
// platform) before it is loaded; one holding anything else is refused and never loaded.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinaries } from '../helpers/integration.js';
import { requireDaemon, startEngineDockerd, type DaemonKind } from '../helpers/engines.js';
import { runCli } from '../helpers/cli.js';
import { BINARIES, cliEnv, containers, installFakeBuildx, loadLocalOnlyImage, ok, project, tempDir, world } from '../helpers/world.js';

t.setTimeout(600_000);

interface Lock {
  digest: string;
  platforms: Record<string, { manifest: string; config: string }>;
}

async function crossStore(t: Test, from: DaemonKind, to: DaemonKind): Promise<void> {
  if (!requireBinaries(t, BINARIES) || !requireDaemon(t, from) || !requireDaemon(t, to)) return;
  const w = await world(t);
  const [first, next] = await Promise.all([startEngineDockerd(t, { daemon: from }), startEngineDockerd(t, { daemon: to })]);
  const cache = join(tempDir(t), 'engine-cache');
  const dir = project(t, w, { mirrors: [{ host: w.mirror.host, for: w.upstream.host }], cache: { dir: cache }, builder: { name: 'cached' } });
  const env = cliEnv(w, installFakeBuildx(t));
  ok(t, await runCli(['lock'], { cwd: dir, env }), 'lock');
  ok(t, await runCli([], { cwd: dir, env: { ...env, ...first.env } }), `first job on ${from} (${first.imageStore} store)`);
  const tars = readdirSync(cache).filter((f) => f.endsWith('.tar'));
  t.equal(tars.length, 1, `${from} saved the engine image to the cache directory`);

  // The next job: the upgraded (or downgraded) runner, a fresh ~/.docker, every registry down.
  await Promise.all([w.upstream.stop(), w.mirror.stop()]);
  const second = await runCli([], { cwd: dir, env: { ...cliEnv(w, installFakeBuildx(t)), ...next.env } });
  ok(t, second, `next job on ${to} (${next.imageStore} store) with every registry stopped`);
  t.match(second.stderr, /loaded from the cache directory/, 'the tar saved by the other store was accepted');
  t.same((await containers(next)).map((l) => l.split(' ')[0]), ['buildx_buildkit_cached0'], 'the builder container runs on the new daemon');
  const lock = JSON.parse(readFileSync(join(dir, 'buildx-bootstrap.lock.json'), 'utf8')) as Lock;
  const image = (await next.docker(['inspect', '--format', '{{.Image}}', 'buildx_buildkit_cached0'])).stdout.trim();
  const config = (await next.docker(['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();
  t.equal(config, image, 'it runs the image the tar loaded as');
  const platform = Object.keys(lock.platforms).find((p) => p === 'linux/amd64')!;
  if (next.imageStore === 'classic') t.equal(image, lock.platforms[platform]!.config, 'classic store: the locked config digest is its ID');
  else t.not(image, lock.platforms[platform]!.config, 'containerd store: its ID is not the config digest (what the old rule compared)');

  // A tar holding another image under the locked digest's name is refused before it is loaded.
  await loadLocalOnlyImage(t, next, 'bxb-test/other:1', { how: 'import' });
  const saved = await next.docker(['save', '-o', join(cache, tars[0]!), 'bxb-test/other:1']);
  t.equal(saved.code, 0, saved.stderr);
  const third = await startEngineDockerd(t, { daemon: to });
  const refused = await runCli([], { cwd: dir, env: { ...cliEnv(w, installFakeBuildx(t)), ...third.env } });
  t.equal(refused.code, 3, 'with the registries down and the tar refused: no registry, exit 3');
  t.match(refused.stderr, /cached engine image .*\.tar holds .*, the lockfile expects config sha256:[0-9a-f]{64} for linux\/amd64; ignoring it/, 'says why the tar was ignored');
  t.equal((await third.docker(['images', '-q'])).stdout.trim(), '', 'nothing was loaded into the daemon');
}

t.test('a tar saved on the classic store (dockerd 20.10) is accepted on the containerd store (dockerd 29) (emulated buildx)', (t) => crossStore(t, 'dockerd-20.10', 'dockerd-29-containerd'));
t.test('a tar saved on the containerd store is accepted on the classic store (dockerd 29, containerd-snapshotter=false) (emulated buildx)', (t) => crossStore(t, 'dockerd-29-containerd', 'dockerd-29-classic'));
