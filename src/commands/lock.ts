// `lock`: resolve afresh and write the lockfile (path on stderr, reference on stdout).
// `lock --check`: exit 4 when the lockfile is missing, no longer matches the configuration, or
// the registries no longer serve the locked digest for the locked tag; writes nothing.
import type { CommandContext } from '../context.js';
import { ExitCode, FileWriteError, LockMismatchError } from '../errors.js';
import { createClientFactory, preloadRegistryClient, resolveFromConfig } from '../resolve/index.js';
import { engineCandidates, engineImage } from '../resolve/candidates.js';
import { LOCKFILE_VERSION, lockDifferences, readLockfile, writeLockfile, type Lockfile } from '../resolve/lockfile.js';
import { fetchPlatformPins } from '../resolve/platforms.js';
import { resolutionJson } from './resolve.js';

export async function run(ctx: CommandContext): Promise<number> {
  const preload = preloadRegistryClient();
  preload.catch(() => undefined); // a failure surfaces where the client is used
  const { config } = await ctx.loadConfig();
  const deps = { env: ctx.io.env, secrets: ctx.secrets, log: ctx.log, signal: ctx.io.signal };
  const file = config.lockfile;

  if (ctx.args.check) {
    const lock = await readLockfile(file);
    if (!lock) throw new LockMismatchError(`no lockfile at ${file}`, { hint: 'run buildx-bootstrap lock and commit the file' });
    const differences = lockDifferences(lock, config);
    if (differences.length) {
      throw new LockMismatchError(`${file} is stale: ${differences.join('; ')}`, { hint: 'run buildx-bootstrap lock to update it' });
    }
    const resolution = await resolveFromConfig(deps, config, { tag: lock.tag, digest: lock.digest });
    ctx.log.info(`${file} is up to date (${lock.tag} ${lock.digest})`);
    ctx.result(ctx.args.json ? resolutionJson(resolution) : resolution.reference);
    return ExitCode.ok;
  }

  const resolution = await resolveFromConfig(deps, config);
  const image = engineImage(config);
  const lock: Lockfile = {
    lockfileVersion: LOCKFILE_VERSION,
    image: `${image.registry}/${image.repository}`,
    spec: config.buildkit.version.trim(),
    rootless: config.buildkit.rootless,
    tag: resolution.tag,
    digest: resolution.digest,
    source: resolution.source,
  };
  // Per-platform image IDs let a later `docker load` be verified (dockerd 20.10 drops
  // RepoDigests on load). Optional: the pin itself is the digest above.
  const source = engineCandidates(config).find((c) => c.label === resolution.source);
  if (source) {
    try {
      const { clientFor } = await createClientFactory(deps, config);
      const pins = await fetchPlatformPins(clientFor(source), source.repository, resolution.digest, ctx.io.signal);
      if (pins.platforms && Object.keys(pins.platforms).length) lock.platforms = pins.platforms;
      if (pins.config) lock.config = pins.config;
    } catch (error) {
      if (ctx.io.signal?.aborted) throw error;
      ctx.log.warn(`could not read the per-platform manifests from ${source.label} (${(error as Error).message}); the lockfile pins the digest only`);
    }
  }
  try {
    await writeLockfile(file, lock);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (!e.code) throw error;
    // Temp file + rename: the old lockfile is still there, whole.
    throw new FileWriteError(`could not write ${file}: ${e.code} (${e.message})`, { hint: 'free space on that file system or make it writable; the old lockfile was left as it was' });
  }
  ctx.log.info(`wrote ${file}`);
  ctx.result(ctx.args.json ? resolutionJson(resolution) : resolution.reference);
  return ExitCode.ok;
}
