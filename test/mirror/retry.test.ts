// Retries: transient registry failures are retried (waiting at least Retry-After), others are not.
import t from 'tap';
import { Limiter, withRetry } from '../../src/mirror/retry.js';
import { RegistryRequestError } from '../../src/registry/types.js';

const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 1000 };

t.test('transient failures are retried until success; the last error stands when attempts run out', async (t) => {
  let calls = 0;
  const delays: number[] = [];
  const flaky = (): Promise<string> => {
    calls++;
    if (calls === 1) {
      const e = new RegistryRequestError('rate-limited', 'hub', 'hub: rate limited', 429);
      e.retryAfterMs = 30;
      return Promise.reject(e);
    }
    if (calls === 2) return Promise.reject(new RegistryRequestError('reset', 'hub', 'hub: reset'));
    return Promise.resolve('ok');
  };
  t.equal(await withRetry(flaky, policy, undefined, (_e, ms) => delays.push(ms)), 'ok');
  t.equal(calls, 3);
  t.ok(delays[0]! >= 30, 'Retry-After is honoured');
  let n = 0;
  await t.rejects(withRetry(() => (n++, Promise.reject(new RegistryRequestError('server', 'hub', 'hub: 503', 503))), policy), { name: 'RegistryRequestError', message: /503/ });
  t.equal(n, 3, 'three attempts');
  n = 0;
  await t.rejects(withRetry(() => (n++, Promise.reject(new RegistryRequestError('auth', 'hub', 'hub: denied', 403))), policy), { name: 'RegistryRequestError', message: /denied/ });
  t.equal(n, 1, 'auth failures are not retried');
  const long = new RegistryRequestError('rate-limited', 'hub', 'hub: rate limited', 429);
  long.retryAfterMs = 3_600_000;
  n = 0;
  await t.rejects(withRetry(() => (n++, Promise.reject(long)), policy), { name: 'RegistryRequestError', message: /rate limited/ });
  t.equal(n, 1, 'a Retry-After beyond the limit is not waited for');
});

t.test('Limiter runs at most N at once', async (t) => {
  const limiter = new Limiter(2);
  let active = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: 6 }, () => limiter.run(async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, 5));
    active--;
  })));
  t.equal(peak, 2);
});
