// Parsers for the registry response headers the client acts on: `WWW-Authenticate` challenges
// (RFC 9110 §11.6.1; DIST@v2.8.2 docs/spec/auth/token.md), `Link` pagination (RFC 8288; OCI
// distribution-spec "Listing Tags") and Docker Hub's rate-limit headers. Pure functions.
import type { RateLimit } from './types.js';

export interface Challenge {
  /** Lower-cased auth scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Parameter names lower-cased, values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * All challenges in a `WWW-Authenticate` value (node joins repeated headers with ", "), e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:moby/buildkit:pull"`.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const challenges: Challenge[] = [];
  let pos = 0;
  const skip = (chars: RegExp): void => {
    while (pos < text.length && chars.test(text[pos]!)) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < text.length && TOKEN_CHAR.test(text[pos]!)) pos++;
    return text.slice(start, pos);
  };
  const readValue = (): string => {
    if (text[pos] !== '"') {
      const start = pos;
      while (pos < text.length && !/[\s,]/.test(text[pos]!)) pos++;
      return text.slice(start, pos);
    }
    pos++;
    let value = '';
    while (pos < text.length && text[pos] !== '"') {
      if (text[pos] === '\\' && pos + 1 < text.length) pos++;
      value += text[pos];
      pos++;
    }
    pos++; // closing quote
    return value;
  };

  while (pos < text.length) {
    skip(/[\s,]/);
    const scheme = readToken();
    if (!scheme) {
      pos++; // not a token character: skip it rather than loop forever on garbage
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      const save = pos;
      skip(/[\s,]/);
      const name = readToken();
      skip(/[ \t]/);
      if (!name || text[pos] !== '=') {
        // Either the next challenge's scheme or a token68 value: leave it for the outer loop
        // (a token68 then parses as a parameterless pseudo-challenge, which nobody asks for).
        pos = save;
        break;
      }
      pos++;
      skip(/[ \t]/);
      challenge.params[name.toLowerCase()] = readValue();
    }
  }
  return challenges;
}

/**
 * The `rel="next"` target of a `Link` header, resolved against the request URL; undefined when
 * there is none. Distribution v3 sends `</v2/<name>/tags/list?last=…&n=…>; rel="next"`.
 */
export function parseLinkNext(header: string | string[] | undefined, base: URL | string): URL | undefined {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const link = /<([^>]*)>((?:\s*;\s*[^;,<]+)*)/g;
  for (const m of text.matchAll(link)) {
    const params = m[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) {
      try {
        return new URL(m[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** `100;w=21600` → `{ value: 100, window: 21600 }`. */
function parseQuota(value: string | string[] | undefined): { value: number; window?: number } | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(text ?? '');
  if (!m) return undefined;
  return m[2] ? { value: Number(m[1]), window: Number(m[2]) } : { value: Number(m[1]) };
}

/**
 * Docker Hub's pull quota headers (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining`,
 * `docker-ratelimit-source`); undefined when the registry sends none.
 */
export function parseRateLimit(headers: Record<string, string | string[] | undefined>): RateLimit | undefined {
  const limit = parseQuota(headers['ratelimit-limit']);
  const remaining = parseQuota(headers['ratelimit-remaining']);
  const sourceHeader = headers['docker-ratelimit-source'];
  const source = Array.isArray(sourceHeader) ? sourceHeader[0] : sourceHeader;
  if (!limit && !remaining && !source) return undefined;
  const rateLimit: RateLimit = {};
  if (limit) rateLimit.limit = limit.value;
  if (remaining) rateLimit.remaining = remaining.value;
  const window = limit?.window ?? remaining?.window;
  if (window !== undefined) rateLimit.windowSeconds = window;
  if (source) rateLimit.source = source;
  return rateLimit;
}

/** `application/vnd.oci.image.index.v1+json; charset=utf-8` → the bare media type. */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}
