import semver from 'semver';
import { isValidTag } from '../registry/reference.js';

// `buildkit.version` takes three shapes (product.md, Configuration):
//   exact  `v0.18.2` / `0.18.2` / `v0.19.0-rc1` -> that tag (BuildKit tags carry a leading v)
//   range  `^0.18`, `>=0.17 <0.20`, `0.18`, `*` -> highest satisfying tag in the tag list
//   tag    `buildx-stable-1`, `latest`, `master` -> used as is
export type VersionSpec =
  | { kind: 'exact'; spec: string; version: string }
  | { kind: 'range'; spec: string; range: string; includePrerelease: boolean }
  | { kind: 'tag'; spec: string; tag: string };

const EXACT = /^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/;

/** Classifies a version spec; throws an Error naming what is wrong when it is none of the three. */
export function parseVersionSpec(spec: string): VersionSpec {
  const text = spec.trim();
  if (!text) throw new Error('empty version');
  const exact = EXACT.exec(text);
  if (exact && semver.valid(exact[1]!)) return { kind: 'exact', spec: text, version: semver.valid(exact[1]!)! };
  const range = semver.validRange(text);
  if (range !== null && /[\d*xX]/.test(text)) {
    // A range admits prereleases only when the user wrote one (`^0.19.0-rc1`), as npm does.
    return { kind: 'range', spec: text, range, includePrerelease: /-[0-9A-Za-z]/.test(text.replace(/\s-\s/g, ' ')) };
  }
  if (isValidTag(text)) return { kind: 'tag', spec: text, tag: text };
  throw new Error(`"${spec}" is not a semver range, an exact version or an image tag`);
}
