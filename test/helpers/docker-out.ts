// The docker CLI as an assertion: `dockerd.docker()` never throws, so a `docker ps` that failed
// (daemon gone, bad flag) prints nothing — and "nothing left" would pass. Where the output is what
// a test asserts, it comes from here: exit 0 or the test fails naming the command and its error.
interface DockerCli {
  docker(args: string[], opts?: { timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** stdout of `docker ARGS`; throws when the command does not exit 0. */
export async function dockerOutput(d: DockerCli, args: string[]): Promise<string> {
  const r = await d.docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  return r.stdout;
}
