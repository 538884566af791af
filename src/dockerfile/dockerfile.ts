// What a Dockerfile pulls: every image named by FROM, COPY --from and RUN --mount=from, plus the
// `# syntax=` frontend, after ARG substitution, with stages told apart from images and only the
// stages the target needs. Read the way BuildKit's Dockerfile frontend reads it (BK @73ed6825c):
//   - lines, comments, directives, continuations, heredocs: ./syntax.ts
//   - instructions and stages: ./stages.ts
//   - ARG/FROM evaluation, stage lookup and reachability: `frontend/dockerfile/dockerfile2llb/
//     convert.go` (`buildMetaArgs`, `defaultArgs` in platform.go, `toCommand`, `detectRunMount`
//     in convert_runmount.go, `dispatchStates`)
//   - named-context keys: `frontend/dockerui/config.go` (`NamedContext`) and buildx
//     `util/buildflags/context.go` (`ParseContextNames`)
// Anything BuildKit would reject (and we can see) is a UsageError naming `file:line`; we never guess.
import { UsageError } from '../errors.js';
import { formatImageRef, parseImageRef, type ImageRef } from '../registry/reference.js';
import { expandWord, LexError } from './lexer.js';
import { parseStages, type MetaArg, type Stage } from './stages.js';
import { detectSyntax, parseLines, ParseFailure, type Lines } from './syntax.js';
import { hostPlatform, normalizePlatform, parsePlatform } from './platform.js';

export { detectSyntax };

export type ImageUseKind = 'from' | 'copy-from' | 'mount-from' | 'syntax';

export interface ImageUse {
  kind: ImageUseKind;
  /** 1-based line of the instruction (or directive). */
  line: number;
  /** The reference as written in the Dockerfile, before ARG substitution. */
  written: string;
  /** Platform the image is needed for at this use. */
  platform: string;
  /** Stage using it: its name, or `stage-N`. */
  stage?: string;
}

export interface NeededImage {
  /** Normalised reference with the implied tag: `docker.io/library/alpine:latest`. */
  ref: string;
  /** The name BuildKit resolves, after ARG substitution and before normalisation (`alpine`). */
  name: string;
  /** The `--build-context` name BuildKit's frontend looks this image up by (see buildContextName). */
  contextName: string;
  /** Every platform it is needed for, normalised. */
  platforms: string[];
  uses: ImageUse[];
}

export interface StageInfo {
  index: number;
  /** Lower-cased stage name, when it has one. */
  name?: string;
  line: number;
  /** FROM argument as written. */
  base: string;
  /** `--platform` as written. */
  platform?: string;
}

export interface OverriddenName {
  /** Image or stage name the Dockerfile uses. */
  name: string;
  contextName: string;
  /** The user's `--build-context` value that replaces it. */
  by: string;
}

export interface DockerfileNeeds {
  file: string;
  /** Frontend image from `# syntax=` (or the BUILDKIT_SYNTAX build-arg), first word only. */
  syntax?: string;
  escapeToken: '\\' | '`';
  stages: StageInfo[];
  /** The stage that is built: its name or `stage-N`. */
  target: string;
  /** Target platforms the analysis covered. */
  platforms: string[];
  /** Images to fetch (from a registry or the local store), in first-use order. */
  images: NeededImage[];
  /** Images/stages replaced by the user's own `--build-context`. */
  overridden: OverriddenName[];
}

export interface AnalyzeOptions {
  /** Shown in errors (`Dockerfile:12: …`). */
  file: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** Target platforms (`--platform`); empty or absent: the build platform. */
  platforms?: string[];
  /** The builder's native platform (default: this machine's). */
  buildPlatform?: string;
  /** Names given with `--build-context` (any spelling; normalised here) → their values. */
  buildContexts?: Record<string, string>;
}

// ---- named-context keys -----------------------------------------------------------------------

/**
 * The key BuildKit's Dockerfile frontend looks a named context up by for an image reference:
 * `reference.FamiliarString(ParseNormalizedNamed(name))` with a trailing `:latest` cut
 * (BK `frontend/dockerui/config.go` `NamedContext`; buildx normalises `--build-context` names the
 * same way in `util/buildflags/context.go` `ParseContextNames`). So `FROM alpine`,
 * `FROM alpine:latest` and `FROM docker.io/library/alpine` all look up `alpine`;
 * `FROM docker.io/foo/bar:1` looks up `foo/bar:1`; `registry.corp/app/bin:v1` stays as is; a tag
 * with a digest keeps both (`alpine:3@sha256:…`). The frontend first tries
 * `<key>::<os>/<arch>[/<variant>]` for the platform in use, then `<key>`.
 * Throws an Error for a name that is not a valid reference.
 */
export function buildContextName(ref: string): string {
  const parsed = parseImageRef(ref);
  return familiarName(parsed).replace(/:latest$/, '');
}

function familiarName(ref: ImageRef): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === 'docker.io') {
    name = ref.repository;
    if (name.startsWith('library/') && !name.slice('library/'.length).includes('/')) name = name.slice('library/'.length);
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** `alpine` → `docker.io/library/alpine:latest` (distribution `TagNameOnly`). Throws on a bad name. */
export function normalizeImageName(name: string): string {
  const ref = parseImageRef(name);
  if (!ref.tag && !ref.digest) ref.tag = 'latest';
  return formatImageRef(ref);
}

// ---- evaluation (dockerfile2llb) --------------------------------------------------------------

function platformArgs(build: string, target: string, overrides: Record<string, string>, targetStage: string): Map<string, string> {
  const b = parsePlatform(build);
  const t = parsePlatform(target);
  const entries: [string, string][] = [
    ['BUILDPLATFORM', normalizePlatform(build)],
    ['BUILDOS', b.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', b.architecture],
    ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETPLATFORM', normalizePlatform(target)],
    ['TARGETOS', t.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
    ['TARGETSTAGE', targetStage || 'default'],
  ];
  const env = new Map<string, string>();
  for (const [k, v] of entries) env.set(k, overrides[k] ?? v);
  return env;
}

function stageLabel(stage: Stage): string {
  return stage.name ?? `stage-${stage.index}`;
}

/** Reads the Dockerfile and returns every image the build will need. Throws a UsageError naming `file:line`. */
export function analyzeDockerfile(text: string, opts: AnalyzeOptions): DockerfileNeeds {
  const fail = (message: string, line: number): never => {
    throw new UsageError(`${opts.file}:${line}: ${message}`, { hint: 'fix the Dockerfile (BuildKit would reject it the same way)' });
  };
  let parsed: Lines;
  let stages: Stage[];
  let metaArgs: MetaArg[];
  try {
    parsed = parseLines(text);
    ({ stages, metaArgs } = parseStages(parsed.nodes));
  } catch (e) {
    if (e instanceof ParseFailure) return fail(e.message, Math.max(e.line, 1));
    throw e;
  }
  if (stages.length === 0) return fail('dockerfile contains no stages to build', parsed.nodes[0]?.startLine ?? 1);

  const buildPlatform = normalizePlatform(opts.buildPlatform ?? hostPlatform());
  const targets = (opts.platforms ?? []).length > 0 ? [...new Set(opts.platforms!.map((p) => normalizePlatform(p)))] : [buildPlatform];
  const userContexts = new Map<string, string>();
  for (const [name, value] of Object.entries(opts.buildContexts ?? {})) {
    let key = name;
    try {
      key = buildContextName(name);
    } catch {
      // buildx rejects such a name; it cannot match anything here either
    }
    userContexts.set(key, value);
  }
  const contextFor = (name: string, platform: string): string | undefined => {
    let key: string;
    try {
      key = buildContextName(name);
    } catch {
      return undefined;
    }
    return userContexts.get(`${key}::${platform}`) ?? userContexts.get(key);
  };

  let targetStage: Stage;
  if (opts.target) {
    const t = stages.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) {
      const names = stages.flatMap((s) => (s.name ? [s.name] : []));
      throw new UsageError(`${opts.file}: target stage "${opts.target}" could not be found`, {
        hint: names.length ? `stages: ${names.join(', ')}` : 'the Dockerfile has no named stages',
      });
    }
    targetStage = t;
  } else {
    targetStage = stages[stages.length - 1]!;
  }
  const targetName = opts.target ? targetStage.name! : (stages[stages.length - 1]!.name ?? '');

  const images = new Map<string, NeededImage>();
  const overridden = new Map<string, OverriddenName>();
  const addImage = (name: string, use: ImageUse): void => {
    const hit = contextFor(name, use.platform);
    if (hit !== undefined) {
      const contextName = buildContextName(name);
      overridden.set(contextName, { name, contextName, by: hit });
      return;
    }
    let ref: string;
    try {
      ref = normalizeImageName(name);
    } catch (e) {
      if (use.kind === 'syntax' && use.line === 0) {
        // From the BUILDKIT_SYNTAX build arg: there is no Dockerfile line to name.
        throw new UsageError(`--build-arg BUILDKIT_SYNTAX: invalid frontend image "${name}": ${(e as Error).message}`, { hint: 'give an image reference such as docker/dockerfile:1' });
      }
      return fail(`failed to parse stage name "${name}": ${(e as Error).message}`, use.line);
    }
    let entry = images.get(ref);
    if (!entry) {
      entry = { ref, name, contextName: buildContextName(name), platforms: [], uses: [] };
      images.set(ref, entry);
    }
    if (!entry.platforms.includes(use.platform)) entry.platforms.push(use.platform);
    if (!entry.uses.some((u) => u.kind === use.kind && u.line === use.line && u.platform === use.platform)) entry.uses.push(use);
  };

  // `# syntax=` (or BUILDKIT_SYNTAX) names the frontend image; BuildKit looks it up as a named
  // context too (BK `frontend/gateway/gateway.go`), on the builder's own platform.
  let syntax: string | undefined;
  const syntaxArg = opts.buildArgs.BUILDKIT_SYNTAX;
  const syntaxDirective = detectSyntax(text);
  const fromArg = syntaxArg !== undefined && syntaxArg.trim() !== '';
  if (fromArg) {
    syntax = syntaxArg.trim().split(' ')[0]!;
  } else if (syntaxDirective) {
    syntax = syntaxDirective.ref;
  }
  if (syntax && syntax !== 'dockerfile.v0') {
    // Line 0: the build arg, not a line of the file.
    addImage(syntax, { kind: 'syntax', line: fromArg ? 0 : syntaxDirective!.line, written: syntax, platform: buildPlatform });
  }

  for (const targetPlatform of targets) {
    // Global scope: platform args, then ARGs before the first FROM, build args overriding defaults.
    const env = platformArgs(buildPlatform, targetPlatform, opts.buildArgs, targetName);
    for (const arg of metaArgs) {
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(opts.buildArgs, arg.key)) value = opts.buildArgs[arg.key];
      else if (arg.value !== undefined) {
        try {
          value = expandWord(arg.value, env, parsed.escapeToken);
        } catch (e) {
          return fail((e as Error).message, arg.line);
        }
      }
      if (value !== undefined) env.set(arg.key, value);
    }

    // Resolve each stage's base and platform; a base names an earlier stage only by its exact
    // (lower-case) name (convert.go addState keys stages by name, looked up by BaseName as is).
    const resolved: { base: string; baseStage?: Stage; platform?: string; replacedBy?: string }[] = [];
    const byName = new Map<string, Stage>();
    for (const stage of stages) {
      let base: string;
      let platform: string | undefined;
      try {
        base = expandWord(stage.base, env, parsed.escapeToken);
        if (stage.platform !== undefined) {
          const p = expandWord(stage.platform, env, parsed.escapeToken);
          if (!p) return fail(`empty platform value from expression ${stage.platform}`, stage.line);
          platform = normalizePlatform(p);
        }
      } catch (e) {
        if (e instanceof UsageError) throw e;
        if (e instanceof LexError) return fail(e.message, stage.line);
        return fail(`failed to parse platform ${stage.platform}: ${(e as Error).message}`, stage.line);
      }
      if (!base) return fail(`base name (${stage.base}) should not be blank`, stage.line);
      const entry: (typeof resolved)[number] = { base };
      if (platform) entry.platform = platform;
      const baseStage = byName.get(base);
      if (baseStage) entry.baseStage = baseStage;
      if (stage.name) {
        const hit = contextFor(stage.name, platform ?? targetPlatform);
        if (hit !== undefined) entry.replacedBy = hit;
      }
      resolved.push(entry);
      if (stage.name) byName.set(stage.name, stage);
    }

    // Walk from the target through bases, COPY --from and RUN --mount=from.
    const seen = new Set<number>();
    const queue: Stage[] = [targetStage];
    while (queue.length > 0) {
      const stage = queue.shift()!;
      if (seen.has(stage.index)) continue;
      seen.add(stage.index);
      const r = resolved[stage.index]!;
      const label = stageLabel(stage);
      if (r.replacedBy !== undefined) {
        const contextName = buildContextName(stage.name!);
        overridden.set(contextName, { name: stage.name!, contextName, by: r.replacedBy });
        continue;
      }
      const stagePlatform = r.platform ?? targetPlatform;
      const sources = [...stage.sources];
      if (r.baseStage) {
        queue.push(r.baseStage);
        sources.push(...r.baseStage.onbuildSources);
      } else if (r.base !== 'scratch') {
        addImage(r.base, { kind: 'from', line: stage.line, written: stage.base, platform: stagePlatform, stage: label });
      }
      for (const src of sources) {
        const byStage = stages.find((s) => s.name !== undefined && s.name === src.from.toLowerCase());
        if (byStage) {
          if (byStage.index >= stage.index) {
            return src.kind === 'copy-from'
              ? fail(`cannot copy from stage "${src.from}", it needs to be defined before current stage "${label}"`, src.line)
              : fail(`cannot mount from stage "${src.from}", stage needs to be defined before current command`, src.line);
          }
          queue.push(byStage);
          continue;
        }
        if (src.kind === 'copy-from' && /^\d+$/.test(src.from)) {
          const idx = Number(src.from);
          if (idx >= stages.length) return fail(`invalid stage index ${idx}`, src.line);
          if (idx >= stage.index) return fail(`cannot copy from stage "${src.from}", it needs to be defined before current stage "${label}"`, src.line);
          queue.push(stages[idx]!);
          continue;
        }
        if (src.from === 'scratch') continue;
        // An image used by COPY --from / --mount has no platform of its own: the target's applies.
        addImage(src.from, { kind: src.kind, line: src.line, written: src.from, platform: targetPlatform, stage: label });
      }
    }
  }

  const needs: DockerfileNeeds = {
    file: opts.file,
    escapeToken: parsed.escapeToken,
    stages: stages.map((s) => ({ index: s.index, ...(s.name ? { name: s.name } : {}), line: s.line, base: s.base, ...(s.platform !== undefined ? { platform: s.platform } : {}) })),
    target: stageLabel(targetStage),
    platforms: targets,
    // Report in Dockerfile order (the walk above goes from the target backwards).
    images: [...images.values()].sort((a, b) => firstLine(a) - firstLine(b)),
    overridden: [...overridden.values()],
  };
  if (syntax) needs.syntax = syntax;
  return needs;
}

function firstLine(image: NeededImage): number {
  return Math.min(...image.uses.map((u) => u.line));
}
