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

// ---- one build's record (the build-cache report, issue 20) -----------------------------------

/** What BuildKit recorded about a finished build. */
export interface BuildRecord {
  ref: string;
  createdAt: string | undefined;
  completedAt: string | undefined;
  /** Steps answered from cache, and all steps (`numCachedSteps`/`numTotalSteps`; omitted = 0). */
  cachedSteps: number;
  totalSteps: number;
  /** The build's frontend attributes (`filename`, `target`, …); `buildx history ls` gives none. */
  frontendAttrs?: Record<string, string>;
}

/** Every record of `buildctl debug histories --format '{{json .}}'` (0.12: gogo JSON names, 0.34: protobuf-go; the same keys). */
export function parseHistoryRecords(stdout: string): BuildRecord[] {
  const out: BuildRecord[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as {
      record?: { Ref?: string; CreatedAt?: Timestamp; CompletedAt?: Timestamp; numCachedSteps?: number; numTotalSteps?: number; FrontendAttrs?: Record<string, string> };
    };
    const r = event.record;
    if (!r?.Ref) continue;
    const record: BuildRecord = { ref: r.Ref, createdAt: isoOf(r.CreatedAt), completedAt: isoOf(r.CompletedAt), cachedSteps: r.numCachedSteps ?? 0, totalSteps: r.numTotalSteps ?? 0 };
    if (r.FrontendAttrs && typeof r.FrontendAttrs === 'object') record.frontendAttrs = r.FrontendAttrs;
    out.push(record);
  }
  return out;
}

/** Every record of `docker buildx history ls --format json` (buildx ≥ 0.23); refs lose their `<builder>/<node>/` prefix. */
export function parseBuildxHistoryRecords(stdout: string): BuildRecord[] {
  const out: BuildRecord[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { ref?: string; created_at?: string; completed_at?: string; cached_steps?: number; total_steps?: number };
    if (!r.ref) continue;
    out.push({ ref: r.ref.split('/').pop()!, createdAt: isoOf(r.created_at), completedAt: isoOf(r.completed_at), cachedSteps: r.cached_steps ?? 0, totalSteps: r.total_steps ?? 0 });
  }
  return out;
}

/**
 * The errors of a build's cache-export steps from its recorded progress in `plain` form
 * (`buildctl debug logs --progress plain REF`, `docker buildx history logs --progress plain`;
 * buildctl 0.12 has no `rawjson` mode): a vertex's first line names it (`#7 exporting cache to
 * registry`), `#7 ERROR: …` is its error. Under `ignore-error=true` a refused export is such an
 * error on the `exporting cache …` vertex while the build succeeds (BK `solver/llbsolver/export.go`
 * runCacheExporters); a failed cache import (`importing cache manifest …`) is not ours to report.
 */
export function cacheExportErrors(stdout: string): string[] {
  const names = new Map<string, string>();
  const errors: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [, id, text] = m as unknown as [string, string, string];
    const error = /^ERROR: (.*)$/.exec(text);
    if (!names.has(id) && !error) names.set(id, text);
    const name = names.get(id) ?? '';
    if (error && /export/i.test(name) && /cache/i.test(name) && !errors.includes(error[1]!)) errors.push(error[1]!);
  }
  return errors;
}

/** Where a builder's records are read: inside the container with its buildctl, or through buildx. */
export type RecordSource = { kind: 'container'; container: string; context?: string | undefined } | { kind: 'buildx'; builder: string };

type Records = { known: true; records: BuildRecord[] } | { known: false; why: string };
type ExportErrors = { known: true; errors: string[] } | { known: false; why: string };

export interface RecordReader {
  records(): Promise<Records>;
  exportErrors(ref: string): Promise<ExportErrors>;
  /** Both, for a build whose ref is known: one `docker exec` for a container builder. */
  recordsAndExportErrors(ref: string): Promise<{ records: Records; errors: ExportErrors }>;
}

/** Separates the two parts of the one-exec report read (recordReader); the second carries the logs' exit code. */
const PART = '--- buildx-bootstrap: build logs ---';

/**
 * Pure: `buildctl debug histories` output, PART, the logs (stdout and stderr), `PART <exit code>`;
 * undefined when the output is not that (no shell in the image, histories failed).
 */
export function splitReportExec(stdout: string): { histories: string; logs: string; logsExit: number } | undefined {
  const lines = stdout.split(/\r?\n/);
  const first = lines.indexOf(PART);
  let last = -1;
  for (let i = lines.length - 1; i > first; i--) if (lines[i]!.startsWith(`${PART} `)) { last = i; break; }
  if (first < 0 || last < 0) return undefined;
  const logsExit = Number(lines[last]!.slice(PART.length + 1));
  if (!Number.isInteger(logsExit)) return undefined;
  return { histories: lines.slice(0, first).join('\n'), logs: lines.slice(first + 1, last).join('\n'), logsExit };
}

/**
 * docker-container: `docker exec buildx_buildkit_<node> buildctl debug histories|logs` (any buildx,
 * BuildKit ≥ 0.12); docker (no container to exec into) and kubernetes: `docker buildx history ls|logs`
 * (buildx ≥ 0.23).
 */
export function recordReader(runner: DockerRunner, source: RecordSource): RecordReader {
  const opts = { timeoutMs: 60_000 };
  if (source.kind === 'container') {
    const ctx = source.context ? ['--context', source.context] : [];
    const exec = (argv: string[]) => runner.run([...ctx, 'exec', source.container, ...argv], opts);
    const records = (stdout: string): Records => {
      try {
        return { known: true, records: parseHistoryRecords(stdout) };
      } catch {
        return { known: false, why: `buildctl debug histories in ${source.container} printed no JSON` };
      }
    };
    const reader: RecordReader = {
      async records() {
        const r = await exec(['buildctl', 'debug', 'histories', '--format', '{{json .}}']);
        if (r.exitCode !== 0) return { known: false, why: `buildctl debug histories in ${source.container} failed (${lastStderrLine(r) || `exit ${r.exitCode}`})` };
        return records(r.stdout);
      },
      async exportErrors(ref) {
        const r = await exec(['buildctl', 'debug', 'logs', '--progress', 'plain', ref]);
        if (r.exitCode !== 0) return { known: false, why: `buildctl debug logs in ${source.container} failed (${lastStderrLine(r) || `exit ${r.exitCode}`})` };
        return { known: true, errors: cacheExportErrors(`${r.stdout}\n${r.stderr}`) };
      },
      async recordsAndExportErrors(ref) {
        // One exec (a docker CLI start and a runtime exec fewer, after every build) through the
        // image's shell; an image without one, or a failing histories, takes the two calls.
        const script = `buildctl debug histories --format '{{json .}}' || exit $?; echo '${PART}'; buildctl debug logs --progress plain "$1" 2>&1; echo "${PART} $?"`;
        const r = await exec(['sh', '-c', script, 'sh', ref]);
        const parts = r.exitCode === 0 ? splitReportExec(r.stdout) : undefined;
        if (!parts) return { records: await reader.records(), errors: await reader.exportErrors(ref) };
        const lastLine = parts.logs.trim().split('\n').pop();
        const errors: ExportErrors =
          parts.logsExit === 0 ? { known: true, errors: cacheExportErrors(parts.logs) } : { known: false, why: `buildctl debug logs in ${source.container} failed (${lastLine || `exit ${parts.logsExit}`})` };
        return { records: records(parts.histories), errors };
      },
    };
    return reader;
  }
  const reader: RecordReader = {
    async records() {
      const r = await runner.run(['buildx', 'history', 'ls', '--builder', source.builder, '--format', 'json'], opts);
      if (r.exitCode !== 0) {
        // dockerd 20.10's embedded BuildKit answers Unimplemented: it keeps no build history at all.
        if (/Unimplemented|unknown method ListenBuildHistory/i.test(r.stderr)) return { known: false, why: "the builder's BuildKit keeps no build history" };
        if (/unknown command|COMMAND --help/i.test(r.stderr)) return { known: false, why: 'buildx before 0.23 has no history command' };
        return { known: false, why: `docker buildx history ls failed (${lastStderrLine(r) || `exit ${r.exitCode}`}; it needs buildx 0.23 or later)` };
      }
      try {
        return { known: true, records: parseBuildxHistoryRecords(r.stdout) };
      } catch {
        return { known: false, why: 'docker buildx history ls printed no JSON (it needs buildx 0.23 or later)' };
      }
    },
    async exportErrors(ref) {
      const r = await runner.run(['buildx', 'history', 'logs', '--builder', source.builder, '--progress', 'plain', ref], opts);
      if (r.exitCode !== 0) return { known: false, why: `docker buildx history logs failed (${lastStderrLine(r) || `exit ${r.exitCode}`})` };
      return { known: true, errors: cacheExportErrors(`${r.stdout}\n${r.stderr}`) };
    },
    async recordsAndExportErrors(ref) {
      const [records, errors] = await Promise.all([reader.records(), reader.exportErrors(ref)]);
      return { records, errors };
    },
  };
  return reader;
}

/** What tells one bake target's record from the others' when buildx wrote no ref for it. */
export interface RecordAttrs {
  /** The Dockerfile's name as buildx sends it (`filename`). */
  filename: string;
  /** The stage (`target`). */
  target: string | undefined;
  /** A cache the target imports (a registry ref or a local directory), from `cache-imports`. */
  cacheImport?: string | undefined;
}

function importsCache(record: BuildRecord, cache: string): boolean {
  try {
    const imports = JSON.parse(record.frontendAttrs?.['cache-imports'] ?? '[]') as { Attrs?: Record<string, string> }[];
    return imports.some((i) => i.Attrs?.ref === cache || i.Attrs?.src === cache);
  } catch {
    return false;
  }
}

/**
 * The record of our build: the ref buildx wrote to the metadata file (`buildx.build.ref`, buildx
 * ≥ 0.13), else the newest record created since the build started (buildx 0.12 writes no ref).
 * One target of a bake without a ref (buildx 0.12 builds them side by side): the one record since
 * the start whose frontend attributes import the target's cache (`cache-imports`, keyed per
 * target), else name its Dockerfile (`filename`) and stage (`target`); none unless exactly one.
 */
export function pickRecord(records: BuildRecord[], opts: { ref?: string | undefined; startedAt: number; attrs?: RecordAttrs | undefined }): BuildRecord | undefined {
  if (opts.ref) return records.find((r) => r.ref === opts.ref);
  const since = records.filter((r) => r.createdAt !== undefined && Date.parse(r.createdAt) >= opts.startedAt - 2000);
  if (opts.attrs) {
    const { filename, target, cacheImport } = opts.attrs;
    const one = (rs: BuildRecord[]): BuildRecord | undefined => (rs.length === 1 ? rs[0] : undefined);
    const byCache = cacheImport !== undefined ? one(since.filter((r) => importsCache(r, cacheImport))) : undefined;
    return byCache ?? one(since.filter((r) => r.frontendAttrs !== undefined && (r.frontendAttrs.filename ?? 'Dockerfile') === filename && (r.frontendAttrs.target ?? '') === (target ?? '')));
  }
  return since.sort((a, b) => Date.parse(b.createdAt!) - Date.parse(a.createdAt!))[0];
}
