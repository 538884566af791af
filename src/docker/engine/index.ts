// The Docker Engine API, as one module: endpoint resolution (DOCKER_HOST, TLS environment, docker
// contexts), a node:http client, and a runner that answers daemon calls over the API and hands
// the rest to the docker CLI.
import type { DockerRunner } from '../runner.js';
import { createEngineClient } from './client.js';
import { resolveEngineEndpoint } from './endpoint.js';
import { createEngineRunner } from './runner.js';

export { createEngineClient, EngineUnreachable, type EngineClient } from './client.js';
export { resolveEngineEndpoint, type EngineEndpoint } from './endpoint.js';
export { createEngineRunner } from './runner.js';

/** The CLI runner with the Engine API in front of it for the daemon calls. `BXB_ENGINE_API=0` turns it off. */
export function withEngineApi(cli: DockerRunner, onCommand?: (command: string) => void): DockerRunner {
  if (cli.env.BXB_ENGINE_API === '0') return cli;
  return createEngineRunner(cli, async () => {
    const endpoint = await resolveEngineEndpoint(cli.env);
    return endpoint ? createEngineClient(endpoint) : undefined;
  }, onCommand);
}
