// The emulated docker-buildx plugin, checked against ../shared/reference/buildx-facts.md through
// the real docker CLI (28.x, /usr/local/bin/docker) and a private dockerd 20.10: what a user (and
// the tool's parsers) would see from real buildx v0.12.1, v0.19.3 and v0.36.0.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER_CLI, requireBinaries as requireBinariesLoose } from './helpers/integration.js';
import { startDockerd, type Dockerd } from './helpers/dockerd.js';
import { installFakeBuildx, FAKE_BUILDX_PLUGIN, type FakeBuildx, type FakeBuildxVersion } from './helpers/buildx.js';
import { startRegistry } from './helpers/registry.js';
import { buildEngineImage, pushImage } from './helpers/engine-image.js';

// integration.ts types `t.skip` as (message) => void, narrower than tap's overloads.
const requireBinaries = (tt: Test, names: string[]): boolean =>
  requireBinariesLoose(tt as unknown as Parameters<typeof requireBinariesLoose>[0], names);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: env as NodeJS.ProcessEnv, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

// The 28.x CLI the facts were observed with (required: no fallback to whatever `docker` is on PATH).
const DOCKER = DOCKER_CLI.current;

/** `docker [args]` through the real CLI, with only the environment a CI job would have. */
function docker(fb: FakeBuildx, d: Dockerd | undefined, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return exec(DOCKER, args, { PATH: process.env.PATH, HOME: fb.dockerConfig, ...fb.env, ...(d ? d.env : {}), ...extraEnv });
}

/** The plugin run directly (no docker CLI), as `docker` would exec it. */
function plugin(fb: FakeBuildx, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return exec(FAKE_BUILDX_PLUGIN, args, { PATH: process.env.PATH, HOME: fb.dockerConfig, ...fb.env, ...extraEnv });
}

t.test('without a daemon', async (t) => {
  if (!requireBinaries(t, ['node'])) return;

  t.test('metadata is the 5-space-indented JSON of real buildx', async (t) => {
    for (const version of ['0.12.1', '0.19.3', '0.36.0'] as const) {
      const fb = installFakeBuildx(t, { version });
      const r = await plugin(fb, ['docker-cli-plugin-metadata']);
      t.equal(r.code, 0);
      t.equal(
        r.stdout,
        `{\n     "SchemaVersion": "0.1.0",\n     "Vendor": "Docker Inc.",\n     "Version": "v${version}",\n     "ShortDescription": "Docker Buildx"\n}\n`,
      );
    }
  });

  t.test('version prints package, version and a revision no real build has', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.19.3' });
    const r = await plugin(fb, ['buildx', 'version']);
    t.equal(r.stdout, 'github.com/docker/buildx v0.19.3 66145fbe66145fbe66145fbe66145fbe66145fbe\n');
  });

  t.test('unknown create flags exit 125 with the usage tail of each version', async (t) => {
    const cases: [FakeBuildxVersion, string, string][] = [
      ['0.12.1', '--buildkitd-config', "unknown flag: --buildkitd-config\nSee 'docker buildx create --help'.\n"],
      ['0.19.3', '--timeout', "unknown flag: --timeout\nSee 'docker buildx create --help'.\n"],
      [
        '0.36.0',
        '--nope',
        "unknown flag: --nope\n\nUsage:  docker buildx create [OPTIONS] [CONTEXT|ENDPOINT]\n\nRun 'docker buildx create --help' for more information\n",
      ],
    ];
    for (const [version, flag, stderr] of cases) {
      const fb = installFakeBuildx(t, { version });
      const r = await plugin(fb, ['buildx', 'create', flag, 'x']);
      t.equal(r.code, 125, `${version} ${flag}`);
      t.equal(r.stderr, stderr);
      t.equal(r.stdout, '');
    }
  });

  t.test('create refuses TLS from the environment on the default context (DinD)', async (t) => {
    for (const [version, tail] of [
      ['0.36.0', 'then create a builder instance with context set to <context-name>'],
      ['0.12.1', 'then create a builder instance with `docker buildx create <context-name>`'],
    ] as const) {
      const fb = installFakeBuildx(t, { version });
      const r = await plugin(fb, ['buildx', 'create', '--name', 'b', '--driver', 'docker-container'], {
        DOCKER_HOST: 'tcp://127.0.0.1:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/certs/client',
      });
      t.equal(r.code, 1);
      t.match(r.stderr, /^ERROR: could not create a builder instance with TLS data loaded from environment\. Please use `docker context create <context-name>`/);
      t.ok(r.stderr.trimEnd().endsWith(tail), r.stderr);
      t.notOk(existsSync(join(fb.dockerConfig, 'buildx', 'instances', 'b')));
    }
  });

  t.test('reserved, invalid and docker-driver names fail before touching the store', async (t) => {
    const fb = installFakeBuildx(t);
    const cases: [string[], string][] = [
      [['--name', 'default'], 'ERROR: default is a reserved name and cannot be used to identify builder instance\n'],
      [['--name', '9lives'], 'ERROR: invalid name 9lives, name needs to start with a letter and may not contain symbols, except ._-\n'],
      [['--name', 'x', '--driver', 'docker'], 'ERROR: additional instances of driver "docker" cannot be created\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await plugin(fb, ['buildx', 'create', ...args], { DOCKER_HOST: 'unix:///nonexistent.sock' });
      t.same([r.code, r.stdout, r.stderr], [1, '', stderr]);
    }
  });
});

t.test('against a real dockerd', async (t) => {
  if (!requireBinaries(t, ['dockerd', 'containerd', DOCKER, DOCKER_CLI.debian, 'docker-registry', 'busybox'])) return;
  const [d, reg] = await Promise.all([startDockerd(t), startRegistry(t)]);
  const engine = buildEngineImage({ version: 'v0.13.2' });
  await pushImage(reg.url, 'moby/buildkit', ['v0.13.2'], engine);
  const image = `${reg.host}/moby/buildkit:v0.13.2`;

  t.test('global docker flags before `buildx` reach the plugin found via --config', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.19.3' });
    const r = await exec(DOCKER, ['--config', fb.dockerConfig, '--log-level', 'warn', '-H', d.host, 'buildx', 'version'], {
      PATH: process.env.PATH,
      HOME: fb.dockerConfig,
      BXB_FAKE_BUILDX_VERSION: '0.19.3',
    });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, 'github.com/docker/buildx v0.19.3 66145fbe66145fbe66145fbe66145fbe66145fbe\n');
    const call = fb.calls().at(-1);
    t.same(call?.argv, ['--config', fb.dockerConfig, '--log-level', 'warn', '-H', d.host, 'buildx', 'version']);
    t.same(call?.args, ['version']);
  });

  t.test("Debian's docker 20.10 CLI finds the plugin and passes the same arguments", async (t) => {
    const fb = installFakeBuildx(t, { version: '0.19.3' });
    const env = { PATH: process.env.PATH, HOME: fb.dockerConfig, ...fb.env, ...d.env };
    const client = await exec(DOCKER_CLI.debian, ['version', '--format', '{{.Client.Version}}'], env);
    t.match(client.stdout, /^20\.10\./, 'the 20.10 client');
    const v = await exec(DOCKER_CLI.debian, ['buildx', 'version'], env);
    t.same([v.code, v.stdout], [0, 'github.com/docker/buildx v0.19.3 66145fbe66145fbe66145fbe66145fbe66145fbe\n'], v.stderr);
    const c = await exec(DOCKER_CLI.debian, ['buildx', 'create', '--name', 'old-cli', '--driver', 'docker-container', '--driver-opt', `image=${image}`], env);
    t.same([c.code, c.stdout, c.stderr], [0, 'old-cli\n', '']);
    t.same(fb.calls().map((call) => call.args), [['version'], ['create', '--name', 'old-cli', '--driver', 'docker-container', '--driver-opt', `image=${image}`]]);
    const r = await exec(DOCKER_CLI.debian, ['buildx', 'rm', 'old-cli'], env);
    t.same([r.code, r.stderr], [0, 'old-cli removed\n']);
  });

  t.test('create prints only the name; inspect of a fresh builder matches facts §2.2 example C', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.36.0' });
    const dir = t.testdir({ 'buildkitd.toml': '[registry."docker.io"]\nmirrors = ["mirror.internal:5000"]\n' });
    const c = await docker(fb, d, [
      'buildx', 'create', '--name', 'ci-builder', '--driver', 'docker-container',
      '--driver-opt', `image=${image},network=host`, '--buildkitd-config', join(dir, 'buildkitd.toml'), '--use',
    ]);
    t.same([c.code, c.stdout, c.stderr], [0, 'ci-builder\n', '']);

    const stored = JSON.parse(readFileSync(join(fb.dockerConfig, 'buildx', 'instances', 'ci-builder'), 'utf8'));
    t.same(Object.keys(stored), ['Name', 'Driver', 'Nodes', 'Dynamic']);
    t.same(Object.keys(stored.Nodes[0]), ['Name', 'Endpoint', 'Platforms', 'DriverOpts', 'Flags', 'Files']);
    t.equal(Buffer.from(stored.Nodes[0].Files['buildkitd.toml'], 'base64').toString(), "[registry]\n[registry.'docker.io']\nmirrors = ['mirror.internal:5000']\n");
    t.same(JSON.parse(readFileSync(join(fb.dockerConfig, 'buildx', 'current'), 'utf8')), { Key: d.host, Name: 'ci-builder', Global: false });

    const i = await docker(fb, d, ['buildx', 'inspect', 'ci-builder']);
    t.equal(i.code, 0, i.stderr);
    const activity = /^Last Activity: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC)$/m.exec(i.stdout)?.[1];
    t.ok(activity, 'Last Activity in Go time format');
    const exampleC = [
      'Name:          ci-builder',
      'Driver:        docker-container',
      'Last Activity: 2026-08-20 10:44:14 +0000 UTC',
      '',
      'Nodes:',
      'Name:                  ci-builder0',
      'Endpoint:              unix:///var/run/docker.sock',
      'Driver Options:        image="registry.internal/moby/buildkit:v0.13.2" network="host"',
      'Status:                inactive',
      'BuildKit daemon flags: --allow-insecure-entitlement=network.host',
      'File#buildkitd.toml:',
      ' > [registry]',
      " > [registry.'docker.io']",
      " > mirrors = ['mirror.internal:5000']",
      ' > ',
      '',
    ].join('\n');
    // Same layout; only the endpoint and image differ in length, which shifts no column.
    t.equal(
      i.stdout,
      exampleC
        .replace('2026-08-20 10:44:14 +0000 UTC', activity ?? '?')
        .replace('unix:///var/run/docker.sock', d.host)
        .replace('registry.internal/moby/buildkit:v0.13.2', image),
    );

    // Facts §2.4 [generated] bytes for a fresh builder; our endpoint is longer than
    // unix:///var/run/docker.sock, which widens the DRIVER/ENDPOINT column by the difference.
    const factsLs = [
      'NAME/NODE         DRIVER/ENDPOINT                   STATUS     BUILDKIT       PLATFORMS',
      'ci-builder*       docker-container                                            ',
      ' \\_ ci-builder0    \\_ unix:///var/run/docker.sock   inactive                  ',
      'default           docker                                                      ',
      ' \\_ default        \\_ default                       running    v0.8+unknown   linux/amd64, linux/386',
      '',
    ];
    const delta = d.host.length - 'unix:///var/run/docker.sock'.length;
    const expectedLs = factsLs
      .map((l) => (l.length > 52 ? l.slice(0, 52) + ' '.repeat(delta) + l.slice(52) : l))
      .join('\n')
      .replace('unix:///var/run/docker.sock' + ' '.repeat(delta), d.host);
    const ls = await docker(fb, d, ['buildx', 'ls']);
    t.same([ls.code, ls.stdout, ls.stderr], [0, expectedLs, ''], 'ls table bytes incl. trailing blanks');
  });

  t.test('existing name: the error text of each version, store unchanged', async (t) => {
    for (const [version, msg] of [
      ['0.12.1', 'ERROR: existing instance for "dup" but no append mode, specify --node to make changes for existing instances\n'],
      ['0.36.0', 'ERROR: existing instance for "dup" but no append mode, specify the node name to make changes for existing instances\n'],
    ] as const) {
      const fb = installFakeBuildx(t, { version });
      t.equal((await docker(fb, d, ['buildx', 'create', '--name', 'dup', '--driver', 'docker-container'])).code, 0);
      const before = readFileSync(join(fb.dockerConfig, 'buildx', 'instances', 'dup'), 'utf8');
      const r = await docker(fb, d, ['buildx', 'create', '--name', 'dup', '--driver', 'docker-container', '--driver-opt', 'network=host']);
      t.same([r.code, r.stdout, r.stderr], [1, '', msg], version);
      t.equal(readFileSync(join(fb.dockerConfig, 'buildx', 'instances', 'dup'), 'utf8'), before);
    }
  });

  t.test('an unknown driver-opt rolls the store back', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.12.1' });
    const r = await docker(fb, d, ['buildx', 'create', '--name', 'bad', '--driver', 'docker-container', '--driver-opt', 'restart-policy=always']);
    // restart-policy only exists since v0.13.
    t.same([r.code, r.stdout, r.stderr], [1, '', 'ERROR: failed to initialize builder bad (bad0): invalid driver option restart-policy for docker-container driver\n']);
    t.notOk(existsSync(join(fb.dockerConfig, 'buildx', 'instances', 'bad')));
  });

  t.test('inspect --bootstrap runs the container on the real daemon; rm removes it', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.36.0' });
    const dir = t.testdir({ 'bk.toml': '[registry."docker.io"]\nmirrors = ["127.0.0.1:5000"]\n' });
    const c = await docker(fb, d, ['buildx', 'create', '--name', 'boot', '--driver', 'docker-container', '--driver-opt', `image=${image}`, '--buildkitd-config', join(dir, 'bk.toml')]);
    t.equal(c.code, 0, c.stderr);

    const i = await docker(fb, d, ['buildx', 'inspect', '--bootstrap', 'boot'], { BUILDX_BUILDER: 'boot' });
    t.equal(i.code, 0, i.stderr);
    t.match(i.stdout, /^Status: {16}running$/m);
    t.match(i.stdout, /^BuildKit version: {6}v0\.13\.2$/m);
    t.match(i.stdout, /^Platforms: {13}linux\/amd64(?:, linux\/amd64\/v[234])*, linux\/386$/m);
    const progress = i.stderr.split('\n').map((l) => l.replace(/ \d+\.\d+s /, ' Ns '));
    t.same(progress, [
      '#1 [internal] booting buildkit',
      `#1 pulling image ${image}`,
      `#1 pulling image ${image} Ns done`,
      '#1 creating container buildx_buildkit_boot0',
      '#1 creating container buildx_buildkit_boot0 Ns done',
      progress[5]?.startsWith('#1 DONE ') ? progress[5] : '#1 DONE …',
      '',
    ]);
    await reg.settle();
    t.ok(reg.requestLog().some((l) => /^(GET|HEAD) \/v2\/moby\/buildkit\/manifests\/v0\.13\.2 200$/.test(l)), `dockerd pulled from the registry: ${reg.requestLog().join('; ')}`);

    const ps = await d.docker(['container', 'inspect', '--format', '{{.State.Running}} {{.HostConfig.Privileged}} {{range .Mounts}}{{.Name}}:{{.Destination}}{{end}} {{json .Args}}', 'buildx_buildkit_boot0']);
    t.equal(ps.code, 0, ps.stderr);
    t.equal(ps.stdout.trim(), 'true false buildx_buildkit_boot0_state:/var/lib/buildkit ["--config","/etc/buildkit/buildkitd.toml","--allow-insecure-entitlement=network.host"]');
    const out = t.testdir({});
    const cp = await d.docker(['cp', 'buildx_buildkit_boot0:/etc/buildkit/buildkitd.toml', join(out, 'inside.toml')]);
    t.equal(cp.code, 0, cp.stderr);
    const stored = JSON.parse(readFileSync(join(fb.dockerConfig, 'buildx', 'instances', 'boot'), 'utf8'));
    t.equal(readFileSync(join(out, 'inside.toml'), 'utf8'), Buffer.from(stored.Nodes[0].Files['buildkitd.toml'], 'base64').toString());

    const json = await docker(fb, d, ['buildx', 'ls', '--format', 'json']);
    const line = json.stdout.split('\n').find((l) => l.includes('"Name":"boot"'));
    t.ok(line);
    const parsed = JSON.parse(line ?? '{}');
    t.same(Object.keys(parsed), ['Current', 'Driver', 'Dynamic', 'LastActivity', 'Name', 'Nodes'], 'v0.24+: alphabetical keys');
    t.match(parsed.Nodes[0], { Name: 'boot0', Status: 'running', Version: 'v0.13.2' });

    // A second bootstrap of a running builder does nothing; after a stop it starts the same container.
    t.equal((await d.docker(['stop', '-t', '1', 'buildx_buildkit_boot0'])).code, 0);
    t.match((await docker(fb, d, ['buildx', 'inspect', 'boot'])).stdout, /^Status: {16}stopped$/m);
    const again = await docker(fb, d, ['buildx', 'inspect', '--bootstrap', 'boot']);
    t.match(again.stderr, /^#1 starting container buildx_buildkit_boot0$/m);
    t.match(again.stdout, /^Status: {16}running$/m);

    const build = await docker(fb, d, ['buildx', 'build', '-t', 'x', '.'], { BUILDX_BUILDER: 'boot' });
    t.same([build.code, build.stdout], [0, '']);
    t.match(fb.calls().at(-1), { args: ['build', '-t', 'x', '.'], env: { BUILDX_BUILDER: 'boot' } });

    const rm = await docker(fb, d, ['buildx', 'rm', 'boot']);
    t.same([rm.code, rm.stdout, rm.stderr], [0, '', 'boot removed\n']);
    t.not((await d.docker(['container', 'inspect', 'buildx_buildkit_boot0'])).code, 0, 'container gone');
    t.not((await d.docker(['volume', 'inspect', 'buildx_buildkit_boot0_state'])).code, 0, 'state volume gone');
    const missing = await docker(fb, d, ['buildx', 'inspect', 'boot']);
    t.same([missing.code, missing.stderr], [1, 'ERROR: no builder "boot" found\n']);
  });

  t.test('v0.12: old labels, no File# block; failed pull falls back to the local image', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.12.1' });
    // Tag the pulled image under a registry that is not running: the pull fails, the local copy is used.
    t.equal((await d.docker(['pull', image])).code, 0);
    const local = '127.0.0.1:1/moby/buildkit:v0.13.2';
    t.equal((await d.docker(['tag', image, local])).code, 0);
    const dir = t.testdir({ 'bk.toml': 'debug = true\n' });
    const c = await docker(fb, d, ['buildx', 'create', '--name', 'old', '--driver', 'docker-container', '--driver-opt', `image=${local}`, '--config', join(dir, 'bk.toml'), '--bootstrap']);
    t.equal(c.code, 0, c.stderr);
    t.equal(c.stdout, 'old\n');
    t.match(c.stderr, new RegExp(`^#1 pulling failed, using local image ${local.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    const i = await docker(fb, d, ['buildx', 'inspect', 'old']);
    t.match(i.stdout, /^Status: +running\nBuildkit: +v0\.13\.2\n/m);
    t.notMatch(i.stdout, /BuildKit daemon flags|File#/);
    t.notMatch(i.stdout, /^Flags:/m, 'v0.12 adds no network.host entitlement, so no flags line');
    const ls = await docker(fb, d, ['buildx', 'ls']);
    t.match(ls.stdout, /^old +docker-container +\n {2}old0 +unix:\/\/\S+ +running v0\.13\.2 +linux\/amd64(?:, linux\/amd64\/v[234])*, linux\/386\n/m);
    t.equal((await docker(fb, d, ['buildx', 'rm', 'old'])).code, 0);
    t.not((await d.docker(['container', 'inspect', 'buildx_buildkit_old0'])).code, 0);
  });

  t.test('DinD: TLS from the environment needs a context; through it the builder boots on the TLS daemon', async (t) => {
    if (!requireBinaries(t, ['openssl'])) return;
    const dind = await startDockerd(t, { tls: true });
    const fb = installFakeBuildx(t, { version: '0.36.0' });
    const envTls = { ...dind.env } as Record<string, string>;
    const refused = await docker(fb, undefined, ['buildx', 'create', '--name', 'dind', '--driver', 'docker-container'], envTls);
    t.equal(refused.code, 1);
    t.match(refused.stderr, /TLS data loaded from environment/);

    const ctx = await docker(fb, undefined, ['context', 'create', 'tls-environment'], envTls);
    t.equal(ctx.code, 0, ctx.stderr);
    const c = await docker(fb, undefined, ['buildx', 'create', '--name', 'dind', '--driver', 'docker-container', '--driver-opt', `image=${image}`, '--use', '--bootstrap', 'tls-environment'], envTls);
    t.same([c.code, c.stdout], [0, 'dind\n'], c.stderr);
    const stored = JSON.parse(readFileSync(join(fb.dockerConfig, 'buildx', 'instances', 'dind'), 'utf8'));
    t.equal(stored.Nodes[0].Endpoint, 'tls-environment');
    t.equal((await dind.docker(['container', 'inspect', '--format', '{{.State.Running}}', 'buildx_buildkit_dind0'])).stdout.trim(), 'true');
    t.not((await d.docker(['container', 'inspect', 'buildx_buildkit_dind0'])).code, 0, 'nothing on the other daemon');
    const i = await docker(fb, undefined, ['buildx', 'inspect'], envTls);
    t.match(i.stdout, /^Name: +dind\n/);
    t.match(i.stdout, /^Endpoint: +tls-environment$/m);
    t.match(i.stdout, /^BuildKit version: +v0\.13\.2$/m);
  });

  t.test('v0.19: ls --format json repeats each builder once per node (fixed in v0.21)', async (t) => {
    const fb = installFakeBuildx(t, { version: '0.19.3' });
    t.equal((await docker(fb, d, ['buildx', 'create', '--name', 'j', '--driver', 'docker-container'])).code, 0);
    const r = await docker(fb, d, ['buildx', 'ls', '--format', 'json']);
    const lines = r.stdout.split('\n').filter((l) => l.includes('"Name":"j"'));
    t.equal(lines.length, 2);
    t.same(Object.keys(JSON.parse(lines[0] ?? '{}')), ['Name', 'Driver', 'LastActivity', 'Dynamic', 'Nodes'], 'struct order before v0.24');
  });
});

