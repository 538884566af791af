// Dockerfile syntax: lines, comments, parser directives, continuations, heredocs and each
// instruction's flags and arguments, the way BuildKit's parser reads them (BK @73ed6825c
// `frontend/dockerfile/parser/parser.go`, `directives.go`, `split_command.go`, `line_parsers.go`).
// No meaning here: stages and images are ./stages.ts and ./dockerfile.ts.
import { expandWord } from './lexer.js';

// ---- lines → nodes (parser.go) ----------------------------------------------------------------

export interface Node {
  /** Instruction as written (`FROM`, `copy`). */
  command: string;
  /** Lower-cased instruction. */
  cmd: string;
  flags: string[];
  /** Arguments as the line parser for this instruction splits them. */
  args: string[];
  json: boolean;
  startLine: number;
  endLine: number;
  /** ONBUILD's inner instruction. */
  sub?: Node;
}

export const INSTRUCTIONS = new Set([
  'add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run',
  'shell', 'stopsignal', 'user', 'volume', 'workdir',
]);
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);
export const DIRECTIVE_KEYS = new Set(['syntax', 'escape', 'check']);

export class ParseFailure extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

export interface Lines {
  lines: string[];
  escapeToken: '\\' | '`';
  directives: Map<string, { value: string; line: number }>;
  nodes: Node[];
}

function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n') {
      out.push(text.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');
const isComment = (s: string): boolean => /^\s*#/.test(s);

export function parseLines(text: string): Lines {
  const raw = splitLines(text.replace(/^\uFEFF/, ''));
  let escapeToken: '\\' | '`' = '\\';
  let continuation = continuationRegExp(escapeToken);
  const directives = new Map<string, { value: string; line: number }>();
  let directivesDone = false;
  let lineNo = 0;
  const nodes: Node[] = [];

  // Directives are only recognised on leading `# key=value` lines (directives.go ParseLine).
  const checkDirective = (line: string, n: number): boolean => {
    if (directivesDone) return false;
    if (!line.startsWith('#')) {
      directivesDone = true;
      return false;
    }
    const m = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line.slice(1).replace(/^\s+/, ''));
    const key = m?.[1]?.toLowerCase();
    if (!m || !key || !DIRECTIVE_KEYS.has(key)) {
      directivesDone = true;
      return false;
    }
    if (directives.has(key)) throw new ParseFailure(`only one ${key} parser directive can be used`, n);
    directives.set(key, { value: m[2]!, line: n });
    if (key === 'escape') {
      if (m[2] !== '`' && m[2] !== '\\') throw new ParseFailure(`invalid escape token '${m[2]}' does not match \` or \\`, n);
      escapeToken = m[2];
      continuation = continuationRegExp(escapeToken);
    }
    return true;
  };

  let i = 0;
  while (i < raw.length) {
    let first = trimNewline(raw[i]!).replace(/^\s+/, '');
    checkDirective(first, lineNo + 1);
    if (isComment(first)) first = '';
    i++;
    lineNo++;
    const startLine = lineNo;
    let [bytes, ended] = trimContinuation(first, continuation);
    if (ended && bytes.length === 0) continue;
    let buf = bytes;
    while (!ended && i < raw.length) {
      const original = raw[i]!;
      let line = trimNewline(original);
      checkDirective(line, lineNo + 1);
      i++;
      lineNo++;
      if (isComment(original)) continue;
      if (/^\s*$/.test(line)) continue; // empty continuation line: a warning upstream, skipped
      [line, ended] = trimContinuation(line, continuation);
      buf += line;
    }
    const node = nodeFromLine(buf, escapeToken, startLine);
    if (canContainHeredoc(node) && buf.includes('<<')) {
      for (const doc of heredocsInLine(buf, startLine)) {
        let terminated = false;
        while (i < raw.length) {
          let candidate = trimNewline(raw[i]!);
          i++;
          lineNo++;
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
        }
        if (!terminated) throw new ParseFailure('unterminated heredoc', startLine);
      }
    }
    node.endLine = lineNo;
    nodes.push(node);
  }
  if (nodes.length === 0) throw new ParseFailure('file with no instructions', lineNo);
  return { lines: raw, escapeToken, directives, nodes };
}

function continuationRegExp(esc: string): RegExp {
  const e = esc === '\\' ? '\\\\' : esc;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimContinuation(line: string, re: RegExp): [string, boolean] {
  if (re.test(line)) return [line.replace(re, '$1'), false];
  return [line, true];
}

function nodeFromLine(line: string, esc: string, startLine: number): Node {
  const trimmed = line.trim();
  const m = /^(\S+)(?:[\t\v\f\r ]+([\s\S]*))?$/.exec(trimmed);
  const command = m?.[1] ?? '';
  const rest = m?.[2] ?? '';
  const { flags, remainder } = extractFlags(rest, esc);
  const cmd = command.toLowerCase();
  const node: Node = { command, cmd, flags, args: [], json: false, startLine, endLine: startLine };
  const args = remainder.trim();
  switch (cmd) {
    case 'from':
    case 'expose':
      node.args = args ? args.split(/[\t\v\f\r ]+/) : [];
      break;
    case 'add':
    case 'copy':
    case 'volume': {
      const json = parseJsonArray(args, startLine);
      if (json) {
        node.args = json;
        node.json = true;
      } else node.args = args ? args.split(/[\t\v\f\r ]+/) : [];
      break;
    }
    case 'run':
    case 'cmd':
    case 'entrypoint':
    case 'shell': {
      const json = args ? parseJsonArray(args, startLine) : undefined;
      if (json) {
        node.args = json;
        node.json = true;
      } else node.args = args ? [args] : [];
      break;
    }
    case 'arg':
      node.args = parseWords(args, esc);
      break;
    case 'onbuild':
      if (args) node.sub = nodeFromLine(args, esc, startLine);
      break;
    default:
      node.args = args ? [args] : [];
  }
  return node;
}

/** A JSON string array, or undefined when the text is not one (then it is shell form). */
function parseJsonArray(text: string, line: number): string[] | undefined {
  const t = text.replace(/^\s+/, '');
  if (!t.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v) => typeof v === 'string')) throw new ParseFailure('dockerfile is not a string array', line);
  return value as string[];
}

/** Leading `--flag[=value]` words; quotes removed, escapes applied (split_command.go). */
function extractFlags(line: string, esc: string): { flags: string[]; remainder: string } {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && /\s/.test(line[pos]!)) pos++;
    if (pos >= line.length) return { flags, remainder: '' };
    if (!(line[pos] === '-' && line[pos + 1] === '-')) return { flags, remainder: line.slice(pos) };
    let word = '';
    let quote: string | undefined;
    let blankOk = false;
    for (; pos < line.length; pos++) {
      let ch = line[pos]!;
      if (quote) {
        if (ch === quote) {
          quote = undefined;
          continue;
        }
      } else {
        if (/\s/.test(ch)) break;
        if (ch === "'" || ch === '"') {
          quote = ch;
          blankOk = true;
          continue;
        }
      }
      if (ch === esc) {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
    }
    if (word === '--') return { flags, remainder: line.slice(pos) };
    if (blankOk || word.length > 0) flags.push(word);
  }
}

/** Words with quotes kept (line_parsers.go parseWords), for ARG. */
function parseWords(text: string, esc: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  let blankOk = false;
  for (let i = 0; i < text.length; i++) {
    let ch = text[i]!;
    if (!inWord) {
      if (/\s/.test(ch)) continue;
      inWord = true;
    }
    if (quote === undefined) {
      if (/\s/.test(ch)) {
        if (blankOk || cur) words.push(cur);
        cur = '';
        blankOk = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === esc) {
        if (i + 1 === text.length) continue;
        cur += ch;
        ch = text[++i]!;
      }
      cur += ch;
      continue;
    }
    if (ch === quote) quote = undefined;
    else if (ch === esc && quote !== "'") {
      if (i + 1 === text.length) continue;
      cur += ch;
      ch = text[++i]!;
    }
    cur += ch;
  }
  if (inWord && (blankOk || cur)) words.push(cur);
  return words;
}

function canContainHeredoc(node: Node): boolean {
  const target = node.cmd === 'onbuild' && node.sub ? node.sub : node;
  return HEREDOC_INSTRUCTIONS.has(target.cmd) && !target.json;
}

interface HeredocWord {
  name: string;
  chomp: boolean;
}

/**
 * Heredoc openers in a line: words (quotes kept, `<<` glued to a following word as the upstream
 * lexer does) matching `^(\d*)<<(-?)\s*([^<]*)$` whose rest is one word once quotes are removed.
 */
function heredocsInLine(line: string, lineNo: number): HeredocWord[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      cur += ch;
      if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i]!;
      else if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      cur += ch;
    } else if (ch === '\\') {
      cur += ch;
      if (i + 1 < line.length) cur += line[++i]!;
    } else if (ch === '<' && line[i + 1] === '<') {
      cur += '<<';
      i += 2;
      while (i < line.length && /[ \t]/.test(line[i]!)) cur += line[i++]!;
      i--;
    } else if (/\s/.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quote) throw new ParseFailure(`unexpected end of statement while looking for matching ${quote === '"' ? 'double-quote' : 'single-quote'}`, lineNo);
  if (cur) words.push(cur);
  const docs: HeredocWord[] = [];
  for (const word of words) {
    const m = /^(\d*)<<(-?)\s*([^<]*)$/.exec(word);
    if (!m || !m[3]) continue;
    let name: string;
    try {
      name = expandWord(m[3], new Map(), '\\');
    } catch (e) {
      throw new ParseFailure((e as Error).message, lineNo);
    }
    if (!name || /\s/.test(name)) continue;
    docs.push({ name, chomp: m[2] === '-' });
  }
  return docs;
}

/**
 * The frontend image from a `# syntax=` directive (BK parser/directives.go `DetectSyntax`): only
 * on the leading directive lines, after an optional `#!` shebang line; the first word is the image.
 */
export function detectSyntax(text: string): { ref: string; line: number } | undefined {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  let n = 0;
  if (lines[0]?.startsWith('#!')) n = 1;
  for (; n < lines.length; n++) {
    const line = lines[n]!.replace(/\r$/, '');
    if (!line.startsWith('#')) return undefined;
    const m = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line.slice(1).replace(/^\s+/, ''));
    if (!m || !DIRECTIVE_KEYS.has(m[1]!.toLowerCase())) return undefined;
    if (m[1]!.toLowerCase() === 'syntax') return { ref: m[2]!.split(' ')[0]!, line: n + 1 };
  }
  return undefined;
}
