// The doctor's judgement (pure): facts gathered by ./facts.ts in, one verdict per check out.
// Nothing here touches docker, the network or the file system, so every verdict is tested as a
// table (test/commands/doctor.test.ts).
//
// Exit code (documented in the help text of `doctor` below and in DOCTOR_EXIT_CODES): 0 when no
// check failed; otherwise the code of the first failing check in report order — config 2,
// docker/buildx/context 1, registry/quota 3, lockfile 4. Report order goes from what everything
// else depends on (configuration, the daemon) to what depends on it (registries, the lock), so
// the code names the problem to fix first.
import { semver } from '../lazy.cjs';
import type { Config } from '../config/schema.js';
import type { BuildxFacts } from '../docker/buildx.js';
import { MIN_BUILDX } from '../docker/buildx.js';
import type { DaemonFacts, ImageStore, TlsEnvironment } from '../docker/daemon.js';
import { daemonJsonFix, dindServiceCommand, dockerdMirrorFix, GITLAB_DIND } from '../docker/dockerd-advice.js';
import { ExitCode } from '../errors.js';
import { DOCKER_HUB } from '../registry/reference.js';
import type { RateLimit, RegistryFailureKind } from '../registry/types.js';
import type { Lockfile } from '../resolve/lockfile.js';
import { formatBytes } from '../docker/volumes.js';

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';
export type CheckName = 'config' | 'docker' | 'buildx' | 'context' | 'registry' | 'credentials' | 'quota' | 'mirrors' | 'lockfile' | 'builders' | 'leases' | 'build-cache';

export interface DoctorCheck {
  check: CheckName;
  verdict: Verdict;
  /** One line: what was found and, for warn/fail, what to do. Never a secret. */
  detail: string;
}

export const DOCTOR_EXIT_CODES: Record<CheckName, number> = {
  config: ExitCode.usage,
  docker: ExitCode.dockerFailed,
  buildx: ExitCode.dockerFailed,
  context: ExitCode.dockerFailed,
  registry: ExitCode.noRegistry,
  credentials: ExitCode.noRegistry,
  quota: ExitCode.noRegistry,
  mirrors: ExitCode.dockerFailed,
  lockfile: ExitCode.lockMismatch,
  builders: ExitCode.dockerFailed,
  leases: ExitCode.dockerFailed,
  'build-cache': ExitCode.noRegistry,
};

/** The buildx release that renamed `--config` to `--buildkitd-config` (BX commit 56fc68eb7, v0.13.0). */
export const BUILDKITD_CONFIG_FLAG_BUILDX = '0.13.0';

/** A failure as a user sees it: one line and what to do. */
export interface Problem {
  message: string;
  hint?: string | undefined;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export interface CandidateFacts {
  label: string;
  /** `host[:port]` as in image references (`docker.io` for Docker Hub). */
  registry: string;
  repository: string;
  kind: 'mirror' | 'upstream';
  origin: string;
  /** The tag checked (the lock's, an exact version's, or the one a range selected); absent when it never got that far. */
  tag?: string | undefined;
  /** Tag digest from the HEAD, when it succeeded. */
  digest?: string | undefined;
  /** Whether credentials were used (ping). */
  authenticated?: boolean | undefined;
  /** Rate-limit headers from the manifest HEAD (or the ping when the HEAD failed). */
  rateLimit?: RateLimit | undefined;
  failure?: { kind: RegistryFailureKind | 'error'; stage: 'ping' | 'tags' | 'manifest'; message: string } | undefined;
  ms: number;
}

export type LockFacts =
  | { state: 'missing'; file: string }
  | { state: 'broken'; file: string; problem: Problem }
  | { state: 'present'; file: string; lock: Lockfile; differences: string[] };

export interface TlsFacts {
  tls: TlsEnvironment;
  contextName: string;
  contextExists: boolean;
  /** Files of ca.pem/cert.pem/key.pem missing from the cert path. */
  missingFiles: string[];
}

export interface DoctorFacts {
  config: Outcome<{ file: string | undefined; config: Config }>;
  /** Where the docker CLI points (`unix:///…`, `tcp://…`), when known. */
  dockerEndpoint: string | undefined;
  daemon: Outcome<DaemonFacts>;
  buildx: Outcome<BuildxFacts>;
  /** DOCKER_HOST when it is set. */
  dockerHost: string | undefined;
  tls: TlsFacts | undefined;
  /** dockerd `registry-mirrors`; undefined when the daemon was not reachable. */
  daemonMirrors: string[] | undefined;
  /** Where the daemon keeps images (containerd store: Docker 29's default); undefined when unknown. */
  imageStore?: ImageStore;
  /** In priority order; empty when the configuration did not load. */
  candidates: CandidateFacts[];
  lock: LockFacts | undefined;
  /** What credential lookups had to say (unreadable config.json, failing helper); no secrets. */
  credentialWarnings?: string[];
  /** Per registry host BuildKit will ask: where its credentials come from (src/docker/registry-auth.ts). */
  buildCredentials?: { host: string; source: string | undefined; handedOver: boolean }[];
  /** Builders buildx-bootstrap made (buildx store) and their state volumes; undefined when not asked. */
  builders?: Outcome<BuildersFacts>;
  /** Prefix mode's build cache: where it goes, and whether the docker config BuildKit's session reads has credentials for it. */
  buildCache?: BuildCacheFacts;
}

export interface BuildCacheFacts {
  type: 'registry' | 'local' | 'inline' | 'off';
  /** Registry cache repository, or the local directory. */
  where: string;
  reason: string;
  /** Registry: the docker config has an entry (auths, credHelpers, credsStore) for its host. */
  credentials?: { host: string; found: boolean; loopback: boolean } | undefined;
}

export interface BuildersFacts {
  names: string[];
  volumes: number;
  /** undefined when `docker system df` could not tell. */
  volumeBytes: number | undefined;
  /** Leases held in the daemon now (src/docker/leases.ts); undefined when they could not be listed. */
  leases?: { locks: number; holds: number } | undefined;
}

const FIX_BY_KIND: Record<RegistryFailureKind | 'error', string> = {
  refused: 'nothing listens there: check the host and port, and that the registry runs',
  reset: 'the connection was cut: a proxy or firewall in the way? (HTTPS_PROXY/NO_PROXY)',
  dns: 'the host name does not resolve: check the spelling and DNS',
  timeout: 'no answer in time: a firewall dropping packets, or a proxy needed (HTTPS_PROXY/NO_PROXY)?',
  tls: "certificate not trusted: set the mirror's ca:, or /etc/docker/certs.d/<host>/ca.crt, or NODE_EXTRA_CA_CERTS",
  auth: 'credentials missing or refused: docker login <host>, DOCKER_AUTH_CONFIG, or the CI registry variables',
  'not-found': 'the registry does not have it: for a pull-through cache, check its upstream',
  'rate-limited': 'pull rate limit reached: authenticate, wait for the window, or use a mirror',
  server: 'the registry failed (5xx): retry later or ask its operators',
  protocol: 'the answer is not a registry v2 API: check the address (and path prefix)',
  aborted: 'cancelled',
  error: 'see --debug',
};

function shortDigest(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

function coreVersion(version: string): string | undefined {
  const v = semver().coerce(version)?.version;
  return v && v !== '0.0.0' ? v : undefined;
}

function problemText(p: Problem): string {
  return p.hint ? `${p.message} — ${p.hint}` : p.message;
}

function configCheck(f: DoctorFacts): DoctorCheck {
  if (!f.config.ok) return { check: 'config', verdict: 'fail', detail: problemText(f.config.problem) };
  const file = f.config.value.file;
  return { check: 'config', verdict: 'ok', detail: file ? file : 'no configuration file; defaults, environment and flags' };
}

function dockerCheck(f: DoctorFacts): DoctorCheck {
  if (!f.daemon.ok) return { check: 'docker', verdict: 'fail', detail: problemText(f.daemon.problem) };
  const at = f.dockerEndpoint ? ` at ${f.dockerEndpoint}` : '';
  const store = f.imageStore ? `, ${f.imageStore} image store` : '';
  return { check: 'docker', verdict: 'ok', detail: `${f.daemon.value.serverVersion} (${f.daemon.value.platform}${store})${at}` };
}

function buildxCheck(f: DoctorFacts): DoctorCheck {
  if (!f.buildx.ok) return { check: 'buildx', verdict: 'fail', detail: problemText(f.buildx.problem) };
  const { version, raw } = f.buildx.value;
  const core = coreVersion(version);
  if (core && semver().lt(core, MIN_BUILDX)) {
    return { check: 'buildx', verdict: 'fail', detail: `${raw} is older than ${MIN_BUILDX}, the oldest buildx-bootstrap drives — upgrade docker-buildx-plugin` };
  }
  if (core && semver().lt(core, BUILDKITD_CONFIG_FLAG_BUILDX)) {
    return {
      check: 'buildx',
      verdict: 'warn',
      detail: `${raw} predates --buildkitd-config (buildx ${BUILDKITD_CONFIG_FLAG_BUILDX}); buildx-bootstrap passes --config instead — upgrade docker-buildx-plugin when you can`,
    };
  }
  return { check: 'buildx', verdict: 'ok', detail: raw };
}

function contextCheck(f: DoctorFacts): DoctorCheck {
  const t = f.tls;
  if (!t) {
    if (f.dockerHost?.startsWith('tcp://')) {
      return { check: 'context', verdict: 'ok', detail: `DOCKER_HOST=${f.dockerHost} without TLS: buildx uses it as it is` };
    }
    return { check: 'context', verdict: 'skip', detail: 'not Docker-in-Docker with TLS from the environment' };
  }
  if (t.missingFiles.length) {
    return {
      check: 'context',
      verdict: 'fail',
      detail: `DOCKER_HOST=${t.tls.host} with TLS, but ${t.missingFiles.join(', ')} missing in ${t.tls.certPath} — point DOCKER_CERT_PATH at the client certs (GitLab DinD: DOCKER_TLS_CERTDIR=${GITLAB_DIND.tlsCertdir} → ${GITLAB_DIND.certPath})`,
    };
  }
  const what = t.contextExists ? `uses the docker context ${t.contextName} (exists)` : `will create the docker context ${t.contextName}`;
  return {
    check: 'context',
    verdict: 'ok',
    detail: `DOCKER_HOST=${t.tls.host} with TLS from the environment, which buildx refuses for container builders; buildx-bootstrap ${what}`,
  };
}

function candidateChecks(f: DoctorFacts): DoctorCheck[] {
  if (!f.config.ok) return [{ check: 'registry', verdict: 'skip', detail: 'configuration did not load' }];
  const config = f.config.value.config;
  if (!f.candidates.length) {
    return [
      {
        check: 'registry',
        verdict: 'fail',
        detail: `no registry to get ${config.buildkit.image} from: no mirror is for its registry and upstream is false — add a mirror (for: <registry>) or set upstream: true`,
      },
    ];
  }
  const anyOk = f.candidates.some((c) => !c.failure);
  return f.candidates.map((c): DoctorCheck => {
    const name = c.kind === 'mirror' ? `${c.label}${c.origin !== 'config' ? ` (${c.origin})` : ''}` : `${c.label} (upstream)`;
    if (!c.failure) {
      const auth = c.authenticated ? 'authenticated' : 'anonymous';
      return { check: 'registry', verdict: 'ok', detail: `${name}: ${c.tag} ${shortDigest(c.digest ?? '')} (${auth}, ${c.ms} ms)` };
    }
    const at = c.failure.stage === 'ping' ? '' : c.tag ? ` (${c.failure.stage} ${c.tag})` : ` (${c.failure.stage})`;
    // The client's own message may already say what to do (`… — no credentials for <host>; …`).
    const fix = c.failure.message.includes(' — ') ? '' : ` — ${c.failure.kind === 'auth' ? FIX_BY_KIND.auth.replace('<host>', c.registry) : FIX_BY_KIND[c.failure.kind]}`;
    // Only when nothing can serve the image is a dead candidate fatal: create falls back past it.
    return {
      check: 'registry',
      verdict: anyOk ? 'warn' : 'fail',
      detail: `${name}: ${c.failure.kind}${at} after ${c.ms} ms: ${c.failure.message}${fix}`,
    };
  });
}

function credentialChecks(f: DoctorFacts): DoctorCheck[] {
  const warnings = (f.credentialWarnings ?? []).map((w): DoctorCheck => ({ check: 'credentials', verdict: 'warn', detail: w }));
  // Informational: what BuildKit will have for each host it pulls from, by source, never the value.
  const hosts = (f.buildCredentials ?? []).map(
    (h): DoctorCheck => ({
      check: 'credentials',
      verdict: 'ok',
      detail: !h.source
        ? `${h.host}: no credentials known — BuildKit pulls anonymously`
        : h.handedOver
          ? `${h.host}: BuildKit gets credentials from ${h.source}, handed over by buildx-bootstrap (prefix mode, or eval "$(buildx-bootstrap env)" before your own build)`
          : `${h.host}: BuildKit gets credentials from ${h.source} (buildx reads it from the docker config)`,
    }),
  );
  return [...warnings, ...hosts];
}

function isDockerHub(c: CandidateFacts): boolean {
  return c.registry === DOCKER_HUB;
}

function quotaChecks(f: DoctorFacts): DoctorCheck[] {
  // Docker Hub's headers; any registry that sends them (a proxy passing them through) is reported too.
  const relevant = f.candidates.filter((c) => isDockerHub(c) || c.rateLimit?.remaining !== undefined);
  if (!relevant.length) return [{ check: 'quota', verdict: 'skip', detail: 'no candidate is Docker Hub' }];
  const served = f.candidates.filter((c) => !c.failure);
  return relevant.map((c): DoctorCheck => {
    const others = served.some((s) => s !== c);
    const r = c.rateLimit;
    if (r?.remaining !== undefined) {
      const window = r.windowSeconds ? ` per ${formatWindow(r.windowSeconds)}` : '';
      const of = r.limit !== undefined ? ` of ${r.limit}` : '';
      const text = `${c.label}: ${r.remaining}${of} pulls left${window}`;
      if (r.remaining <= 0) {
        return { check: 'quota', verdict: others ? 'warn' : 'fail', detail: `${text} — pulls fail with toomanyrequests until the window passes: log in, use a mirror, or set cache.dir` };
      }
      if (r.limit !== undefined && r.remaining < r.limit * 0.1) {
        return { check: 'quota', verdict: 'warn', detail: `${text} — almost used up: log in (docker login), use a mirror, or set cache.dir` };
      }
      return { check: 'quota', verdict: 'ok', detail: `${text} (a HEAD does not count)` };
    }
    if (c.failure?.kind === 'rate-limited') {
      return { check: 'quota', verdict: others ? 'warn' : 'fail', detail: `${c.label}: pull rate limit reached (429) — log in, use a mirror, or set cache.dir` };
    }
    if (c.failure) return { check: 'quota', verdict: 'skip', detail: `${c.label}: not reachable, quota unknown` };
    return { check: 'quota', verdict: 'ok', detail: `${c.label}: no pull limit reported (unlimited or authenticated account)` };
  });
}

function formatWindow(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** `https://mirror.example/` → `mirror.example` (dockerd normalises with a trailing slash). */
export function daemonMirrorHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  }
}

function mirrorChecks(f: DoctorFacts): DoctorCheck[] {
  if (!f.config.ok) return [{ check: 'mirrors', verdict: 'skip', detail: 'configuration did not load' }];
  if (f.daemonMirrors === undefined) return [{ check: 'mirrors', verdict: 'skip', detail: 'docker is not reachable' }];
  // dockerd mirrors serve Docker Hub only and take no path (facts §5), so only docker.io host
  // mirrors can be on both sides.
  const hub = f.config.value.config.mirrors.filter((m) => m.for === DOCKER_HUB);
  const hostOnly = hub.filter((m) => !m.path);
  const withPath = hub.filter((m) => m.path);
  const daemonHosts = f.daemonMirrors.map(daemonMirrorHost);
  const out: DoctorCheck[] = [];
  const missing = hostOnly.filter((m) => !daemonHosts.includes(m.host));
  if (missing.length) {
    const fix = dockerdMirrorFix(missing);
    out.push({
      check: 'mirrors',
      verdict: 'warn',
      detail:
        `dockerd does not use ${missing.map((m) => m.host).join(', ')}: docker pull and docker-driver builds go to Docker Hub — ` +
        `add ${daemonJsonFix(fix)} to daemon.json, or for GitLab DinD the service ${dindServiceCommand(fix)}`,
    });
  }
  const configuredHosts = hub.map((m) => m.host);
  const extra = f.daemonMirrors.filter((u) => !configuredHosts.includes(daemonMirrorHost(u)));
  if (extra.length) {
    out.push({
      check: 'mirrors',
      verdict: 'warn',
      detail: `dockerd mirrors Docker Hub through ${extra.map(daemonMirrorHost).join(', ')} but container builders do not — add it to mirrors: (host: ${daemonMirrorHost(extra[0]!)})`,
    });
  }
  const pathNote = withPath.length
    ? `${withPath.map((m) => `${m.host}/${m.path}`).join(', ')} ${withPath.length === 1 ? 'has a path and cannot be a dockerd mirror' : 'have paths and cannot be dockerd mirrors'} (registry-mirrors take hosts only); BuildKit uses ${withPath.length === 1 ? 'it' : 'them'}`
    : '';
  if (!out.length) {
    if (!hub.length && !f.daemonMirrors.length) return [{ check: 'mirrors', verdict: 'skip', detail: 'no Docker Hub mirror configured, and dockerd has none' }];
    const same = hostOnly.length ? `dockerd and BuildKit both mirror Docker Hub through ${hostOnly.map((m) => m.host).join(', ')}` : '';
    return [{ check: 'mirrors', verdict: 'ok', detail: [same, pathNote].filter(Boolean).join('; ') }];
  }
  if (pathNote) out.push({ check: 'mirrors', verdict: 'ok', detail: pathNote });
  return out;
}

function lockfileCheck(f: DoctorFacts): DoctorCheck {
  const l = f.lock;
  if (!f.config.ok || !l) return { check: 'lockfile', verdict: 'skip', detail: 'configuration did not load' };
  if (l.state === 'missing') {
    return { check: 'lockfile', verdict: 'warn', detail: `no lockfile at ${l.file}: every run resolves afresh — run buildx-bootstrap lock and commit the file` };
  }
  if (l.state === 'broken') return { check: 'lockfile', verdict: 'fail', detail: problemText(l.problem) };
  if (l.differences.length) {
    return { check: 'lockfile', verdict: 'fail', detail: `${l.file} is stale: ${l.differences.join('; ')} — run buildx-bootstrap lock` };
  }
  const lock = l.lock;
  const pinned = `${lock.tag} ${shortDigest(lock.digest)}`;
  const first = f.candidates.find((c) => !c.failure);
  if (!first) return { check: 'lockfile', verdict: 'warn', detail: `${l.file} pins ${pinned}; not verified: no registry answered` };
  if (first.digest !== lock.digest) {
    return {
      check: 'lockfile',
      verdict: 'fail',
      detail: `${first.label} serves ${shortDigest(first.digest ?? '')} for ${lock.tag}, ${l.file} pins ${shortDigest(lock.digest)}: a retag or tampering — check the registry; run buildx-bootstrap lock only if the new image is trusted`,
    };
  }
  return { check: 'lockfile', verdict: 'ok', detail: `${l.file} pins ${pinned}, still served by ${first.label}` };
}

/** Every check, in report order. */
export function evaluateDoctor(f: DoctorFacts): DoctorCheck[] {
  return [configCheck(f), dockerCheck(f), buildxCheck(f), contextCheck(f), ...candidateChecks(f), ...credentialChecks(f), ...quotaChecks(f), ...mirrorChecks(f), lockfileCheck(f), ...buildersCheck(f), ...buildCacheCheck(f)];
}

/**
 * Prefix mode's build cache. BuildKit pushes and pulls it through buildx's session, which answers
 * with the client's docker config — not with the credentials buildx-bootstrap itself finds
 * (CI_REGISTRY_*, DOCKER_AUTH_CONFIG). Never fails: a refused cache never fails a build.
 */
export function buildCacheCheck(f: DoctorFacts): DoctorCheck[] {
  const c = f.buildCache;
  if (!c) return [];
  if (c.type === 'off' || c.type === 'inline') return [{ check: 'build-cache', verdict: 'ok', detail: `${c.type}: ${c.reason}` }];
  if (c.type === 'local') return [{ check: 'build-cache', verdict: 'ok', detail: `local: ${c.where} (cache that directory between jobs)` }];
  const cred = c.credentials;
  if (!cred || cred.found || cred.loopback) {
    const how = cred?.found ? `the docker config has credentials for ${cred.host}` : 'a loopback registry, no credentials needed';
    return [{ check: 'build-cache', verdict: 'ok', detail: `registry ${c.where}: ${how}` }];
  }
  return [
    {
      check: 'build-cache',
      verdict: 'warn',
      detail: `registry ${c.where}: BuildKit reads and writes it with the docker config's credentials, which have none for ${cred.host}; run docker login ${cred.host} in the job (in GitLab CI: echo "$CI_REGISTRY_PASSWORD" | docker login "$CI_REGISTRY" -u "$CI_REGISTRY_USER" --password-stdin), or the cache is neither read nor written`,
    },
  ];
}

/** Informational: never fails (a shared daemon collects one builder per configuration). */
export function buildersCheck(f: DoctorFacts): DoctorCheck[] {
  if (!f.builders) return [];
  if (!f.builders.ok) return [{ check: 'builders', verdict: 'warn', detail: problemText(f.builders.problem) }];
  const { names, volumes, volumeBytes, leases } = f.builders.value;
  const guard = leasesCheck(leases);
  if (!names.length) return [{ check: 'builders', verdict: 'ok', detail: 'no builder made by buildx-bootstrap in this buildx store' }, guard];
  const space = volumeBytes === undefined ? 'state volume size unknown (docker system df failed)' : `${volumes} state volume${volumes === 1 ? '' : 's'} take ${formatBytes(volumeBytes)}`;
  const list = names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')}, …`;
  return [{ check: 'builders', verdict: 'ok', detail: `${names.length} made by buildx-bootstrap (${list}); ${space} — rm --stale removes idle ones unused for 7d` }, guard];
}

/** What keeps a builder from being removed under a build, and what does not (README "Shared runners"). */
function leasesCheck(leases: BuildersFacts['leases']): DoctorCheck {
  const now = leases ? `${leases.locks} lock${leases.locks === 1 ? '' : 's'} and ${leases.holds} prefixed build${leases.holds === 1 ? '' : 's'} held in the daemon now` : 'leases in the daemon could not be listed';
  return {
    check: 'leases',
    verdict: 'ok',
    detail: `${now}; builds run through buildx-bootstrap -- … hold their builder, a raw docker buildx build --builder NAME does not: a run recreating that builder cuts it if it starts between the drain check and buildx rm`,
  };
}

/** 0 without failures, else the code of the first failing check (see the top of this file). */
export function doctorExitCode(checks: readonly DoctorCheck[]): number {
  const failed = checks.find((c) => c.verdict === 'fail');
  return failed ? DOCTOR_EXIT_CODES[failed.check] : ExitCode.ok;
}
