// `buildx-bootstrap doctor`: the verdicts as tables over plain facts (pure), then the whole
// command in-process against a real docker-registry, a real dockerd 20.10 (unix socket and a
// DinD-like TLS one) and the emulated buildx plugin.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, type Config, type MirrorConfig } from '../../src/config/schema.js';
import { doctorExitCode, evaluateDoctor, type CandidateFacts, type CheckName, type DoctorCheck, type DoctorFacts } from '../../src/doctor/checks.js';
import { renderDoctorReport, summarizeDoctor } from '../../src/doctor/report.js';
import type { Lockfile } from '../../src/resolve/lockfile.js';
import { requireBinaries } from '../helpers/integration.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { installFakeBuildx, type FakeBuildxVersion } from '../helpers/buildx.js';
import { pushEngineTags, pushImage, engineImageForTag } from '../helpers/engine-image.js';
import { startHttpStub, startRefusingPort } from '../helpers/net.js';

// ---- pure: verdicts from facts ---------------------------------------------------------------

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function mirror(host: string, extra: Partial<MirrorConfig> = {}): MirrorConfig {
  return { host, path: '', for: 'docker.io', ca: '', http: false, insecure: false, ...extra };
}

function cfg(over: Partial<Config> = {}): Config {
  return { ...defaultConfig(), lockfile: '/p/buildx-bootstrap.lock.json', ...over };
}

function hub(over: Partial<CandidateFacts> = {}): CandidateFacts {
  return { label: 'docker.io/moby/buildkit', registry: 'docker.io', repository: 'moby/buildkit', kind: 'upstream', origin: 'upstream', tag: 'buildx-stable-1', digest: D1, authenticated: false, ms: 40, ...over };
}

function harbor(over: Partial<CandidateFacts> = {}): CandidateFacts {
  return {
    label: 'harbor.corp.example/dockerhub-proxy/moby/buildkit',
    registry: 'harbor.corp.example',
    repository: 'dockerhub-proxy/moby/buildkit',
    kind: 'mirror',
    origin: 'config',
    tag: 'buildx-stable-1',
    digest: D1,
    authenticated: true,
    ms: 12,
    ...over,
  };
}

const LOCK: Lockfile = { lockfileVersion: 1, image: 'docker.io/moby/buildkit', spec: 'buildx-stable-1', rootless: false, tag: 'buildx-stable-1', digest: D1, source: 'docker.io/moby/buildkit' };

function facts(over: Partial<DoctorFacts> = {}, config: Config = cfg()): DoctorFacts {
  return {
    config: { ok: true, value: { file: '/p/.buildx-bootstraprc.yaml', config } },
    dockerEndpoint: 'unix:///run/docker.sock',
    daemon: { ok: true, value: { serverVersion: '20.10.24+dfsg1', platform: 'linux/amd64' } },
    buildx: { ok: true, value: { version: '0.19.3', raw: 'v0.19.3' } },
    dockerHost: undefined,
    tls: undefined,
    daemonMirrors: [],
    candidates: [hub()],
    lock: { state: 'present', file: '/p/buildx-bootstrap.lock.json', lock: LOCK, differences: [] },
    ...over,
  };
}

const only = (checks: DoctorCheck[], name: CheckName): DoctorCheck[] => checks.filter((c) => c.check === name);
const one = (f: DoctorFacts, name: CheckName): DoctorCheck => {
  const found = only(evaluateDoctor(f), name);
  if (found.length !== 1) throw new Error(`expected one ${name} check, got ${found.length}`);
  return found[0]!;
};

interface Row {
  name: string;
  facts: DoctorFacts;
  check: CheckName;
  verdict: DoctorCheck['verdict'];
  detail: RegExp | string;
}

const ROWS: Row[] = [
  { name: 'config found', facts: facts(), check: 'config', verdict: 'ok', detail: '/p/.buildx-bootstraprc.yaml' },
  {
    name: 'config invalid',
    facts: facts({ config: { ok: false, problem: { message: 'invalid configuration: x: mirrors[0].host: is required', hint: 'fix the listed keys' } } }),
    check: 'config',
    verdict: 'fail',
    detail: 'invalid configuration: x: mirrors[0].host: is required — fix the listed keys',
  },
  { name: 'docker reachable', facts: facts(), check: 'docker', verdict: 'ok', detail: '20.10.24+dfsg1 (linux/amd64) at unix:///run/docker.sock' },
  {
    name: 'docker 29 with the containerd image store',
    facts: facts({ daemon: { ok: true, value: { serverVersion: '29.0.0', platform: 'linux/amd64' } }, imageStore: 'containerd' }),
    check: 'docker',
    verdict: 'ok',
    detail: '29.0.0 (linux/amd64, containerd image store) at unix:///run/docker.sock',
  },
  {
    name: 'docker unreachable',
    facts: facts({ daemon: { ok: false, problem: { message: 'docker is not reachable: Cannot connect', hint: 'start dockerd' } } }),
    check: 'docker',
    verdict: 'fail',
    detail: 'docker is not reachable: Cannot connect — start dockerd',
  },
  { name: 'buildx current', facts: facts(), check: 'buildx', verdict: 'ok', detail: 'v0.19.3' },
  {
    name: 'buildx before --buildkitd-config',
    facts: facts({ buildx: { ok: true, value: { version: '0.12.1', raw: 'v0.12.1' } } }),
    check: 'buildx',
    verdict: 'warn',
    detail: /^v0\.12\.1 predates --buildkitd-config \(buildx 0\.13\.0\); buildx-bootstrap passes --config instead — upgrade/,
  },
  {
    name: 'buildx older than MIN_BUILDX',
    facts: facts({ buildx: { ok: true, value: { version: '0.9.1', raw: 'v0.9.1' } } }),
    check: 'buildx',
    verdict: 'fail',
    detail: /^v0\.9\.1 is older than 0\.10\.0/,
  },
  {
    name: 'buildx missing',
    facts: facts({ buildx: { ok: false, problem: { message: 'docker buildx is not installed', hint: 'install the docker-buildx-plugin package' } } }),
    check: 'buildx',
    verdict: 'fail',
    detail: 'docker buildx is not installed — install the docker-buildx-plugin package',
  },
  { name: 'no DinD', facts: facts(), check: 'context', verdict: 'skip', detail: /not Docker-in-Docker/ },
  { name: 'DinD without TLS', facts: facts({ dockerHost: 'tcp://docker:2375' }), check: 'context', verdict: 'ok', detail: 'DOCKER_HOST=tcp://docker:2375 without TLS: buildx uses it as it is' },
  {
    name: 'DinD with TLS, context to be made',
    facts: facts({ dockerHost: 'tcp://docker:2376', tls: { tls: { host: 'tcp://docker:2376', certPath: '/certs/client' }, contextName: 'buildx-bootstrap-0123456789', contextExists: false, missingFiles: [] } }),
    check: 'context',
    verdict: 'ok',
    detail: /TLS from the environment, which buildx refuses for container builders; buildx-bootstrap will create the docker context buildx-bootstrap-0123456789$/,
  },
  {
    name: 'DinD with TLS, context exists',
    facts: facts({ tls: { tls: { host: 'tcp://docker:2376', certPath: '/certs/client' }, contextName: 'buildx-bootstrap-0123456789', contextExists: true, missingFiles: [] } }),
    check: 'context',
    verdict: 'ok',
    detail: /uses the docker context buildx-bootstrap-0123456789 \(exists\)$/,
  },
  {
    name: 'DinD with TLS, certs missing',
    facts: facts({ tls: { tls: { host: 'tcp://docker:2376', certPath: '/certs/client' }, contextName: 'x', contextExists: false, missingFiles: ['cert.pem', 'key.pem'] } }),
    check: 'context',
    verdict: 'fail',
    detail: /cert\.pem, key\.pem missing in \/certs\/client — point DOCKER_CERT_PATH/,
  },
  { name: 'lockfile missing', facts: facts({ lock: { state: 'missing', file: '/p/l.json' } }), check: 'lockfile', verdict: 'warn', detail: /^no lockfile at \/p\/l\.json: .* run buildx-bootstrap lock and commit the file$/ },
  {
    name: 'lockfile broken',
    facts: facts({ lock: { state: 'broken', file: '/p/l.json', problem: { message: 'invalid configuration: /p/l.json: cannot be parsed', hint: 'delete the lockfile' } } }),
    check: 'lockfile',
    verdict: 'fail',
    detail: 'invalid configuration: /p/l.json: cannot be parsed — delete the lockfile',
  },
  {
    name: 'lockfile stale',
    facts: facts({ lock: { state: 'present', file: '/p/l.json', lock: LOCK, differences: ['buildkit.version is "^0.18", the lockfile has "buildx-stable-1"'] } }),
    check: 'lockfile',
    verdict: 'fail',
    detail: '/p/l.json is stale: buildkit.version is "^0.18", the lockfile has "buildx-stable-1" — run buildx-bootstrap lock',
  },
  {
    name: 'lockfile fresh and served by the first reachable candidate',
    facts: facts({ candidates: [harbor({ failure: { kind: 'refused', stage: 'ping', message: 'refused' }, digest: undefined }), hub()] }),
    check: 'lockfile',
    verdict: 'ok',
    detail: `/p/buildx-bootstrap.lock.json pins buildx-stable-1 ${D1.slice(0, 19)}…, still served by docker.io/moby/buildkit`,
  },
  {
    name: 'locked digest no longer served',
    facts: facts({ candidates: [hub({ digest: D2 })] }),
    check: 'lockfile',
    verdict: 'fail',
    detail: /^docker\.io\/moby\/buildkit serves sha256:2{12}… for buildx-stable-1, .* pins sha256:1{12}…: a retag or tampering/,
  },
  {
    name: 'lockfile fresh, nothing reachable',
    facts: facts({ candidates: [hub({ failure: { kind: 'timeout', stage: 'ping', message: 'no answer' }, digest: undefined })] }),
    check: 'lockfile',
    verdict: 'warn',
    detail: /not verified: no registry answered$/,
  },
  { name: 'Docker Hub quota from the HEAD', facts: facts({ candidates: [hub({ rateLimit: { limit: 100, remaining: 76, windowSeconds: 21600 } })] }), check: 'quota', verdict: 'ok', detail: 'docker.io/moby/buildkit: 76 of 100 pulls left per 6h (a HEAD does not count)' },
  { name: 'Docker Hub quota nearly used up', facts: facts({ candidates: [hub({ rateLimit: { limit: 100, remaining: 3, windowSeconds: 21600 } })] }), check: 'quota', verdict: 'warn', detail: /^docker\.io\/moby\/buildkit: 3 of 100 pulls left per 6h — almost used up/ },
  { name: 'Docker Hub quota used up, nothing else', facts: facts({ candidates: [hub({ rateLimit: { limit: 100, remaining: 0, windowSeconds: 21600 } })] }), check: 'quota', verdict: 'fail', detail: /0 of 100 pulls left per 6h — pulls fail with toomanyrequests/ },
  { name: 'Docker Hub quota used up, a mirror serves', facts: facts({ candidates: [harbor(), hub({ rateLimit: { limit: 100, remaining: 0 } })] }), check: 'quota', verdict: 'warn', detail: /0 of 100 pulls left — pulls fail/ },
  { name: 'Docker Hub answers 429', facts: facts({ candidates: [hub({ failure: { kind: 'rate-limited', stage: 'manifest', message: 'toomanyrequests' }, digest: undefined })] }), check: 'quota', verdict: 'fail', detail: /pull rate limit reached \(429\)/ },
  { name: 'Docker Hub without limit headers', facts: facts(), check: 'quota', verdict: 'ok', detail: 'docker.io/moby/buildkit: no pull limit reported (unlimited or authenticated account)' },
  { name: 'no Docker Hub candidate', facts: facts({ candidates: [harbor()] }), check: 'quota', verdict: 'skip', detail: 'no candidate is Docker Hub' },
  { name: 'no mirrors anywhere', facts: facts(), check: 'mirrors', verdict: 'skip', detail: 'no Docker Hub mirror configured, and dockerd has none' },
  { name: 'mirrors: docker unreachable', facts: facts({ daemonMirrors: undefined }), check: 'mirrors', verdict: 'skip', detail: 'docker is not reachable' },
  {
    name: 'mirrors: same host on both sides',
    facts: facts({ daemonMirrors: ['https://mirror.corp.example/'] }, cfg({ mirrors: [mirror('mirror.corp.example')] })),
    check: 'mirrors',
    verdict: 'ok',
    detail: 'dockerd and BuildKit both mirror Docker Hub through mirror.corp.example',
  },
  {
    name: 'mirrors: only a path mirror',
    facts: facts({}, cfg({ mirrors: [mirror('harbor.corp.example', { path: 'dockerhub-proxy' })] })),
    check: 'mirrors',
    verdict: 'ok',
    detail: 'harbor.corp.example/dockerhub-proxy has a path and cannot be a dockerd mirror (registry-mirrors take hosts only); BuildKit uses it',
  },
  {
    name: 'mirrors: a mirror for another registry is not compared',
    facts: facts({}, cfg({ mirrors: [mirror('ghcr-cache.corp.example', { for: 'ghcr.io' })] })),
    check: 'mirrors',
    verdict: 'skip',
    detail: 'no Docker Hub mirror configured, and dockerd has none',
  },
];

t.test('verdicts', async (t) => {
  for (const row of ROWS) {
    const c = one(row.facts, row.check);
    t.equal(c.verdict, row.verdict, `${row.name}: verdict`);
    if (typeof row.detail === 'string') t.equal(c.detail, row.detail, `${row.name}: detail`);
    else t.match(c.detail, row.detail, `${row.name}: detail`);
  }
});

t.test('registry: one line per candidate; a dead one is a warning while another serves, a failure when none does', async (t) => {
  const dead = harbor({ failure: { kind: 'auth', stage: 'ping', message: '401 Unauthorized' }, digest: undefined, tag: undefined, ms: 8 });
  const both = only(evaluateDoctor(facts({ candidates: [dead, hub()] })), 'registry');
  t.same(both.map((c) => c.verdict), ['warn', 'ok']);
  t.equal(both[0]!.detail, 'harbor.corp.example/dockerhub-proxy/moby/buildkit: auth after 8 ms: 401 Unauthorized — credentials missing or refused: docker login harbor.corp.example, DOCKER_AUTH_CONFIG, or the CI registry variables');
  t.equal(both[1]!.detail, `docker.io/moby/buildkit (upstream): buildx-stable-1 ${D1.slice(0, 19)}… (anonymous, 40 ms)`);
  const none = only(evaluateDoctor(facts({ candidates: [dead, hub({ failure: { kind: 'not-found', stage: 'manifest', message: '404 manifest unknown' }, digest: undefined })] })), 'registry');
  t.same(none.map((c) => c.verdict), ['fail', 'fail']);
  const hinted = only(evaluateDoctor(facts({ candidates: [hub({ failure: { kind: 'auth', stage: 'ping', message: 'registry-1.docker.io: 401 — no credentials for docker.io; add them' }, digest: undefined })] })), 'registry');
  t.equal(hinted[0]!.detail, 'docker.io/moby/buildkit (upstream): auth after 40 ms: registry-1.docker.io: 401 — no credentials for docker.io; add them', "the client's own hint is not doubled");
  t.match(none[1]!.detail, /^docker\.io\/moby\/buildkit \(upstream\): not-found \(manifest buildx-stable-1\) after 40 ms: 404 manifest unknown — the registry does not have it/);
  const proxy = only(evaluateDoctor(facts({ candidates: [harbor({ origin: 'gitlab-dependency-proxy' })] })), 'registry');
  t.match(proxy[0]!.detail, /^harbor\.corp\.example\/dockerhub-proxy\/moby\/buildkit \(gitlab-dependency-proxy\): .* \(authenticated, 12 ms\)$/);
  const nothing = only(evaluateDoctor(facts({ candidates: [] }, cfg({ upstream: false }))), 'registry');
  t.same(nothing.map((c) => c.verdict), ['fail']);
  t.match(nothing[0]!.detail, /no registry to get moby\/buildkit from: .* upstream is false/);
});

t.test('mirrors: a host mirror dockerd lacks gets both fixes; a dockerd-only mirror is named; path mirrors are explained', async (t) => {
  const config = cfg({ mirrors: [mirror('mirror.corp.example'), mirror('plain.corp.example', { http: true }), mirror('harbor.corp.example', { path: 'dockerhub-proxy' })] });
  const checks = only(evaluateDoctor(facts({ daemonMirrors: ['https://other.corp.example/'] }, config)), 'mirrors');
  t.same(checks.map((c) => c.verdict), ['warn', 'warn', 'ok']);
  t.equal(
    checks[0]!.detail,
    'dockerd does not use mirror.corp.example, plain.corp.example: docker pull and docker-driver builds go to Docker Hub — add "registry-mirrors": ["https://mirror.corp.example", "http://plain.corp.example"], "insecure-registries": ["http://plain.corp.example"] to daemon.json, or for GitLab DinD the service command: ["--registry-mirror", "https://mirror.corp.example", "--registry-mirror", "http://plain.corp.example", "--insecure-registry", "http://plain.corp.example"]',
  );
  t.equal(checks[1]!.detail, 'dockerd mirrors Docker Hub through other.corp.example but container builders do not — add it to mirrors: (host: other.corp.example)');
  t.match(checks[2]!.detail, /^harbor\.corp\.example\/dockerhub-proxy has a path and cannot be a dockerd mirror/);
});

t.test('credential warnings are reported as such', async (t) => {
  const checks = only(evaluateDoctor({ ...facts(), credentialWarnings: ['cannot read /h/.docker/config.json: Unexpected token'] }), 'credentials');
  t.same(checks, [{ check: 'credentials', verdict: 'warn', detail: 'cannot read /h/.docker/config.json: Unexpected token' }]);
  t.same(only(evaluateDoctor(facts()), 'credentials'), [], 'none without warnings');
});

t.test('per registry host BuildKit pulls from: whether it will have credentials and where they come from, never the value', async (t) => {
  const checks = only(
    evaluateDoctor({
      ...facts(),
      buildCredentials: [
        { host: 'gitlab.example.com:443', source: 'CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD', handedOver: true },
        { host: 'harbor.corp.example', source: 'credHelpers (docker-credential-corp)', handedOver: false },
        { host: 'docker.io', source: undefined, handedOver: false },
      ],
    }),
    'credentials',
  );
  t.same(
    checks.map((c) => [c.verdict, c.detail]),
    [
      ['ok', 'gitlab.example.com:443: BuildKit gets credentials from CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD, handed over by buildx-bootstrap (prefix mode, or eval "$(buildx-bootstrap env)" before your own build)'],
      ['ok', 'harbor.corp.example: BuildKit gets credentials from credHelpers (docker-credential-corp) (buildx reads it from the docker config)'],
      ['ok', 'docker.io: no credentials known — BuildKit pulls anonymously'],
    ],
  );
});

t.test('a failed config skips what needs it but still checks docker and buildx', async (t) => {
  const checks = evaluateDoctor(facts({ config: { ok: false, problem: { message: 'bad' } }, candidates: [], lock: undefined }));
  t.same(
    checks.map((c) => [c.check, c.verdict]),
    [
      ['config', 'fail'],
      ['docker', 'ok'],
      ['buildx', 'ok'],
      ['context', 'skip'],
      ['registry', 'skip'],
      ['quota', 'skip'],
      ['mirrors', 'skip'],
      ['lockfile', 'skip'],
    ],
  );
});

t.test('exit code: the first failing check in report order decides', async (t) => {
  const c = (check: CheckName, verdict: DoctorCheck['verdict']): DoctorCheck => ({ check, verdict, detail: '' });
  const table: [DoctorCheck[], number][] = [
    [[c('docker', 'ok'), c('registry', 'warn'), c('lockfile', 'warn')], 0],
    [[c('config', 'fail'), c('docker', 'fail')], 2],
    [[c('docker', 'fail'), c('registry', 'fail'), c('lockfile', 'fail')], 1],
    [[c('buildx', 'fail')], 1],
    [[c('context', 'fail')], 1],
    [[c('docker', 'ok'), c('registry', 'fail'), c('lockfile', 'fail')], 3],
    [[c('quota', 'fail')], 3],
    [[c('registry', 'ok'), c('lockfile', 'fail')], 4],
  ];
  for (const [checks, code] of table) t.equal(doctorExitCode(checks), code, checks.map((x) => `${x.check}:${x.verdict}`).join(' '));
});

t.test('report: aligned columns, or JSON with check/verdict/detail only', async (t) => {
  const checks: DoctorCheck[] = [
    { check: 'docker', verdict: 'ok', detail: '20.10.24+dfsg1 (linux/amd64) at unix:///run/docker.sock' },
    { check: 'buildx', verdict: 'fail', detail: 'docker buildx is not installed —\n install it' },
    { check: 'lockfile', verdict: 'warn', detail: 'no lockfile' },
  ];
  t.equal(
    renderDoctorReport(checks),
    'ok    docker        20.10.24+dfsg1 (linux/amd64) at unix:///run/docker.sock\n' +
      'fail  buildx        docker buildx is not installed — install it\n' +
      'warn  lockfile      no lockfile\n',
  );
  t.same(JSON.parse(renderDoctorReport(checks, { json: true })), checks);
  t.equal(summarizeDoctor(checks), '1 ok, 1 warning, 1 failure, 0 skipped');
});

// ---- in-process, against real parts --------------------------------------------------------

const REPO = 'moby/buildkit';

interface Line {
  verdict: string;
  check: string;
  detail: string;
}

function lines(r: CliResult): Line[] {
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^(ok|warn|fail|skip) +(\S+) +(.*)$/.exec(l);
      if (!m) throw new Error(`not a doctor line: ${JSON.stringify(l)}`);
      return { verdict: m[1]!, check: m[2]!, detail: m[3]! };
    });
}

function line(r: CliResult, check: string, index = 0): Line {
  const found = lines(r).filter((l) => l.check === check)[index];
  if (!found) throw new Error(`no ${check} line in:\n${r.stdout}\n${r.stderr}`);
  return found;
}

t.test('in-process against a real registry, dockerd and the emulated buildx', async (t) => {
  if (!requireBinaries(t, ['docker', 'dockerd', 'docker-registry', 'openssl', 'busybox'])) return;
  const upstream = await startRegistry(t);
  const images = await pushEngineTags(upstream.url, { tags: { 'v0.17.3': {}, 'v0.18.2': {} } });
  const image = `${upstream.host}/${REPO}`;
  const daemonMirrorPort = (await startRefusingPort()).port;
  // One daemon for most tests: starting one costs seconds. It has a Docker Hub mirror of its own.
  const dockerd: Dockerd = await startDockerd(t, { extraArgs: ['--registry-mirror', `http://127.0.0.1:${daemonMirrorPort}`] });
  const fast = { probe: '1500ms', hedge: '100ms' };

  interface Project {
    cwd: string;
    env: Record<string, string | undefined>;
  }

  /** A project with a config, its own DOCKER_CONFIG (with the emulated buildx unless `buildx: false`) and the test dockerd. */
  const project = (t: Test, config: Record<string, unknown>, opts: { buildx?: FakeBuildxVersion | false; dockerConfig?: unknown; daemon?: Dockerd | 'none' } = {}): Project => {
    const cwd = t.testdir({ '.buildx-bootstraprc.json': JSON.stringify({ timeouts: fast, ...config }, null, 2) });
    let dockerConfigDir = join(cwd, '.docker');
    const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: cwd };
    if (opts.buildx !== false) {
      const fake = installFakeBuildx(t, { version: opts.buildx ?? '0.36.0' });
      dockerConfigDir = fake.dockerConfig;
      Object.assign(env, fake.env);
    } else mkdirSync(dockerConfigDir, { recursive: true });
    env.DOCKER_CONFIG = dockerConfigDir;
    if (opts.dockerConfig) writeFileSync(join(dockerConfigDir, 'config.json'), JSON.stringify(opts.dockerConfig));
    const daemon = opts.daemon ?? dockerd;
    if (daemon === 'none') env.DOCKER_HOST = `unix://${join(cwd, 'no-docker.sock')}`;
    else Object.assign(env, daemon.env);
    return { cwd, env };
  };
  const doctor = (p: Project, ...argv: string[]): Promise<CliResult> => runCli(['doctor', ...argv], p);

  t.test('a healthy setup: every check ok or skipped, exit 0', async (t) => {
    const p = project(t, { buildkit: { version: '^0.18', image }, mirrors: [{ host: `127.0.0.1:${daemonMirrorPort}`, for: 'docker.io', http: true }] });
    t.equal((await runCli(['lock'], p)).code, 0, 'lockfile written');
    const r = await doctor(p);
    t.equal(r.code, 0, r.stdout + r.stderr);
    t.same(lines(r).map((l) => [l.check, l.verdict]), [
      ['config', 'ok'],
      ['docker', 'ok'],
      ['buildx', 'ok'],
      ['context', 'skip'],
      ['registry', 'ok'],
      ['credentials', 'ok'],
      ['credentials', 'ok'],
      ['quota', 'skip'],
      ['mirrors', 'ok'],
      ['lockfile', 'ok'],
      ['builders', 'ok'],
      ['leases', 'ok'],
    ]);
    t.same(
      lines(r).filter((l) => l.check === 'credentials').map((l) => l.detail),
      [`127.0.0.1:${daemonMirrorPort}: no credentials known — BuildKit pulls anonymously`, 'docker.io: no credentials known — BuildKit pulls anonymously'],
      'what BuildKit will have for the mirror and the registry it mirrors',
    );
    t.equal(line(r, 'builders').detail, 'no builder made by buildx-bootstrap in this buildx store');
    t.match(line(r, 'leases').detail, /^0 locks and 0 prefixed builds held in the daemon now; .*a raw docker buildx build --builder NAME does not/);
    t.match(line(r, 'docker').detail, new RegExp(`^20\\.10\\.\\S+ \\(linux/\\w+, classic image store\\) at ${dockerd.host.replace(/[/.]/g, '\\$&')}$`), 'version, platform and image store');
    t.equal(line(r, 'buildx').detail, 'v0.36.0');
    t.match(line(r, 'registry').detail, new RegExp(`^${image}\\.?.* \\(upstream\\): v0\\.18\\.2 ${images['v0.18.2']!.digest.slice(0, 19)}… \\(anonymous, \\d+ ms\\)$`));
    t.equal(line(r, 'mirrors').detail, `dockerd and BuildKit both mirror Docker Hub through 127.0.0.1:${daemonMirrorPort}`);
    t.equal(line(r, 'lockfile').detail, `${join(p.cwd, 'buildx-bootstrap.lock.json')} pins v0.18.2 ${images['v0.18.2']!.digest.slice(0, 19)}…, still served by ${image}`);
    t.match(r.stderr, /doctor: 10 ok, 0 warnings, 0 failures, 2 skipped/);
  });

  t.test('--json: an array of {check, verdict, detail}', async (t) => {
    const r = await doctor(project(t, { buildkit: { version: 'v0.17.3', image } }), '--json');
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { check: string; verdict: string; detail: string }[];
    t.ok(Array.isArray(out));
    for (const c of out) t.same(Object.keys(c), ['check', 'verdict', 'detail']);
    t.same(out.find((c) => c.check === 'lockfile')?.verdict, 'warn', 'no lockfile yet');
    t.match(out.find((c) => c.check === 'registry')?.detail, `: v0.17.3 ${images['v0.17.3']!.digest.slice(0, 19)}`);
  });

  t.test('no buildx plugin in DOCKER_CONFIG: buildx fails with the install hint, exit 1', async (t) => {
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image } }, { buildx: false }));
    t.equal(r.code, 1);
    t.equal(line(r, 'buildx').verdict, 'fail');
    t.match(line(r, 'buildx').detail, /^docker buildx is not installed — install the docker-buildx-plugin package/);
    t.equal(line(r, 'docker').verdict, 'ok', 'the daemon is still checked');
    t.equal(line(r, 'registry').verdict, 'ok', 'registries are still checked');
  });

  t.test('buildx 0.12: a warning about --buildkitd-config, exit 0', async (t) => {
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image } }, { buildx: '0.12.1' }));
    t.equal(r.code, 0, r.stdout);
    t.equal(line(r, 'buildx').verdict, 'warn');
    t.match(line(r, 'buildx').detail, /^v0\.12\.1 predates --buildkitd-config/);
  });

  t.test('docker unreachable: docker fails (exit 1), mirrors skipped, registries and lockfile still checked', async (t) => {
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image } }, { daemon: 'none' }));
    t.equal(r.code, 1);
    t.equal(line(r, 'docker').verdict, 'fail');
    t.match(line(r, 'docker').detail, /^docker is not reachable: .* — start dockerd or point DOCKER_HOST at it/);
    t.same([line(r, 'mirrors').verdict, line(r, 'mirrors').detail], ['skip', 'docker is not reachable']);
    t.equal(line(r, 'registry').verdict, 'ok');
    t.equal(line(r, 'lockfile').verdict, 'warn');
  });

  t.test('a dead mirror before a good upstream: warn for the mirror with its failure kind, exit 0', async (t) => {
    const refusing = await startRefusingPort();
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [{ host: refusing.host, for: upstream.host }] }));
    t.equal(r.code, 0, r.stdout);
    t.same(lines(r).filter((l) => l.check === 'registry').map((l) => l.verdict), ['warn', 'ok']);
    t.match(line(r, 'registry', 0).detail, new RegExp(`^${refusing.host}/${REPO}: refused after \\d+ ms: .* — nothing listens there`));
  });

  t.test('no candidate can serve the image: registry fails, exit 3', async (t) => {
    const refusing = await startRefusingPort();
    const empty = await startRegistry(t);
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image: `${refusing.host}/${REPO}` }, mirrors: [{ host: empty.host, for: refusing.host }] }));
    t.equal(r.code, 3, r.stdout);
    const reg = lines(r).filter((l) => l.check === 'registry');
    t.same(reg.map((l) => l.verdict), ['fail', 'fail']);
    t.match(reg[0]!.detail, /not-found \(manifest v0\.18\.2\) after \d+ ms/);
    t.match(reg[1]!.detail, /\(upstream\): refused after/);
  });

  t.test('authentication: refused without credentials, "authenticated" with them, the secret never shown', async (t) => {
    const password = 's3cret-Pa55word';
    const locked = await startRegistry(t, { basicAuth: { ci: password } });
    await pushImage(locked.url, REPO, ['v0.18.2'], images['v0.18.2']!, { auth: { username: 'ci', password } });
    const config = { buildkit: { version: 'v0.18.2', image: `${locked.host}/${REPO}` } };
    const without = await doctor(project(t, config));
    t.equal(without.code, 3, without.stdout);
    t.match(line(without, 'registry').detail, new RegExp(`\\(upstream\\): auth after \\d+ ms: .*401.* — .*${locked.host}`));
    t.equal(line(without, 'registry').detail.split(' — ').length, 2, 'one hint');
    const auth = Buffer.from(`ci:${password}`).toString('base64');
    const withCreds = await doctor(project(t, config, { dockerConfig: { auths: { [locked.host]: { auth } } } }));
    t.equal(withCreds.code, 0, withCreds.stdout);
    t.match(line(withCreds, 'registry').detail, /\(authenticated, \d+ ms\)$/);
    for (const r of [without, withCreds]) {
      t.notMatch(r.stdout + r.stderr, password);
      t.notMatch(r.stdout + r.stderr, auth);
    }
  });

  t.test('a stale lockfile fails with its differences, exit 4', async (t) => {
    const p = project(t, { buildkit: { version: 'v0.18.2', image } });
    t.equal((await runCli(['lock'], p)).code, 0);
    const r = await doctor(p, '--buildkit-version', 'v0.17.3');
    t.equal(r.code, 4, r.stdout);
    t.match(line(r, 'lockfile').detail, /buildx-bootstrap\.lock\.json is stale: buildkit\.version is "v0\.17\.3", the lockfile has "v0\.18\.2" — run buildx-bootstrap lock$/);
  });

  t.test('the locked tag now carries another digest: lockfile fails naming both, exit 4', async (t) => {
    const moving = await startRegistry(t);
    await pushImage(moving.url, REPO, ['v0.18.2'], images['v0.18.2']!);
    const p = project(t, { buildkit: { version: 'v0.18.2', image: `${moving.host}/${REPO}` } });
    t.equal((await runCli(['lock'], p)).code, 0);
    const retagged = engineImageForTag('v0.18.2', { version: 'v0.18.2', single: true });
    await pushImage(moving.url, REPO, ['v0.18.2'], retagged);
    const r = await doctor(p);
    t.equal(r.code, 4, r.stdout);
    t.equal(line(r, 'registry').verdict, 'ok', 'the registry itself answers');
    t.match(line(r, 'lockfile').detail, `serves ${retagged.digest.slice(0, 19)}… for v0.18.2`);
    t.match(line(r, 'lockfile').detail, `pins ${images['v0.18.2']!.digest.slice(0, 19)}…: a retag or tampering`);
  });

  t.test('pull quota from the rate-limit headers of a HEAD (Docker Hub style)', async (t) => {
    const digest = images['v0.18.2']!.digest;
    const stub = await startHttpStub(t, (req, res) => {
      const headers = { 'Docker-Distribution-Api-Version': 'registry/2.0', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '4;w=21600' };
      if (req.url === '/v2/') {
        res.writeHead(200, { ...headers, 'Content-Type': 'application/json' });
        res.end('{}');
      } else if (req.method === 'HEAD' && req.url === `/v2/${REPO}/manifests/v0.18.2`) {
        res.writeHead(200, { ...headers, 'Content-Type': 'application/vnd.oci.image.index.v1+json', 'Docker-Content-Digest': digest, 'Content-Length': '100' });
        res.end();
      } else {
        res.writeHead(404, headers);
        res.end();
      }
    });
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image: `${stub.host}/${REPO}` } }));
    t.equal(r.code, 0, r.stdout);
    t.same(line(r, 'quota'), { verdict: 'warn', check: 'quota', detail: `${stub.host}/${REPO}: 4 of 100 pulls left per 6h — almost used up: log in (docker login), use a mirror, or set cache.dir` });
    t.notOk(stub.requests().some((x) => x.startsWith('GET /v2/moby')), 'no manifest GET: HEADs do not count against the limit');
  });

  t.test('dockerd vs BuildKit mirrors on a real daemon: missing host mirror, dockerd-only mirror, path mirror', async (t) => {
    const other = await startRefusingPort();
    const r = await doctor(
      project(t, {
        buildkit: { version: 'v0.18.2', image },
        mirrors: [
          { host: other.host, for: 'docker.io' },
          { host: 'harbor.corp.example', path: 'dockerhub-proxy' },
        ],
      }),
    );
    t.equal(r.code, 0, r.stdout);
    const m = lines(r).filter((l) => l.check === 'mirrors');
    t.same(m.map((l) => l.verdict), ['warn', 'warn', 'ok']);
    t.match(m[0]!.detail, `dockerd does not use ${other.host}: docker pull and docker-driver builds go to Docker Hub — add "registry-mirrors": ["http://${other.host}"] to daemon.json, or for GitLab DinD the service command: ["--registry-mirror", "http://${other.host}"]`, 'a loopback mirror is proposed with the plain HTTP it serves, and needs no insecure-registries entry');
    t.match(m[1]!.detail, `dockerd mirrors Docker Hub through 127.0.0.1:${daemonMirrorPort} but container builders do not`);
    t.match(m[2]!.detail, 'harbor.corp.example/dockerhub-proxy has a path and cannot be a dockerd mirror');
  });

  t.test('an invalid configuration fails config (exit 2) and still checks docker and buildx', async (t) => {
    const r = await doctor(project(t, { buildkit: { version: 'v0.18.2', image }, mirrors: [{ path: 'x' }] }));
    t.equal(r.code, 2, r.stdout);
    t.equal(line(r, 'config').verdict, 'fail');
    t.match(line(r, 'config').detail, /mirrors\[0\]\.host: is required/);
    t.equal(line(r, 'docker').verdict, 'ok');
    t.equal(line(r, 'buildx').verdict, 'ok');
    t.equal(line(r, 'registry').verdict, 'skip');
  });

  t.test('DinD over TCP with TLS from the environment: the context buildx-bootstrap will create', async (t) => {
    const dind = await startDockerd(t, { tls: true });
    const p = project(t, { buildkit: { version: 'v0.18.2', image } }, { daemon: dind });
    const r = await doctor(p);
    t.equal(r.code, 0, r.stdout + r.stderr);
    t.match(line(r, 'docker').detail, new RegExp(` at ${dind.env.DOCKER_HOST}$`));
    const ctx = line(r, 'context');
    t.equal(ctx.verdict, 'ok');
    t.match(ctx.detail, new RegExp(`^DOCKER_HOST=${dind.env.DOCKER_HOST} with TLS from the environment, which buildx refuses for container builders; buildx-bootstrap will create the docker context buildx-bootstrap-[0-9a-f]{10}$`));
    const broken = await doctor({ ...p, env: { ...p.env, DOCKER_CERT_PATH: join(p.cwd, 'nowhere') } });
    t.equal(line(broken, 'context').verdict, 'fail');
    t.equal(broken.code, 1);
  });
});

t.test('builders: how many buildx-bootstrap made and the space their state volumes take; never a failure', async (t) => {
  const names = ['buildx-bootstrap-0a1b2c3d', 'buildx-bootstrap-9f8e7d6c', 'ci'];
  t.match(one(facts({ builders: { ok: true, value: { names, volumes: 3, volumeBytes: 1_234_000_000 } } }), 'builders'), {
    verdict: 'ok',
    detail: '3 made by buildx-bootstrap (buildx-bootstrap-0a1b2c3d, buildx-bootstrap-9f8e7d6c, ci); 3 state volumes take 1.2 GB — rm --stale removes idle ones unused for 7d',
  });
  t.match(one(facts({ builders: { ok: true, value: { names: [], volumes: 0, volumeBytes: 0 } } }), 'builders'), { verdict: 'ok', detail: /no builder made by buildx-bootstrap/ });
  t.match(one(facts({ builders: { ok: true, value: { names: ['ci'], volumes: 0, volumeBytes: undefined } } }), 'builders'), { verdict: 'ok', detail: /1 made by buildx-bootstrap \(ci\); state volume size unknown/ });
  t.same(only(evaluateDoctor(facts()), 'builders'), [], 'not reported when not asked (docker unreachable)');
  t.match(one(facts({ builders: { ok: true, value: { names: ['ci'], volumes: 0, volumeBytes: 0, leases: { locks: 1, holds: 2 } } } }), 'leases'), {
    verdict: 'ok',
    detail: '1 lock and 2 prefixed builds held in the daemon now; builds run through buildx-bootstrap -- … hold their builder, a raw docker buildx build --builder NAME does not: a run recreating that builder cuts it if it starts between the drain check and buildx rm',
  });
  t.match(one(facts({ builders: { ok: true, value: { names: [], volumes: 0, volumeBytes: 0, leases: undefined } } }), 'leases'), { detail: /^leases in the daemon could not be listed; / });
});
