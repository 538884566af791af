// Space taken by builders' state volumes (`buildx_buildkit_<node>_state`, buildx-facts §1.8), from
// `docker system df -v`: its "Local Volumes space usage" table (VOLUME NAME, LINKS, SIZE), the same
// in docker CLI 20.10 and 28. Sizes are docker's go-units HumanSize (decimal: kB, MB, GB).
import type { DockerRunner } from './runner.js';

const UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15 };

/** `1.234MB` / `36 B` → bytes; undefined when not a size. */
export function parseHumanSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kKMGTP]?B)$/.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNITS[m[2]!]!) : undefined;
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(bytes >= size * 100 ? 0 : 1)} ${unit}`;
  }
  return `${bytes} B`;
}

/** Volume name → size in bytes, from the verbose `docker system df` text. */
export function parseVolumeUsage(stdout: string): Map<string, number> {
  const sizes = new Map<string, number>();
  let inVolumes = false;
  for (const line of stdout.split(/\r?\n/)) {
    // Section titles: `Local Volumes space usage:`, `Build cache usage: 0B`, …
    if (/^[A-Z][\w ]* usage:/.test(line)) {
      inVolumes = /^Local Volumes space usage:/.test(line);
      continue;
    }
    if (!inVolumes || !line.trim() || /^VOLUME NAME\s/.test(line)) continue;
    const cols = line.trim().split(/\s{2,}|\t/);
    const name = cols[0];
    const size = parseHumanSize(cols[cols.length - 1] ?? '');
    if (name && size !== undefined) sizes.set(name, size);
  }
  return sizes;
}

export async function volumeUsage(runner: DockerRunner, signal?: AbortSignal): Promise<Map<string, number> | undefined> {
  const r = await runner.run(['system', 'df', '-v'], { timeoutMs: 120_000, ...(signal ? { signal } : {}) });
  return r.exitCode === 0 ? parseVolumeUsage(r.stdout) : undefined;
}
