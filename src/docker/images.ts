// Facts about images in the daemon's local store, for the driver decision (issue 4), and
// `docker save`.
//
// `docker image inspect A B C` prints a JSON array of the images it found, in argument order, and
// one stderr line per missing one, exiting 1 when any is missing. Observed wording:
//   CLI 28.2.2 (dockerd 20.10): `Error response from daemon: no such image: B: No such image: B:latest`
//   CLI 20.10.24:               `Error: No such image: B`
// so one call answers for every reference; when stderr cannot be matched to the arguments, each
// reference is inspected on its own instead of guessing.
import { check, type DockerRunner } from './runner.js';
import { parseImageRef } from '../registry/reference.js';

export interface LocalImageFact {
  present: boolean;
  /** Present, and no RepoDigests entry for this reference's repository: never pulled or pushed. */
  localOnly: boolean;
  /** Image ID (`sha256:…`). */
  id?: string;
  repoDigests: string[];
  /** `os/arch[/variant]` from the image config. */
  platform?: string;
}

interface InspectEntry {
  Id?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Os?: string;
  Architecture?: string;
  Variant?: string;
}

const MISSING = /^(?:Error response from daemon: |Error: )?no such image: (.*?)(?:: No such image: .*)?$/i;

/** `registry/repository` a reference names (normalised); undefined for an image ID. */
export function repositoryOf(ref: string): string | undefined {
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(ref)) return undefined; // an image ID names no repository
  try {
    const r = parseImageRef(ref);
    return `${r.registry}/${r.repository}`;
  } catch {
    return undefined;
  }
}

/** Local-only: the store has no digest from a registry for the repository this reference names. */
export function isLocalOnly(ref: string, repoDigests: string[]): boolean {
  const repo = repositoryOf(ref);
  if (repo === undefined) return repoDigests.length === 0;
  return !repoDigests.some((d) => repositoryOf(d.slice(0, d.lastIndexOf('@') < 0 ? d.length : d.lastIndexOf('@'))) === repo);
}

function fact(ref: string, e: InspectEntry): LocalImageFact {
  const repoDigests = e.RepoDigests ?? [];
  const f: LocalImageFact = { present: true, localOnly: isLocalOnly(ref, repoDigests), repoDigests };
  if (e.Id) f.id = e.Id;
  if (e.Os && e.Architecture) f.platform = `${e.Os}/${e.Architecture}${e.Variant ? `/${e.Variant}` : ''}`;
  return f;
}

const absent = (): LocalImageFact => ({ present: false, localOnly: false, repoDigests: [] });

function parseArray(stdout: string): InspectEntry[] | undefined {
  try {
    const v: unknown = JSON.parse(stdout || '[]');
    return Array.isArray(v) ? (v as InspectEntry[]) : undefined;
  } catch {
    return undefined;
  }
}

/** What the daemon's store knows about each reference, keyed by the reference as given. */
export async function inspectLocalImages(runner: DockerRunner, refs: string[]): Promise<Map<string, LocalImageFact>> {
  const out = new Map<string, LocalImageFact>();
  const unique = [...new Set(refs)];
  if (unique.length === 0) return out;
  const r = await runner.run(['image', 'inspect', ...unique]);
  const entries = parseArray(r.stdout);
  const errLines = r.stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const missing = new Set<string>();
  let understood = entries !== undefined;
  for (const line of errLines) {
    const m = MISSING.exec(line);
    if (m && unique.includes(m[1]!)) missing.add(m[1]!);
    else understood = false;
  }
  if (r.exitCode !== 0 && missing.size === 0) understood = false;
  const found = unique.filter((ref) => !missing.has(ref));
  if (understood && entries!.length === found.length) {
    found.forEach((ref, i) => out.set(ref, fact(ref, entries![i]!)));
    for (const ref of missing) out.set(ref, absent());
    return out;
  }
  // Could not tell which answer belongs to which reference: ask one at a time.
  for (const ref of unique) {
    const one = await runner.run(['image', 'inspect', ref]);
    const e = parseArray(one.stdout);
    if (one.exitCode === 0 && e?.[0]) out.set(ref, fact(ref, e[0]));
    else if (one.stderr.split(/\r?\n/).some((l) => MISSING.test(l.trim()))) out.set(ref, absent());
    else check(one, `docker image inspect ${ref}`, 'is the docker daemon reachable? run buildx-bootstrap doctor');
  }
  return out;
}

/** `docker save -o FILE REF`; throws a DockerError with docker's reason. */
export async function saveImage(runner: DockerRunner, ref: string, file: string): Promise<void> {
  const r = await runner.run(['save', '-o', file, ref]);
  check(r, `docker save ${ref}`, 'check that the image exists locally (docker image ls) and that the target directory is writable');
}
