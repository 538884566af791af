// Every GitLab DinD fix a message suggests agrees with the snippet `init` writes: the service
// image, DOCKER_HOST, DOCKER_TLS_CERTDIR and the client cert path, and the shape of the service
// `command:` (flags and quoting). The suggestions are taken from the messages themselves.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderInitFiles } from '../../src/commands/init.js';
import { defaultConfig, type MirrorConfig } from '../../src/config/schema.js';
import { inspectDaemon } from '../../src/docker/daemon.js';
import type { DockerRunner } from '../../src/docker/runner.js';
import { evaluateDoctor, type DoctorFacts } from '../../src/doctor/checks.js';
import { dockerDriverMirrorWarning } from '../../src/driver/choose-driver.js';
import { BxbError } from '../../src/errors.js';

const mirror = (over: Partial<MirrorConfig>): MirrorConfig => ({ host: 'harbor.corp.example', path: '', for: 'docker.io', ca: '', http: false, insecure: false, ...over });
const MIRRORS = [mirror({}), mirror({ host: 'plain.corp.example:5000', http: true }), mirror({ host: '127.0.0.1:5111' })];

async function messages(): Promise<string[]> {
  const out: string[] = [];
  // docker unreachable
  const down: DockerRunner = { binary: 'docker', globalArgs: [], env: {}, run: async () => ({ exitCode: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon' }) as never };
  await inspectDaemon(down).catch((e: unknown) => out.push(e instanceof BxbError ? `${e.message} — ${e.hint ?? ''}` : String(e)));
  // doctor: DinD TLS with missing client certs, and Docker Hub mirrors dockerd lacks
  const facts: DoctorFacts = {
    config: { ok: true, value: { file: undefined, config: { ...defaultConfig(), mirrors: MIRRORS } } },
    dockerEndpoint: 'tcp://docker:2376',
    daemon: { ok: true, value: { serverVersion: '27.0.0', platform: 'linux/amd64' } },
    buildx: { ok: true, value: { version: '0.19.3', raw: 'v0.19.3' } },
    dockerHost: 'tcp://docker:2376',
    tls: { tls: { host: 'tcp://docker:2376', certPath: '/elsewhere' }, contextName: 'x', contextExists: false, missingFiles: ['cert.pem'] },
    daemonMirrors: [],
    candidates: [],
    lock: undefined,
  };
  out.push(...evaluateDoctor(facts).map((c) => c.detail));
  // create: the docker driver in a GitLab DinD job
  out.push(dockerDriverMirrorWarning([], MIRRORS, { GITLAB_CI: 'true', DOCKER_HOST: 'tcp://docker:2376' }) ?? '');
  return out;
}

/** `command: ["--flag", "value", …]` → the flags in order, each run of one flag counted once. */
function commandShape(command: string): string[] {
  const args = JSON.parse(command.replace(/^command: /, '')) as string[];
  return args.filter((a, i) => a.startsWith('--') && a !== args[i - 2]);
}

t.test('every GitLab DinD suggestion in a message matches the template init writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bxb-advice-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = await renderInitFiles(dir, { version: 'v0.18.2' });
  const template = files.find((f) => f.kind === 'gitlab-ci')!.content;
  const text = (await messages()).join('\n');

  const templateServices = [...template.matchAll(/^\s+- name: (\S+)$/gm)].map((m) => m[1]);
  const services = [...text.matchAll(/\b(docker:[\w.-]*dind)\b/g)].map((m) => m[1]!);
  t.ok(services.length >= 2, `the messages name the DinD service (${services.join(', ')})`);
  for (const s of services) t.ok(templateServices.includes(s), `service ${s} is the template's (${templateServices.join(', ')})`);

  const hosts = [...text.matchAll(/DOCKER_HOST=(tcp:\/\/[\w.:-]+)/g)].map((m) => m[1]!);
  t.ok(hosts.length >= 1, 'a message suggests DOCKER_HOST');
  for (const h of hosts) t.match(template, `DOCKER_HOST=${h}`, `DOCKER_HOST=${h} is in the template`);

  const certdirs = [...text.matchAll(/DOCKER_TLS_CERTDIR=(\S+) → (\S+?)\)/g)];
  t.equal(certdirs.length, 1, 'doctor suggests the cert dir');
  for (const [, certdir, certPath] of certdirs) {
    t.match(template, `DOCKER_TLS_CERTDIR: "${certdir}"`);
    t.match(template, `DOCKER_CERT_PATH=${certPath}`);
  }

  const templateCommands = [...template.matchAll(/# (command: \[.*\])$/gm)].map((m) => m[1]!);
  t.equal(templateCommands.length, 2, 'the template shows an HTTPS and a plain-HTTP mirror command');
  const commands = [...text.matchAll(/(command: \[[^\]]*\])/g)].map((m) => m[1]!);
  t.equal(commands.length, 2, 'doctor and create each suggest a service command');
  const templateShapes = templateCommands.map(commandShape);
  for (const c of commands) {
    t.same(c.match(/^command: \["[^"]*"(?:, "[^"]*")*\]$/)?.[0], c, `written as the template writes it: ${c}`);
    t.ok(templateShapes.some((s) => JSON.stringify(s) === JSON.stringify(commandShape(c))), `flags ${commandShape(c).join(' ')} as in a template command`);
  }
});
