// How buildx re-serialises a --buildkitd-config before storing it in the instance (facts §1.5):
// buildx >= v0.32 marshals a generic map with go-toml v2 (BX util/confutil/container.go, commit
// a5b712b27); older versions write the go-toml v1 tree (Tree.WriteTo, 2-space indents).
// Parsing uses smol-toml; the parse error text is smol-toml's, not go-toml's.
import { parse, TomlDate } from 'smol-toml';

export function parseToml(text) {
  return parse(text);
}

const isTable = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof TomlDate) && !(v instanceof Date);
const isArrayOfTables = (v) => Array.isArray(v) && v.length > 0 && v.every(isTable);
const BARE = /^[A-Za-z0-9_-]+$/;

// ---- go-toml v2 (pelletier/go-toml/v2 marshaler.go) ----

function v2Key(k) {
  if (BARE.test(k)) return k;
  if (!/['\r\n]/.test(k) && !/[\x00-\x08\x0a-\x1f\x7f]/.test(k)) return `'${k}'`;
  return JSON.stringify(k);
}

function v2String(s) {
  if (/['\r\n]/.test(s) || /[\x00-\x08\x0a-\x1f\x7f]/.test(s)) return JSON.stringify(s);
  return `'${s}'`;
}

function v2Value(v) {
  if (typeof v === 'string') return v2String(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : goFloat(v);
  if (v instanceof TomlDate || v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map(v2Value).join(', ')}]`;
  if (isTable(v)) return `{${Object.keys(v).sort().map((k) => `${v2Key(k)} = ${v2Value(v[k])}`).join(', ')}}`;
  return String(v);
}

function goFloat(n) {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  const s = String(n);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

export function marshalV2(doc) {
  let out = '';
  const table = (obj, path, header) => {
    const keys = Object.keys(obj).sort();
    const kvs = keys.filter((k) => !isTable(obj[k]) && !isArrayOfTables(obj[k]));
    const subs = keys.filter((k) => isTable(obj[k]) || isArrayOfTables(obj[k]));
    if (header) out += header;
    for (const k of kvs) out += `${v2Key(k)} = ${v2Value(obj[k])}\n`;
    subs.forEach((k, i) => {
      if (i > 0 || kvs.length > 0) out += '\n';
      const p = [...path, v2Key(k)];
      const v = obj[k];
      if (isTable(v)) table(v, p, `[${p.join('.')}]\n`);
      else
        v.forEach((el, j) => {
          if (j > 0) out += '\n';
          table(el, p, `[[${p.join('.')}]]\n`);
        });
    });
  };
  table(doc, [], '');
  return out;
}

// ---- go-toml v1 (pelletier/go-toml tomltree_write.go, OrderAlphabetical, indent "  ") ----

function v1Key(k) {
  return BARE.test(k) ? k : JSON.stringify(k);
}

function v1Value(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : goFloat(v);
  if (v instanceof TomlDate || v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map(v1Value).join(', ')}]`;
  if (isTable(v)) return `{ ${Object.keys(v).sort().map((k) => `${v1Key(k)} = ${v1Value(v[k])}`).join(', ')} }`;
  return String(v);
}

export function marshalV1(doc) {
  let out = '';
  const write = (obj, indent, keyspace) => {
    const keys = Object.keys(obj).sort();
    const simple = keys.filter((k) => !isTable(obj[k]) && !isArrayOfTables(obj[k]));
    const complex = keys.filter((k) => isTable(obj[k]) || isArrayOfTables(obj[k]));
    for (const k of simple) out += `${indent}${v1Key(k)} = ${v1Value(obj[k])}\n`;
    for (const k of complex) {
      const combined = keyspace ? `${keyspace}.${v1Key(k)}` : v1Key(k);
      const v = obj[k];
      if (isTable(v)) {
        out += `\n${indent}[${combined}]\n`;
        write(v, indent + '  ', combined);
      } else {
        for (const el of v) {
          out += `\n${indent}[[${combined}]]\n`;
          write(el, indent + '  ', combined);
        }
      }
    }
  };
  write(doc, '', '');
  return out;
}
