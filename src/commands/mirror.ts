// `mirror`: copy the engine image and CI images, whole and digest-exact, into the internal
// registry under the mirror mapping. stdout: `source -> target@digest` per image, or --json.
// Exit 3 when a source cannot be read, 1 when the target refuses a push (first failure wins;
// the other images are still copied).
import type { ListrTask } from 'listr2';
import type { CommandContext } from '../context.js';
import { ExitCode } from '../errors.js';
import { runTasks } from '../cli/tasks.js';
import type { CopyResult } from '../mirror/copy.js';
import { jobRunner, planJobs, type JobRunner } from '../mirror/run.js';
import { targetText, type MirrorJob } from '../mirror/sources.js';

interface MirrorState {
  jobs: MirrorJob[];
  runner?: JobRunner;
  results: (CopyResult | undefined)[];
  failures: (unknown | undefined)[];
}

function size(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} kB`;
}

function summary(r: CopyResult): string {
  if (r.upToDate) return 'up to date';
  if (r.dryRun) return 'would copy';
  const b = r.blobs;
  return `${b.copied} blobs copied (${size(r.bytes)}), ${b.mounted} mounted, ${b.skipped} already there`;
}

export async function run(ctx: CommandContext): Promise<number> {
  const { config } = await ctx.loadConfig();
  const deps = { env: ctx.io.env, secrets: ctx.secrets, log: ctx.log, signal: ctx.io.signal };
  const state: MirrorState = { jobs: [], results: [], failures: [] };
  const dryRun = ctx.args.dryRun;
  state.jobs = await planJobs(deps, config, { to: ctx.args.to, images: ctx.args.images });
  if (state.jobs.length === 0) ctx.log.info('nothing to mirror: mirror.engine is false and no images are listed');

  const copy = async (job: MirrorJob, i: number, onProgress?: (r: CopyResult) => void): Promise<CopyResult> => {
    try {
      return (state.results[i] = await state.runner!.run(job, onProgress));
    } catch (error) {
      state.failures[i] = error;
      throw error;
    }
  };
  const copyTask = (job: MirrorJob, i: number): ListrTask<MirrorState> => ({
    title: `${job.source} -> ${targetText(job)}`,
    task: async (_s, task) => {
      const result = await copy(job, i, (r) => {
        const b = r.blobs;
        task.output = `${b.copied + b.mounted + b.skipped} blobs (${b.copied} copied, ${b.mounted} mounted, ${b.skipped} there), ${size(r.bytes)}`;
      });
      task.title = `${job.source} -> ${targetText(job)}: ${summary(result)}`;
    },
  });

  try {
    state.runner = await jobRunner(deps, state.jobs, { dryRun });
    if (ctx.log.level === 'quiet') {
      // Nothing to draw: the task list (and loading listr2) would only cost start-up time.
      await Promise.allSettled(state.jobs.map((job, i) => copy(job, i)));
    } else {
      await runTasks<MirrorState>(
        [
          {
            title: dryRun ? `Check ${state.jobs.length} image(s) (dry run: HEAD requests only)` : `Copy ${state.jobs.length} image(s)`,
            // Every image at once, as with --quiet: the per-host request bound is what limits the load.
            task: (s, task) => task.newListr(s.jobs.map(copyTask), { concurrent: true, exitOnError: false }),
          },
        ],
        state,
        ctx.io,
        ctx.log.level,
      );
    }
  } catch (error) {
    if (!state.failures.some(Boolean)) throw error;
  } finally {
    state.runner?.close();
  }

  const lines = state.jobs.map((job, i) => {
    const r = state.results[i];
    if (!r) return { source: job.source, target: targetText(job), error: ctx.secrets.redact(String((state.failures[i] as Error | undefined)?.message ?? 'not copied')) };
    return r;
  });
  if (ctx.args.json) ctx.result(JSON.stringify(lines, null, 2));
  else {
    const text = lines
      .filter((l): l is CopyResult => 'digest' in l)
      .map((r) => `${r.source} -> ${r.target}@${r.digest}${r.dryRun ? ` (${r.upToDate ? 'up to date' : 'would copy'})` : ''}`);
    if (text.length) ctx.result(text.join('\n'));
  }
  const failure = state.failures.find(Boolean);
  if (failure) throw failure;
  return ExitCode.ok;
}
