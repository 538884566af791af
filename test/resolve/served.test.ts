// Is an image served at a digest by the configured registries? The question the containerd image
// store leaves to the registries (src/builder/local-only.ts), asked of real registries: the mirror
// for the image's registry, the upstream unless `upstream: false`, each bounded by timeouts.probe.
import t from 'tap';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { Secrets } from '../../src/io.js';
import { servedByRegistries } from '../../src/resolve/served.js';
import { startRegistry } from '../helpers/registry.js';
import { startBlackhole, startRefusingPort } from '../helpers/net.js';
import { buildEngineImage, pushImage } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';

const deps = { env: {}, secrets: new Secrets() };

const mirrorOf = (host: string, upstreamHost: string): Config['mirrors'][number] => ({ host, for: upstreamHost, path: '', ca: '', http: true, insecure: false });

function config(over: Partial<Config>): Config {
  return { ...defaultConfig(), ...over, timeouts: { ...defaultConfig().timeouts, probe: 1500, ...over.timeouts } };
}

t.test('served, not served, or no answer: through the mirror and the upstream', async (t) => {
  if (!requireBinaries(t, ['docker-registry'])) return;
  const [upstream, mirror] = await Promise.all([startRegistry(t), startRegistry(t)]);
  const onUpstream = buildEngineImage({ version: 'v0.1.0', flavour: 'upstream-only' });
  const onMirror = buildEngineImage({ version: 'v0.1.0', flavour: 'mirror-only' });
  const nowhere = buildEngineImage({ version: 'v0.1.0', flavour: 'nowhere' });
  await pushImage(upstream, 'acme/tools', ['1'], onUpstream);
  await pushImage(mirror, 'acme/tools', ['1'], onMirror);
  const ref = `${upstream.host}/acme/tools:1`;
  const both = config({ mirrors: [mirrorOf(mirror.host, upstream.host)], registries: { [upstream.host]: { http: true } } });

  t.match(await servedByRegistries(deps, both, ref, onMirror.digest), { served: true, by: `${mirror.host}/acme/tools` }, 'the mirror serves it');
  t.match(await servedByRegistries(deps, both, ref, onUpstream.digest), { served: true, by: `${upstream.host}/acme/tools` }, 'the upstream serves it');
  t.same(await servedByRegistries(deps, both, ref, nowhere.digest), { served: false, asked: [`${mirror.host}/acme/tools`, `${upstream.host}/acme/tools`] }, 'nobody serves it: both were asked');

  const mirrorOnly = { ...both, upstream: false };
  t.match(await servedByRegistries(deps, mirrorOnly, ref, onUpstream.digest), { served: false, asked: [`${mirror.host}/acme/tools`] }, 'upstream: false — the upstream is not asked');
  const before = upstream.requests();
  await upstream.settle();
  t.equal(upstream.requests(), before, 'and got no request');
  t.same(await servedByRegistries(deps, config({ upstream: false }), ref, onUpstream.digest), { served: false, asked: [] }, 'no configured registry for it: nobody serves it');

  const refusing = await startRefusingPort();
  const down = config({ mirrors: [mirrorOf(refusing.host, upstream.host)], upstream: false });
  const unknown = await servedByRegistries(deps, down, ref, onMirror.digest);
  t.equal(unknown.served, 'unknown', 'a mirror that refuses the connection gives no answer');
  t.match(unknown, { why: [new RegExp(`^${refusing.host}/acme/tools: `)] }, 'naming the registry');

  const hole = await startBlackhole(t);
  const silent = config({ mirrors: [mirrorOf(hole.host, upstream.host)], upstream: false, timeouts: { ...defaultConfig().timeouts, probe: 300 } });
  const silence = await servedByRegistries(deps, silent, ref, onMirror.digest);
  t.match(silence, { served: 'unknown', why: [/300 ?ms/] }, 'a mirror that never answers: no answer once timeouts.probe is up');
});
