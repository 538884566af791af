// One line, with `(line:column)`, for a JSON.parse failure in a file the user owns (config file,
// lockfile). V8 says `… in JSON at position N` for most errors, but for an unexpected token it
// quotes a snippet of the text instead (`Unexpected token ',', ..."…"... is not valid JSON`), raw
// newlines and control characters included: the snippet is located in the text, and the message
// is cut to its first clause, so it is never more than one line.
import { escapeControl } from '../errors.js';

export function describeJsonError(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  let position: number | undefined;
  const at = /position (\d+)/.exec(message);
  if (at) position = Number(at[1]);
  else if (/^Unexpected end of JSON input/.test(message)) position = text.length;
  else {
    const quoted = /^Unexpected token '([\s\S]*?)', (\.\.\.)?"([\s\S]*)"(\.\.\.)? is not valid JSON$/.exec(message);
    if (quoted) {
      const leading = quoted[2] !== undefined;
      const snippet = quoted[3]!;
      const index = text.indexOf(snippet);
      // V8 quotes 10 characters either side of the error (fewer at the start of the text).
      if (index >= 0) position = leading ? index + 10 : index + Math.max(0, snippet.indexOf(quoted[1]!));
    }
  }
  const head = message.replace(/ in JSON at position \d+.*$/s, '').replace(/, (\.\.\.)?"[\s\S]*"(\.\.\.)? is not valid JSON$/, '');
  const printable = escapeControl(head);
  if (position === undefined) return printable;
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `${printable} (${line}:${column})`;
}
