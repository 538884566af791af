// Leases on a builder, held in the docker daemon so every client of it sees them — jobs in other
// containers that share one daemon (a DinD service, a socket-mounting executor) as well as jobs on
// this host. A lease is a container that is created and never started, from a one-layer empty
// image imported once (`buildx-bootstrap/lease:1`). Two kinds:
// - the lock (exclusive): one fixed name per builder, so creating it is the atomic test — a name
//   conflict means another run holds it. Taken by whatever may remove the builder.
// - a hold (shared): one per prefixed build, a unique name. Taken before the build starts, given
//   back when it ends; a lock holder waits for the holds before removing the builder.
// Each side creates its own lease first and looks for the other kind second, so of a lock and a
// hold made at the same time at least one sees the other (the daemon's container store is one
// ordered list).
//
// Stale (a killed holder): its process is gone (same boot and PID namespace, owned-temp.ts); or a
// lock past its `expires` time (the longest the locking run may take); or a hold not renewed for
// HOLD_STALE_MS — a live holder renames its hold every HOLD_RENEW_MS, the name carries the time.
import { DockerError, InterruptedError } from '../errors.js';
import { processGone, processTag } from '../owned-temp.js';
import { shortHash } from '../state.js';
import { lastStderrLine, transcript, type DockerRunner } from './runner.js';
import { pause } from '../pause.js';

export const LEASE_IMAGE = 'buildx-bootstrap/lease:1';
export const LABEL = 'io.buildx-bootstrap.lease';
const BUILDER = 'io.buildx-bootstrap.builder';
const HOLDER = 'io.buildx-bootstrap.holder';
const HOST = 'io.buildx-bootstrap.host';
const EXPIRES = 'io.buildx-bootstrap.expires';
export const HOLD_RENEW_MS = 15_000;
export const HOLD_STALE_MS = 60_000;

/**
 * How long a run may keep a builder's lock, the `expires` of its lease: a drain (up to
 * `timeouts.drain`; 0 for rm), the create and bootstrap (up to `timeouts.bootstrap` + 2 min), the
 * checks after, with a margin. A waiter waits this long plus LEASE_WAIT_MARGIN_MS, so the lock of
 * a killed holder anywhere goes stale before the next run gives up.
 */
export function lockLeaseMs(timeouts: { bootstrap: number; drain?: number }): number {
  return timeouts.bootstrap + (timeouts.drain ?? 0) + 240_000;
}
export const LEASE_WAIT_MARGIN_MS = 30_000;

export interface Lease {
  id: string;
  name: string;
  kind: 'lock' | 'hold';
  builder: string;
  /** `processTag()` of the holder. */
  holder: string;
  host: string;
  /** Lock: epoch ms after which it is stale. */
  expires: number | undefined;
  /** Hold: epoch ms of its last renewal (from its name). */
  renewed: number | undefined;
  /** When the daemon created it (epoch ms, whole seconds). */
  created: number | undefined;
}

export function lockName(builder: string): string {
  return `buildx-bootstrap-lock.${shortHash(builder)}`;
}

function holdName(builder: string, token: string, now: number): string {
  return `buildx-bootstrap-hold.${shortHash(builder)}.${token}.${Math.floor(now / 1000)}`;
}

/** `2026-12-07 20:40:21 +0000 UTC` (docker ps CreatedAt) as epoch ms. */
function parseCreatedAt(text: string | undefined): number | undefined {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d)(\d\d)/.exec(text ?? '');
  const ms = m ? Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

const PS_FORMAT = '{{.ID}}\t{{.Names}}\t{{.Labels}}\t{{.CreatedAt}}';

/** Pure: a lease from one `docker ps` line (PS_FORMAT); undefined when it is not one of ours. */
export function parseLease(line: string): Lease | undefined {
  const [id, name, labelText, createdAt] = line.split('\t');
  if (!id || !name || labelText === undefined) return undefined;
  const labels = new Map(labelText.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const kind = labels.get(LABEL);
  if (kind !== 'lock' && kind !== 'hold') return undefined;
  const renewedSec = kind === 'hold' ? Number(/\.(\d+)$/.exec(name)?.[1]) : NaN;
  const expires = Number(labels.get(EXPIRES));
  return {
    id,
    name: name.replace(/^\//, ''),
    kind,
    builder: labels.get(BUILDER) ?? '',
    holder: labels.get(HOLDER) ?? '',
    host: labels.get(HOST) ?? '',
    expires: Number.isFinite(expires) && expires > 0 ? expires : undefined,
    renewed: Number.isFinite(renewedSec) ? renewedSec * 1000 : undefined,
    created: parseCreatedAt(createdAt),
  };
}

/** Why a lease is stale at `now`, or undefined while its holder may still be at work. */
export async function staleReason(lease: Lease, now: number): Promise<string | undefined> {
  if (await processGone(lease.holder)) return `its process ${lease.holder.split('-').pop()} on ${lease.host || 'this host'} is gone`;
  if (lease.kind === 'lock' && lease.expires !== undefined && now > lease.expires) return `it expired ${Math.round((now - lease.expires) / 1000)}s ago`;
  if (lease.kind === 'hold' && (lease.renewed === undefined || now - lease.renewed > HOLD_STALE_MS)) return `it was not renewed for over ${HOLD_STALE_MS / 1000}s`;
  return undefined;
}

/** The leases on `builder` in this daemon (both kinds); every builder's when `builder` is undefined. */
export async function listLeases(runner: DockerRunner, builder: string | undefined, signal?: AbortSignal): Promise<Lease[]> {
  const filter = builder === undefined ? `label=${LABEL}` : `label=${BUILDER}=${builder}`;
  const r = await runner.run(['ps', '-a', '--no-trunc', '--filter', filter, '--format', PS_FORMAT], {
    timeoutMs: 30_000,
    ...(signal ? { signal } : {}),
  });
  if (r.exitCode !== 0) throw new DockerError(`docker ps (leases on builder ${builder ?? '*'}) failed: ${lastStderrLine(r)}`, { hint: 'check the docker daemon', transcript: transcript(r) });
  return r.stdout.split('\n').map(parseLease).filter((l): l is Lease => l !== undefined && (builder === undefined || l.builder === builder));
}

/** Removes a lease by its ID (never by name: the name may be another holder's by now). */
export async function removeLease(runner: DockerRunner, id: string): Promise<void> {
  await runner.run(['rm', '-f', id], { timeoutMs: 30_000 });
}

/** Describes a holder for messages: `pid 123 on host (hold)`. */
export function describeLease(lease: Lease): string {
  return `${lease.kind === 'lock' ? 'lock' : 'prefixed build'} of pid ${lease.holder.split('-').pop()} on ${lease.host || 'an unknown host'}`;
}

/** The daemon would not make a lease at all (not a conflict): the caller goes on without one, saying so. */
export class LeaseUnavailableError extends DockerError {}

type Created = { id: string } | { conflict: true };

/** Lease images made ahead of the first lease, per runner (prepareLeaseImage). */
const prepared = new WeakMap<DockerRunner, Promise<void>>();

/**
 * Makes sure the lease image is on the daemon ahead of the first lease — started while the engine
 * image is pulled or loaded, a fresh daemon's lock then costs no import on the way to the builder.
 * A failure here is left for createLease to meet and report.
 */
export function prepareLeaseImage(runner: DockerRunner, signal?: AbortSignal): void {
  if (prepared.has(runner)) return;
  const ready = (async () => {
    const r = await runner.run(['image', 'inspect', '--format', '{{.Id}}', LEASE_IMAGE], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    if (r.exitCode !== 0) await importLeaseImage(runner, signal);
  })().catch(() => undefined);
  prepared.set(runner, ready);
}

async function createLease(runner: DockerRunner, name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<Created> {
  await prepared.get(runner);
  const argv = ['create', '--pull', 'never', '--name', name, '--network', 'none', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), LEASE_IMAGE, 'lease'];
  for (let attempt = 0; ; attempt++) {
    const r = await runner.run(argv, { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    if (r.exitCode === 0) return { id: r.stdout.trim() };
    const why = lastStderrLine(r);
    if (/conflict|already in use/i.test(r.stderr)) return { conflict: true };
    if (attempt === 0 && /no such image|not found/i.test(r.stderr)) {
      await importLeaseImage(runner, signal);
      continue;
    }
    throw new LeaseUnavailableError(`creating the lease ${name} failed: ${why}`, { hint: 'check the docker daemon', transcript: transcript(r) });
  }
}

/** The lease image: one empty layer, made locally (an empty tar is 1024 zero bytes), no registry. */
async function importLeaseImage(runner: DockerRunner, signal?: AbortSignal): Promise<void> {
  const r = await runner.run(['import', '-', LEASE_IMAGE], { input: '\0'.repeat(1024), timeoutMs: 60_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) throw new LeaseUnavailableError(`docker import ${LEASE_IMAGE} failed: ${lastStderrLine(r)}`, { hint: 'check the docker daemon', transcript: transcript(r) });
}

async function identityLabels(kind: 'lock' | 'hold', builder: string): Promise<Record<string, string>> {
  const { hostname } = await import('node:os');
  return { [LABEL]: kind, [BUILDER]: builder, [HOLDER]: await processTag(), [HOST]: hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) };
}

export interface LeaseWait {
  log: { info(m: string): void };
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  pollMs?: number;
}

/**
 * Takes the builder's lock, waiting (bounded) for another holder, removing a stale one. `holdMs`
 * is the longest this run may keep it (its `expires`). Returns the release.
 */
export async function acquireLeaseLock(runner: DockerRunner, builder: string, holdMs: number, wait: LeaseWait): Promise<() => Promise<void>> {
  const started = Date.now();
  let told = false;
  for (;;) {
    const labels = { ...(await identityLabels('lock', builder)), [EXPIRES]: String(Date.now() + holdMs) };
    const created = await createLease(runner, lockName(builder), labels, wait.signal);
    if ('id' in created) return () => removeLease(runner, created.id);
    const holder = (await listLeases(runner, builder, wait.signal)).find((l) => l.kind === 'lock');
    const stale = holder && (await staleReason(holder, Date.now()));
    if (holder && stale) {
      wait.log.info(`removing the stale lock on builder ${builder} (${describeLease(holder)}): ${stale}`);
      await removeLease(runner, holder.id);
      continue;
    }
    if (wait.signal?.aborted) throw abortError(wait.signal);
    if (!told && holder) {
      wait.log.info(`waiting for another buildx-bootstrap working on builder ${builder} (${describeLease(holder)})…`);
      told = true;
    }
    if (Date.now() - started > wait.timeoutMs) throw heldTooLong(builder, wait.timeoutMs, holder);
    await pause(wait.pollMs ?? 250, wait.signal);
  }
}

export interface Hold {
  release(): Promise<void>;
}

/**
 * Takes a shared hold on the builder for a prefixed build: while the builder's lock is held (a run
 * that may remove it), waits for it to go, then holds until released, renewing the hold's name.
 */
export async function acquireHold(runner: DockerRunner, builder: string, wait: LeaseWait): Promise<Hold> {
  const started = Date.now();
  const token = shortHash(`${process.pid}${Math.random()}`, 8);
  let told = false;
  for (;;) {
    // Look before making a hold: a run waiting here makes no holds a lock holder would see.
    const before = (await listLeases(runner, builder, wait.signal)).find((l) => l.kind === 'lock');
    if (before && !(await staleReason(before, Date.now()))) {
      if (!told) {
        wait.log.info(`waiting for another buildx-bootstrap working on builder ${builder} (${describeLease(before)}) before the build starts…`);
        told = true;
      }
      if (wait.signal?.aborted) throw abortError(wait.signal);
      if (Date.now() - started > wait.timeoutMs) throw heldTooLong(builder, wait.timeoutMs, before);
      await pause(wait.pollMs ?? 250, wait.signal);
      continue;
    }
    const created = await createLease(runner, holdName(builder, token, Date.now()), await identityLabels('hold', builder), wait.signal);
    if (!('id' in created)) throw new DockerError(`a lease named like this build's hold on builder ${builder} exists`, { hint: 'rerun' });
    const lock = (await listLeases(runner, builder, wait.signal)).find((l) => l.kind === 'lock');
    const stale = lock && (await staleReason(lock, Date.now()));
    if (!lock || stale) {
      if (lock && stale) {
        wait.log.info(`removing the stale lock on builder ${builder} (${describeLease(lock)}): ${stale}`);
        await removeLease(runner, lock.id);
      }
      return renewing(runner, builder, token, created.id);
    }
    // The lock came between the look and the hold: give way, then look again.
    await removeLease(runner, created.id);
  }
}

function heldTooLong(builder: string, timeoutMs: number, holder: Lease | undefined): DockerError {
  return new DockerError(`another buildx-bootstrap held the lock on builder ${builder} for more than ${Math.round(timeoutMs / 1000)}s${holder ? ` (${describeLease(holder)})` : ''}`, {
    hint: `if no other run is active, docker rm ${lockName(builder)}`,
  });
}

function renewing(runner: DockerRunner, builder: string, token: string, id: string): Hold {
  const timer = setInterval(() => {
    void runner.run(['rename', id, holdName(builder, token, Date.now())], { timeoutMs: 30_000 }).catch(() => undefined);
  }, HOLD_RENEW_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await removeLease(runner, id);
    },
  };
}

function abortError(signal: AbortSignal): InterruptedError {
  return new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
}

/**
 * Holds on a builder that are not stale (stale ones are removed on the way), for the drain of the
 * run holding the lock. A hold made after the lock (a later second) is ignored: its maker looks for
 * the lock after making it, sees it, and gives way.
 */
export async function liveHolds(runner: DockerRunner, builder: string, signal?: AbortSignal): Promise<Lease[]> {
  const live: Lease[] = [];
  const now = Date.now();
  const leases = await listLeases(runner, builder, signal);
  const lock = leases.find((l) => l.kind === 'lock');
  for (const lease of leases) {
    if (lease.kind !== 'hold') continue;
    if (lock?.created !== undefined && lease.created !== undefined && lease.created > lock.created) continue;
    if (await staleReason(lease, now)) await removeLease(runner, lease.id);
    else live.push(lease);
  }
  return live;
}
