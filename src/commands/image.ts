// `image`: builds the CI image (the package's Dockerfile: docker:<v>-cli + Node + this tool) from
// the installed package's own files, with buildx-bootstrap itself — prefix mode around a
// `docker buildx build` of a temporary context holding the Dockerfile and the package tarball, so
// the base images come through the configured mirrors and nothing else is fetched.
// `--push REF` builds linux/amd64 and linux/arm64 and pushes; without it the builder's own
// platform is loaded into the daemon as buildx-bootstrap:<version>. `--base-images` prints the
// images the build pulls, one per line, for `mirror` to copy first.
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandContext } from '../context.js';
import { imageBaseImages, imageBuildCommand, pushReference } from '../image/build-command.js';
import { packPackage, readManifest, type PackageManifest } from '../image/pack.js';
import { findPackageRoot } from './init.js';
import { run as create } from './create.js';

/** The commit the package was made from: npm's `gitHead`, else the checkout's HEAD, else empty. */
async function revisionOf(root: string, manifest: PackageManifest): Promise<string> {
  if (manifest.gitHead) return manifest.gitHead;
  if (!existsSync(join(root, '.git'))) return '';
  const { execa } = await import('execa');
  const r = await execa('git', ['-C', root, 'rev-parse', 'HEAD'], { reject: false, timeout: 10_000 });
  return r.exitCode === 0 ? String(r.stdout).trim() : '';
}

export async function run(ctx: CommandContext): Promise<number> {
  const root = await findPackageRoot();
  const dockerfile = join(root, 'Dockerfile');
  if (ctx.args.baseImages) {
    ctx.result(imageBaseImages(await readFile(dockerfile, 'utf8')).join('\n'));
    return 0;
  }
  const manifest = await readManifest(root);
  const push = ctx.args.push === undefined ? undefined : pushReference(ctx.args.push, manifest.version);
  const contextDir = await mkdtemp(join(tmpdir(), 'bxb-image-'));
  try {
    await copyFile(dockerfile, join(contextDir, 'Dockerfile'));
    const tarball = await packPackage(root, contextDir, manifest);
    ctx.log.info(`building ${push ?? `buildx-bootstrap:${manifest.version}`} from ${tarball}`);
    const exec = imageBuildCommand({ contextDir, manifest, revision: await revisionOf(root, manifest), ...(push ? { push } : {}) });
    return await create({ ...ctx, args: { ...ctx.args, exec } });
  } finally {
    await rm(contextDir, { recursive: true, force: true });
  }
}
