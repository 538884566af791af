// Which images the build names exist only in this daemon, from evidence the daemon's image store
// really has. Which signal serves which store:
//
// - Classic store (dockerd ≤ 28, or 29 with `--feature containerd-snapshotter=false`): RepoDigests
//   are written only when an image is pulled or pushed, so a tag without a repo digest for its
//   repository never came from a registry (src/docker/images.ts isLocalOnly). That rule holds
//   there and costs nothing; no registry is asked.
// - containerd store (Docker 29's default, every `docker:29-dind`): every tag gets a repo digest
//   (`repo@<manifest digest>`), pulled or `docker import`ed alike, and the Engine API shows nothing
//   else that differs (`Descriptor`, `Manifests` look alike; containerd's
//   `containerd.io/distribution.source.*` labels are not in the API, and a DinD job cannot reach
//   the service's containerd socket). So the registries are asked instead: an image no configured
//   registry serves at that digest is local-only (src/resolve/served.ts). When no answer can be
//   had, the image is bridged anyway — the answer that still builds — and a warning says so.
import type { CommandContext } from '../context.js';
import type { Config } from '../config/schema.js';
import { daemonImageStore } from '../docker/daemon.js';
import { repositoryOf, type LocalImageFact } from '../docker/images.js';
import type { DockerRunner } from '../docker/runner.js';

/** The digest the store holds for `ref`'s repository (its repo digest, else the image ID). */
function storedDigest(ref: string, fact: LocalImageFact): string | undefined {
  const repo = repositoryOf(ref);
  const own = fact.repoDigests.find((d) => repositoryOf(d.slice(0, d.lastIndexOf('@'))) === repo);
  const digest = (own ?? fact.repoDigests[0])?.split('@')[1] ?? fact.id;
  return digest?.startsWith('sha256:') ? digest : undefined;
}

/**
 * On the containerd store, marks as local-only every present image no configured registry serves;
 * returns warnings for those it could not ask about. `facts` is updated in place. The classic
 * store's answer stands as it is.
 */
export async function settleLocalOnly(ctx: CommandContext, config: Config, runner: DockerRunner, facts: Map<string, LocalImageFact>): Promise<string[]> {
  const doubtful = [...facts].filter(([, f]) => f.present && !f.localOnly);
  if (doubtful.length === 0) return [];
  if ((await daemonImageStore(runner, ctx.io.signal)) !== 'containerd') return [];
  const { servedByRegistries } = await import('../resolve/served.js');
  const warnings: string[] = [];
  await Promise.all(
    doubtful.map(async ([ref, fact]) => {
      const digest = storedDigest(ref, fact);
      if (!digest) return;
      const answer = await servedByRegistries({ env: ctx.io.env, secrets: ctx.secrets, signal: ctx.io.signal }, config, ref, digest);
      if (answer.served === true) {
        ctx.log.debug(`${ref}: ${answer.by} serves ${digest}; not local-only`);
        return;
      }
      fact.localOnly = true;
      if (answer.served === false) {
        ctx.log.debug(`${ref}: ${answer.asked.length ? `not served at ${digest} by ${answer.asked.join(', ')}` : 'no configured registry for it'}; local-only`);
      } else {
        warnings.push(
          `could not ask the registries whether they serve ${ref} (${answer.why.join('; ')}); treating it as local-only (the containerd image store cannot tell), so the build uses the daemon's copy`,
        );
      }
    }),
  );
  return warnings;
}
