// Integration tests start real parts (docker-registry, dockerd, skopeo, openssl). On a machine
// without the Debian packages they are skipped with a one-line reason; CI sets
// BXB_REQUIRE_INTEGRATION=1, which turns any such skip into a failure.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Test } from 'tap';

export function findBinary(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The two docker CLIs of these machines (testing.md): both are exercised, neither is optional. */
export const DOCKER_CLI = {
  /** The 28.x CLI the buildx facts were observed with (first on PATH). */
  current: '/usr/local/bin/docker',
  /** Debian's docker.io CLI, 20.10. */
  debian: '/usr/bin/docker',
} as const;

function present(name: string): boolean {
  if (!name.includes('/')) return findBinary(name) !== undefined;
  try {
    accessSync(name, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns true when every binary is present (a bare name is looked up on PATH, a path is checked
 * as is). Otherwise skips the test (or fails it when BXB_REQUIRE_INTEGRATION=1) and returns
 * false; the caller returns at once. Every condition that would make a test check less goes
 * through here, so CI fails instead of silently testing less.
 */
export function requireBinaries(t: Test, names: string[]): boolean {
  const missing = names.filter((n) => !present(n));
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(', ')} (Debian packages docker.io, docker-registry, busybox-static, openssl, skopeo, rsync; the docker 28.x CLI at ${DOCKER_CLI.current})`;
  if (process.env.BXB_REQUIRE_INTEGRATION === '1') t.fail(`integration test could not run: ${reason}`);
  // plan(0, reason) ends this test as skipped (tap's t.skip(...) would start a new subtest).
  else t.plan(0, reason);
  return false;
}

/**
 * The one conditional skip: when `ok` is false the test is skipped with `reason` (or failed when
 * BXB_REQUIRE_INTEGRATION=1, so CI never silently tests less). Returns `ok`.
 */
export function requireCondition(t: Test, ok: boolean, reason: string): boolean {
  if (ok) return true;
  if (process.env.BXB_REQUIRE_INTEGRATION === '1') t.fail(`integration test could not run: ${reason}`);
  else t.plan(0, reason);
  return false;
}
