// `init`: writes a starter `.buildx-bootstraprc.yaml` in the current directory and CI snippets
// for GitLab CI and GitHub Actions under `ci/buildx-bootstrap/`, from the package's templates/.
//
// Snippets go to ci/buildx-bootstrap/ rather than to .gitlab-ci.yml or .github/workflows/: a
// project's pipeline file is the user's, and a file in .github/workflows/ would start running on
// the next push. The GitLab snippet defines a hidden job (`.buildx-bootstrap`) meant for
// `include: local:` + `extends:`, so it can be used from where it is written.
//
// Existing files are never overwritten without --force (exit 2, nothing written); every write is
// temp + rename. The configuration is not loaded: init must work next to a broken config file.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from '../context.js';
import { gitlabDindTemplateValues } from '../docker/dockerd-advice.js';
import { ExitCode, UsageError } from '../errors.js';
import { parseVersionSpec } from '../resolve/version-spec.js';
import { writeFileAtomic } from '../state.js';
import { VERSION } from '../version.js';

export const PACKAGE_NAME = 'buildx-bootstrap';

/** The starter range: any release from 0.18 on; the lockfile pins what it resolved to. */
export const DEFAULT_STARTER_VERSION = '>=0.18 <1';

export interface InitFile {
  /** Template file name inside templates/. */
  template: string;
  /** Where it is written, relative to the working directory. */
  target: string;
  kind: 'config' | 'gitlab-ci' | 'github-actions';
}

export const INIT_FILES: readonly InitFile[] = [
  { template: 'buildx-bootstraprc.yaml', target: '.buildx-bootstraprc.yaml', kind: 'config' },
  { template: 'gitlab-ci.yml', target: 'ci/buildx-bootstrap/gitlab-ci.yml', kind: 'gitlab-ci' },
  { template: 'github-actions.yml', target: 'ci/buildx-bootstrap/github-actions.yml', kind: 'github-actions' },
];

/**
 * The package root: the nearest directory above `from` whose package.json is named
 * buildx-bootstrap. Works from src/commands/ (tests run the TypeScript) and from dist/ (the
 * esbuild bundle puts this code in dist/cli.js or a chunk beside it).
 */
export async function findPackageRoot(from: string = fileURLToPath(import.meta.url)): Promise<string> {
  let dir = dirname(from);
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const pkg = JSON.parse(await readFile(manifest, 'utf8')) as { name?: unknown };
        if (pkg.name === PACKAGE_NAME) return dir;
      } catch {
        // an unreadable package.json on the way up is not ours
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root above ${from}`);
    dir = parent;
  }
}

/** Replaces `{{bxb.name}}` placeholders; `${{ … }}` of GitHub Actions is left alone. */
export function fillTemplate(text: string, values: Record<string, string>): string {
  return text.replace(/\{\{bxb\.(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{bxb.${name}}} has no value`);
    return value;
  });
}

/** The buildkit.version a starter config gets: `--buildkit-version` when given, else the default. */
export function starterVersion(flags: Record<string, unknown>): string {
  const value = (flags.buildkit as { version?: unknown } | undefined)?.version;
  if (value === undefined) return DEFAULT_STARTER_VERSION;
  const text = String(value);
  try {
    parseVersionSpec(text);
  } catch (e) {
    throw new UsageError(`invalid --buildkit-version: ${(e as Error).message}`, { hint: 'use a range (^0.18), an exact version (v0.18.2) or a tag (buildx-stable-1)' });
  }
  return text;
}

export interface RenderedInitFile extends InitFile {
  path: string;
  content: string;
}

/** Reads the templates and fills them in; pure apart from reading templates/. */
export async function renderInitFiles(cwd: string, opts: { version: string; templatesDir?: string }): Promise<RenderedInitFile[]> {
  const templatesDir = opts.templatesDir ?? join(await findPackageRoot(), 'templates');
  const values = {
    // A JSON string is a valid YAML double-quoted scalar: ranges like `>=0.18 <1` need quoting.
    buildkitVersion: JSON.stringify(opts.version),
    gitlabSnippetPath: INIT_FILES.find((f) => f.kind === 'gitlab-ci')!.target,
    // The CI image tag `image --push` gives: this package's version.
    packageVersion: VERSION,
    ...gitlabDindTemplateValues(),
  };
  return Promise.all(
    INIT_FILES.map(async (file) => ({
      ...file,
      path: resolvePath(cwd, file.target),
      content: fillTemplate(await readFile(join(templatesDir, file.template), 'utf8'), values),
    })),
  );
}

export async function run(ctx: CommandContext): Promise<number> {
  const cwd = ctx.io.cwd;
  const files = await renderInitFiles(cwd, { version: starterVersion(ctx.args.flags) });
  const existing = files.filter((f) => existsSync(f.path));
  if (existing.length && !ctx.args.force) {
    const names = existing.map((f) => relative(cwd, f.path)).join(', ');
    throw new UsageError(`${names} already exist${existing.length === 1 ? 's' : ''}; nothing was written`, {
      hint: 'run buildx-bootstrap init --force to overwrite',
    });
  }
  for (const file of files) await writeFileAtomic(file.path, file.content);

  const shown = files.map((f) => relative(cwd, f.path));
  ctx.log.info(`wrote ${shown[0]} (starter configuration; edit buildkit.version and mirrors)`);
  ctx.log.info(`wrote CI snippets to ${dirname(shown[1]!)}/: include ${shown[1]} from .gitlab-ci.yml and extend .buildx-bootstrap; copy ${shown[2]} to .github/workflows/`);
  ctx.log.info('next: buildx-bootstrap doctor, then buildx-bootstrap lock and commit the lockfile');
  ctx.result(ctx.args.json ? JSON.stringify(files.map((f, i) => ({ path: shown[i], kind: f.kind })), null, 2) : shown.join('\n'));
  return ExitCode.ok;
}
