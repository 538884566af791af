import type { CommandContext } from '../cli/main.js';
import { DockerError } from '../errors.js';

export async function run(ctx: CommandContext): Promise<number> {
  await ctx.loadConfig();
  throw new DockerError('doctor is not implemented yet');
}
