import t from 'tap';
import { defaultConfig, type Config, type MirrorConfig } from '../../src/config/schema.js';
import { engineCandidates } from '../../src/resolve/candidates.js';

const mirror = (m: Partial<MirrorConfig> & { host: string }): MirrorConfig => ({ path: '', for: 'docker.io', ca: '', http: false, insecure: false, ...m });
const config = (over: Partial<Config>): Config => ({ ...defaultConfig(), ...over });

t.test('mirrors for the image registry in order, then Docker Hub through its API host', async (t) => {
  const c = engineCandidates(
    config({
      mirrors: [
        mirror({ host: 'harbor.corp.example', path: 'dockerhub-proxy', ca: '/etc/corp-ca.pem' }),
        mirror({ host: 'ghcr-cache.corp.example', for: 'ghcr.io' }),
        mirror({ host: 'nexus.corp.example:8443', insecure: true }),
      ],
    }),
  );
  t.same(
    c.map((x) => [x.label, x.endpoint]),
    [
      ['harbor.corp.example/dockerhub-proxy/moby/buildkit', { host: 'harbor.corp.example', ca: '/etc/corp-ca.pem' }],
      ['nexus.corp.example:8443/moby/buildkit', { host: 'nexus.corp.example:8443', insecure: true }],
      ['docker.io/moby/buildkit', { host: 'registry-1.docker.io' }],
    ],
  );
  t.equal(c[0]!.repository, 'dockerhub-proxy/moby/buildkit');
  t.equal(c[2]!.registry, 'docker.io', 'the reference keeps docker.io');
});

t.test('upstream: false leaves only the mirrors; an image on another registry uses its own mirrors', async (t) => {
  t.same(engineCandidates(config({ upstream: false, mirrors: [mirror({ host: 'm.example' })] })).map((x) => x.label), ['m.example/moby/buildkit']);
  const own = engineCandidates(
    config({
      buildkit: { version: 'v0.18.2', image: '127.0.0.1:5000/moby/buildkit', rootless: false },
      mirrors: [mirror({ host: 'm.example' }), mirror({ host: '127.0.0.1:5001', for: '127.0.0.1:5000', http: true })],
    }),
  );
  t.same(own.map((x) => [x.label, x.endpoint]), [
    ['127.0.0.1:5001/moby/buildkit', { host: '127.0.0.1:5001', http: true }],
    ['127.0.0.1:5000/moby/buildkit', { host: '127.0.0.1:5000' }],
  ]);
});

t.test('the GitLab Dependency Proxy drops library/ for official images, other mirrors keep it', async (t) => {
  const c = engineCandidates(
    config({
      buildkit: { version: 'latest', image: 'buildkit', rootless: false },
      mirrors: [
        mirror({ host: 'harbor.example', path: 'hub' }),
        mirror({ host: 'gitlab.example.com:443', path: 'group/dependency_proxy/containers', origin: 'gitlab-dependency-proxy' }),
      ],
    }),
  );
  t.same(c.map((x) => x.label), ['harbor.example/hub/library/buildkit', 'gitlab.example.com:443/group/dependency_proxy/containers/buildkit', 'docker.io/library/buildkit']);
});
