// The package as `npm pack` would write it, made from the installed package's own files: the CI
// image is built from this tarball (Dockerfile), and `image` must work where npm is absent (inside
// that image) and without running the package's `prepare` script (which needs devDependencies).
//
// Which files: package.json, then each entry of its `files` list (a directory with everything
// under it), minus the `!path` entries — the plain-path subset of npm-packlist's rules this
// package uses; a glob in `files` is refused rather than half-understood. Entries sit under
// `package/` with fixed owner and time, as npm writes them (npm-packlist, pacote's tar options).
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeTar, type TarEntry } from './tar.js';

export interface PackageManifest {
  name: string;
  version: string;
  files: string[];
  gitHead?: string;
  repository?: string | { url?: string };
}

export async function readManifest(root: string): Promise<PackageManifest> {
  const raw = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Partial<PackageManifest>;
  if (typeof raw.name !== 'string' || typeof raw.version !== 'string') throw new Error(`${join(root, 'package.json')} has no name or version`);
  return { ...raw, name: raw.name, version: raw.version, files: Array.isArray(raw.files) ? raw.files.map(String) : [] };
}

/** Names npm never packs, wherever they are (npm-packlist's default ignores that can occur here). */
const NEVER = new Set(['.git', 'node_modules', '.npmrc', '.DS_Store', 'npm-debug.log', 'package-lock.json']);

/** The package's file paths (posix, relative to `root`), sorted. */
export async function packageFiles(root: string, manifest: PackageManifest): Promise<string[]> {
  const include: string[] = [];
  const exclude: string[] = [];
  for (const entry of manifest.files) {
    const negated = entry.startsWith('!');
    const path = posix.normalize((negated ? entry.slice(1) : entry).replace(/^\.?\//, '')).replace(/\/+$/, '');
    if (/[*?[\]{}]/.test(path)) throw new Error(`package.json files entry "${entry}" is a glob; only plain paths are supported`);
    (negated ? exclude : include).push(path);
  }
  const excluded = (rel: string): boolean => exclude.some((e) => rel === e || rel.startsWith(`${e}/`));
  const out = new Set<string>(['package.json']);
  const walk = async (rel: string): Promise<void> => {
    if (excluded(rel) || rel.split('/').some((part) => NEVER.has(part))) return;
    let info;
    try {
      info = await lstat(join(root, rel));
    } catch {
      return; // npm skips a listed path that does not exist
    }
    if (info.isDirectory()) {
      for (const name of await readdir(join(root, rel))) await walk(`${rel}/${name}`);
    } else if (info.isFile()) out.add(rel);
  };
  for (const path of include) await walk(path);
  return [...out].sort();
}

/** `<name>-<version>.tgz` as npm names it (a scope's `@` dropped and `/` turned into `-`). */
export function tarballName(manifest: Pick<PackageManifest, 'name' | 'version'>): string {
  return `${manifest.name.replace(/^@/, '').replace(/\//g, '-')}-${manifest.version}.tgz`;
}

/** Writes the package tarball into `dir`; returns its file name. */
export async function packPackage(root: string, dir: string, manifest?: PackageManifest): Promise<string> {
  const m = manifest ?? (await readManifest(root));
  const entries: TarEntry[] = [];
  for (const rel of await packageFiles(root, m)) {
    const info = await lstat(join(root, rel));
    // npm keeps only the executable bits of a file's mode: 0755 or 0644.
    entries.push({ name: `package/${rel}`, type: 'file', mode: info.mode & 0o111 ? 0o755 : 0o644, data: await readFile(join(root, rel)) });
  }
  const name = tarballName(m);
  await writeFile(join(dir, name), gzipSync(writeTar(entries), { level: 9 }));
  return name;
}
