// What we tell users to change in dockerd or in their GitLab DinD job, from one place: the
// messages (create's docker-driver warning, doctor, the unreachable-daemon hint) and the snippet
// `init` writes (templates/gitlab-ci.yml, filled from GITLAB_DIND and dindServiceCommand) cannot
// disagree. test/docker/dockerd-advice.test.ts holds every message's suggestion to the template.
import type { MirrorConfig } from '../config/schema.js';
import { endpointScheme, hostWithoutPort } from '../registry/reference.js';

/** The GitLab DinD job the snippet sets up (facts §9). */
export const GITLAB_DIND = {
  jobImage: 'docker:27-cli',
  service: 'docker:27-dind',
  /** What the docker image's entrypoint derives with TLS; the Kubernetes executor needs it set. */
  dockerHost: 'tcp://docker:2376',
  tlsCertdir: '/certs',
  certPath: '/certs/client',
} as const;

export interface DockerdMirrorFix {
  /** `registry-mirrors` entries, with the scheme the mirror really speaks. */
  registryMirrors: string[];
  /** `insecure-registries` entries dockerd needs for them (scheme kept, see below). */
  insecureRegistries: string[];
}

/** The scheme we speak to the mirror ourselves (loopback or `http: true` → plain HTTP). */
function mirrorScheme(m: Pick<MirrorConfig, 'host' | 'http' | 'ca' | 'insecure'>): 'http' | 'https' {
  return endpointScheme({ host: m.host, http: m.http, insecure: m.insecure, ...(m.ca ? { ca: m.ca } : {}) });
}

/**
 * dockerd treats 127.0.0.0/8 as insecure by default (20.10: `InsecureRegistryCIDRs
 * ["127.0.0.0/8"]`, checked on these machines; `localhost` resolves into it), and its embedded
 * BuildKit speaks plain HTTP to such hosts (containerd MatchLocalhost). `::1` is not in that
 * range, so it needs an entry like any other host.
 */
function isDockerdLoopback(host: string): boolean {
  const name = hostWithoutPort(host);
  return name === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * The dockerd settings that make it pull Docker Hub images through these mirrors as we do.
 * `insecure-registries` entries keep their scheme: dockerd strips it for its own pulls (with a
 * warning), while the docker driver's embedded BuildKit reads it — `http://` → plain HTTP,
 * `https://` → unverified TLS — and maps a scheme-less `host:port` to no host at all
 * (MOBY@v20.10.24 daemon/daemon.go RegistryHosts, facts §5).
 */
export function dockerdMirrorFix(mirrors: Pick<MirrorConfig, 'host' | 'http' | 'ca' | 'insecure'>[]): DockerdMirrorFix {
  const registryMirrors = mirrors.map((m) => `${mirrorScheme(m)}://${m.host}`);
  const insecureRegistries = mirrors
    .filter((m) => (mirrorScheme(m) === 'http' || m.insecure) && !isDockerdLoopback(m.host))
    .map((m) => `${mirrorScheme(m)}://${m.host}`);
  return { registryMirrors, insecureRegistries };
}

const list = (values: string[]): string => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;

/** `"registry-mirrors": [...]` (and `"insecure-registries": [...]` when needed), for daemon.json. */
export function daemonJsonFix(fix: DockerdMirrorFix): string {
  return [`"registry-mirrors": ${list(fix.registryMirrors)}`, ...(fix.insecureRegistries.length ? [`"insecure-registries": ${list(fix.insecureRegistries)}`] : [])].join(', ');
}

/** The DinD service's `command: [...]` with the same settings as flags. */
export function dindServiceCommand(fix: DockerdMirrorFix): string {
  return `command: ${list([...fix.registryMirrors.flatMap((u) => ['--registry-mirror', u]), ...fix.insecureRegistries.flatMap((u) => ['--insecure-registry', u])])}`;
}

/** The `{{bxb.…}}` values templates/gitlab-ci.yml is filled with (by `init`). */
export function gitlabDindTemplateValues(): Record<string, string> {
  const example = { ca: '', insecure: false };
  return {
    dindJobImage: GITLAB_DIND.jobImage,
    dindService: GITLAB_DIND.service,
    dindDockerHost: GITLAB_DIND.dockerHost,
    dindTlsCertdir: GITLAB_DIND.tlsCertdir,
    dindCertPath: GITLAB_DIND.certPath,
    dindMirrorCommand: dindServiceCommand(dockerdMirrorFix([{ ...example, host: 'mirror.example.com', http: false }])),
    dindHttpMirrorCommand: dindServiceCommand(dockerdMirrorFix([{ ...example, host: 'mirror.example.com:5000', http: true }])),
  };
}
