import type SemVer from 'semver/classes/semver.js';
import { isValidTag } from '../registry/reference.js';
import { semver } from '../lazy.cjs';

// `buildkit.version` takes three shapes (product.md, Configuration):
//   exact  `v0.18.2` / `0.18.2` / `v0.19.0-rc1` -> that tag (BuildKit tags carry a leading v)
//   range  `^0.18`, `>=0.17 <0.20`, `0.18`, `*` -> highest satisfying tag in the tag list
//   tag    `buildx-stable-1`, `latest`, `master` -> used as is
export type VersionSpec =
  | { kind: 'exact'; spec: string; version: string }
  | { kind: 'range'; spec: string; range: string; includePrerelease: boolean }
  | { kind: 'tag'; spec: string; tag: string };

// An exact version is semver's strict grammar without build metadata: numeric parts without
// leading zeros, dot-separated prerelease identifiers (numeric ones without leading zeros). This is
// what semver.valid() accepts for such text (property-tested against it), decided without loading
// semver: an exact pin is the common case and needs no range code.
const NUM = '(?:0|[1-9]\\d*)';
const PRE_ID = '(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)';
const EXACT = new RegExp(`^v?(${NUM}\\.${NUM}\\.${NUM}(?:-${PRE_ID}(?:\\.${PRE_ID})*)?)$`);
const MAX_VERSION_LENGTH = 256; // semver's MAX_LENGTH

/** The normalized version (`0.18.2`, no `v`) when `text` is an exact semver version, else undefined. */
export function exactVersion(text: string): string | undefined {
  const m = EXACT.exec(text);
  if (!m || m[1]!.length > MAX_VERSION_LENGTH) return undefined;
  // semver refuses a major, minor or patch past Number.MAX_SAFE_INTEGER.
  const core = m[1]!.split('-', 1)[0]!.split('.');
  return core.every((n) => Number(n) <= Number.MAX_SAFE_INTEGER) ? m[1] : undefined;
}

/** Classifies a version spec; throws an Error naming what is wrong when it is none of the three. */
export function parseVersionSpec(spec: string): VersionSpec {
  const text = spec.trim();
  if (!text) throw new Error('empty version');
  const version = exactVersion(text);
  if (version !== undefined) return { kind: 'exact', spec: text, version };
  const range = semver().validRange(text);
  if (range !== null && /[\d*xX]/.test(text)) {
    // A range admits prereleases only when the user wrote one (`^0.19.0-rc1`), as npm does.
    return { kind: 'range', spec: text, range, includePrerelease: /-[0-9A-Za-z]/.test(text.replace(/\s-\s/g, ' ')) };
  }
  if (isValidTag(text)) return { kind: 'tag', spec: text, tag: text };
  throw new Error(`"${spec}" is not a semver range, an exact version or an image tag`);
}

// ---- tag selection --------------------------------------------------------------------------

export interface TagOptions {
  /** Pick the `-rootless` flavour (facts §8: every release and branch tag has one). */
  rootless: boolean;
}

const ROOTLESS = '-rootless';
// moby/buildkit flavour suffixes (facts §8, BK `.github/workflows/buildkit.yml` meta-tags). semver
// reads `v0.18.2-rootless` as a prerelease of 0.18.2, so flavours are split off before semver
// sees the tag. `-ubuntu` (and `-gpu`, derived from it) are never chosen by a range.
const RELEASE_TAG = /^v(\d+\.\d+\.\d+)(-[0-9A-Za-z.-]+)?$/;
const OTHER_FLAVOURS = /-(?:ubuntu|gpu)(?:$|-)/;

/**
 * The one tag an exact version or plain tag names, in the requested flavour; undefined for a
 * range (that needs the tag list). `latest` has no `latest-rootless`: its rootless twin is
 * `rootless` (facts §8).
 */
export function directTag(spec: VersionSpec, opts: TagOptions): string | undefined {
  if (spec.kind === 'range') return undefined;
  const base = spec.kind === 'exact' ? `v${spec.version}` : spec.tag;
  if (!opts.rootless || base.endsWith(ROOTLESS) || base === 'rootless') return base;
  return base === 'latest' ? 'rootless' : `${base}${ROOTLESS}`;
}

/**
 * Picks the tag a spec resolves to from a registry's tag list: an exact version or plain tag
 * when it is listed; for a range the highest `vX.Y.Z` (in the flavour asked for) that
 * satisfies it, prereleases only when the range names one. One pass, one parsed Range: fine
 * for repositories with tens of thousands of tags.
 */
export function selectTag(spec: VersionSpec, tags: readonly string[], opts: TagOptions): string | undefined {
  if (spec.kind !== 'range') {
    const tag = directTag(spec, opts);
    return tag !== undefined && tags.includes(tag) ? tag : undefined;
  }
  const { Range, parse: semverParse, gt: semverGt } = semver();
  const range = new Range(spec.range, { includePrerelease: spec.includePrerelease });
  let best: SemVer | undefined;
  let bestTag: string | undefined;
  for (const tag of tags) {
    const version = rangeCandidate(tag, opts.rootless);
    if (version === undefined) continue;
    const parsed = semverParse(version);
    if (!parsed || !range.test(parsed)) continue;
    if (!best || semverGt(parsed, best)) {
      best = parsed;
      bestTag = tag;
    }
  }
  return bestTag;
}

/** The semver version a release tag stands for in the wanted flavour, or undefined. */
function rangeCandidate(tag: string, rootless: boolean): string | undefined {
  if (tag.charCodeAt(0) !== 118 /* v */) return undefined;
  let plain = tag;
  if (rootless) {
    if (!tag.endsWith(ROOTLESS)) return undefined;
    plain = tag.slice(0, -ROOTLESS.length);
  } else if (tag.endsWith(ROOTLESS)) return undefined;
  const m = RELEASE_TAG.exec(plain);
  if (!m) return undefined;
  const pre = m[2];
  if (pre && (OTHER_FLAVOURS.test(`${pre}-`) || pre.includes(ROOTLESS))) return undefined;
  return pre ? `${m[1]}${pre}` : m[1];
}
