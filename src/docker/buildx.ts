// buildx calls over the docker runner: one small function per buildx command; argv comes from the
// pure builders in buildx-args.ts, output goes through the parsers in parse.ts.
import { semver } from '../lazy.cjs';
import { DockerError } from '../errors.js';
import { buildInspectArgs, buildRmArgs } from './buildx-args.js';
import { parseBuildxVersion, parseInspect, type BuilderInfo } from './parse.js';
import { check, lastStderrLine, transcript, type DockerRunner } from './runner.js';

/** Oldest buildx we drive: `--bootstrap` on create and `--buildkitd-flags` parsing as today. */
export const MIN_BUILDX = '0.10.0';

export interface BuildxFacts {
  /** `0.19.3` */
  version: string;
  raw: string;
}

const MISSING = /unknown command: docker buildx|'buildx' is not a docker command|is not a docker command/;

export async function detectBuildx(runner: DockerRunner, signal?: AbortSignal): Promise<BuildxFacts> {
  const r = await runner.run(['buildx', 'version'], { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) {
    if (MISSING.test(r.stderr)) {
      throw new DockerError('docker buildx is not installed', {
        hint: 'install the docker-buildx-plugin package, or put the docker-buildx binary in ~/.docker/cli-plugins/',
        transcript: transcript(r),
      });
    }
    throw new DockerError(`docker buildx version failed: ${lastStderrLine(r)}`, { hint: 'check the buildx plugin installation', transcript: transcript(r) });
  }
  let parsed: { version: string; raw: string };
  try {
    parsed = parseBuildxVersion(r.stdout);
  } catch (e) {
    throw new DockerError(`cannot read the buildx version: ${(e as Error).message}`, { hint: 'check the buildx plugin installation', transcript: transcript(r) });
  }
  const coerced = semver().coerce(parsed.version)?.version;
  if (coerced && coerced !== '0.0.0' && semver().lt(coerced, MIN_BUILDX)) {
    throw new DockerError(`buildx ${parsed.version} is too old (buildx-bootstrap needs ${MIN_BUILDX} or later)`, {
      hint: 'upgrade the docker-buildx-plugin package or the buildx binary in ~/.docker/cli-plugins/',
    });
  }
  return { version: coerced ?? parsed.version, raw: parsed.raw };
}

/** `buildx inspect NAME`; undefined when there is no such builder. */
export async function inspectBuilder(
  runner: DockerRunner,
  name: string,
  opts: { bootstrap?: boolean; timeoutMs?: number; signal?: AbortSignal | undefined; onStderrLine?: (line: string) => void } = {},
): Promise<BuilderInfo | undefined> {
  const r = await runner.run(buildInspectArgs(name, { bootstrap: opts.bootstrap ?? false }), {
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onStderrLine ? { onStderrLine: opts.onStderrLine } : {}),
  });
  if (r.exitCode !== 0) {
    if (/no builder .* found/.test(r.stderr)) return undefined;
    check(r, `docker buildx inspect ${name}${opts.bootstrap ? ' --bootstrap' : ''}`, 'run with --debug for the full buildx output');
  }
  return parseInspect(r.stdout);
}

/** `buildx rm NAME`; a builder that is already gone is fine. */
export async function removeBuilder(runner: DockerRunner, name: string, opts: { keepState?: boolean } = {}): Promise<boolean> {
  const r = await runner.run(buildRmArgs(name, { keepState: opts.keepState ?? false }), { timeoutMs: 120_000 });
  if (r.exitCode === 0) return true;
  if (/no builder .* found/.test(r.stderr)) return false;
  check(r, `docker buildx rm ${name}`, `remove it by hand: docker buildx rm ${name}`);
  return false;
}
