// Rendering of the doctor's checks (pure): aligned text lines, or `--json`.
import type { DoctorCheck } from './checks.js';

const VERDICT_WIDTH = 6;
const CHECK_WIDTH = 14;

/**
 * One line per check: `verdict  check  detail`, columns aligned, e.g.
 * `ok    docker        20.10.24+dfsg1 (linux/amd64) at unix:///run/docker.sock`.
 * With `json`, an array of {check, verdict, detail}.
 */
export function renderDoctorReport(checks: readonly DoctorCheck[], opts: { json?: boolean } = {}): string {
  if (opts.json) return `${JSON.stringify(checks.map(({ check, verdict, detail }) => ({ check, verdict, detail })), null, 2)}\n`;
  return checks.map((c) => `${c.verdict.padEnd(VERDICT_WIDTH)}${c.check.padEnd(CHECK_WIDTH)}${oneLine(c.detail)}\n`).join('');
}

/** `3 ok, 1 warning, 1 failure, 2 skipped`, for stderr. */
export function summarizeDoctor(checks: readonly DoctorCheck[]): string {
  const count = (v: DoctorCheck['verdict']): number => checks.filter((c) => c.verdict === v).length;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [`${count('ok')} ok`, plural(count('warn'), 'warning'), plural(count('fail'), 'failure'), `${count('skip')} skipped`].join(', ');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
