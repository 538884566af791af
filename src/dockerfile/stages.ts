// Dockerfile nodes → stages: FROM (name, --platform), global ARGs, and the images a stage reads
// with COPY --from and RUN --mount=from (also inside ONBUILD), with BuildKit's own refusals
// (BK @73ed6825c `frontend/dockerfile/instructions/parse.go`, `commands_runmount.go`).
import { csvFields } from './csv.js';
import { INSTRUCTIONS, ParseFailure, type Node } from './syntax.js';

// ---- nodes → stages (instructions/parse.go) ---------------------------------------------------

export interface MetaArg {
  key: string;
  value?: string;
  line: number;
}

interface CopyFrom {
  kind: 'copy-from' | 'mount-from';
  from: string;
  line: number;
}

export interface Stage {
  index: number;
  name?: string;
  base: string;
  platform?: string;
  line: number;
  sources: CopyFrom[];
  /** COPY --from / RUN --mount=from inside ONBUILD: they run in stages built FROM this one. */
  onbuildSources: CopyFrom[];
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFlag(flag: string): { name: string; value?: string } {
  if (!flag.startsWith('--')) throw new Error(`arg should start with -- : ${flag}`);
  const eq = flag.indexOf('=');
  return eq < 0 ? { name: flag.slice(2) } : { name: flag.slice(2, eq), value: flag.slice(eq + 1) };
}

/** COPY --from / RUN --mount …,from=… sources of one instruction. */
function sourcesOf(node: Node): CopyFrom[] {
  const out: CopyFrom[] = [];
  if (node.cmd === 'copy') {
    if (node.args.length < 2) throw new ParseFailure('COPY requires at least two arguments, but only one was provided. Destination could not be determined', node.startLine);
    let from: string | undefined;
    for (const f of node.flags) {
      const { name, value } = parseFlag(f);
      if (name !== 'from') continue;
      if (value === undefined) throw new ParseFailure('missing a value on flag: --from', node.startLine);
      if (from !== undefined) throw new ParseFailure('duplicate flag specified: --from', node.startLine);
      from = value;
    }
    if (from) {
      // convert.go toCommand: --from is not expanded; a word that would expand is refused.
      if (/\$[{\w@*#?$!-]/.test(from)) {
        throw new ParseFailure('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', node.startLine);
      }
      out.push({ kind: 'copy-from', from, line: node.startLine });
    }
  } else if (node.cmd === 'run') {
    for (const f of node.flags) {
      const { name, value } = parseFlag(f);
      if (name !== 'mount') continue;
      if (value === undefined) throw new ParseFailure('missing a value on flag: --mount', node.startLine);
      const from = mountFrom(value, node.startLine);
      if (from) out.push({ kind: 'mount-from', from, line: node.startLine });
    }
  }
  return out;
}

/** The `from` field of a `--mount` CSV (commands_runmount.go parseMount, first pass). */
function mountFrom(value: string, line: number): string | undefined {
  let fields: string[];
  try {
    fields = csvFields(value);
  } catch {
    throw new ParseFailure(`failed to parse csv mounts: ${value}`, line);
  }
  let from: string | undefined;
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    if (field.slice(0, eq).toLowerCase() !== 'from') continue;
    const v = field.slice(eq + 1);
    const dollar = v.indexOf('$');
    if (dollar !== -1 && dollar !== v.length - 1) throw new ParseFailure("'from' doesn't support variable expansion, define alias stage instead", line);
    from = v;
  }
  return from;
}

export function parseStages(nodes: Node[]): { stages: Stage[]; metaArgs: MetaArg[] } {
  const stages: Stage[] = [];
  const metaArgs: MetaArg[] = [];
  for (const node of nodes) {
    if (!INSTRUCTIONS.has(node.cmd)) throw new ParseFailure(`unknown instruction: ${node.command}`, node.startLine);
    if (node.cmd === 'arg') {
      if (node.args.length === 0) throw new ParseFailure('ARG requires at least one argument', node.startLine);
      const parsed = node.args.map((word): MetaArg => {
        const eq = word.indexOf('=');
        if (eq === 0) throw new ParseFailure('ARG names can not be blank', node.startLine);
        return eq < 0 ? { key: word, line: node.startLine } : { key: word.slice(0, eq), value: word.slice(eq + 1), line: node.startLine };
      });
      if (stages.length === 0) metaArgs.push(...parsed);
      continue;
    }
    if (node.cmd === 'from') {
      let platform: string | undefined;
      for (const f of node.flags) {
        const { name, value } = parseFlag(f);
        if (name !== 'platform') throw new ParseFailure(`unknown flag: --${name}`, node.startLine);
        if (value === undefined) throw new ParseFailure('missing a value on flag: --platform', node.startLine);
        if (platform !== undefined) throw new ParseFailure('duplicate flag specified: --platform', node.startLine);
        platform = value;
      }
      const args = node.args;
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!STAGE_NAME.test(name)) throw new ParseFailure(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`, node.startLine);
      } else if (args.length !== 1) {
        throw new ParseFailure('FROM requires either one or three arguments', node.startLine);
      }
      stages.push({
        index: stages.length,
        ...(name ? { name } : {}),
        base: args[0]!,
        ...(platform !== undefined ? { platform } : {}),
        line: node.startLine,
        sources: [],
        onbuildSources: [],
      });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new ParseFailure('no build stage in current context', node.startLine);
    if (node.cmd === 'onbuild') {
      if (!node.sub) throw new ParseFailure('ONBUILD requires at least one argument', node.startLine);
      const trigger = node.sub.cmd.toUpperCase();
      if (trigger === 'ONBUILD') throw new ParseFailure('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', node.startLine);
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new ParseFailure(`${trigger} isn't allowed as an ONBUILD trigger`, node.startLine);
      if (!INSTRUCTIONS.has(node.sub.cmd)) throw new ParseFailure(`unknown instruction: ${node.sub.command}`, node.startLine);
      stage.onbuildSources.push(...sourcesOf(node.sub));
      continue;
    }
    stage.sources.push(...sourcesOf(node));
  }
  return { stages, metaArgs };
}
