// One CSV record as Go's encoding/csv reads it: what buildx uses for --cache-to/--output/
// --build-context values and BuildKit for RUN --mount options.

/** CSV fields as `encoding/csv` reads one record (double quotes, `""` inside quotes). */
export function csvFields(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let atFieldStart = true;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cur += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        cur += ch;
      }
      continue;
    }
    if (ch === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
      continue;
    }
    if (ch === ',') {
      out.push(cur);
      cur = '';
      atFieldStart = true;
      continue;
    }
    cur += ch;
    atFieldStart = false;
  }
  if (quoted) throw new Error(`unterminated quote in "${text}"`);
  out.push(cur);
  return out;
}
