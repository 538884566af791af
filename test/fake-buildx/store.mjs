// buildx's on-disk store (BX store/store.go, store/nodegroup.go): instances/<name> JSON,
// activity/<name> (RFC3339), current, defaults/. A mkdir lock stands in for buildx's flock.
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BuildxError, rfc3339 } from './util.mjs';

export class Store {
  constructor(dir) {
    this.dir = dir;
    for (const d of ['instances', 'activity', 'defaults']) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
    this.lockDir = join(dir, '.fake-lock');
  }

  /** Serialises store transactions across concurrent plugin processes (bounded wait). */
  async lock() {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        mkdirSync(this.lockDir);
        writeFileSync(join(this.lockDir, 'pid'), String(process.pid));
        return () => rmSync(this.lockDir, { recursive: true, force: true });
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
        try {
          const pid = Number(readFileSync(join(this.lockDir, 'pid'), 'utf8'));
          if (pid && !alive(pid)) rmSync(this.lockDir, { recursive: true, force: true });
        } catch {
          // pid not written yet, or lock already gone
          try {
            if (Date.now() - statSync(this.lockDir).mtimeMs > 10_000) rmdirSync(this.lockDir);
          } catch {}
        }
        if (Date.now() > deadline) throw new BuildxError('fake buildx: timed out waiting for the store lock');
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  atomicWrite(rel, data) {
    const f = join(this.dir, rel);
    const tmp = `${f}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, f);
  }

  /** NodeGroup or undefined; names are stored lower-cased (store.ValidateName). */
  get(name) {
    let dt;
    try {
      dt = readFileSync(join(this.dir, 'instances', name.toLowerCase()), 'utf8');
    } catch (err) {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }
    const ng = JSON.parse(dt);
    ng.LastActivity = this.lastActivity(ng.Name);
    return ng;
  }

  list() {
    return readdirSync(join(this.dir, 'instances'))
      .filter((f) => !f.endsWith('.tmp'))
      .sort()
      .map((f) => this.get(f))
      .filter(Boolean);
  }

  save(ng) {
    const { LastActivity, ...rest } = ng;
    this.atomicWrite(join('instances', ng.Name), JSON.stringify(rest));
    this.atomicWrite(join('activity', ng.Name), rfc3339(new Date()));
  }

  remove(name) {
    rmSync(join(this.dir, 'instances', name), { force: true });
    rmSync(join(this.dir, 'activity', name), { force: true });
  }

  lastActivity(name) {
    try {
      return new Date(readFileSync(join(this.dir, 'activity', name), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  setCurrent(key, name, global = false, def = false) {
    this.atomicWrite('current', JSON.stringify({ Key: key, Name: name, Global: global }));
    const h = toHash(key);
    if (def) this.atomicWrite(join('defaults', h), name);
    else rmSync(join(this.dir, 'defaults', h), { force: true });
  }

  /** The current NodeGroup for the docker endpoint `key`, or undefined (= the context builder). */
  current(key) {
    let c;
    try {
      c = JSON.parse(readFileSync(join(this.dir, 'current'), 'utf8'));
    } catch {}
    if (c && c.Name) {
      if (c.Global) {
        const ng = this.get(c.Name);
        if (ng) return ng;
      }
      if (c.Key === key) return this.get(c.Name);
    }
    let def;
    try {
      def = readFileSync(join(this.dir, 'defaults', toHash(key)), 'utf8');
    } catch {
      this.atomicWrite('current', JSON.stringify({ Key: key, Name: '', Global: false }));
      return undefined;
    }
    const ng = this.get(def);
    this.setCurrent(key, def, false, true);
    return ng;
  }
}

function toHash(s) {
  return createHash('sha256').update(s).digest('hex').slice(0, 20);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
