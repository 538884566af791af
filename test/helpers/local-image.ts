// An image that exists only in one daemon, as in the CI job that motivates bridging: built from
// the machine's busybox, never pushed, and brought in by `docker load` (saved, removed, loaded)
// or left as `docker import` made it (`how: 'import'`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';

interface DockerCli {
  docker(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

export interface LocalImageContent {
  /** busybox applets linked in /bin besides busybox itself (e.g. `sh`, `cat` for RUN steps). */
  applets?: string[];
  /** Extra files, path in the image → content. */
  files?: Record<string, string>;
  /** How the image arrives: `docker import` then save/rmi/load (default), or `docker import` alone. */
  how?: 'load' | 'import';
}

export async function loadLocalOnlyImage(t: Test, d: DockerCli, ref: string, content: LocalImageContent = {}): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bxb-local-image-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const rootfs = join(root, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'));
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of content.applets ?? []) symlinkSync('busybox', join(rootfs, 'bin', applet));
  for (const [path, text] of Object.entries(content.files ?? {})) {
    mkdirSync(dirname(join(rootfs, path)), { recursive: true });
    writeFileSync(join(rootfs, path), text);
  }
  const tar = join(root, 'rootfs.tar');
  const made = spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  t.equal(made.status, 0, String(made.stderr));
  const imported = await d.docker(['import', tar, ref]);
  t.equal(imported.code, 0, imported.stderr);
  if (content.how === 'import') return;
  const saved = join(root, 'image.tar');
  t.equal((await d.docker(['save', '-o', saved, ref])).code, 0);
  t.equal((await d.docker(['rmi', ref])).code, 0);
  const loaded = await d.docker(['load', '-i', saved]);
  t.equal(loaded.code, 0, loaded.stderr);
}
