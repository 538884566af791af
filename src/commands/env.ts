// `env`: the per-run docker config of prefix mode for a job whose build runs in its own step.
// `eval "$(buildx-bootstrap env)"` exports DOCKER_CONFIG (and BUILDX_CONFIG, and PATH when our
// credential helper is needed) so the job's own `docker buildx build` hands BuildKit the
// credentials we know; `buildx-bootstrap env --remove` (after_script) deletes the directory and
// every secret in it. In GitLab CI the directory is `$TMPDIR/buildx-bootstrap-auth-job-$CI_JOB_ID`,
// so after_script finds it without the variables the script exported.
import { rm } from 'node:fs/promises';
import type { CommandContext } from '../context.js';
import { makeRegistryAuth } from '../builder/pipeline.js';
import { isOwnAuthDir, jobAuthDir } from '../docker/registry-auth.js';

/** `export NAME='value'` lines for a POSIX shell. */
export function exportLines(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`)
    .join('\n');
}

export async function run(ctx: CommandContext): Promise<number> {
  const env = ctx.io.env;
  const job = jobAuthDir(env);
  if (ctx.args.remove) {
    const dirs = [job, env.DOCKER_CONFIG].filter((d): d is string => !!d && isOwnAuthDir(d));
    for (const d of new Set(dirs)) {
      await rm(d, { recursive: true, force: true });
      ctx.log.info(`removed ${d}`);
    }
    return 0;
  }
  const { config } = await ctx.loadConfig();
  const auth = await makeRegistryAuth(ctx, config, job);
  let vars: Record<string, string>;
  try {
    vars = await auth.childEnv();
  } catch (error) {
    await auth.dispose();
    throw error;
  }
  if (!job) ctx.log.warn(`${vars.DOCKER_CONFIG} holds credentials until \`buildx-bootstrap env --remove\` runs (with DOCKER_CONFIG still exported)`);
  for (const r of await auth.report()) {
    ctx.log.info(`${r.host}: ${r.source ? `credentials from ${r.source}${r.handedOver ? '' : ' (read by docker itself)'}` : 'no credentials (anonymous pulls)'}`);
  }
  ctx.result(exportLines(vars));
  return 0;
}
