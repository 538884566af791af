// Word expansion as BuildKit's Dockerfile frontend does it for FROM names and platforms
// (BK `frontend/dockerfile/shell/lex.go`, `ProcessWord`): quotes are removed, the escape token
// escapes the next character, `$VAR` / `${VAR}` expand (unset → empty), with the modifiers
// `${VAR:-w}` `${VAR-w}` `${VAR:+w}` `${VAR+w}` `${VAR:?m}` `${VAR?m}`, prefix/suffix removal
// `${VAR#p}` `${VAR##p}` `${VAR%p}` `${VAR%%p}` and replacement `${VAR/p/r}` `${VAR//p/r}`.
// Written from the documented behaviour and the upstream tests; errors use BuildKit's wording.

export type Env = ReadonlyMap<string, string>;

export class LexError extends Error {}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}
  peek(): string | undefined {
    return this.pos < this.text.length ? this.text[this.pos] : undefined;
  }
  next(): string | undefined {
    return this.pos < this.text.length ? this.text[this.pos++] : undefined;
  }
}

/** Expands one word (FROM base name, `--platform` value, ARG default). Throws LexError. */
export function expandWord(word: string, env: Env, escapeToken = '\\'): string {
  return new Expander(word, env, escapeToken).run(undefined, false);
}

class Expander {
  private readonly s: Scanner;
  constructor(
    text: string,
    private readonly env: Env,
    private readonly escape: string,
  ) {
    this.s = new Scanner(text);
  }

  /** Reads until `stop` (consumed) or the end; `rawEscapes` keeps escape tokens (patterns). */
  run(stop: string | undefined, rawEscapes: boolean): string {
    let out = '';
    for (;;) {
      const ch = this.s.peek();
      if (ch === undefined) break;
      if (stop !== undefined && ch === stop) {
        this.s.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
      } else if (ch === "'") {
        out += this.singleQuote();
      } else if (ch === '"') {
        out += this.doubleQuote();
      } else {
        this.s.next();
        if (ch === this.escape) {
          if (rawEscapes) out += ch;
          const escaped = this.s.next();
          if (escaped === undefined) break;
          out += escaped;
        } else {
          out += ch;
        }
      }
    }
    if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
    return out;
  }

  private singleQuote(): string {
    this.s.next();
    let out = '';
    for (;;) {
      const ch = this.s.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  private doubleQuote(): string {
    this.s.next();
    let out = '';
    for (;;) {
      const ch = this.s.peek();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.s.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.s.next();
      if (ch === this.escape) {
        const nx = this.s.peek();
        if (nx === undefined) continue;
        if (nx === '"' || nx === '$' || nx === this.escape) {
          out += this.s.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    const first = this.s.peek();
    if (first !== undefined && /[0-9]/.test(first)) {
      while (this.s.peek() !== undefined && /[0-9]/.test(this.s.peek()!)) name += this.s.next();
      return name;
    }
    if (first !== undefined && SPECIAL_PARAMS.has(first)) return this.s.next()!;
    for (;;) {
      const ch = this.s.peek();
      if (ch === undefined || !/[\p{L}\p{N}_]/u.test(ch)) return name;
      name += this.s.next();
    }
  }

  private lookup(name: string): string | undefined {
    return this.env.get(name);
  }

  private dollar(): string {
    this.s.next(); // $
    if (this.s.peek() !== '{') {
      const name = this.name();
      if (!name) return '$';
      return this.lookup(name) ?? '';
    }
    this.s.next(); // {
    const first = this.s.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.name();
    let ch = this.s.next();
    if (ch === undefined) throw new LexError("syntax error: missing '}'");
    if (ch === '}') return this.lookup(name) ?? '';
    if (ch === '/') return this.replace(name);
    let mod = ch;
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.s.next();
      if (ch === undefined) throw new LexError("syntax error: missing '}'");
      mod += ch;
    }
    if (!['+', '-', '?', '#', '%'].includes(ch)) throw new LexError(`unsupported modifier (${mod}) in substitution`);
    const isPattern = ch === '#' || ch === '%';
    if (nullIsUnset && isPattern) throw new LexError(`unsupported modifier (${mod}) in substitution`);
    let word: string;
    try {
      word = this.run('}', isPattern);
    } catch (e) {
      if (this.s.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
    const value = this.lookup(name);
    const set = value !== undefined;
    const empty = !set || (nullIsUnset && value === '');
    switch (ch) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (!set) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        let greedy = false;
        let pattern = word;
        if (pattern.startsWith(ch)) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === '#' ? trimPrefix(value ?? '', pattern, greedy) : trimSuffix(value ?? '', pattern, greedy);
      }
    }
  }

  private replace(name: string): string {
    const all = this.s.peek() === '/';
    if (all) this.s.next();
    let pattern: string;
    let replacement: string;
    try {
      pattern = this.run('/', true);
    } catch (e) {
      if (this.s.peek() === undefined) throw new LexError("syntax error: missing '/' in ${}");
      throw e;
    }
    try {
      replacement = this.run('}', true);
    } catch (e) {
      if (this.s.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
    const value = this.lookup(name) ?? '';
    // Leftmost longest match of the pattern; the first one only unless `//`.
    return value.replace(patternRegExp(pattern, true, all ? 'g' : ''), () => replacement);
  }
}

/** Shell pattern (`*`, `?`, backslash escapes; no bracket expressions, as upstream) to a RegExp body. */
function patternSource(pattern: string, greedy: boolean): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') out += greedy ? '[\\s\\S]*' : '[\\s\\S]*?';
    else if (ch === '?') out += '[\\s\\S]';
    else if (ch === '\\') {
      const nx = pattern[i + 1];
      if (nx === '}' || nx === '/') continue;
      if (nx !== '*' && nx !== '?' && nx !== '\\') throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${nx ?? ''}'`);
      out += `\\${nx}`;
      i++;
    } else out += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return out;
}

function patternRegExp(pattern: string, greedy: boolean, flags = ''): RegExp {
  return new RegExp(patternSource(pattern, greedy), flags);
}

function fullMatch(pattern: string, text: string): boolean {
  return new RegExp(`^(?:${patternSource(pattern, true)})$`).test(text);
}

/** `${v#p}` shortest / `${v##p}` longest prefix matching p removed. */
function trimPrefix(value: string, pattern: string, greedy: boolean): string {
  if (greedy) {
    for (let j = value.length; j >= 0; j--) if (fullMatch(pattern, value.slice(0, j))) return value.slice(j);
  } else {
    for (let j = 0; j <= value.length; j++) if (fullMatch(pattern, value.slice(0, j))) return value.slice(j);
  }
  return value;
}

/** `${v%p}` shortest / `${v%%p}` longest suffix matching p removed. */
function trimSuffix(value: string, pattern: string, greedy: boolean): string {
  if (greedy) {
    for (let i = 0; i <= value.length; i++) if (fullMatch(pattern, value.slice(i))) return value.slice(0, i);
  } else {
    for (let i = value.length; i >= 0; i--) if (fullMatch(pattern, value.slice(i))) return value.slice(0, i);
  }
  return value;
}
