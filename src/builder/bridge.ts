// Local-only images for a container builder: each is exported from the daemon as an OCI image
// layout and handed to the build as `--build-context <name>=oci-layout://<dir>:<tag>`, the name
// being what BuildKit's Dockerfile frontend looks the image up by (frontend/dockerui NamedContext).
import { mkdir, rm } from 'node:fs/promises';
import type { Logger } from '../io.js';
import { checkPlatforms, exportOciLayout, layoutTagFor, ociLayoutContext } from '../docker/oci-layout.js';
import type { DockerRunner } from '../docker/runner.js';
import type { BridgePlan } from '../driver/build-needs.js';

export interface BridgedContexts {
  /** `--build-context` name → `oci-layout://dir:tag` */
  contexts: Record<string, string>;
  /** The same as `--build-context` flags, for printing. */
  flags: string[];
  /** Removes the layouts (prefix mode, after the command). */
  remove(): Promise<void>;
}

export async function bridgeLocalImages(runner: DockerRunner, bridges: BridgePlan[], dir: string, log: Logger): Promise<BridgedContexts> {
  const contexts: Record<string, string> = {};
  await mkdir(dir, { recursive: true });
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    for (const bridge of bridges) {
      log.info(`exporting local image ${bridge.ref} as an OCI layout for the builder`);
      const tag = layoutTagFor(bridge.ref);
      const layout = await exportOciLayout(runner, bridge.ref, dir, tag);
      // A missing platform fails here, before the build starts, naming image and platform.
      if (bridge.platforms.length) checkPlatforms(layout.platforms, bridge.platforms, bridge.ref);
      contexts[bridge.contextName] = ociLayoutContext(layout.dir, layout.tag);
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { contexts, flags: Object.entries(contexts).map(([name, value]) => `--build-context=${name}=${value}`), remove };
}
