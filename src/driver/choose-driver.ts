// The driver decision (`builder.driver: auto`, product.md step 6, issue 4): a pure function from
// what the build needs and what the local image store holds to a driver and its reasons.
//
// Facts it rests on:
// - The docker driver is dockerd's embedded BuildKit. On dockerd 20.10 (no containerd image store)
//   buildx reports it without the features "Cache export", "Multi-platform build", "OCI exporter",
//   "Docker exporter" (BX `driver/docker/driver.go` `Features`; checks in `build/opt.go`), and it
//   refuses a buildkitd config (BX `driver/docker/factory.go`): no pinned BuildKit, no buildkitd.toml.
//   Attestations need the multi-platform feature (BX `build/opt.go`).
// - Only the docker driver sees the daemon's image store; a container builder pulls every image
//   from a registry — unless the image is handed over as an `oci-layout://` named context, which
//   buildx sends from the client, so it works for docker-container, kubernetes and remote alike
//   (BX `build/opt.go`, OCIStores).
// - dockerd's `registry-mirrors` are the docker driver's only mirrors: host-only URLs, Docker Hub
//   only (facts §5, MOBY@v20.10.24 `registry/config.go`, `daemon/daemon.go` RegistryHosts).
import { UsageError } from '../errors.js';
import type { DriverSetting, MirrorConfig } from '../config/schema.js';
import type { ExportSpec } from './build-args.js';
import { daemonJsonFix, dindServiceCommand, dockerdMirrorFix, GITLAB_DIND } from '../docker/dockerd-advice.js';

export type Driver = 'docker' | 'docker-container' | 'kubernetes' | 'remote';

export interface ImageFact {
  /** Normalised reference (`docker.io/library/alpine:latest`). */
  ref: string;
  /** Present in the daemon's store and never pulled from / pushed to a registry. */
  localOnly: boolean;
}

export interface BuildNeeds {
  /** Normalised target platforms; more than one needs a container builder. */
  platforms: string[];
  /** Cache export types (`--cache-to`); anything but `inline` needs a container builder. */
  cacheTo: string[];
  /**
   * An explicit BuildKit version, `buildkitd.config` or `buildkitd.flags`: things only a builder
   * we create can honour. Mirrors alone do not set it — for them the docker driver takes dockerd's
   * `registry-mirrors`, see dockerDriverMirrorWarning (issue 4: "warn with the exact fix").
   */
  needsBuildkitConfig: boolean;
  /** Why needsBuildkitConfig is set, for the reasons (`buildkit.version is "^0.18"`). */
  buildkitConfigReasons?: string[];
  /** `--output` entries; `oci`, and `docker` to a file, need a container builder. */
  outputs?: Pick<ExportSpec, 'type' | 'attrs'>[];
  /** `--attest`/`--sbom`/`--provenance` asked for. */
  attestations?: boolean;
  /** Every image the build needs, with its local-store fact. */
  images: ImageFact[];
  /**
   * Why our cross-job build cache (registry or local export, src/driver/build-cache.ts) wants a
   * container builder; with `auto` it picks one. An explicit `docker` is not refused for it: the
   * cache then falls back to inline (cacheTypeForDriver).
   */
  buildCache?: string;
}

export interface DriverDecision {
  driver: Driver;
  /** Why, one sentence each, for `plan` and `--json`. */
  reasons: string[];
  /** Local-only images to export as OCI layouts and pass as `--build-context` (container drivers). */
  bridge: string[];
  warnings: string[];
}

/** What in the build only a container builder can do, one reason each. */
export function containerOnlyNeeds(needs: BuildNeeds): string[] {
  const out: string[] = [];
  if (needs.platforms.length > 1) {
    out.push(`it builds ${needs.platforms.length} platforms (${needs.platforms.join(', ')}); the docker driver builds one`);
  }
  const exported = [...new Set(needs.cacheTo.filter((t) => t !== 'inline'))];
  if (exported.length > 0) {
    out.push(`it exports build cache (--cache-to type=${exported.join(', type=')}); the docker driver exports only inline cache`);
  }
  if (needs.needsBuildkitConfig) {
    const why = needs.buildkitConfigReasons?.length ? needs.buildkitConfigReasons.join(', ') : 'a pinned BuildKit version or buildkitd configuration';
    const n = needs.buildkitConfigReasons?.length ?? 1;
    out.push(`${why}: only a BuildKit builder of our own can honour ${n > 1 ? 'these' : 'that'}, as the docker driver runs dockerd's embedded BuildKit`);
  }
  for (const o of needs.outputs ?? []) {
    if (o.type === 'oci') out.push('it exports --output type=oci, which the docker driver cannot');
    else if (o.type === 'docker' && o.attrs.dest !== undefined) out.push('it writes --output type=docker to a file, which the docker driver cannot');
  }
  if (needs.attestations) out.push('it asks for attestations (SBOM/provenance), which the docker driver cannot attach');
  return out;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Picks the driver. An explicit `setting` always wins; `docker` with a need only a container
 * builder has is a UsageError (exit 2) naming that need.
 */
export function chooseDriver(input: { setting: DriverSetting; needs: BuildNeeds }): DriverDecision {
  const { setting, needs } = input;
  const containerOnly = containerOnlyNeeds(needs);
  const local = [...new Set(needs.images.filter((i) => i.localOnly).map((i) => i.ref))];
  const localReason = local.length
    ? `it needs ${plural(local.length, 'image')} that only ${local.length === 1 ? 'exists' : 'exist'} in the local image store (${local.join(', ')})`
    : '';
  const bridgeReason = local.length
    ? `local-only ${local.length === 1 ? 'image is' : 'images are'} handed to the builder as OCI layout build contexts (--build-context …=oci-layout://…)`
    : '';

  if (setting === 'docker') {
    if (containerOnly.length > 0) {
      throw new UsageError(`builder.driver is docker, but ${containerOnly.join('; ')}`, {
        hint: 'set builder.driver to auto or docker-container, or drop what needs a container builder',
      });
    }
    const reasons = ['builder.driver is docker: the docker context\'s own builder is used, nothing is created'];
    if (localReason) reasons.push(`${localReason}; the docker driver sees them directly`);
    return { driver: 'docker', reasons, bridge: [], warnings: [] };
  }

  if (setting !== 'auto') {
    const reasons = [`builder.driver is ${setting}`];
    if (localReason) reasons.push(localReason, bridgeReason);
    return { driver: setting, reasons, bridge: local, warnings: [] };
  }
  if (needs.buildCache) containerOnly.push(needs.buildCache);

  if (local.length > 0 && containerOnly.length === 0) {
    return {
      driver: 'docker',
      reasons: [`${localReason}; only the docker driver sees them`, 'nothing in the build needs a container builder'],
      bridge: [],
      warnings: [],
    };
  }
  if (local.length > 0) {
    return {
      driver: 'docker-container',
      reasons: [...containerOnly, localReason, bridgeReason],
      bridge: local,
      warnings: [],
    };
  }
  if (containerOnly.length > 0) {
    return { driver: 'docker-container', reasons: containerOnly, bridge: [], warnings: [] };
  }
  return {
    driver: 'docker-container',
    reasons: [
      needs.images.length > 0
        ? 'every image the build needs can come from a registry, so a docker-container builder with the pinned BuildKit and the mirrors is used'
        : 'no build needs local images, so a docker-container builder with the pinned BuildKit and the mirrors is used',
    ],
    bridge: [],
    warnings: [],
  };
}

function daemonMirrorHost(url: string): string {
  return url.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').toLowerCase();
}

/**
 * With the docker driver builds pull through dockerd, which never reads our buildkitd.toml. When
 * mirrors are configured and dockerd lacks them, returns one warning with the exact fix for this
 * environment (GitLab DinD service `command:` or daemon.json). Only host-only mirrors of
 * docker.io can be dockerd mirrors; others are named as not applicable. Undefined when nothing
 * is missing.
 */
export function dockerDriverMirrorWarning(
  daemonMirrors: string[],
  mirrors: MirrorConfig[],
  env: Record<string, string | undefined>,
): string | undefined {
  if (mirrors.length === 0) return undefined;
  const daemon = new Set(daemonMirrors.map(daemonMirrorHost));
  const hostMirrors = mirrors.filter((m) => m.for === 'docker.io' && !m.path);
  const missing = hostMirrors.filter((m) => !daemon.has(m.host.toLowerCase()));
  const unusable = mirrors.filter((m) => !(m.for === 'docker.io' && !m.path));
  if (missing.length === 0 && unusable.length === 0) return undefined;

  const parts: string[] = [];
  if (missing.length > 0) {
    const fix = dockerdMirrorFix(missing);
    const dind = (env.GITLAB_CI === 'true' || env.CI_SERVER === 'yes') && /^tcp:\/\//.test(env.DOCKER_HOST ?? '');
    const how = dind
      ? `give the ${GITLAB_DIND.service} service in .gitlab-ci.yml ${dindServiceCommand(fix)}`
      : `add ${daemonJsonFix(fix)} to dockerd's daemon.json (/etc/docker/daemon.json) and restart dockerd`;
    parts.push(`the docker driver pulls Docker Hub images through dockerd, which has ${daemonMirrors.length ? 'other registry-mirrors' : 'no registry-mirrors'} and ignores buildkitd.toml: ${how}`);
  }
  if (unusable.length > 0) {
    const names = unusable.map((m) => `${m.host}${m.path ? `/${m.path}` : ''} (for ${m.for})`);
    parts.push(
      `${names.join(', ')} cannot be ${unusable.length === 1 ? 'a dockerd mirror' : 'dockerd mirrors'} (dockerd mirrors only docker.io, by host without a path), so the docker driver pulls those images from their registry; use builder.driver: docker-container to pull through ${unusable.length === 1 ? 'it' : 'them'}`,
    );
  }
  return `${parts.join('; ')}`;
}
