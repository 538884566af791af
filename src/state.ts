// Where buildx-bootstrap keeps what it generates: next to buildx's own store, so a job that
// caches ~/.docker keeps both. `$BUILDX_BOOTSTRAP_STATE_DIR` overrides.
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { crypto } from './lazy.cjs';

export function dockerConfigDir(env: Record<string, string | undefined>): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

export function stateDir(env: Record<string, string | undefined>): string {
  return env.BUILDX_BOOTSTRAP_STATE_DIR || join(dockerConfigDir(env), 'buildx-bootstrap');
}

/** Directory of one builder's generated files (buildkitd.toml, state.json). */
export function builderDir(env: Record<string, string | undefined>, name: string): string {
  return join(stateDir(env), 'builders', name);
}

export function sha256(text: string): string {
  return crypto().createHash('sha256').update(text).digest('hex');
}

export function shortHash(text: string, length = 12): string {
  return sha256(text).slice(0, length);
}

/** Writes a file atomically: a temp file in the same directory, then rename. */
export async function writeFileAtomic(file: string, content: string | Buffer, mode?: number): Promise<void> {
  // Loaded here: node:fs/promises (and the readline code it pulls in) is start-up cost for every
  // command that only reads.
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');
  await mkdir(dirname(file), { recursive: true });
  // Hidden, unique per writer: parallel runs never share a temp file, and a reader never sees one.
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${crypto().randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, content, mode === undefined ? {} : { mode });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
