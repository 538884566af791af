// Small pieces shared by the emulated buildx: errors, version gates, Go text/tabwriter, flag parsing.

/** An error buildx prints as `ERROR: <message>` (exit 1), or verbatim with a status (cobra). */
export class BuildxError extends Error {
  constructor(message, { exitCode = 1, raw = false } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.raw = raw;
  }
}

// The emulation prints a revision of the release binaries' shape (40 hex) that is no commit of
// docker/buildx: buildx-bootstrap never reads it, and the real-engine tests tell the Go-built plugin
// from the emulation by the revision stamped at its build (test/helpers/real-world.ts).
export const DEFAULT_VERSION = '0.36.0';

export function buildxVersion(env) {
  const raw = (env.BXB_FAKE_BUILDX_VERSION || DEFAULT_VERSION).replace(/^v/, '');
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(raw);
  if (!m) throw new BuildxError(`fake buildx: BXB_FAKE_BUILDX_VERSION must be X.Y.Z, got ${raw}`);
  const [major, minor, patch] = m.slice(1).map(Number);
  const revision = fakeRevision(raw);
  return { version: raw, major, minor, patch, revision };
}

function fakeRevision(v) {
  let h = 0x811c9dc5;
  for (const c of v) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return (h.toString(16).padStart(8, '0')).repeat(5);
}

/** v >= X.Y (all emulated versions are 0.x). */
export function atLeast(v, major, minor) {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/**
 * Go text/tabwriter with flags 0 and a space pad char: cells end at '\t', the last cell of a line
 * is not aligned, and a column block is a run of consecutive lines that have that column.
 */
export function tabwrite(text, { minwidth = 0, padding = 1 } = {}) {
  const lines = text.split('\n');
  const trailingNewline = lines[lines.length - 1] === '';
  if (trailingNewline) lines.pop();
  const out = [];
  goFormat(lines.map((l) => l.split('\t')), [], out, minwidth, padding, (s) => [...s].length);
  return out.join('\n') + (trailingNewline ? '\n' : '');
}

// Mirrors format()/writeLines() of Go's text/tabwriter (a cell is padded only when it is not the
// last cell of its line).
function goFormat(cells, widths, out, minwidth, padding, len) {
  const writeLines = (from, to) => {
    for (let i = from; i < to; i++) {
      const line = cells[i];
      let s = '';
      for (let j = 0; j < line.length; j++) {
        const c = line[j];
        s += c;
        if (j < widths.length && j < line.length - 1) s += ' '.repeat(Math.max(0, widths[j] - len(c)));
      }
      out.push(s);
    }
  };
  const format = (line0, line1) => {
    const column = widths.length;
    let t = line0;
    while (t < line1) {
      if (column >= cells[t].length - 1) {
        t++;
        continue;
      }
      writeLines(line0, t);
      line0 = t;
      let width = minwidth;
      for (; t < line1; t++) {
        if (column >= cells[t].length - 1) break;
        const w = len(cells[t][column]) + padding;
        if (w > width) width = w;
      }
      widths.push(width);
      format(line0, t);
      widths.pop();
      line0 = t;
    }
    writeLines(line0, line1);
  };
  format(0, cells.length);
}

/**
 * pflag-style parsing for one command. spec: { name: {type:'bool'|'string'|'array', short?} }.
 * Returns { opts, args } or throws a 125 BuildxError formatted like docker/cli's FlagErrorFunc.
 */
export function parseFlags(argv, spec, usage) {
  const opts = {};
  const args = [];
  const byShort = {};
  for (const [name, s] of Object.entries(spec)) {
    if (s.short) byShort[s.short] = name;
    if (s.type === 'array') opts[name] = [];
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    let name;
    let value;
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (eq >= 0) value = a.slice(eq + 1);
      if (!spec[name]) throw usage.flagError(`unknown flag: --${name}`);
    } else if (a.startsWith('-') && a.length > 1) {
      const ch = a[1];
      name = byShort[ch];
      if (!name) throw usage.flagError(`unknown shorthand flag: '${ch}' in ${a}`);
      if (a.length > 2) value = a.slice(2).replace(/^=/, '');
    } else {
      args.push(a);
      continue;
    }
    const s = spec[name];
    if (s.type === 'bool') {
      opts[name] = value === undefined ? true : !/^(false|0|f|F|FALSE|False)$/.test(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw usage.flagError(`flag needs an argument: --${name}`);
      value = argv[++i];
    }
    if (s.type === 'array') opts[name].push(value);
    else opts[name] = value;
  }
  return { opts, args };
}

/** The usage tail docker/cli's FlagErrorFunc adds; changed in the docker/cli vendored by buildx v0.21. */
export function makeUsage(v, commandPath, useLine) {
  return {
    flagError(msg) {
      const status = atLeast(v, 0, 21)
        ? `${msg}\n\nUsage:  ${useLine}\n\nRun '${commandPath} --help' for more information`
        : `${msg}\nSee '${commandPath} --help'.`;
      return new BuildxError(status, { exitCode: 125, raw: true });
    },
  };
}

/** Go's %q for the ASCII strings buildx shows. */
export function goQuote(s) {
  return JSON.stringify(s);
}

/** Go time.Time %v for a UTC instant with second precision. */
export function goTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

export function rfc3339(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** github.com/google/shlex semantics, enough for buildkitd flags. */
export function shlexSplit(s) {
  const out = [];
  let cur = '';
  let has = false;
  let q = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q === "'") {
      if (c === "'") q = null;
      else cur += c;
    } else if (q === '"') {
      if (c === '"') q = null;
      else if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      q = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (q) throw new BuildxError('failed to parse buildkit flags: EOF found when expecting closing quote');
  if (has || cur) out.push(cur);
  return out;
}

/** Go encoding/csv fields of one value (quotes allowed), as buildx's csvToMap reads --driver-opt. */
export function csvFields(s) {
  const out = [];
  let i = 0;
  while (i <= s.length) {
    if (s[i] === '"') {
      let v = '';
      i++;
      while (i < s.length) {
        if (s[i] === '"' && s[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (s[i] === '"') {
          i++;
          break;
        } else v += s[i++];
      }
      out.push(v);
      if (s[i] === ',') i++;
      else break;
    } else {
      const j = s.indexOf(',', i);
      if (j < 0) {
        out.push(s.slice(i));
        break;
      }
      out.push(s.slice(i, j));
      i = j + 1;
    }
  }
  return out;
}
