// What a Dockerfile pulls: every image named by FROM, COPY --from and RUN --mount=from, plus the
// `# syntax=` frontend, after ARG substitution, with stages told apart from images and only the
// stages the target needs. Read the way BuildKit's Dockerfile frontend reads it (BK @73ed6825c):
//   - lines, comments, directives, continuations, heredocs: `frontend/dockerfile/parser/parser.go`,
//     `directives.go`, `split_command.go`, `line_parsers.go`
//   - instructions and stages: `frontend/dockerfile/instructions/parse.go`, `commands_runmount.go`
//   - ARG/FROM evaluation, stage lookup and reachability: `frontend/dockerfile/dockerfile2llb/
//     convert.go` (`buildMetaArgs`, `defaultArgs` in platform.go, `toCommand`, `detectRunMount`
//     in convert_runmount.go, `dispatchStates`)
//   - named-context keys: `frontend/dockerui/config.go` (`NamedContext`) and buildx
//     `util/buildflags/context.go` (`ParseContextNames`)
// Anything BuildKit would reject (and we can see) is a UsageError naming `file:line`; we never guess.
import { UsageError } from '../errors.js';
import { formatImageRef, parseImageRef, type ImageRef } from '../registry/reference.js';
import { expandWord, LexError } from './dockerfile-lexer.js';
import { hostPlatform, normalizePlatform, parsePlatform } from './platform.js';
import { csvFields } from './csv.js';

export type ImageUseKind = 'from' | 'copy-from' | 'mount-from' | 'syntax';

export interface ImageUse {
  kind: ImageUseKind;
  /** 1-based line of the instruction (or directive). */
  line: number;
  /** The reference as written in the Dockerfile, before ARG substitution. */
  written: string;
  /** Platform the image is needed for at this use. */
  platform: string;
  /** Stage using it: its name, or `stage-N`. */
  stage?: string;
}

export interface NeededImage {
  /** Normalised reference with the implied tag: `docker.io/library/alpine:latest`. */
  ref: string;
  /** The name BuildKit resolves, after ARG substitution and before normalisation (`alpine`). */
  name: string;
  /** The `--build-context` name BuildKit's frontend looks this image up by (see buildContextName). */
  contextName: string;
  /** Every platform it is needed for, normalised. */
  platforms: string[];
  uses: ImageUse[];
}

export interface StageInfo {
  index: number;
  /** Lower-cased stage name, when it has one. */
  name?: string;
  line: number;
  /** FROM argument as written. */
  base: string;
  /** `--platform` as written. */
  platform?: string;
}

export interface OverriddenName {
  /** Image or stage name the Dockerfile uses. */
  name: string;
  contextName: string;
  /** The user's `--build-context` value that replaces it. */
  by: string;
}

export interface DockerfileNeeds {
  file: string;
  /** Frontend image from `# syntax=` (or the BUILDKIT_SYNTAX build-arg), first word only. */
  syntax?: string;
  escapeToken: '\\' | '`';
  stages: StageInfo[];
  /** The stage that is built: its name or `stage-N`. */
  target: string;
  /** Target platforms the analysis covered. */
  platforms: string[];
  /** Images to fetch (from a registry or the local store), in first-use order. */
  images: NeededImage[];
  /** Images/stages replaced by the user's own `--build-context`. */
  overridden: OverriddenName[];
}

export interface AnalyzeOptions {
  /** Shown in errors (`Dockerfile:12: …`). */
  file: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** Target platforms (`--platform`); empty or absent: the build platform. */
  platforms?: string[];
  /** The builder's native platform (default: this machine's). */
  buildPlatform?: string;
  /** Names given with `--build-context` (any spelling; normalised here) → their values. */
  buildContexts?: Record<string, string>;
}

// ---- named-context keys -----------------------------------------------------------------------

/**
 * The key BuildKit's Dockerfile frontend looks a named context up by for an image reference:
 * `reference.FamiliarString(ParseNormalizedNamed(name))` with a trailing `:latest` cut
 * (BK `frontend/dockerui/config.go` `NamedContext`; buildx normalises `--build-context` names the
 * same way in `util/buildflags/context.go` `ParseContextNames`). So `FROM alpine`,
 * `FROM alpine:latest` and `FROM docker.io/library/alpine` all look up `alpine`;
 * `FROM docker.io/foo/bar:1` looks up `foo/bar:1`; `registry.corp/app/bin:v1` stays as is; a tag
 * with a digest keeps both (`alpine:3@sha256:…`). The frontend first tries
 * `<key>::<os>/<arch>[/<variant>]` for the platform in use, then `<key>`.
 * Throws an Error for a name that is not a valid reference.
 */
export function buildContextName(ref: string): string {
  const parsed = parseImageRef(ref);
  return familiarName(parsed).replace(/:latest$/, '');
}

function familiarName(ref: ImageRef): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === 'docker.io') {
    name = ref.repository;
    if (name.startsWith('library/') && !name.slice('library/'.length).includes('/')) name = name.slice('library/'.length);
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** `alpine` → `docker.io/library/alpine:latest` (distribution `TagNameOnly`). Throws on a bad name. */
export function normalizeImageName(name: string): string {
  const ref = parseImageRef(name);
  if (!ref.tag && !ref.digest) ref.tag = 'latest';
  return formatImageRef(ref);
}

// ---- lines → nodes (parser.go) ----------------------------------------------------------------

interface Node {
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

const INSTRUCTIONS = new Set([
  'add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run',
  'shell', 'stopsignal', 'user', 'volume', 'workdir',
]);
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);
const DIRECTIVE_KEYS = new Set(['syntax', 'escape', 'check']);

class ParseFailure extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

interface Lines {
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

function parseLines(text: string): Lines {
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

// ---- nodes → stages (instructions/parse.go) ---------------------------------------------------

interface MetaArg {
  key: string;
  value?: string;
  line: number;
}

interface CopyFrom {
  kind: 'copy-from' | 'mount-from';
  from: string;
  line: number;
}

interface Stage {
  index: number;
  name?: string;
  base: string;
  platform?: string;
  line: number;
  sources: CopyFrom[];
  /** COPY --from / RUN --mount=from inside ONBUILD: they run in stages built FROM this one. */
  onbuildSources: CopyFrom[];
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFlag(flag: string): { name: string; value?: string } {
  if (!flag.startsWith('--')) throw new Error(`arg should start with -- : ${flag}`);
  const eq = flag.indexOf('=');
  return eq < 0 ? { name: flag.slice(2) } : { name: flag.slice(2, eq), value: flag.slice(eq + 1) };
}

/** COPY --from / RUN --mount …,from=… sources of one instruction. */
function sourcesOf(node: Node): CopyFrom[] {
  const out: CopyFrom[] = [];
  if (node.cmd === 'copy') {
    if (node.args.length < 2) throw new ParseFailure('COPY requires at least two arguments, but only one was provided. Destination could not be determined', node.startLine);
    let from: string | undefined;
    for (const f of node.flags) {
      const { name, value } = parseFlag(f);
      if (name !== 'from') continue;
      if (value === undefined) throw new ParseFailure('missing a value on flag: --from', node.startLine);
      if (from !== undefined) throw new ParseFailure('duplicate flag specified: --from', node.startLine);
      from = value;
    }
    if (from) {
      // convert.go toCommand: --from is not expanded; a word that would expand is refused.
      if (/\$[{\w@*#?$!-]/.test(from)) {
        throw new ParseFailure('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', node.startLine);
      }
      out.push({ kind: 'copy-from', from, line: node.startLine });
    }
  } else if (node.cmd === 'run') {
    for (const f of node.flags) {
      const { name, value } = parseFlag(f);
      if (name !== 'mount') continue;
      if (value === undefined) throw new ParseFailure('missing a value on flag: --mount', node.startLine);
      const from = mountFrom(value, node.startLine);
      if (from) out.push({ kind: 'mount-from', from, line: node.startLine });
    }
  }
  return out;
}

/** The `from` field of a `--mount` CSV (commands_runmount.go parseMount, first pass). */
function mountFrom(value: string, line: number): string | undefined {
  let fields: string[];
  try {
    fields = csvFields(value);
  } catch {
    throw new ParseFailure(`failed to parse csv mounts: ${value}`, line);
  }
  let from: string | undefined;
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    if (field.slice(0, eq).toLowerCase() !== 'from') continue;
    const v = field.slice(eq + 1);
    const dollar = v.indexOf('$');
    if (dollar !== -1 && dollar !== v.length - 1) throw new ParseFailure("'from' doesn't support variable expansion, define alias stage instead", line);
    from = v;
  }
  return from;
}

function parseStages(nodes: Node[]): { stages: Stage[]; metaArgs: MetaArg[] } {
  const stages: Stage[] = [];
  const metaArgs: MetaArg[] = [];
  for (const node of nodes) {
    if (!INSTRUCTIONS.has(node.cmd)) throw new ParseFailure(`unknown instruction: ${node.command}`, node.startLine);
    if (node.cmd === 'arg') {
      if (node.args.length === 0) throw new ParseFailure('ARG requires at least one argument', node.startLine);
      const parsed = node.args.map((word): MetaArg => {
        const eq = word.indexOf('=');
        if (eq === 0) throw new ParseFailure('ARG names can not be blank', node.startLine);
        return eq < 0 ? { key: word, line: node.startLine } : { key: word.slice(0, eq), value: word.slice(eq + 1), line: node.startLine };
      });
      if (stages.length === 0) metaArgs.push(...parsed);
      continue;
    }
    if (node.cmd === 'from') {
      let platform: string | undefined;
      for (const f of node.flags) {
        const { name, value } = parseFlag(f);
        if (name !== 'platform') throw new ParseFailure(`unknown flag: --${name}`, node.startLine);
        if (value === undefined) throw new ParseFailure('missing a value on flag: --platform', node.startLine);
        if (platform !== undefined) throw new ParseFailure('duplicate flag specified: --platform', node.startLine);
        platform = value;
      }
      const args = node.args;
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!STAGE_NAME.test(name)) throw new ParseFailure(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`, node.startLine);
      } else if (args.length !== 1) {
        throw new ParseFailure('FROM requires either one or three arguments', node.startLine);
      }
      stages.push({
        index: stages.length,
        ...(name ? { name } : {}),
        base: args[0]!,
        ...(platform !== undefined ? { platform } : {}),
        line: node.startLine,
        sources: [],
        onbuildSources: [],
      });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new ParseFailure('no build stage in current context', node.startLine);
    if (node.cmd === 'onbuild') {
      if (!node.sub) throw new ParseFailure('ONBUILD requires at least one argument', node.startLine);
      const trigger = node.sub.cmd.toUpperCase();
      if (trigger === 'ONBUILD') throw new ParseFailure('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', node.startLine);
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new ParseFailure(`${trigger} isn't allowed as an ONBUILD trigger`, node.startLine);
      if (!INSTRUCTIONS.has(node.sub.cmd)) throw new ParseFailure(`unknown instruction: ${node.sub.command}`, node.startLine);
      stage.onbuildSources.push(...sourcesOf(node.sub));
      continue;
    }
    stage.sources.push(...sourcesOf(node));
  }
  return { stages, metaArgs };
}

// ---- evaluation (dockerfile2llb) --------------------------------------------------------------

function platformArgs(build: string, target: string, overrides: Record<string, string>, targetStage: string): Map<string, string> {
  const b = parsePlatform(build);
  const t = parsePlatform(target);
  const entries: [string, string][] = [
    ['BUILDPLATFORM', normalizePlatform(build)],
    ['BUILDOS', b.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', b.architecture],
    ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETPLATFORM', normalizePlatform(target)],
    ['TARGETOS', t.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
    ['TARGETSTAGE', targetStage || 'default'],
  ];
  const env = new Map<string, string>();
  for (const [k, v] of entries) env.set(k, overrides[k] ?? v);
  return env;
}

function stageLabel(stage: Stage): string {
  return stage.name ?? `stage-${stage.index}`;
}

/** Reads the Dockerfile and returns every image the build will need. Throws a UsageError naming `file:line`. */
export function analyzeDockerfile(text: string, opts: AnalyzeOptions): DockerfileNeeds {
  const fail = (message: string, line: number): never => {
    throw new UsageError(`${opts.file}:${line}: ${message}`, { hint: 'fix the Dockerfile (BuildKit would reject it the same way)' });
  };
  let parsed: Lines;
  let stages: Stage[];
  let metaArgs: MetaArg[];
  try {
    parsed = parseLines(text);
    ({ stages, metaArgs } = parseStages(parsed.nodes));
  } catch (e) {
    if (e instanceof ParseFailure) return fail(e.message, Math.max(e.line, 1));
    throw e;
  }
  if (stages.length === 0) return fail('dockerfile contains no stages to build', parsed.nodes[0]?.startLine ?? 1);

  const buildPlatform = normalizePlatform(opts.buildPlatform ?? hostPlatform());
  const targets = (opts.platforms ?? []).length > 0 ? [...new Set(opts.platforms!.map((p) => normalizePlatform(p)))] : [buildPlatform];
  const userContexts = new Map<string, string>();
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    let key = name;
    try {
      key = buildContextName(name);
    } catch {
      // buildx rejects such a name; it cannot match anything here either
    }
    userContexts.set(key, value);
  }
  const contextFor = (name: string, platform: string): string | undefined => {
    let key: string;
    try {
      key = buildContextName(name);
    } catch {
      return undefined;
    }
    return userContexts.get(`${key}::${platform}`) ?? userContexts.get(key);
  };

  let targetStage: Stage;
  if (opts.target) {
    const t = stages.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) {
      const names = stages.flatMap((s) => (s.name ? [s.name] : []));
      throw new UsageError(`${opts.file}: target stage "${opts.target}" could not be found`, {
        hint: names.length ? `stages: ${names.join(', ')}` : 'the Dockerfile has no named stages',
      });
    }
    targetStage = t;
  } else {
    targetStage = stages[stages.length - 1]!;
  }
  const targetName = opts.target ? targetStage.name! : (stages[stages.length - 1]!.name ?? '');

  const images = new Map<string, NeededImage>();
  const overridden = new Map<string, OverriddenName>();
  const addImage = (name: string, use: ImageUse): void => {
    const hit = contextFor(name, use.platform);
    if (hit !== undefined) {
      const contextName = buildContextName(name);
      overridden.set(contextName, { name, contextName, by: hit });
      return;
    }
    let ref: string;
    try {
      ref = normalizeImageName(name);
    } catch (e) {
      return fail(`failed to parse stage name "${name}": ${(e as Error).message}`, use.line);
    }
    let entry = images.get(ref);
    if (!entry) {
      entry = { ref, name, contextName: buildContextName(name), platforms: [], uses: [] };
      images.set(ref, entry);
    }
    if (!entry.platforms.includes(use.platform)) entry.platforms.push(use.platform);
    if (!entry.uses.some((u) => u.kind === use.kind && u.line === use.line && u.platform === use.platform)) entry.uses.push(use);
  };

  // `# syntax=` (or BUILDKIT_SYNTAX) names the frontend image; BuildKit looks it up as a named
  // context too (BK `frontend/gateway/gateway.go`), on the builder's own platform.
  let syntax: string | undefined;
  const syntaxArg = opts.buildArgs.BUILDKIT_SYNTAX;
  const syntaxDirective = detectSyntax(text);
  if (syntaxArg !== undefined && syntaxArg.trim()) {
    syntax = syntaxArg.trim().split(' ')[0]!;
  } else if (syntaxDirective) {
    syntax = syntaxDirective.ref;
  }
  if (syntax && syntax !== 'dockerfile.v0') {
    addImage(syntax, { kind: 'syntax', line: syntaxArg ? 0 : syntaxDirective!.line, written: syntax, platform: buildPlatform });
  }

  for (const targetPlatform of targets) {
    // Global scope: platform args, then ARGs before the first FROM, build args overriding defaults.
    const env = platformArgs(buildPlatform, targetPlatform, opts.buildArgs, targetName);
    for (const arg of metaArgs) {
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(opts.buildArgs, arg.key)) value = opts.buildArgs[arg.key];
      else if (arg.value !== undefined) {
        try {
          value = expandWord(arg.value, env, parsed.escapeToken);
        } catch (e) {
          return fail((e as Error).message, arg.line);
        }
      }
      if (value !== undefined) env.set(arg.key, value);
    }

    // Resolve each stage's base and platform; a base names an earlier stage only by its exact
    // (lower-case) name (convert.go addState keys stages by name, looked up by BaseName as is).
    const resolved: { base: string; baseStage?: Stage; platform?: string; replacedBy?: string }[] = [];
    const byName = new Map<string, Stage>();
    for (const stage of stages) {
      let base: string;
      let platform: string | undefined;
      try {
        base = expandWord(stage.base, env, parsed.escapeToken);
        if (stage.platform !== undefined) {
          const p = expandWord(stage.platform, env, parsed.escapeToken);
          if (!p) return fail(`empty platform value from expression ${stage.platform}`, stage.line);
          platform = normalizePlatform(p);
        }
      } catch (e) {
        if (e instanceof UsageError) throw e;
        if (e instanceof LexError) return fail(e.message, stage.line);
        return fail(`failed to parse platform ${stage.platform}: ${(e as Error).message}`, stage.line);
      }
      if (!base) return fail(`base name (${stage.base}) should not be blank`, stage.line);
      const entry: (typeof resolved)[number] = { base };
      if (platform) entry.platform = platform;
      const baseStage = byName.get(base);
      if (baseStage) entry.baseStage = baseStage;
      if (stage.name) {
        const hit = contextFor(stage.name, platform ?? targetPlatform);
        if (hit !== undefined) entry.replacedBy = hit;
      }
      resolved.push(entry);
      if (stage.name) byName.set(stage.name, stage);
    }

    // Walk from the target through bases, COPY --from and RUN --mount=from.
    const seen = new Set<number>();
    const queue: Stage[] = [targetStage];
    while (queue.length > 0) {
      const stage = queue.shift()!;
      if (seen.has(stage.index)) continue;
      seen.add(stage.index);
      const r = resolved[stage.index]!;
      const label = stageLabel(stage);
      if (r.replacedBy !== undefined) {
        const contextName = buildContextName(stage.name!);
        overridden.set(contextName, { name: stage.name!, contextName, by: r.replacedBy });
        continue;
      }
      const stagePlatform = r.platform ?? targetPlatform;
      const sources = [...stage.sources];
      if (r.baseStage) {
        queue.push(r.baseStage);
        sources.push(...r.baseStage.onbuildSources);
      } else if (r.base !== 'scratch') {
        addImage(r.base, { kind: 'from', line: stage.line, written: stage.base, platform: stagePlatform, stage: label });
      }
      for (const src of sources) {
        const byStage = stages.find((s) => s.name !== undefined && s.name === src.from.toLowerCase());
        if (byStage) {
          if (byStage.index >= stage.index) {
            return src.kind === 'copy-from'
              ? fail(`cannot copy from stage "${src.from}", it needs to be defined before current stage "${label}"`, src.line)
              : fail(`cannot mount from stage "${src.from}", stage needs to be defined before current command`, src.line);
          }
          queue.push(byStage);
          continue;
        }
        if (src.kind === 'copy-from' && /^\d+$/.test(src.from)) {
          const idx = Number(src.from);
          if (idx >= stages.length) return fail(`invalid stage index ${idx}`, src.line);
          if (idx >= stage.index) return fail(`cannot copy from stage "${src.from}", it needs to be defined before current stage "${label}"`, src.line);
          queue.push(stages[idx]!);
          continue;
        }
        if (src.from === 'scratch') continue;
        // An image used by COPY --from / --mount has no platform of its own: the target's applies.
        addImage(src.from, { kind: src.kind, line: src.line, written: src.from, platform: targetPlatform, stage: label });
      }
    }
  }

  const needs: DockerfileNeeds = {
    file: opts.file,
    escapeToken: parsed.escapeToken,
    stages: stages.map((s) => ({ index: s.index, ...(s.name ? { name: s.name } : {}), line: s.line, base: s.base, ...(s.platform !== undefined ? { platform: s.platform } : {}) })),
    target: stageLabel(targetStage),
    platforms: targets,
    // Report in Dockerfile order (the walk above goes from the target backwards).
    images: [...images.values()].sort((a, b) => firstLine(a) - firstLine(b)),
    overridden: [...overridden.values()],
  };
  if (syntax) needs.syntax = syntax;
  return needs;
}

function firstLine(image: NeededImage): number {
  return Math.min(...image.uses.map((u) => u.line));
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
