import t from 'tap';
import { createLogger, Secrets, type Io } from '../src/io.js';

function io(isTTY: boolean): { io: Io; err: () => string } {
  let err = '';
  return { io: { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s), isTTY }, env: {}, cwd: '/' }, err: () => err };
}

t.test('CI logs get [HH:MM:SS] lines, a terminal bare ones, --quiet nothing', async (t) => {
  const clock = (): Date => new Date(2026, 10, 22, 9, 5, 7);
  const ci = io(false);
  const log = createLogger(ci.io, 'normal', new Secrets(), clock);
  log.info('pulling x');
  log.warn('careful');
  log.debug('hidden');
  t.equal(ci.err(), '[09:05:07] pulling x\n[09:05:07] warning: careful\n');
  const tty = io(true);
  createLogger(tty.io, 'debug', new Secrets(), clock).debug('shown');
  t.equal(tty.err(), 'debug: shown\n');
  const quiet = io(false);
  const q = createLogger(quiet.io, 'quiet', new Secrets(), clock);
  q.info('x');
  q.warn('y');
  t.equal(quiet.err(), '');
});

t.test('secrets are redacted from every line', async (t) => {
  const secrets = new Secrets();
  secrets.add('hunter2-password');
  secrets.add('abc'); // too short to be a real secret: would redact ordinary words
  const ci = io(true);
  createLogger(ci.io, 'normal', secrets).info('login with hunter2-password for abc');
  t.equal(ci.err(), 'login with **** for abc\n');
});
