// Hedged probing of the engine image candidates (product.md, Resolution rules). Candidate i
// starts i × hedge after the first, or at once when every earlier one has failed; each attempt is
// cut off after `probe`. The winner is the highest-priority success: a lower candidate's answer is
// only taken once every higher one has failed, so the outcome depends on the registries, never on
// which of them happened to be faster. Losers are aborted and every timer is cleared, so the
// process can exit as soon as the answer is known.
import { LockMismatchError, NoRegistryError } from '../errors.js';
import { RegistryRequestError, type RegistryClient } from '../registry/types.js';
import type { Candidate } from './candidates.js';
import { directTag, selectTag, type VersionSpec } from './version-spec.js';

export type CandidateOutcome = 'ok' | 'failed' | 'skipped' | 'aborted';

export interface CandidateReport {
  label: string;
  outcome: CandidateOutcome;
  /** One line, no secrets; present when the candidate failed. */
  error?: string;
  /** Milliseconds from its start to its answer (0 when never started). */
  ms: number;
}

export interface Resolution {
  /** `host[/path]/repository:tag@sha256:…` */
  reference: string;
  /** `host[:port]` of the registry that served it. */
  registry: string;
  /** Repository inside that registry (with a mirror's path prefix). */
  repository: string;
  tag: string;
  digest: string;
  /** Label of the winning candidate (`host[/path]/repository`). */
  source: string;
  candidates: CandidateReport[];
}

/** What a lockfile pins: when given, the locked tag is HEADed and must carry the locked digest. */
export interface LockPin {
  tag: string;
  digest: string;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Number(process.hrtime.bigint()) / 1e6, // not performance.now(): that loads perf_hooks
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface ResolveOptions {
  candidates: Candidate[];
  spec: VersionSpec;
  rootless: boolean;
  lock?: LockPin | undefined;
  /** Milliseconds. */
  timeouts: { probe: number; hedge: number };
  clientFor(candidate: Candidate): RegistryClient;
  clock?: Clock;
  signal?: AbortSignal | undefined;
  /** Called as each candidate settles (progress on stderr). */
  onReport?: (index: number, report: CandidateReport) => void;
}

type Status = 'waiting' | 'running' | 'ok' | 'failed' | 'mismatch' | 'aborted' | 'skipped';

interface State {
  status: Status;
  started?: number;
  ms: number;
  error?: string;
  found?: { tag: string; digest: string };
  mismatch?: { tag: string; served: string };
  controller?: AbortController;
  probeTimer?: unknown;
}

/** The served digest differs from the lock: carried out of the attempt to be judged in order. */
class DigestMismatch extends Error {
  constructor(
    readonly tag: string,
    readonly served: string,
  ) {
    super(`serves ${served} for ${tag}`);
  }
}

/** One candidate: the tag to use (listing for a range), then its manifest digest by HEAD. */
async function attempt(client: RegistryClient, candidate: Candidate, opts: ResolveOptions, signal: AbortSignal): Promise<{ tag: string; digest: string }> {
  let tag: string | undefined;
  if (opts.lock) tag = opts.lock.tag;
  else tag = directTag(opts.spec, { rootless: opts.rootless });
  if (tag === undefined) {
    // A pull-through cache lists only what it has cached, so each candidate's own list decides
    // whether it can serve the range; the lockfile makes the choice reproducible.
    const tags = await client.listTags(candidate.repository, signal);
    tag = selectTag(opts.spec, tags, { rootless: opts.rootless });
    if (tag === undefined) {
      const flavour = opts.rootless ? ' -rootless' : '';
      throw new RegistryRequestError('not-found', candidate.endpoint.host, `no${flavour} tag satisfies ${opts.spec.spec} among ${tags.length} tags`);
    }
  }
  const manifest = await client.headManifest(candidate.repository, tag, signal);
  if (opts.lock && manifest.digest !== opts.lock.digest) throw new DigestMismatch(tag, manifest.digest);
  return { tag, digest: manifest.digest };
}

function describe(error: unknown, host: string): string {
  const text = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim();
  // The label already names the host; the client's messages start with it too.
  const bare = text.startsWith(`${host}: `) ? text.slice(host.length + 2) : text;
  return bare || 'failed';
}

export function resolveEngineImage(opts: ResolveOptions): Promise<Resolution> {
  const clock = opts.clock ?? systemClock;
  const { candidates, timeouts } = opts;
  const states: State[] = candidates.map(() => ({ status: 'waiting', ms: 0 }));
  const hedgeTimers: unknown[] = [];

  return new Promise<Resolution>((resolvePromise, rejectPromise) => {
    let done = false;

    const report = (i: number): CandidateReport => {
      const s = states[i]!;
      const outcome: CandidateOutcome = s.status === 'ok' ? 'ok' : s.status === 'failed' || s.status === 'mismatch' ? 'failed' : s.status === 'running' || s.status === 'aborted' ? 'aborted' : 'skipped';
      const r: CandidateReport = { label: candidates[i]!.label, outcome, ms: Math.round(s.ms) };
      if (s.error !== undefined) r.error = s.error;
      return r;
    };

    const finish = (settle: () => void): void => {
      done = true;
      for (const timer of hedgeTimers) clock.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      states.forEach((s, i) => {
        if (s.probeTimer !== undefined) clock.clearTimeout(s.probeTimer);
        if (s.status === 'running') {
          s.status = 'aborted';
          s.ms = clock.now() - (s.started ?? clock.now());
          s.controller?.abort(new RegistryRequestError('aborted', candidates[i]!.endpoint.host, 'a higher-priority registry answered first'));
        } else if (s.status === 'waiting') s.status = 'skipped';
      });
      settle();
    };

    const onAbort = (): void => {
      if (done) return;
      finish(() => rejectPromise(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error(`aborted (${String(opts.signal?.reason)})`)));
    };

    const settleCandidate = (i: number, status: 'ok' | 'failed' | 'mismatch', fill: (s: State) => void): void => {
      const s = states[i]!;
      if (done || s.status !== 'running') return; // late answer after a timeout or abort
      if (s.probeTimer !== undefined) clock.clearTimeout(s.probeTimer);
      s.probeTimer = undefined;
      s.status = status;
      s.ms = clock.now() - (s.started ?? clock.now());
      fill(s);
      opts.onReport?.(i, report(i));
      evaluate();
    };

    const start = (i: number): void => {
      const s = states[i];
      if (done || !s || s.status !== 'waiting') return;
      const candidate = candidates[i]!;
      s.status = 'running';
      s.started = clock.now();
      const controller = new AbortController();
      s.controller = controller;
      s.probeTimer = clock.setTimeout(() => {
        const message = `no answer within ${timeouts.probe} ms`;
        controller.abort(new RegistryRequestError('timeout', candidate.endpoint.host, message));
        settleCandidate(i, 'failed', (st) => (st.error = message));
      }, timeouts.probe);
      let client: RegistryClient;
      try {
        client = opts.clientFor(candidate);
      } catch (error) {
        settleCandidate(i, 'failed', (st) => (st.error = describe(error, candidate.endpoint.host)));
        return;
      }
      attempt(client, candidate, opts, controller.signal).then(
        (found) => settleCandidate(i, 'ok', (st) => (st.found = found)),
        (error: unknown) => {
          if (error instanceof DigestMismatch) {
            settleCandidate(i, 'mismatch', (st) => {
              st.mismatch = { tag: error.tag, served: error.served };
              st.error = `serves ${error.served} for ${error.tag}, the lockfile has ${opts.lock?.digest ?? '?'}`;
            });
          } else settleCandidate(i, 'failed', (st) => (st.error = describe(error, candidate.endpoint.host)));
        },
      );
    };

    // Decides as soon as the highest-priority candidate that has not failed has an answer.
    const evaluate = (): void => {
      if (done) return;
      let first = 0;
      while (first < states.length && states[first]!.status === 'failed') first++;
      if (first === states.length) {
        finish(() => rejectPromise(noRegistry(opts, states.map((_, i) => report(i)))));
        return;
      }
      const s = states[first]!;
      if (s.status === 'waiting') {
        start(first); // every earlier one failed: no reason to wait for its hedge slot
        return;
      }
      if (s.status === 'ok' && s.found) {
        const candidate = candidates[first]!;
        const { tag, digest } = s.found;
        finish(() =>
          resolvePromise({
            reference: `${candidate.label}:${tag}@${digest}`,
            registry: candidate.registry,
            repository: candidate.repository,
            tag,
            digest,
            source: candidate.label,
            candidates: states.map((_, i) => report(i)),
          }),
        );
        return;
      }
      if (s.status === 'mismatch' && s.mismatch) {
        // A retag or tampering is never silently accepted, and we do not fall through to the next
        // registry either: which registry answers first must not decide whether a moved tag goes
        // unnoticed. The user re-pins with `lock` or fixes the mirror.
        const candidate = candidates[first]!;
        const { tag, served } = s.mismatch;
        finish(() =>
          rejectPromise(
            new LockMismatchError(
              `${candidate.registry} serves ${served} for ${candidate.repository}:${tag}, but the lockfile expects ${opts.lock?.digest ?? '?'}`,
              { hint: 'the tag was moved or tampered with; if the new image is intended, run buildx-bootstrap lock to pin it again' },
            ),
          ),
        );
      }
    };

    if (candidates.length === 0) {
      finish(() => rejectPromise(noRegistry(opts, [])));
      return;
    }
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    start(0);
    for (let i = 1; i < candidates.length; i++) {
      const index = i;
      hedgeTimers.push(clock.setTimeout(() => start(index), i * timeouts.hedge));
    }
  });
}

function noRegistry(opts: ResolveOptions, reports: CandidateReport[]): NoRegistryError {
  const what = `${opts.lock ? opts.lock.tag : opts.spec.spec}${opts.rootless && !opts.lock ? ' (rootless)' : ''}`;
  if (reports.length === 0) {
    return new NoRegistryError(`no registry to resolve the engine image ${what} from: upstream is off and no mirror is for its registry`, {
      hint: 'add a mirror whose for: is the image registry, or set upstream: true',
    });
  }
  const failures = reports.map((r) => `${r.label} (${r.error ?? r.outcome})`).join('; ');
  return new NoRegistryError(`no registry could serve the engine image ${what}: ${failures}`, {
    hint: 'check the mirrors (mirrors:, --mirror) and their credentials, allow the upstream (upstream: true), or raise --probe-timeout',
  });
}
