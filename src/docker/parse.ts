// Parsers of buildx output (pure). Formats are the ones buildx prints (buildx-facts §2), tested
// against the verbatim samples in test/fixtures/buildx/. They are strict about structure and lenient
// only about whitespace: tabwriter padding, trailing blanks, CRLF. Output they cannot read is a
// DockerError (exit 1) naming the command, never a bare exception.
import { DockerError } from '../errors.js';

function unexpected(message: string): DockerError {
  return new DockerError(message, { hint: 'is this a buildx version buildx-bootstrap does not know? re-run with --debug and report the output' });
}

// ---- buildx version ---------------------------------------------------------------------------

export interface BuildxVersion {
  /** Release as `X.Y.Z`: `v0.32.0-rc1` → `0.32.0`, `v0.19.2-desktop.1` → `0.19.2`, unstamped → `0.0.0`. */
  version: string;
  /** The version word as printed, e.g. `v0.19.2-desktop.1`. */
  raw: string;
  /** Commit as printed: 40 hex (release binaries), short (docker-ce packages), or empty. */
  revision: string;
}

const VERSION_WORD = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$/;

/**
 * `docker buildx version` → `<package> <version> <revision>` (Go `fmt.Println`, BX
 * commands/version.go), e.g. `github.com/docker/buildx v0.19.3 48d6a39`. Unstamped builds print
 * `v0.0.0+unknown ` with an empty revision (trailing space).
 */
export function parseBuildxVersion(stdout: string): BuildxVersion {
  const line = stdout.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  const words = line.split(/\s+/);
  const [pkg, word, revision = '', ...rest] = words;
  const m = word === undefined ? null : VERSION_WORD.exec(word);
  if (!pkg || !/buildx$/.test(pkg) || !m || rest.length) {
    throw unexpected(`unexpected output of docker buildx version: ${JSON.stringify(line.slice(0, 200))}`);
  }
  return { version: `${Number(m[1])}.${Number(m[2])}.${Number(m[3])}`, raw: word!, revision };
}

// ---- buildx inspect ---------------------------------------------------------------------------

export interface NodeInfo {
  name: string;
  endpoint: string;
  driverOpts: Record<string, string>;
  /** `inactive|starting|running|stopping|stopped`; `error` when the node shows `Error:` instead. */
  status: string;
  /**
   * buildkitd flags. buildx prints them joined by spaces, so a flag that itself contains a blank
   * comes back split; compare against a record of what was passed, not this, when that matters.
   */
  flags: string[];
  buildkitVersion?: string;
  /** Every platform shown, `*` (set by `--platform`) removed. */
  platforms: string[];
  /** The ones marked `*`: fixed with `--platform`. */
  fixedPlatforms: string[];
  labels: Record<string, string>;
  /** `GC Policy rule#N` blocks as shown (`All`, `Filters`, `Keep Duration`, `Keep Bytes`/`Max Used Space`, …). */
  gcPolicy: Record<string, string>[];
  /** `File#<name>` blocks (buildx >= 0.18), e.g. `buildkitd.toml` as buildx re-serialized it. */
  files: Record<string, string>;
  error?: string;
}

export interface BuilderInfo {
  name: string;
  driver: string;
  /** As printed (Go `time.Time`), e.g. `2024-08-18 10:44:14 +0000 UTC`. */
  lastActivity?: string;
  error?: string;
  nodes: NodeInfo[];
}

/** Inverse of Go's `%q` (strconv.Quote) for the inside of a quoted string. */
function goUnquote(body: string): string {
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (all, esc: string) => {
    if (esc.length === 1) {
      const c = simple[esc];
      if (c === undefined) throw unexpected(`invalid escape ${all}`);
      return c;
    }
    const code = /^[0-7]{3}$/.test(esc) ? parseInt(esc, 8) : parseInt(esc.slice(1), 16);
    // Go's %q never prints a \U beyond U+10FFFF; fromCodePoint would throw a RangeError on one.
    if (code > 0x10ffff) throw unexpected(`invalid escape ${all}`);
    return String.fromCodePoint(code);
  });
}

/** `k="v" k2="v 2"` (BX commands/inspect.go: `fmt.Sprintf("%s=%q", k, v)` joined by spaces, map order). */
export function parseDriverOpts(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([^\s=]+)="((?:[^"\\]|\\.)*)"/y;
  let at = 0;
  const trimmed = text.trimEnd();
  while (at < trimmed.length) {
    re.lastIndex = at;
    const m = re.exec(trimmed);
    if (!m) throw unexpected(`cannot read driver options at ${JSON.stringify(trimmed.slice(at, at + 40))}`);
    out[m[1]!] = goUnquote(m[2]!);
    at = re.lastIndex;
  }
  return out;
}

function splitPlatforms(value: string): { platforms: string[]; fixed: string[] } {
  const all = value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return {
    platforms: all.map((p) => p.replace(/\*$/, '')),
    fixed: all.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1)),
  };
}

type Section = 'none' | 'labels' | 'gc' | 'file' | 'skip';

/**
 * `docker buildx inspect [--bootstrap] NAME` (BX commands/inspect.go; tabwriter padding 1). Both
 * label generations: `Flags:`/`Buildkit:` (buildx <= 0.12) and `BuildKit daemon flags:`/
 * `BuildKit version:` (0.13+). Sections `Labels:`, `GC Policy rule#N:`, `File#<name>:` (lines
 * `\t> text`, rendered ` > text`; an empty file line is ` > ` or, whitespace-trimmed, ` >`).
 * `Features:`/`Devices:` and keys this parser does not know are skipped.
 */
export function parseInspect(stdout: string): BuilderInfo {
  const lines = stdout.replace(/\r\n/g, '\n').split('\n');
  let name: string | undefined;
  let driver: string | undefined;
  const builder: Omit<BuilderInfo, 'name' | 'driver'> = { nodes: [] };
  let inNodes = false;
  let node: NodeInfo | undefined;
  let section: Section = 'none';
  let file: { name: string; lines: string[] } | undefined;
  let gc: Record<string, string> | undefined;

  const fail = (i: number, why: string): never => {
    throw unexpected(`unexpected output of docker buildx inspect, line ${i + 1}: ${why}: ${JSON.stringify((lines[i] ?? '').slice(0, 120))}`);
  };
  const closeFile = () => {
    if (file && node) node.files[file.name] = file.lines.join('\n');
    file = undefined;
  };
  const needNode = (i: number): NodeInfo => node ?? fail(i, 'node detail before a node Name');

  lines.forEach((line, i) => {
    if (section === 'file') {
      const m = /^[ \t]*>(?: (.*))?$/.exec(line);
      if (m) {
        file!.lines.push(m[1] ?? '');
        return;
      }
      closeFile();
      section = 'none';
    }
    if (line.trim() === '') {
      section = 'none';
      return;
    }
    if (/^[ \t]/.test(line)) {
      // `\tkey:\tvalue` under a section header.
      const m = /^[ \t]+(.+?):(?:[ \t]+(.*))?$/.exec(line);
      if (section === 'labels') {
        if (!m) fail(i, 'label line is not "key: value"');
        needNode(i).labels[m![1]!] = (m![2] ?? '').trim();
      } else if (section === 'gc') {
        if (!m) fail(i, 'GC policy line is not "key: value"');
        gc![m![1]!] = (m![2] ?? '').trim();
      } else if (section === 'none') {
        fail(i, 'indented line outside a section');
      }
      return;
    }
    const m = /^([^:]+):(?:[ \t]+(.*)|)$/.exec(line);
    if (!m) return fail(i, 'not a "Key: value" line');
    const key = m[1]!.trim();
    const value = (m[2] ?? '').trim();
    const lkey = key.toLowerCase();
    section = 'none';
    if (!inNodes) {
      // buildx prints `Name:` first, always (BX commands/inspect.go).
      if (name === undefined && lkey !== 'name') fail(i, 'expected the builder Name line first');
      switch (lkey) {
        case 'name':
          name = value;
          return;
        case 'driver':
          driver = value;
          return;
        case 'last activity':
          builder.lastActivity = value;
          return;
        case 'error':
          builder.error = value;
          return;
        case 'nodes':
          inNodes = true;
          return;
        default:
          // A builder-level line from a newer buildx.
          return;
      }
    }
    if (lkey === 'name') {
      node = { name: value, endpoint: '', driverOpts: {}, status: '', flags: [], platforms: [], fixedPlatforms: [], labels: {}, gcPolicy: [], files: {} };
      builder.nodes.push(node);
      return;
    }
    const n = needNode(i);
    switch (lkey) {
      case 'endpoint':
        n.endpoint = value;
        return;
      case 'driver options':
        try {
          n.driverOpts = parseDriverOpts(value);
        } catch (e) {
          fail(i, (e as Error).message);
        }
        return;
      case 'error':
        n.error = value;
        n.status = 'error';
        return;
      case 'status':
        n.status = value;
        return;
      case 'buildkit daemon flags':
      case 'flags': // buildx <= 0.12
        n.flags = value.split(/\s+/).filter(Boolean);
        return;
      case 'buildkit version':
      case 'buildkit': // buildx <= 0.12
        if (value) n.buildkitVersion = value;
        return;
      case 'platforms': {
        const p = splitPlatforms(value);
        n.platforms = p.platforms;
        n.fixedPlatforms = p.fixed;
        return;
      }
      case 'labels':
        section = 'labels';
        return;
      default:
        if (/^gc policy rule#\d+$/.test(lkey)) {
          gc = {};
          n.gcPolicy.push(gc);
          section = 'gc';
        } else if (/^file#/.test(lkey)) {
          file = { name: key.slice('File#'.length), lines: [] };
          section = 'file';
        } else {
          // `Features:`, `Devices:`, or a line of a newer buildx: skip it and what is under it.
          section = 'skip';
        }
    }
  });
  if ((section as Section) === 'file') closeFile();
  if (name === undefined || driver === undefined) {
    throw unexpected(`unexpected output of docker buildx inspect: no ${name === undefined ? 'Name' : 'Driver'} line`);
  }
  for (const n of builder.nodes) if (!n.status) n.status = n.error ? 'error' : 'unknown';
  return { name, driver, ...builder };
}

// ---- buildx ls --format json ------------------------------------------------------------------

export interface LsNode {
  name: string;
  endpoint: string;
  status?: string;
  /** BuildKit version, e.g. `v0.22.0`. */
  version?: string;
  flags: string[];
  driverOpts: Record<string, string>;
  /** Decoded contents (buildx stores them base64), e.g. `buildkitd.toml`. */
  files: Record<string, string>;
  platforms: string[];
  labels: Record<string, string>;
  error?: string;
}

export interface LsBuilder {
  name: string;
  driver: string;
  /** Only buildx >= 0.24 says which builder is current. */
  current?: boolean;
  /** RFC 3339; absent when buildx shows the zero time. */
  lastActivity?: string;
  dynamic: boolean;
  error?: string;
  nodes: LsNode[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringRecord(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/** Platforms are strings; an OCI platform object (`{os, architecture, variant}`) is formatted as one. */
function platformList(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((p) => {
    if (typeof p === 'string') return [p];
    if (isRecord(p) && typeof p.os === 'string' && typeof p.architecture === 'string') {
      return [[p.os, p.architecture, typeof p.variant === 'string' ? p.variant : ''].filter(Boolean).join('/')];
    }
    return [];
  });
}

/**
 * `docker buildx ls --format json` (buildx >= 0.13): one builder object per line. Handles the
 * struct key order (0.13–0.23) and the alphabetical one (0.24+, BX commit a3180cbf3) alike, and the
 * 0.13–0.20 bug that prints each builder 1+N(nodes) times (fixed in BX commit 5e1ea62f9): builders
 * are deduplicated by name, first seen wins, order kept.
 */
export function parseLsJson(stdout: string): LsBuilder[] {
  const seen = new Map<string, LsBuilder>();
  stdout
    .replace(/\r\n/g, '\n')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        throw unexpected(`unexpected output of docker buildx ls --format json, line ${i + 1}: not JSON: ${JSON.stringify(line.slice(0, 120))}`);
      }
      if (!isRecord(raw) || typeof raw.Name !== 'string' || typeof raw.Driver !== 'string') {
        throw unexpected(`unexpected output of docker buildx ls --format json, line ${i + 1}: not a builder object (no Name/Driver)`);
      }
      if (seen.has(raw.Name)) return;
      const b: LsBuilder = { name: raw.Name, driver: raw.Driver, dynamic: raw.Dynamic === true, nodes: [] };
      if (typeof raw.Current === 'boolean') b.current = raw.Current;
      // A zero time.Time is not dropped by omitempty (buildx-facts §2.5).
      if (typeof raw.LastActivity === 'string' && !raw.LastActivity.startsWith('0001-01-01')) b.lastActivity = raw.LastActivity;
      if (typeof raw.Err === 'string' && raw.Err) b.error = raw.Err;
      for (const n of Array.isArray(raw.Nodes) ? raw.Nodes : []) {
        if (!isRecord(n) || typeof n.Name !== 'string') continue;
        const node: LsNode = {
          name: n.Name,
          endpoint: typeof n.Endpoint === 'string' ? n.Endpoint : '',
          flags: stringList(n.Flags),
          driverOpts: stringRecord(n.DriverOpts),
          files: Object.fromEntries(Object.entries(stringRecord(n.Files)).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
          platforms: platformList(n.Platforms),
          labels: stringRecord(n.Labels),
        };
        if (typeof n.Status === 'string') node.status = n.Status;
        if (typeof n.Version === 'string' && n.Version) node.version = n.Version;
        if (typeof n.Err === 'string' && n.Err) node.error = n.Err;
        b.nodes.push(node);
      }
      seen.set(b.name, b);
    });
  return [...seen.values()];
}
