// What `image` runs (pure, so tests and `--base-images` see it without docker): the
// `docker buildx build` of the package's Dockerfile, and the base images that build pulls.
import { UsageError } from '../errors.js';
import { analyzeDockerfile } from '../dockerfile/dockerfile.js';
import { formatImageRef, parseImageRef } from '../registry/reference.js';
import type { PackageManifest } from './pack.js';

/** What `image --push` builds: both platforms the official docker:<v>-cli images are made for. */
export const IMAGE_PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;

/** The tag `image` gives a local build (without --push). */
export function localImageTag(manifest: Pick<PackageManifest, 'version'>): string {
  return `buildx-bootstrap:${manifest.version}`;
}

/** `--push REF`: REF as given, with the package version as its tag when it names none. */
export function pushReference(ref: string, version: string): string {
  let parsed;
  try {
    parsed = parseImageRef(ref);
  } catch (e) {
    throw new UsageError(`invalid --push reference: ${(e as Error).message}`, { hint: 'write --push REGISTRY/PATH/NAME[:TAG], e.g. --push "$CI_REGISTRY_IMAGE/mirror/buildx-bootstrap"' });
  }
  if (parsed.digest) throw new UsageError(`--push ${ref} names a digest`, { hint: 'push to a tag: REGISTRY/PATH/NAME[:TAG]' });
  return parsed.tag ? ref.trim() : `${ref.trim()}:${version}`;
}

/** `org.opencontainers.image.source`: the package's repository URL, else its npm page. */
export function imageSource(manifest: Pick<PackageManifest, 'name' | 'version' | 'repository'>): string {
  const repo = typeof manifest.repository === 'string' ? manifest.repository : manifest.repository?.url;
  if (repo && /^(git\+)?https?:\/\//.test(repo)) return repo.replace(/^git\+/, '').replace(/\.git$/, '');
  return `https://www.npmjs.com/package/${manifest.name}/v/${manifest.version}`;
}

export interface ImageBuildInput {
  /** Directory holding the Dockerfile and the package tarball. */
  contextDir: string;
  manifest: PackageManifest;
  /** Source-control revision for the label; empty when unknown. */
  revision: string;
  /** `--push` reference (with its tag), or undefined for a local `--load` build. */
  push?: string;
}

/**
 * The build: every RUN without network (`--network none`; the base images are all it fetches),
 * labels from the package, and either both platforms pushed or the builder's own platform loaded.
 */
export function imageBuildCommand(input: ImageBuildInput): string[] {
  const { contextDir, manifest } = input;
  return [
    'docker', 'buildx', 'build',
    '--file', `${contextDir}/Dockerfile`,
    '--network', 'none',
    '--build-arg', `VERSION=${manifest.version}`,
    '--build-arg', `SOURCE=${imageSource(manifest)}`,
    '--build-arg', `REVISION=${input.revision}`,
    ...(input.push ? ['--platform', IMAGE_PLATFORMS.join(','), '--tag', input.push, '--push'] : ['--tag', localImageTag(manifest), '--load']),
    contextDir,
  ];
}

/** The images the Dockerfile is built FROM (what `mirror` must copy first), normalised. */
export function imageBaseImages(dockerfile: string): string[] {
  const needs = analyzeDockerfile(dockerfile, { file: 'Dockerfile', buildArgs: {}, platforms: [...IMAGE_PLATFORMS], buildPlatform: IMAGE_PLATFORMS[0] });
  return needs.images.map((i) => formatImageRef(parseImageRef(i.ref)));
}
