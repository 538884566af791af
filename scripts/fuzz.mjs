#!/usr/bin/env node
// Coverage-guided fuzzing of the Dockerfile and config parsers (scripts/fuzz/targets.ts), for a
// bounded time. @jazzer.js/core cannot run on these machines (see CONTRIBUTING.md, "Libraries"),
// so this is the same loop in plain node: V8's own block coverage (inspector
// Profiler.takePreciseCoverage, reset after every input) tells which inputs reach new code; those
// join the corpus and are mutated further (byte edits, dictionary words, splices of two inputs).
// Each target runs in a worker thread watched by the main thread, so a hang is caught as one.
//
//   npm run fuzz                         every target, FUZZ_SECONDS (default 45) each
//   node scripts/fuzz.mjs dockerfile 300 one target for five minutes
//
// A finding (an exception that is not the documented error, or a hang) is written to
// fuzz-findings/<target>-<sha>.txt and the run exits 1; turn it into a regression test.
// A worker that exits non-zero, never reports it is done, or runs no input fails the run too.
//
// BXB_FUZZ_TARGETS=<module> (tests only: test/scripts/fuzz.test.ts) bundles that module's
// `targets` instead of scripts/fuzz/targets.ts, so the harness's own checks can be shown to fail.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const root = fileURLToPath(new URL('..', import.meta.url));
const HANG_MS = 10_000;
const SLOT = 1 << 20;

if (isMainThread) await main();
else await fuzzWorker();

async function main() {
  const [only, secondsArg] = process.argv.slice(2);
  const seconds = Number(secondsArg ?? process.env.FUZZ_SECONDS ?? 45);
  const dir = mkdtempSync(join(tmpdir(), 'bxb-fuzz-'));
  const bundle = join(dir, 'targets.mjs');
  await build({
    entryPoints: [process.env.BXB_FUZZ_TARGETS || join(root, 'scripts/fuzz/targets.ts')],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    external: ['typescript'],
    banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
  });
  const { targets } = await import(bundle);
  const names = only ? [only] : Object.keys(targets);
  let failed = false;
  for (const name of names) {
    if (!targets[name]) throw new Error(`no fuzz target ${name} (have: ${Object.keys(targets).join(', ')})`);
    failed = (await runTarget(name, bundle, seconds)) || failed;
  }
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = failed ? 1 : 0;
}

/** Runs one target in a worker; the shared buffer holds the input being executed, for hangs. */
async function runTarget(name, bundle, seconds) {
  const current = new SharedArrayBuffer(SLOT + 8);
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { name, bundle, seconds, root, current } });
  const view = new Int32Array(current, 0, 2);
  let lastExecs = -1;
  let stuckSince = Date.now();
  let findings = 0;
  let summary;
  // One report per distinct error: a bug is usually hit by many inputs.
  const distinct = new Set();
  const watchdog = setInterval(() => {
    const execs = Atomics.load(view, 0);
    if (execs !== lastExecs) {
      lastExecs = execs;
      stuckSince = Date.now();
      return;
    }
    if (Date.now() - stuckSince > HANG_MS) {
      const length = Atomics.load(view, 1);
      const input = Buffer.from(new Uint8Array(current, 8, length)).toString('utf8');
      report(name, 'hang', `no progress for ${HANG_MS} ms`, input);
      findings++;
      hung = true;
      void worker.terminate();
    }
  }, 1000);
  let hung = false;
  const exitCode = await new Promise((resolve) => {
    worker.on('message', (m) => {
      if (m.type === 'finding') {
        findings++;
        if (!distinct.has(m.error)) {
          distinct.add(m.error);
          report(name, 'crash', m.error, m.input);
        }
      } else if (m.type === 'done') summary = m;
    });
    worker.on('error', (e) => {
      findings++;
      console.error(`fuzz ${name}: worker failed: ${e.stack ?? e}`);
    });
    worker.on('exit', resolve);
  });
  clearInterval(watchdog);
  // A worker that died, never said it was done, or ran nothing has not fuzzed: that is a failure,
  // not a pass (a hang already terminated it and was reported as one).
  const broken = hung ? undefined : workerFailure(exitCode, summary);
  if (broken) console.error(`fuzz ${name}: ${broken}`);
  if (summary) console.log(`fuzz ${name}: ${summary.execs} inputs in ${seconds} s, corpus ${summary.corpus} (from ${summary.seeds} seeds), ${summary.edges} coverage points, ${findings} failing input(s), ${distinct.size} distinct`);
  return findings > 0 || broken !== undefined;
}

/** Why a worker's run does not count, or undefined when it fuzzed and ended cleanly. */
function workerFailure(exitCode, summary) {
  if (exitCode !== 0) return `worker exited with code ${exitCode}`;
  if (!summary) return 'worker ended without reporting its results';
  if (!(summary.execs > 0)) return 'worker ran no inputs';
  return undefined;
}

function report(name, kind, error, input) {
  const out = join(root, 'fuzz-findings');
  mkdirSync(out, { recursive: true });
  const file = join(out, `${name}-${createHash('sha256').update(input).digest('hex').slice(0, 12)}.txt`);
  writeFileSync(file, input);
  console.error(`fuzz ${name}: ${kind}: ${String(error).split('\n')[0]}\n  input: ${JSON.stringify(input.slice(0, 300))}${input.length > 300 ? '…' : ''}\n  saved: ${file}`);
}

// ---- the worker: corpus, mutation, coverage --------------------------------------------------

async function fuzzWorker() {
  const { name, bundle, seconds, root: repo, current } = workerData;
  const { targets } = await import(bundle);
  const target = targets[name];
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const bundleUrl = new URL(`file://${bundle}`).href;
  const view = new Int32Array(current, 0, 2);
  const slot = new Uint8Array(current, 8, SLOT);

  const seen = new Set();
  /** New coverage points (block start + hit-count bucket, as AFL counts) of the last input. */
  const coverage = async () => {
    const { result } = await session.post('Profiler.takePreciseCoverage');
    let fresh = 0;
    for (const script of result) {
      if (script.url !== bundleUrl) continue;
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const key = r.startOffset * 8 + Math.min(7, 31 - Math.clz32(r.count));
          if (!seen.has(key)) {
            seen.add(key);
            fresh++;
          }
        }
      }
    }
    return fresh;
  };
  const seeds = target.seeds(repo);
  const corpus = [...seeds];
  let execs = 0;
  const execute = async (input) => {
    const bytes = Buffer.from(input, 'utf8').subarray(0, SLOT);
    slot.set(bytes);
    Atomics.store(view, 1, bytes.length);
    try {
      target.run(input);
    } catch (error) {
      parentPort.postMessage({ type: 'finding', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error), input });
    }
    Atomics.store(view, 0, ++execs);
    return await coverage();
  };
  for (const seed of seeds) await execute(seed);

  const words = target.dictionary;
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  const mutate = (input) => {
    let s = input;
    const rounds = 1 + Math.floor(Math.random() * 4);
    for (let i = 0; i < rounds; i++) {
      const at = Math.floor(Math.random() * (s.length + 1));
      switch (Math.floor(Math.random() * 7)) {
        case 0: // delete a run
          s = s.slice(0, at) + s.slice(at + 1 + Math.floor(Math.random() * 16));
          break;
        case 1: // insert a dictionary word
          s = s.slice(0, at) + pick(words) + s.slice(at);
          break;
        case 2: // insert a random character (any code unit, lone surrogates included)
          s = s.slice(0, at) + String.fromCharCode(Math.random() < 0.7 ? Math.floor(Math.random() * 128) : Math.floor(Math.random() * 0x10000)) + s.slice(at);
          break;
        case 3: {
          // duplicate a run
          const len = Math.floor(Math.random() * 32);
          s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
          break;
        }
        case 4: {
          // splice with another corpus entry
          const other = pick(corpus);
          const from = Math.floor(Math.random() * (other.length + 1));
          s = s.slice(0, at) + other.slice(from, from + Math.floor(Math.random() * 200));
          break;
        }
        case 5: // replace a character
          s = s.slice(0, at) + String.fromCharCode(Math.floor(Math.random() * 128)) + s.slice(at + 1);
          break;
        default: // swap lines
          if (s.includes('\n')) {
            const lines = s.split('\n');
            const a = Math.floor(Math.random() * lines.length);
            const b = Math.floor(Math.random() * lines.length);
            [lines[a], lines[b]] = [lines[b], lines[a]];
            s = lines.join('\n');
          }
      }
    }
    return s.length > 64 * 1024 ? s.slice(0, 64 * 1024) : s;
  };

  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    // Newer corpus entries (found later, so deeper) are picked more often.
    const base = corpus[Math.floor(corpus.length * Math.sqrt(Math.random()))];
    const input = mutate(base);
    if ((await execute(input)) > 0) corpus.push(input);
  }
  await session.post('Profiler.stopPreciseCoverage');
  session.disconnect();
  parentPort.postMessage({ type: 'done', execs, corpus: corpus.length, seeds: seeds.length, edges: seen.size });
}
