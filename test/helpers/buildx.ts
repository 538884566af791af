// Installs the emulated docker-buildx plugin (test/fake-buildx) into a temp DOCKER_CONFIG, so the
// real docker CLI finds it under <config>/cli-plugins, and reads back what it was asked to do.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type FakeBuildxVersion = '0.12.1' | '0.19.3' | '0.36.0' | '0.38.2';

/** The plugin executable; its .mjs modules sit beside it (it must be symlinked, not copied). */
export const FAKE_BUILDX_PLUGIN = resolve(dirname(fileURLToPath(import.meta.url)), '../fake-buildx/docker-buildx');
/** JSONL invocation log the plugin appends to, inside the docker config dir. */
export const FAKE_BUILDX_LOG = 'bxb-fake-buildx.jsonl';

export interface FakeBuildxCall {
  /** Everything the plugin received after its own path, e.g. ['--context', 'x', 'buildx', 'create', …]. */
  argv: string[];
  /** The buildx part after docker's global flags and `buildx`, e.g. ['create', '--name', 'x']. */
  args: string[];
  env: { BUILDX_BUILDER?: string; DOCKER_HOST?: string; DOCKER_CONTEXT?: string; BUILDX_CONFIG?: string };
  /**
   * For `build`: each `--build-context NAME=oci-layout://DIR:TAG` as the emulation found it while
   * the command ran (test/fake-buildx/layout.mjs): a valid OCI layout holding TAG, or why not.
   */
  ociLayouts?: { name: string; dir: string; tag: string; valid: boolean; byTag: boolean; error?: string }[];
}

export interface FakeBuildx {
  /** A fresh DOCKER_CONFIG with cli-plugins/docker-buildx → the emulation. */
  dockerConfig: string;
  env: { DOCKER_CONFIG: string; BXB_FAKE_BUILDX_VERSION: string };
  /** Recorded invocations, oldest first; metadata probes only with includeMetadata. */
  calls(opts?: { includeMetadata?: boolean }): FakeBuildxCall[];
}

interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/**
 * Each call gets its own config dir (not t.testdir(), which a test may recreate for its own
 * fixtures), removed in teardown; pass `dockerConfig` to install into an existing dir instead.
 */
export function installFakeBuildx(t: TeardownHost, opts: { version?: FakeBuildxVersion; dockerConfig?: string } = {}): FakeBuildx {
  const dockerConfig = installPlugin(t, FAKE_BUILDX_PLUGIN, opts.dockerConfig);
  const logFile = join(dockerConfig, FAKE_BUILDX_LOG);
  return {
    dockerConfig,
    env: { DOCKER_CONFIG: dockerConfig, BXB_FAKE_BUILDX_VERSION: opts.version ?? '0.36.0' },
    calls({ includeMetadata = false } = {}) {
      let text: string;
      try {
        text = readFileSync(logFile, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as FakeBuildxCall & { pid?: number })
        .map(({ argv, args, env, ociLayouts }) => ({ argv, args, env, ...(ociLayouts ? { ociLayouts } : {}) }))
        .filter((c) => includeMetadata || !(c.argv.length === 1 && c.argv[0] === 'docker-cli-plugin-metadata'));
    },
  };
}

/**
 * Links `plugin` as `cli-plugins/docker-buildx` in `dockerConfig`, or in a fresh config dir
 * removed in teardown; returns the dir. The real and the emulated plugin install the same way.
 */
export function installPlugin(t: TeardownHost, plugin: string, dockerConfig?: string): string {
  let dir = dockerConfig;
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), 'bxb-docker-config-'));
    t.teardown(() => rmSync(made, { recursive: true, force: true }));
    dir = made;
  }
  mkdirSync(join(dir, 'cli-plugins'), { recursive: true });
  symlinkSync(plugin, join(dir, 'cli-plugins', 'docker-buildx'));
  return dir;
}
