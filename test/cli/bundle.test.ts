// The bundled CLI (bin/ → dist/) on the paths the bundle loads on demand: node:https and node:tls
// for a TLS mirror (required only on the first https exchange, scripts/build.mjs turns that
// import() into a deferred require()), on a first run and on a run with the compile cache. The
// in-process tests run the TypeScript sources, where none of this applies.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runBin } from '../helpers/bin.js';
import { pushEngineTags } from '../helpers/engine-image.js';
import { requireBinaries } from '../helpers/integration.js';
import { startRegistry } from '../helpers/registry.js';
import { makeCa } from '../helpers/tls.js';

t.test('resolve through a TLS mirror with its ca:, uncached and cached', async (t) => {
  if (!requireBinaries(t, ['docker-registry', 'openssl'])) return;
  const secure = await startRegistry(t, { tls: true });
  const images = await pushEngineTags({ url: secure.url, caCert: secure.caCert }, { tags: { 'v0.18.2': {} } });
  const dir = t.testdir({ home: {} });
  const image = `${secure.host}/moby/buildkit`;
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: secure.host, for: secure.host, ca: secure.caFile }] }));
  const env = { PATH: process.env.PATH, HOME: join(dir, 'home') };
  const expected = `${image}:v0.18.2@${images['v0.18.2']!.digest}\n`;
  for (const [what, extra] of [
    ['without the compile cache', { BXB_COMPILE_CACHE: '0' }],
    ['with the compile cache', {}],
    ['with the compile cache, again (an entry written by now)', {}],
  ] as const) {
    const r = await runBin(['resolve'], { cwd: dir, env: { ...env, ...extra } }).done;
    t.equal(r.code, 0, `${what}: ${r.stderr}`);
    t.equal(r.stdout, expected, what);
  }
  // A ca: that did not sign the mirror's certificate: the TLS check really runs in the bundle.
  const other = await makeCa(dir, 'other-ca', 'some other CA');
  writeFileSync(join(dir, '.buildx-bootstraprc.json'), JSON.stringify({ buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: secure.host, for: secure.host, ca: other.certFile }] }));
  const bad = await runBin(['resolve'], { cwd: dir, env }).done;
  t.equal(bad.code, 3, 'no registry could serve');
  t.match(bad.stderr, /TLS certificate not trusted/, bad.stderr);
});
