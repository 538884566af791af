// The build's pre-flight: before a prefixed build (and in `plan -- <build>`), every image the
// build's BuildKit will pull is looked up on the mirrors the way BuildKit will ask them
// (src/resolve/serving.ts), with the credentials it will have. An image no mirror serves would
// come from the mirrored registry itself — Docker Hub, against the rate limit the mirror exists
// to avoid — so with `upstream: false` that is an error before the build (exit 3) naming the image
// and each mirror's answer, and with `upstream: true` a warning per image saying why.
import type { Config } from '../config/schema.js';
import type { Logger, Secrets } from '../io.js';
import type { RegistryAuth } from '../docker/registry-auth.js';
import { NoRegistryError } from '../errors.js';
import type { RegistryClient, RegistryEndpoint } from '../registry/types.js';
import type { MirrorAnswer, ServingResult } from '../resolve/serving.js';

export interface PreflightImage {
  ref: string;
  /** `host[/path]/<repository>` of the mirror that will serve it; null: the upstream registry will. */
  servedBy: string | null;
  digest: string | null;
  answers: { mirror: string; outcome: 'served' | 'failed'; error: string | null; credentials: string | null }[];
}

export interface PreflightDeps {
  env: Record<string, string | undefined>;
  secrets: Secrets;
  log: Logger;
  auth: RegistryAuth;
  signal?: AbortSignal | undefined;
}

/** Checks `images` against the mirrors; throws NoRegistryError (exit 3) under `upstream: false`. */
export async function preflightBuild(config: Config, images: string[], deps: PreflightDeps): Promise<PreflightImage[]> {
  if (!images.length || !config.mirrors.length) return [];
  const [{ findServingRegistry }, { createRegistryClient }] = await Promise.all([import('../resolve/serving.js'), import('../registry/client.js')]);
  const clients = new Map<string, RegistryClient>();
  const clientFor = (endpoint: RegistryEndpoint): RegistryClient => {
    const key = JSON.stringify(endpoint);
    let client = clients.get(key);
    if (!client) {
      client = createRegistryClient(endpoint, { credentials: deps.auth.credentials, secrets: deps.secrets, timeoutMs: config.timeouts.probe, env: deps.env });
      clients.set(key, client);
    }
    return client;
  };
  const results = await Promise.all(images.map((ref) => findServingRegistry(ref, config, clientFor, deps.signal)));
  const sources = new Map<string, string | null>();
  for (const r of results) for (const a of r.answers) if (!sources.has(a.host)) sources.set(a.host, (await deps.auth.credentials.find(a.host))?.source.label ?? null);
  const unserved = results.filter((r) => r.answers.length && !r.servedBy);
  const why = (r: ServingResult): string => r.answers.map((a) => `${a.label}: ${answerText(a, sources.get(a.host) ?? null)}`).join('; ');
  if (unserved.length && !config.upstream) {
    throw new NoRegistryError(`no mirror serves ${unserved.map((r) => `${r.ref} (${why(r)})`).join(', ')}, and upstream is false: BuildKit would pull ${unserved.length === 1 ? 'it' : 'them'} from ${[...new Set(unserved.map((r) => r.registry))].join(', ')}`, {
      hint: 'fix the credentials BuildKit gets for the mirror (buildx-bootstrap doctor), copy the image into it (buildx-bootstrap mirror IMAGE), or set upstream: true',
    });
  }
  for (const r of unserved) deps.log.warn(`${r.ref} will come from ${r.registry} itself, not a mirror: ${why(r)}`);
  for (const r of results) if (r.servedBy) deps.log.debug(`${r.ref}: served by ${r.servedBy.label} (${r.servedBy.digest})`);
  return results.map((r) => ({
    ref: r.ref,
    servedBy: r.servedBy?.label ?? null,
    digest: r.servedBy?.digest ?? null,
    answers: r.answers.map((a) => ({ mirror: a.label, outcome: a.outcome, error: a.error ?? null, credentials: sources.get(a.host) ?? null })),
  }));
}

function answerText(a: MirrorAnswer, source: string | null): string {
  if (a.outcome === 'served') return 'serves it';
  const auth = a.status === 401 || a.status === 403;
  return `${a.error ?? 'failed'}${auth ? ` (with the credentials BuildKit will have: ${source ?? 'none'})` : ''}`;
}
