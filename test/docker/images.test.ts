import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inspectLocalImages, isLocalOnly, saveImage } from '../../src/docker/images.js';
import { checkPlatforms, exportOciLayout, ociLayoutContext } from '../../src/docker/oci-layout.js';
import { createDockerRunner } from '../../src/docker/runner.js';
import { DockerError } from '../../src/errors.js';
import { DOCKER_CLI, requireBinaries } from '../helpers/integration.js';
import { startDockerd } from '../helpers/dockerd.js';
import { startRegistry } from '../helpers/registry.js';
import { fakeRunner } from '../helpers/fake-runner.js';

const execFileP = promisify(execFile);

const entry = (id: string, repoDigests: string[] = [], arch = 'amd64'): Record<string, unknown> => ({ Id: id, RepoTags: [], RepoDigests: repoDigests, Os: 'linux', Architecture: arch });

t.test('isLocalOnly: no registry digest for the repository this reference names', async (t) => {
  const d = `sha256:${'1'.repeat(64)}`;
  t.equal(isLocalOnly('local/app:dev', []), true);
  t.equal(isLocalOnly('alpine:3.20', [`alpine@${d}`]), false, 'familiar RepoDigests match normalised refs');
  t.equal(isLocalOnly('docker.io/library/alpine:latest', [`alpine@${d}`]), false);
  t.equal(isLocalOnly('myapp:dev', [`127.0.0.1:5000/base@${d}`]), true, 'a digest for another repository does not count: BuildKit would pull docker.io/library/myapp');
  t.equal(isLocalOnly('127.0.0.1:5000/base:1', [`127.0.0.1:5000/base@${d}`]), false);
  t.equal(isLocalOnly(`sha256:${'2'.repeat(64)}`, [`x@${d}`]), false, 'by ID: any registry digest');
  t.equal(isLocalOnly('2'.repeat(12), []), true);
});

t.test('inspectLocalImages: one call, missing ones from stderr of either CLI', async (t) => {
  const stderrs = {
    'CLI 28.x': 'Error response from daemon: no such image: nope:1: No such image: nope:1\nError response from daemon: no such image: missing/x: No such image: missing/x:latest\n',
    'CLI 20.10': 'Error: No such image: nope:1\nError: No such image: missing/x\n',
  };
  for (const [cli, stderr] of Object.entries(stderrs)) {
    const runner = fakeRunner(() => ({
      exitCode: 1,
      stdout: JSON.stringify([entry('sha256:aaa'), entry('sha256:bbb', [`alpine@sha256:${'c'.repeat(64)}`], 'arm64')]),
      stderr,
    }));
    const facts = await inspectLocalImages(runner, ['local/app:dev', 'nope:1', 'alpine:3.20', 'missing/x', 'local/app:dev']);
    t.equal(runner.calls.length, 1, `${cli}: one docker call`);
    t.same(runner.calls[0], ['image', 'inspect', 'local/app:dev', 'nope:1', 'alpine:3.20', 'missing/x'], 'duplicates asked once');
    t.same(facts.get('local/app:dev'), { present: true, localOnly: true, id: 'sha256:aaa', repoDigests: [], platform: 'linux/amd64' });
    t.same(facts.get('alpine:3.20'), { present: true, localOnly: false, id: 'sha256:bbb', repoDigests: [`alpine@sha256:${'c'.repeat(64)}`], platform: 'linux/arm64' });
    t.same(facts.get('nope:1'), { present: false, localOnly: false, repoDigests: [] });
    t.equal(facts.get('missing/x')?.present, false);
  }
});

t.test('inspectLocalImages falls back to one call per image when stderr is not understood', async (t) => {
  const runner = fakeRunner((args) => {
    if (args.length > 3) return { exitCode: 1, stdout: '[]', stderr: 'Error: something else entirely\n' };
    if (args[2] === 'a:1') return { stdout: JSON.stringify([entry('sha256:a')]) };
    return { exitCode: 1, stdout: '[]', stderr: 'Error: No such image: b:1\n' };
  });
  const facts = await inspectLocalImages(runner, ['a:1', 'b:1']);
  t.equal(runner.calls.length, 3);
  t.equal(facts.get('a:1')?.present, true);
  t.equal(facts.get('b:1')?.present, false);
  const broken = fakeRunner(() => ({ exitCode: 1, stderr: 'Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?\n' }));
  await t.rejects(inspectLocalImages(broken, ['a:1']), { message: /docker image inspect a:1 failed: Cannot connect to the Docker daemon/ });
  t.same(await inspectLocalImages(broken, []), new Map(), 'nothing to ask, no call');
});

t.test('saveImage reports docker\'s reason', async (t) => {
  const runner = fakeRunner(() => ({ exitCode: 1, stderr: 'Error response from daemon: reference does not exist\n' }));
  await t.rejects(saveImage(runner, 'ghost:1', '/tmp/x.tar'), DockerError);
  t.same(runner.calls[0], ['save', '-o', '/tmp/x.tar', 'ghost:1']);
});

t.test('with a real dockerd and registry: local-only detection, OCI layout accepted by skopeo, pushed, pulled and run', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'docker', 'skopeo', 'docker-registry', 'busybox', 'tar'])) return;
  const [dockerd, registry] = await Promise.all([startDockerd(t), startRegistry(t)]);
  const dir = t.testdir({});
  const runner = createDockerRunner({ env: { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'docker-config'), ...dockerd.env } });
  const ok = async (args: string[]): Promise<string> => {
    const r = await runner.run(args, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`${r.command}: ${r.stderr}`);
    return r.stdout;
  };

  // A runnable image made here: busybox as the only file, never seen by a registry.
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs);
  const busybox = (await execFileP('sh', ['-c', 'command -v busybox'])).stdout.trim();
  copyFileSync(busybox, join(rootfs, 'busybox'));
  await execFileP('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), 'busybox']);
  await ok(['import', '--change', 'CMD ["/busybox", "echo", "from-the-layout"]', join(dir, 'rootfs.tar'), 'local/bb:dev']);

  const facts = await inspectLocalImages(runner, ['local/bb:dev', 'nope/missing:1']);
  t.equal(facts.get('local/bb:dev')?.present, true);
  t.equal(facts.get('local/bb:dev')?.localOnly, true, 'an imported image has no RepoDigests: local-only');
  t.equal(facts.get('local/bb:dev')?.platform, `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`);
  t.equal(facts.get('nope/missing:1')?.present, false);
  await t.test("Debian's docker 20.10 CLI gives the same facts", async (t) => {
    if (!requireBinaries(t, [DOCKER_CLI.debian])) return;
    // Debian's 20.10 CLI words the missing-image error differently; still one call, same facts.
    const cli20 = createDockerRunner({ binary: DOCKER_CLI.debian, env: { PATH: process.env.PATH, HOME: dir, DOCKER_CONFIG: join(dir, 'docker-config'), ...dockerd.env } });
    const version = await cli20.run(['version', '--format', '{{.Client.Version}}']);
    t.match(version.stdout, /^20\.10\./, 'it is the 20.10 client');
    const facts20 = await inspectLocalImages(cli20, ['nope/missing:1', 'local/bb:dev']);
    t.same(facts20.get('local/bb:dev'), facts.get('local/bb:dev'), 'CLI 20.10 gives the same facts');
    t.equal(facts20.get('nope/missing:1')?.present, false);
  });

  // Pushed to and pulled back from a loopback registry: it has a registry digest, so not local-only.
  const pulledRef = `${registry.host}/pulled/bb:1`;
  await ok(['tag', 'local/bb:dev', pulledRef]);
  await ok(['push', pulledRef]);
  await ok(['rmi', pulledRef]);
  await ok(['pull', pulledRef]);
  const after = await inspectLocalImages(runner, [pulledRef, 'local/bb:dev']);
  t.equal(after.get(pulledRef)?.localOnly, false, 'pulled from a registry: not local-only');
  t.ok(after.get(pulledRef)?.repoDigests.some((d) => d.startsWith(`${registry.host}/pulled/bb@sha256:`)));
  t.equal(after.get('local/bb:dev')?.localOnly, true, 'same image ID, but no digest for local/bb itself');

  // The bridge: legacy docker save → OCI layout, checked by skopeo and a real registry round trip.
  const layout = join(dir, 'layout');
  const res = await exportOciLayout(runner, 'local/bb:dev', layout, 'bb-dev');
  t.same(res.platforms, [facts.get('local/bb:dev')!.platform!]);
  t.doesNotThrow(() => checkPlatforms(res.platforms, [facts.get('local/bb:dev')!.platform!], 'local/bb:dev'));
  t.equal(ociLayoutContext(layout, res.tag), `oci-layout://${layout}:bb-dev`);
  const inspected = JSON.parse((await execFileP('skopeo', ['inspect', `oci:${layout}:bb-dev`])).stdout) as { Digest: string; Os: string; Layers: string[] };
  t.equal(inspected.Digest, res.digest, 'skopeo reads the layout and sees our manifest');
  t.equal(inspected.Os, 'linux');
  t.equal(inspected.Layers.length, 1);
  const copiedRef = `${registry.host}/bridged/bb:y`;
  await execFileP('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:bb-dev`, `docker://${copiedRef}`], { timeout: 120_000 });
  await ok(['pull', copiedRef]);
  const out = await ok(['run', '--rm', '--network', 'none', copiedRef]);
  t.equal(out.trim(), 'from-the-layout', 'the image copied from our layout runs');
  const ids = JSON.parse(await ok(['image', 'inspect', '--format', '{{json .Id}}', copiedRef])) as string;
  t.equal(ids, facts.get('local/bb:dev')!.id, 'same image ID after the round trip: config bytes were kept');
  t.same(readFileSync(join(layout, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
  await t.rejects(exportOciLayout(runner, 'nope/missing:1', join(dir, 'l2'), 'x'), { message: /docker save nope\/missing:1 failed/ });
});
