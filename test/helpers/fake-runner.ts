// A scripted DockerRunner for unit tests: answers each argv with `answer(args)` (exit 0, empty
// output unless told) and records every call.
import type { CommandResult, DockerRunner } from '../../src/docker/runner.js';

export function fakeRunner(answer: (args: string[]) => Partial<CommandResult>): DockerRunner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    binary: 'docker',
    globalArgs: [],
    env: {},
    calls,
    async run(args) {
      calls.push(args);
      const a = answer(args);
      return { exitCode: a.exitCode ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? '', command: `docker ${args.join(' ')}` };
    },
  };
}
