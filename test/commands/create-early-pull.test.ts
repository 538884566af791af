// A locked run with no mirror to choose among starts the engine image's pull with the run, before
// the facts and the resolve (src/commands/create.ts startPull): the pull happens once, its progress
// is shown, and an image already on the daemon is not asked of any registry. Real dockerd, loopback
// registries, the emulated buildx plugin.
import t from 'tap';
import { requireBinaries } from '../helpers/integration.js';
import { runCli } from '../helpers/cli.js';
import { BINARIES, cliEnv, installFakeBuildx, ok, project, world } from '../helpers/world.js';

t.test('locked, no mirror: one pull of the pinned image, its progress shown; present on the daemon: no registry asked (emulated buildx)', async (t) => {
  if (!requireBinaries(t, BINARIES)) return;
  const w = await world(t);
  const fake = installFakeBuildx(t);
  const dir = project(t, w, { builder: { name: 'early' } });
  const env = cliEnv(w, fake);
  ok(t, await runCli(['lock'], { cwd: dir, env }), 'lock');
  await w.upstream.settle();
  const before = w.upstream.requestLog().length;
  const first = await runCli(['--debug'], { cwd: dir, env });
  ok(t, first, 'create');
  const pulls = first.stderr.split('\n').filter((l) => /debug: \$ docker pull /.test(l));
  t.equal(pulls.length, 1, `one docker pull: ${pulls.join(' | ')}`);
  t.match(pulls[0], `${w.upstream.host}/moby/buildkit:v0.18.2@${w.pushed['v0.18.2']!.digest}`, 'of the locked reference');
  t.match(first.stderr, /Pulling from moby\/buildkit[\s\S]*Digest: sha256:[0-9a-f]{64}/, 'its progress is shown');
  t.match(first.stderr, /Engine image \S+ \(pulled\)/, 'the engine image step took that pull');
  await w.upstream.settle();
  const blobGets = w.upstream.requestLog().slice(before).filter((l) => /^GET \/v2\/moby\/buildkit\/blobs\//.test(l));
  t.equal(new Set(blobGets).size, blobGets.length, `no blob fetched twice: ${blobGets.join(' | ')}`);

  // The builder goes, the image stays: the next run's early look finds it and asks no registry.
  ok(t, await runCli(['rm'], { cwd: dir, env }), 'rm');
  await w.upstream.settle();
  const again = w.upstream.requestLog().length;
  const second = await runCli(['--debug'], { cwd: dir, env });
  ok(t, second, 'create again');
  t.notMatch(second.stderr, /debug: \$ docker pull /, 'nothing pulled');
  await w.upstream.settle();
  t.same(w.upstream.requestLog().slice(again).filter((l) => / \/v2\/moby\/buildkit\//.test(l)), [], 'no registry was asked for the engine image');
});
