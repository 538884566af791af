// Hedging order with an injected clock and scripted registries: which candidate wins, when each
// one starts, that losers are aborted and no timer is left behind. The same behaviour against
// real registries is in test/commands/resolve.test.ts.
import t from 'tap';
import { LockMismatchError, NoRegistryError } from '../../src/errors.js';
import type { Candidate } from '../../src/resolve/candidates.js';
import { resolveEngineImage, type Clock, type Resolution } from '../../src/resolve/probe.js';
import { parseVersionSpec } from '../../src/resolve/version-spec.js';
import { RegistryRequestError, type ManifestInfo, type RegistryClient, type RegistryFailureKind } from '../../src/registry/types.js';

class FakeClock implements Clock {
  time = 0;
  private seq = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.time;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  /** Runs timers in time order until `done` settles; yields to promise callbacks in between. */
  async run<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    p.then(() => (settled = true), () => (settled = true));
    for (let guard = 0; guard < 1000 && !settled; guard++) {
      await new Promise((r) => setImmediate(r));
      if (settled) break;
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next) continue;
      this.timers.delete(next[0]);
      this.time = Math.max(this.time, next[1].at);
      next[1].fn();
    }
    return p;
  }
}

type Script = { after: number; digest?: string; fail?: RegistryFailureKind; tags?: string[] } | 'silent';

function setup(scripts: Script[], opts: { spec?: string; lock?: { tag: string; digest: string }; probe?: number; hedge?: number } = {}) {
  const clock = new FakeClock();
  const started: Record<string, number> = {};
  const aborted: string[] = [];
  const requests: string[] = [];
  const candidates: Candidate[] = scripts.map((_, i) => ({
    label: `m${i}.example/moby/buildkit`,
    registry: `m${i}.example`,
    repository: 'moby/buildkit',
    endpoint: { host: `m${i}.example` },
    kind: 'mirror',
    origin: 'config',
  }));
  const answer = <T>(host: string, script: Script, value: () => T, signal?: AbortSignal): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      signal?.addEventListener('abort', () => {
        aborted.push(host);
        reject(signal.reason);
      });
      if (script === 'silent') return;
      clock.setTimeout(() => (script.fail ? reject(new RegistryRequestError(script.fail, host, `${script.fail} from ${host}`)) : resolve(value())), script.after);
    });
  const clientFor = (c: Candidate): RegistryClient => {
    const i = candidates.indexOf(c);
    const script = scripts[i]!;
    started[c.endpoint.host] = clock.now();
    const manifest = (): ManifestInfo => ({ digest: script === 'silent' ? '' : (script.digest ?? `sha256:${String(i).repeat(64)}`), mediaType: 'application/vnd.oci.image.index.v1+json', size: 1 });
    return {
      endpoint: c.endpoint,
      headManifest: (_repo, ref, signal) => (requests.push(`${c.endpoint.host} HEAD ${ref}`), answer(c.endpoint.host, script, manifest, signal)),
      getManifest: () => Promise.reject(new Error('not used')),
      listTags: (_repo, signal) => (requests.push(`${c.endpoint.host} LIST`), answer(c.endpoint.host, script === 'silent' ? script : { after: 0, ...(script.fail ? { fail: script.fail } : {}) }, () => (script === 'silent' ? [] : (script.tags ?? [])), signal)),
      ping: () => Promise.reject(new Error('not used')),
    };
  };
  const promise = resolveEngineImage({
    candidates,
    spec: parseVersionSpec(opts.spec ?? 'v0.18.2'),
    rootless: false,
    lock: opts.lock,
    timeouts: { probe: opts.probe ?? 2000, hedge: opts.hedge ?? 250 },
    clientFor,
    clock,
  });
  return { clock, started, aborted, requests, result: () => clock.run(promise) };
}

const outcomes = (r: Resolution): string[] => r.candidates.map((c) => `${c.outcome}${c.error ? `: ${c.error}` : ''}`);

t.test('a fast first candidate wins alone; the others never start', async (t) => {
  const s = setup([{ after: 20 }, { after: 5 }, { after: 5 }]);
  const r = await s.result();
  t.equal(r.source, 'm0.example/moby/buildkit');
  t.equal(r.reference, `m0.example/moby/buildkit:v0.18.2@sha256:${'0'.repeat(64)}`);
  t.same(outcomes(r), ['ok', 'skipped', 'skipped']);
  t.same(Object.keys(s.started), ['m0.example']);
  t.equal(s.clock.timers.size, 0, 'no timer left');
});

t.test('a slower higher-priority success beats a faster lower one', async (t) => {
  const s = setup([{ after: 600 }, { after: 10 }, { after: 10 }]);
  const r = await s.result();
  t.equal(r.source, 'm0.example/moby/buildkit');
  t.same(outcomes(r), ['ok', 'ok', 'ok']);
  t.same(s.started, { 'm0.example': 0, 'm1.example': 250, 'm2.example': 500 }, 'hedged starts');
});

t.test('a silent candidate is given up after probe; the next one wins, the rest are aborted', async (t) => {
  const s = setup(['silent', { after: 10 }, 'silent'], { probe: 1000 });
  const r = await s.result();
  t.equal(r.source, 'm1.example/moby/buildkit');
  t.same(outcomes(r), ['failed: no answer within 1000 ms', 'ok', 'aborted']);
  t.same(s.aborted.sort(), ['m0.example', 'm2.example']);
  t.equal(s.clock.time, 1000);
  t.equal(s.clock.timers.size, 0);
});

t.test('a refused candidate hands over at once, not at the next hedge slot', async (t) => {
  const s = setup([{ after: 2, fail: 'refused' }, { after: 2, fail: 'server' }, { after: 3 }]);
  const r = await s.result();
  t.same(s.started, { 'm0.example': 0, 'm1.example': 2, 'm2.example': 4 });
  t.equal(r.source, 'm2.example/moby/buildkit');
  t.same(outcomes(r), ['failed: refused from m0.example', 'failed: server from m1.example', 'ok']);
});

t.test('every candidate failing is exit 3, naming each with its failure', async (t) => {
  const s = setup([{ after: 1, fail: 'refused' }, 'silent', { after: 1, fail: 'auth' }], { probe: 500 });
  const e = await s.result().catch((x: unknown) => x);
  t.ok(e instanceof NoRegistryError);
  t.equal((e as NoRegistryError).exitCode, 3);
  t.match((e as Error).message, /m0\.example\/moby\/buildkit \(refused from m0\.example\); m1\.example\/moby\/buildkit \(no answer within 500 ms\); m2\.example\/moby\/buildkit \(auth from m2\.example\)/);
  t.match((e as NoRegistryError).hint, /--probe-timeout/);
  t.equal(s.clock.timers.size, 0);
});

t.test('a range lists tags on each candidate and takes its best satisfying tag', async (t) => {
  const s = setup([{ after: 1, tags: ['v0.17.0'] }, { after: 1, tags: ['v0.18.0', 'v0.18.1', 'v0.19.0'] }], { spec: '^0.18' });
  const r = await s.result();
  t.equal(r.tag, 'v0.18.1');
  t.equal(r.source, 'm1.example/moby/buildkit');
  t.match(r.candidates[0]!.error, /no tag satisfies \^0\.18 among 1 tags/);
  t.same(s.requests, ['m0.example LIST', 'm1.example LIST', 'm1.example HEAD v0.18.1']);
});

t.test('with a lock the locked tag is HEADed (no listing) and another digest is exit 4', async (t) => {
  const good = `sha256:${'0'.repeat(64)}`;
  const ok = setup([{ after: 1 }], { spec: '^0.18', lock: { tag: 'v0.18.1', digest: good } });
  t.equal((await ok.result()).digest, good);
  t.same(ok.requests, ['m0.example HEAD v0.18.1']);

  const bad = setup([{ after: 1, fail: 'refused' }, { after: 1, digest: `sha256:${'b'.repeat(64)}` }, { after: 1, digest: good }], { lock: { tag: 'v0.18.1', digest: good } });
  const e = await bad.result().catch((x: unknown) => x);
  t.ok(e instanceof LockMismatchError);
  t.equal((e as LockMismatchError).exitCode, 4);
  t.equal((e as Error).message, `m1.example serves sha256:${'b'.repeat(64)} for moby/buildkit:v0.18.1, but the lockfile expects ${good}`);
});

t.test('a mismatch on a lower candidate does not matter when a higher one serves the locked digest', async (t) => {
  const good = `sha256:${'0'.repeat(64)}`;
  const s = setup([{ after: 400, digest: good }, { after: 1, digest: `sha256:${'b'.repeat(64)}` }], { lock: { tag: 'v0.18.1', digest: good } });
  const r = await s.result();
  t.equal(r.source, 'm0.example/moby/buildkit');
  t.match(r.candidates[1]!.error, /serves sha256:b+ for v0\.18\.1/);
});
