// Is a build running on a builder? BuildKit's own record answers: the control API's build history
// (`ListenBuildHistory`, BK api/services/control), which `buildctl` exposes as
//   - `buildctl debug histories [--format '{{json .}}']` (BuildKit ≥ 0.12; lists finished and
//     running builds, a running one has no CompletedAt — fixtures in test/fixtures/history/), and
//   - `buildctl debug monitor` (BuildKit ≥ 0.11; `ActiveOnly` stream: first one `event: STARTED`
//     line per running build, then events as they come, never exits on its own).
// buildx ≥ 0.23 shows the same record as `docker buildx history ls` (status `Running`), the only
// way in for drivers whose BuildKit we cannot exec into (kubernetes).
// The JSON differs by version: BuildKit 0.12 prints timestamps as RFC 3339 strings, 0.34 as
// protobuf `{seconds, nanos}` objects; both omit `type` for a running build (STARTED = 0).
import { lastStderrLine, type DockerRunner } from './runner.js';

export interface ActiveBuild {
  /** BuildKit's build ref. */
  ref: string;
  /** ISO timestamp, when BuildKit says. */
  startedAt: string | undefined;
}

/** `known: false` when this BuildKit/buildx cannot say (too old, no exec into the builder). */
export type BuildActivity = { known: true; active: ActiveBuild[] } | { known: false; why: string };

type Timestamp = string | { seconds?: number | string; nanos?: number } | undefined;

function isoOf(value: Timestamp): string | undefined {
  if (typeof value === 'string') return value ? new Date(value).toISOString() : undefined;
  if (value && value.seconds !== undefined) return new Date(Number(value.seconds) * 1000 + Math.floor((value.nanos ?? 0) / 1e6)).toISOString();
  return undefined;
}

/** `buildctl debug histories --format '{{json .}}'`: one JSON object per line; running = no CompletedAt. */
export function parseHistoriesJson(stdout: string): ActiveBuild[] {
  const active: ActiveBuild[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (!line.trim()) continue;
    let event: { type?: number; record?: { Ref?: string; CreatedAt?: Timestamp; CompletedAt?: Timestamp } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      throw new Error(`unexpected buildctl debug histories line: ${line.slice(0, 80)}`);
    }
    const record = event.record;
    if (!record?.Ref || record.CompletedAt !== undefined) continue;
    if (event.type !== undefined && event.type !== 0) continue;
    active.push({ ref: record.Ref, startedAt: isoOf(record.CreatedAt) });
  }
  return active;
}

/** `buildctl debug monitor` (cut off after a moment): STARTED refs not followed by COMPLETE/DELETED. */
export function parseMonitor(stdout: string): ActiveBuild[] {
  const running = new Map<string, ActiveBuild>();
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^event: (STARTED|COMPLETE|DELETED) ref:(\S+)/.exec(line);
    if (!m) continue;
    if (m[1] === 'STARTED') running.set(m[2]!, { ref: m[2]!, startedAt: undefined });
    else running.delete(m[2]!);
  }
  return [...running.values()];
}

/** `docker buildx history ls --format json` (buildx ≥ 0.23): one object per line, `status: Running`. */
export function parseBuildxHistoryLs(stdout: string): ActiveBuild[] {
  const active: ActiveBuild[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as { ref?: string; status?: string; created_at?: string };
    if (rec.status !== 'Running' || !rec.ref) continue;
    // buildx prefixes the ref with `<builder>/<node>/`.
    active.push({ ref: rec.ref.split('/').pop()!, startedAt: isoOf(rec.created_at) });
  }
  return active;
}

const NOT_RUNNING = /is not running|No such container|is restarting|is paused/i;

/**
 * Active builds of the BuildKit in a docker-container builder's container, asked inside it with
 * the image's own buildctl (moby/buildkit images ship it; the default `--addr` is the daemon's socket).
 * A container that is not running runs no build.
 */
export async function containerActiveBuilds(
  runner: DockerRunner,
  container: string,
  opts: { context?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<BuildActivity> {
  const ctx = opts.context ? ['--context', opts.context] : [];
  const run = (argv: string[]) => runner.run([...ctx, 'exec', container, ...argv], { timeoutMs: 30_000, ...(opts.signal ? { signal: opts.signal } : {}) });
  const histories = await run(['buildctl', 'debug', 'histories', '--format', '{{json .}}']);
  if (histories.exitCode === 0) {
    try {
      return { known: true, active: parseHistoriesJson(histories.stdout) };
    } catch (error) {
      return { known: false, why: (error as Error).message };
    }
  }
  if (NOT_RUNNING.test(histories.stderr)) return { known: true, active: [] };
  // BuildKit 0.11 has `debug monitor` but not `debug histories`; monitor streams until stopped.
  const monitor = await run(['sh', '-c', 'buildctl debug monitor & p=$!; sleep 2; kill $p 2>/dev/null; wait $p; exit 0']);
  if (monitor.exitCode === 0 && !/No help topic|unknown command|not defined/i.test(monitor.stderr)) {
    return { known: true, active: parseMonitor(monitor.stdout) };
  }
  return { known: false, why: `buildctl in ${container} cannot list builds (${lastStderrLine(histories) || `exit ${histories.exitCode}`}; BuildKit before 0.11 has no build history)` };
}

/** Through buildx (≥ 0.23), for builders whose BuildKit we cannot exec into. */
export async function buildxActiveBuilds(runner: DockerRunner, builder: string, opts: { signal?: AbortSignal | undefined } = {}): Promise<BuildActivity> {
  const r = await runner.run(['buildx', 'history', 'ls', '--builder', builder, '--format', 'json'], { timeoutMs: 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (r.exitCode !== 0) return { known: false, why: `docker buildx history ls failed (${lastStderrLine(r) || `exit ${r.exitCode}`}; it needs buildx 0.23 or later)` };
  try {
    return { known: true, active: parseBuildxHistoryLs(r.stdout) };
  } catch {
    return { known: false, why: 'docker buildx history ls printed no JSON (it needs buildx 0.23 or later)' };
  }
}

/** `ref (running 3m12s)` for messages. */
export function describeBuilds(builds: ActiveBuild[], now: number): string {
  return builds
    .map((b) => {
      const since = b.startedAt ? now - Date.parse(b.startedAt) : NaN;
      return Number.isFinite(since) && since >= 0 ? `${b.ref} (running ${formatAge(since)})` : b.ref;
    })
    .join(', ');
}

export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d`;
}
