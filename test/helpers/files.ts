// Walking a directory for the "no secret left anywhere" checks.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every regular file under `dir` (symlinks not followed); none when `dir` does not exist. */
export function everyFile(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = lstatSync(p);
    if (s.isDirectory()) out.push(...everyFile(p));
    else if (s.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dirs` that hold `secret` in clear or as docker's base64 `user:secret`. */
export function filesHolding(dirs: string[], user: string, secret: string): string[] {
  const forms = [secret, Buffer.from(`${user}:${secret}`).toString('base64')];
  return dirs.flatMap(everyFile).filter((f) => {
    const text = readFileSync(f).toString('latin1');
    return forms.some((s) => text.includes(s));
  });
}
