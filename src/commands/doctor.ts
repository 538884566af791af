// `doctor`: one line per check on stdout (`--json`: an array of {check, verdict, detail}) —
// configuration, docker, buildx, the DinD/TLS context, every engine-image candidate (reachable,
// authenticated, serving the tag), Docker Hub pull quota, dockerd vs BuildKit mirrors, lockfile.
//
// Exit code: 0 when no check fails (warnings included); otherwise the code of the first failing
// check in report order: 2 configuration, 1 docker/buildx/context, 3 no registry can serve the
// engine image (or Docker Hub's quota is used up with nothing else to pull from), 4 the lockfile is
// stale or broken, or a registry serves another digest for its tag (a missing lockfile only
// warns). See src/doctor/checks.ts, DOCTOR_EXIT_CODES.
import type { CommandContext } from '../context.js';
import type { LoadedConfig } from '../config/load.js';
import { makeRegistryAuth, makeRunner } from '../builder/pipeline.js';
import { ourBuildersUsage } from '../builder/stale.js';
import { isBxbError } from '../errors.js';
import { createClientFactory } from '../resolve/index.js';
import { doctorExitCode, evaluateDoctor, type Outcome } from '../doctor/checks.js';
import { dockerProbes, gatherDoctorFacts } from '../doctor/facts.js';
import { renderDoctorReport, summarizeDoctor } from '../doctor/report.js';

export async function run(ctx: CommandContext): Promise<number> {
  let loaded: Outcome<LoadedConfig>;
  try {
    loaded = { ok: true, value: await ctx.loadConfig() };
  } catch (error) {
    // A broken configuration is one of the things the doctor reports; the other checks still run.
    if (!isBxbError(error)) throw error;
    loaded = { ok: false, problem: { message: error.message, hint: error.hint } };
  }
  const clients = loaded.ok ? await createClientFactory({ env: ctx.io.env, secrets: ctx.secrets }, loaded.value.config) : undefined;
  ctx.log.info('checking docker, buildx, registries and the lockfile');
  const runner = makeRunner(ctx);
  const facts = await gatherDoctorFacts({
    env: ctx.io.env,
    loaded,
    docker: { ...dockerProbes(runner, ctx.io.signal), ourBuilders: () => ourBuildersUsage(runner, ctx.io.env, ctx.io.signal) },
    clientFor: clients?.clientFor,
    signal: ctx.io.signal,
  });
  // Per mirror, registry and cache host: whether BuildKit will have credentials, and from where.
  const auth = loaded.ok ? await makeRegistryAuth(ctx, loaded.value.config) : undefined;
  if (auth) facts.buildCredentials = await auth.report();
  // Read after probing: credential lookups happen lazily, on the first 401.
  facts.credentialWarnings = [...new Set([...(clients?.warnings() ?? []), ...(auth?.credentials.warnings() ?? [])])];
  const checks = evaluateDoctor(facts);
  ctx.result(renderDoctorReport(checks, { json: ctx.args.json }));
  ctx.log.info(`doctor: ${summarizeDoctor(checks)}`);
  return doctorExitCode(checks);
}
