// `resolve`: print the pinned engine image reference (one line), or with --json the tag, digest,
// source and every candidate tried. Honours a lockfile that matches the configuration.
import type { CommandContext } from '../context.js';
import { ExitCode } from '../errors.js';
import { applicableLock, preloadRegistryClient, resolveFromConfig } from '../resolve/index.js';
import type { Resolution } from '../resolve/probe.js';

export function resolutionJson(r: Resolution): string {
  return JSON.stringify(
    {
      reference: r.reference,
      tag: r.tag,
      digest: r.digest,
      source: r.source,
      candidates: r.candidates.map((c) => ({ label: c.label, outcome: c.outcome, error: c.error ?? null, ms: c.ms })),
    },
    null,
    2,
  );
}

export async function run(ctx: CommandContext): Promise<number> {
  const preload = preloadRegistryClient();
  preload.catch(() => undefined); // a failure surfaces where the client is used
  const { config } = await ctx.loadConfig();
  const lock = await applicableLock(config, ctx.log);
  if (lock) ctx.log.debug(`using ${config.lockfile}: ${lock.tag} ${lock.digest}`);
  const resolution = await resolveFromConfig(
    { env: ctx.io.env, secrets: ctx.secrets, log: ctx.log, signal: ctx.io.signal },
    config,
    lock ? { tag: lock.tag, digest: lock.digest } : undefined,
  );
  ctx.result(ctx.args.json ? resolutionJson(resolution) : resolution.reference);
  return ExitCode.ok;
}
