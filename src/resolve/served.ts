// Does any configured registry serve an image at a digest? A HEAD of `repository@digest` through
// each of the image registry's configured mirrors and the registry itself unless `upstream: false`
// (./candidates.ts), with our own client and the user's credentials, all at once and bounded by
// `timeouts.probe`. Used where the daemon's store cannot tell a pulled image from a local one
// (the containerd store, src/builder/local-only.ts). Not the daemon's
// `GET /distribution/{name}/json`: dockerd asks the image's own registry (Docker Hub for docker.io
// names), past our mirrors and `upstream: false`.
import type { Config } from '../config/schema.js';
import { parseImageRef } from '../registry/reference.js';
import { RegistryRequestError } from '../registry/types.js';
import { candidatesFor } from './candidates.js';
import { createClientFactory, type ResolveDeps } from './index.js';

export type ServedAnswer =
  /** A registry answered with the manifest. */
  | { served: true; by: string }
  /** Every configured registry said it has no such manifest (or none is configured). */
  | { served: false; asked: string[] }
  /** No registry served it and at least one could not answer (unreachable, timeout, auth). */
  | { served: 'unknown'; why: string[] };

export async function servedByRegistries(deps: Pick<ResolveDeps, 'env' | 'secrets' | 'signal' | 'clientFor'>, config: Pick<Config, 'mirrors' | 'upstream' | 'registries' | 'timeouts'>, ref: string, digest: string): Promise<ServedAnswer> {
  const image = parseImageRef(ref);
  const candidates = candidatesFor(config, image);
  if (candidates.length === 0) return { served: false, asked: [] };
  const source = await createClientFactory(deps, config);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, config.timeouts.probe);
  const onAbort = (): void => controller.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const answers = await Promise.all(
      candidates.map(async (c) => {
        try {
          await source.clientFor(c).headManifest(c.repository, digest, controller.signal);
          controller.abort(); // one registry serving it is the answer
          return { label: c.label, served: true as const };
        } catch (error) {
          if (error instanceof RegistryRequestError && error.kind === 'not-found') return { label: c.label, served: false as const };
          return { label: c.label, served: 'unknown' as const, why: timedOut ? `no answer within ${config.timeouts.probe} ms (timeouts.probe)` : (error as Error).message };
        }
      }),
    );
    const by = answers.find((a) => a.served === true);
    if (by) return { served: true, by: by.label };
    const unknown = answers.filter((a) => a.served === 'unknown');
    if (unknown.length) return { served: 'unknown', why: unknown.map((a) => `${a.label}: ${'why' in a ? a.why : ''}`) };
    return { served: false, asked: answers.map((a) => a.label) };
  } finally {
    clearTimeout(timer);
    deps.signal?.removeEventListener('abort', onAbort);
  }
}
