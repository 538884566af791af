// Which image goes where (pure): Docker Hub short names normalised as docker does, the target
// named exactly as the resolver maps a mirror, --to parsed with the host's settings.
import t from 'tap';
import { defaultConfig, type MirrorConfig } from '../../src/config/schema.js';
import { engineCandidates } from '../../src/resolve/candidates.js';
import { engineJob, imageJobs, parseTarget, targetText } from '../../src/mirror/sources.js';
import { UsageError } from '../../src/errors.js';

const mirror = (m: Partial<MirrorConfig>): MirrorConfig => ({ host: 'harbor.corp', path: '', for: 'docker.io', ca: '', http: false, insecure: false, ...m });

t.test('short names are normalised as docker does, and map under the first mirror for their registry', async (t) => {
  const config = { ...defaultConfig(), mirrors: [mirror({ host: 'quay-cache.corp', for: 'quay.io' }), mirror({ path: 'dockerhub' }), mirror({ host: 'second.corp' })] };
  const jobs = imageJobs(['docker:27-cli', 'hashicorp/vault:1.15', 'alpine', 'quay.io/prometheus/node-exporter:v1', `redis@sha256:${'a'.repeat(64)}`], config, undefined);
  t.same(
    jobs.map((j) => [j.source, j.from.endpoint.host, j.from.repository, j.reference, targetText(j)]),
    [
      ['docker.io/library/docker:27-cli', 'registry-1.docker.io', 'library/docker', '27-cli', 'harbor.corp/dockerhub/library/docker:27-cli'],
      ['docker.io/hashicorp/vault:1.15', 'registry-1.docker.io', 'hashicorp/vault', '1.15', 'harbor.corp/dockerhub/hashicorp/vault:1.15'],
      ['docker.io/library/alpine:latest', 'registry-1.docker.io', 'library/alpine', 'latest', 'harbor.corp/dockerhub/library/alpine:latest'],
      ['quay.io/prometheus/node-exporter:v1', 'quay.io', 'prometheus/node-exporter', 'v1', 'quay-cache.corp/prometheus/node-exporter:v1'],
      [`docker.io/library/redis@sha256:${'a'.repeat(64)}`, 'registry-1.docker.io', 'library/redis', `sha256:${'a'.repeat(64)}`, 'harbor.corp/dockerhub/library/redis'],
    ],
  );
  t.equal(jobs[4]!.digest, `sha256:${'a'.repeat(64)}`);
  t.equal(jobs[4]!.tag, undefined, 'a digest-only image gets no tag in the target');
  t.same(imageJobs(['docker:27-cli', 'docker.io/library/docker:27-cli'], config, undefined).length, 1, 'the same image named twice is copied once');
});

t.test('the engine target is exactly the resolver candidate for that mirror', async (t) => {
  const config = { ...defaultConfig(), mirrors: [mirror({ path: 'dockerhub' })] };
  const candidate = engineCandidates(config)[0]!;
  const job = engineJob({ registry: 'docker.io', repository: 'moby/buildkit', tag: 'v0.18.2', digest: `sha256:${'b'.repeat(64)}` }, engineCandidates(config)[1]!, config, undefined);
  t.equal(job.to.label, candidate.label);
  t.equal(targetText(job), 'harbor.corp/dockerhub/moby/buildkit:v0.18.2');
  t.equal(job.from.endpoint.host, 'registry-1.docker.io');
});

t.test('GitLab Dependency Proxy is read-only: never a target; --to wins over configured mirrors', async (t) => {
  const config = { ...defaultConfig(), mirrors: [mirror({ host: 'gitlab.example', path: 'group/dependency_proxy/containers', origin: 'gitlab-dependency-proxy' })] };
  t.throws(() => imageJobs(['docker:27-cli'], config, undefined), { name: 'UsageError', message: /no mirror to copy docker\.io\/library\/docker:27-cli into/ });
  const to = parseTarget('registry.gitlab.example/group/project/mirror', config);
  t.same(imageJobs(['docker:27-cli'], config, to).map(targetText), ['registry.gitlab.example/group/project/mirror/library/docker:27-cli']);
});

t.test('--to takes the settings configured for its host, and rejects what is not HOST[:PORT][/PATH]', async (t) => {
  const config = { ...defaultConfig(), mirrors: [mirror({ host: 'harbor.corp', ca: '/ca.pem' })], registries: { '127.0.0.1:5000': { http: true } } };
  t.match(parseTarget('harbor.corp/x', config), { host: 'harbor.corp', path: 'x', ca: '/ca.pem' });
  t.match(parseTarget('127.0.0.1:5000', config), { host: '127.0.0.1:5000', path: '', http: true });
  for (const bad of ['https://harbor.corp', 'har bor', 'harbor.corp/UPPER', '']) t.throws(() => parseTarget(bad, config), UsageError, bad);
  t.throws(() => imageJobs(['Not A Ref'], config, undefined), { name: 'UsageError', message: /invalid image "Not A Ref"/ });
});
