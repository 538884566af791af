// V8 code cache for dist/'s chunks: compiling the chunks a command loads costs ~6 ms of a `resolve`
// run, and V8 can skip most of it when handed the code it compiled last time. Node 20 has no
// built-in cache for CommonJS (module.enableCompileCache() is Node 22), so this loader compiles
// our own chunks with vm.Script and V8's cachedData, the way v8-compile-cache does.
//
// - Only files directly in dist/ with the .cjs extension; anything else (a user's .cjs config,
//   which cosmiconfig loads) goes through node's own loader, and so does a chunk with a real
//   import() in it.
// - The cache sits beside the code, in dist/.v8-cache/: whoever may write it may already change
//   the code, so it grants nothing new. Read-only installs simply run uncached.
// - An entry is keyed by chunk name, size and mtime, and V8 itself refuses data made by another
//   V8 version or with other flags (then the chunk compiles normally and the entry is replaced).
// - Entries are written after the command, for chunks that had none: atomic (temp + rename), and
//   any failure is ignored. BXB_COMPILE_CACHE=0 turns the cache off.
'use strict';
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

/** Installs the loader for `distDir`; returns a function that writes the new entries. */
exports.install = function install(distDir) {
  if (process.env.BXB_COMPILE_CACHE === '0') return () => undefined;
  const cacheDir = path.join(distDir, '.v8-cache');
  const fresh = [];
  const jsLoader = Module._extensions['.js'];
  // Every chunk sits in distDir and requires only its siblings and node builtins: one require
  // function, resolving from there, serves them all.
  const requireChunk = Module.createRequire(path.join(distDir, 'cli.cjs'));

  Module._extensions['.cjs'] = function loadChunk(module, filename) {
    if (path.dirname(filename) !== distDir) return jsLoader(module, filename);
    const fd = fs.openSync(filename, 'r');
    let source;
    let stat;
    try {
      stat = fs.fstatSync(fd);
      source = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
    // A chunk with a real import() (cosmiconfig loading a user's ES-module config) compiles the
    // way node compiles it: a vm.Script only runs import() with an experimental option.
    if (source.includes('import(')) return module._compile(source, filename);
    const entry = path.join(cacheDir, `${path.basename(filename)}.${stat.size}.${Math.trunc(stat.mtimeMs)}`);
    let cachedData;
    try {
      cachedData = fs.readFileSync(entry);
    } catch {
      // no entry yet
    }
    const script = new vm.Script(Module.wrap(source), { filename, cachedData });
    if (!cachedData || script.cachedDataRejected) fresh.push({ script, entry });
    const compiled = script.runInThisContext({ displayErrors: true });
    compiled.call(module.exports, module.exports, requireChunk, module, filename, distDir);
  };

  return function writeEntries() {
    if (fresh.length === 0) return;
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      for (const { script, entry } of fresh.splice(0)) {
        const temp = `${entry}.${process.pid}.tmp`;
        try {
          fs.writeFileSync(temp, script.createCachedData());
          fs.renameSync(temp, entry);
        } finally {
          fs.rmSync(temp, { force: true });
        }
      }
    } catch {
      // a read-only install, a full disk: run uncached
    }
  };
};
