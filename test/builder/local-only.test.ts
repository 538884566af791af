// Which present images are local-only, by store: the classic store's RepoDigests answer stands; on
// the containerd store (every tag has a repo digest) the configured registries are asked, and an
// image they cannot be asked about is treated as local-only with a warning (it still builds).
import t from 'tap';
import type { CommandContext } from '../../src/context.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import type { LocalImageFact } from '../../src/docker/images.js';
import { Secrets } from '../../src/io.js';
import { settleLocalOnly } from '../../src/builder/local-only.js';
import { fakeRunner } from '../helpers/fake-runner.js';
import { startRefusingPort } from '../helpers/net.js';
import { startRegistry } from '../helpers/registry.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';

const logged: string[] = [];
const ctx = {
  io: { env: {}, signal: undefined },
  secrets: new Secrets(),
  log: { info: (m: string) => logged.push(m), warn: (m: string) => logged.push(m), debug: (m: string) => logged.push(m) },
} as unknown as CommandContext;

const CONTAINERD = JSON.stringify([['driver-type', 'io.containerd.snapshotter.v1']]);
const runnerFor = (status: string) => fakeRunner((args) => (args[0] === 'info' ? { stdout: `${status}\n` } : { exitCode: 1 }));

function fact(repoDigest: string): LocalImageFact {
  return { present: true, localOnly: false, repoDigests: [repoDigest], id: repoDigest.split('@')[1]! };
}

t.test('containerd store: served images stay, unserved become local-only, unanswerable ones too with a warning', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const registry = await startRegistry(t);
  const pushed = buildEngineImage({ version: 'v0.1.0', flavour: 'pulled' });
  await pushImage(registry, 'acme/pulled', ['1'], pushed);
  const imported = `sha256:${'3'.repeat(64)}`;
  const facts = new Map<string, LocalImageFact>([
    [`${registry.host}/acme/pulled:1`, fact(`${registry.host}/acme/pulled@${pushed.digest}`)],
    [`${registry.host}/acme/tools:1`, fact(`${registry.host}/acme/tools@${imported}`)],
  ]);
  const warnings = await settleLocalOnly(ctx, defaultConfig(), runnerFor(CONTAINERD), facts);
  t.same(warnings, [], 'every registry answered');
  t.equal(facts.get(`${registry.host}/acme/pulled:1`)!.localOnly, false, 'the registry serves the pulled image at its digest: not local-only');
  t.equal(facts.get(`${registry.host}/acme/tools:1`)!.localOnly, true, 'an imported image the registry does not serve: local-only');

  const refusing = await startRefusingPort();
  const down = new Map<string, LocalImageFact>([[`${refusing.host}/acme/tools:1`, fact(`${refusing.host}/acme/tools@${imported}`)]]);
  const w = await settleLocalOnly(ctx, defaultConfig(), runnerFor(CONTAINERD), down);
  t.equal(down.get(`${refusing.host}/acme/tools:1`)!.localOnly, true, 'no answer: treated as local-only, so the build has it');
  t.match(w, [/^could not ask the registries whether they serve 127\.0\.0\.1:\d+\/acme\/tools:1 \(.*\); treating it as local-only/], 'and a warning says so');
});

t.test('classic store: the RepoDigests answer stands and no registry is asked', async (t) => {
  const facts = new Map<string, LocalImageFact>([['127.0.0.1:1/acme/pulled:1', fact(`127.0.0.1:1/acme/pulled@sha256:${'4'.repeat(64)}`)]]);
  const runner = runnerFor(JSON.stringify([['Backing Filesystem', 'extfs']]));
  t.same(await settleLocalOnly(ctx, { ...defaultConfig() } as Config, runner, facts), []);
  t.equal(facts.get('127.0.0.1:1/acme/pulled:1')!.localOnly, false);
  t.same(runner.calls, [['info', '--format', '{{json .DriverStatus}}']], 'only the store was asked');
});
