import t from 'tap';
import { chooseDriver, containerOnlyNeeds, dockerDriverMirrorWarning, type BuildNeeds } from '../../src/driver/choose-driver.js';
import type { DriverSetting, MirrorConfig } from '../../src/config/schema.js';
import { UsageError } from '../../src/errors.js';

const LOCAL = { ref: 'docker.io/library/app-base:dev', localOnly: true };
const REMOTE = { ref: 'docker.io/library/alpine:3.20', localOnly: false };

function needs(over: Partial<BuildNeeds> = {}): BuildNeeds {
  return { platforms: [], cacheTo: [], needsBuildkitConfig: false, images: [], ...over };
}

t.test('auto: decision table with reasons', async (t) => {
  const rows: [string, BuildNeeds, string, string[], RegExp[]][] = [
    ['nothing known', needs(), 'docker-container', [], [/no build needs local images/]],
    ['registry images only', needs({ images: [REMOTE] }), 'docker-container', [], [/can come from a registry/]],
    ['local-only image, nothing container-only', needs({ images: [LOCAL, REMOTE], platforms: ['linux/amd64'], cacheTo: ['inline'] }), 'docker', [], [/it needs 1 image that only exists in the local image store \(docker\.io\/library\/app-base:dev\); only the docker driver sees them/, /nothing in the build needs a container builder/]],
    ['two platforms', needs({ platforms: ['linux/amd64', 'linux/arm64'], images: [REMOTE] }), 'docker-container', [], [/builds 2 platforms \(linux\/amd64, linux\/arm64\)/]],
    ['registry cache export', needs({ cacheTo: ['registry'] }), 'docker-container', [], [/exports build cache \(--cache-to type=registry\)/]],
    ['pinned BuildKit', needs({ needsBuildkitConfig: true, buildkitConfigReasons: ['buildkit.version "^0.18"'] }), 'docker-container', [], [/^buildkit.version "\^0.18": only a BuildKit builder of our own can honour that, as the docker driver runs dockerd's embedded BuildKit$/]],
    ['oci output', needs({ outputs: [{ type: 'oci', attrs: { dest: 'x.tar' } }] }), 'docker-container', [], [/--output type=oci/]],
    ['attestations', needs({ attestations: true }), 'docker-container', [], [/attestations/]],
    ['local-only + two platforms → bridge', needs({ platforms: ['linux/amd64', 'linux/arm64'], images: [LOCAL, REMOTE, LOCAL] }), 'docker-container', [LOCAL.ref], [/builds 2 platforms/, /it needs 1 image that only exists in the local image store/, /OCI layout build contexts/]],
    ['local-only + local cache export → bridge', needs({ cacheTo: ['local', 'inline'], images: [LOCAL] }), 'docker-container', [LOCAL.ref], [/type=local/, /only exists in the local image store/, /oci-layout/]],
  ];
  for (const [name, n, driver, bridge, reasons] of rows) {
    const d = chooseDriver({ setting: 'auto', needs: n });
    t.equal(d.driver, driver, `${name}: driver`);
    t.same(d.bridge, bridge, `${name}: bridge`);
    t.equal(d.reasons.length, reasons.length, `${name}: one reason each`);
    reasons.forEach((re, i) => t.match(d.reasons[i], re, `${name}: reason ${i}`));
  }
});

t.test('an explicit driver wins; docker conflicts are usage errors naming the need', async (t) => {
  const both = needs({ platforms: ['linux/amd64', 'linux/arm64'], images: [LOCAL] });
  for (const setting of ['docker-container', 'kubernetes', 'remote'] as DriverSetting[]) {
    const d = chooseDriver({ setting, needs: both });
    t.equal(d.driver, setting);
    t.same(d.bridge, [LOCAL.ref], `${setting} bridges local-only images`);
    t.match(d.reasons[0], `builder.driver is ${setting}`);
  }
  const remoteOnly = chooseDriver({ setting: 'docker-container', needs: needs({ images: [REMOTE] }) });
  t.same(remoteOnly.bridge, []);
  const docker = chooseDriver({ setting: 'docker', needs: needs({ images: [LOCAL, REMOTE] }) });
  t.equal(docker.driver, 'docker');
  t.same(docker.bridge, []);

  const conflicts: [BuildNeeds, RegExp][] = [
    [needs({ platforms: ['linux/amd64', 'linux/arm64'] }), /^builder.driver is docker, but it builds 2 platforms/],
    [needs({ cacheTo: ['registry'] }), /^builder.driver is docker, but it exports build cache \(--cache-to type=registry\)/],
    [needs({ needsBuildkitConfig: true, buildkitConfigReasons: ['buildkitd.config buildkitd.base.toml'] }), /buildkitd.config buildkitd.base.toml: only a BuildKit builder of our own can honour that/],
  ];
  for (const [n, re] of conflicts) {
    let err: unknown;
    try {
      chooseDriver({ setting: 'docker', needs: n });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof UsageError);
    t.equal((err as UsageError).exitCode, 2);
    t.match((err as UsageError).message, re);
    t.match((err as UsageError).hint, /builder.driver to auto or docker-container/);
  }
  t.doesNotThrow(() => chooseDriver({ setting: 'docker', needs: needs({ platforms: ['linux/arm64'], cacheTo: ['inline'] }) }), 'one platform and inline cache are fine');
});

t.test('containerOnlyNeeds lists each need once', async (t) => {
  t.same(containerOnlyNeeds(needs({ cacheTo: ['inline'], platforms: ['linux/amd64'] })), []);
  t.equal(containerOnlyNeeds(needs({ cacheTo: ['registry', 'registry', 'gha'] })).length, 1);
  t.same(containerOnlyNeeds(needs({ outputs: [{ type: 'docker', attrs: {} }] })), [], '--load is fine');
  t.equal(containerOnlyNeeds(needs({ outputs: [{ type: 'docker', attrs: { dest: 'i.tar' } }] })).length, 1);
});

const mirror = (over: Partial<MirrorConfig>): MirrorConfig => ({ host: 'harbor.corp.example', path: '', for: 'docker.io', ca: '', http: false, insecure: false, ...over });

t.test('docker driver mirror warning: exact fix per environment', async (t) => {
  t.equal(dockerDriverMirrorWarning([], [], {}), undefined, 'no mirrors, nothing to say');
  t.equal(dockerDriverMirrorWarning(['https://harbor.corp.example/'], [mirror({})], {}), undefined, 'dockerd already has it');

  const plain = dockerDriverMirrorWarning([], [mirror({})], {});
  t.equal(
    plain,
    'the docker driver pulls Docker Hub images through dockerd, which has no registry-mirrors and ignores buildkitd.toml: add "registry-mirrors": ["https://harbor.corp.example"] to dockerd\'s daemon.json (/etc/docker/daemon.json) and restart dockerd',
  );
  const dind = dockerDriverMirrorWarning([], [mirror({}), mirror({ host: 'mirror2:5000', http: true })], { GITLAB_CI: 'true', DOCKER_HOST: 'tcp://docker:2376' });
  t.equal(
    dind,
    'the docker driver pulls Docker Hub images through dockerd, which has no registry-mirrors and ignores buildkitd.toml: give the docker:27-dind service in .gitlab-ci.yml command: ["--registry-mirror", "https://harbor.corp.example", "--registry-mirror", "http://mirror2:5000", "--insecure-registry", "http://mirror2:5000"]',
  );
  // The scheme the mirror really speaks: loopback is plain HTTP (as we reach it), and dockerd
  // treats 127.0.0.0/8 as insecure by default, so it needs no insecure-registries entry there.
  t.equal(
    dockerDriverMirrorWarning([], [mirror({ host: '127.0.0.1:5111' })], {}),
    'the docker driver pulls Docker Hub images through dockerd, which has no registry-mirrors and ignores buildkitd.toml: add "registry-mirrors": ["http://127.0.0.1:5111"] to dockerd\'s daemon.json (/etc/docker/daemon.json) and restart dockerd',
  );
  t.match(dockerDriverMirrorWarning([], [mirror({ host: '127.0.0.1:5111', ca: '/ca.pem' })], {}), /"registry-mirrors": \["https:\/\/127\.0\.0\.1:5111"\] to/, 'a loopback mirror with ca: serves TLS');
  t.match(
    dockerDriverMirrorWarning([], [mirror({ host: 'mirror.corp:5000', http: true }), mirror({ host: 'self-signed.corp', insecure: true })], {}),
    /add "registry-mirrors": \["http:\/\/mirror\.corp:5000", "https:\/\/self-signed\.corp"\], "insecure-registries": \["http:\/\/mirror\.corp:5000", "https:\/\/self-signed\.corp"\] to dockerd's daemon\.json/,
    'http: true and insecure: true need insecure-registries, with the scheme the docker driver reads',
  );
  t.match(dockerDriverMirrorWarning([], [mirror({ host: '[::1]:5111' })], {}), /"insecure-registries": \["http:\/\/\[::1\]:5111"\]/, '::1 is outside dockerd\'s default 127.0.0.0/8');
  const shellRunner = dockerDriverMirrorWarning([], [mirror({})], { GITLAB_CI: 'true' });
  t.match(shellRunner, /daemon\.json/, 'GitLab without a DinD DOCKER_HOST talks to a host dockerd');

  const prefixed = dockerDriverMirrorWarning([], [mirror({ path: 'dockerhub-proxy' }), mirror({ host: 'quay-cache.corp', for: 'quay.io' })], {});
  t.equal(
    prefixed,
    'harbor.corp.example/dockerhub-proxy (for docker.io), quay-cache.corp (for quay.io) cannot be dockerd mirrors (dockerd mirrors only docker.io, by host without a path), so the docker driver pulls those images from their registry; use builder.driver: docker-container to pull through them',
  );
  t.notMatch(prefixed, /registry-mirrors"/, 'no daemon.json fix for mirrors dockerd cannot use');
  const other = dockerDriverMirrorWarning(['https://other.example/'], [mirror({})], {});
  t.match(other, /which has other registry-mirrors/);
});
