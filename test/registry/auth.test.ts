import t from 'tap';
import { basicAuthorization, TokenCache, tokenCacheKey } from '../../src/registry/auth.js';

t.test('tokens are reused until shortly before they expire', async (t) => {
  let now = 1_000_000;
  const cache = new TokenCache(() => now);
  const key = tokenCacheKey('https://auth.docker.io/token', 'registry.docker.io', 'repository:moby/buildkit:pull');
  cache.set(key, 'tok-1', 60);
  t.equal(cache.get(key), 'tok-1');
  now += 50_000;
  t.equal(cache.get(key), 'tok-1');
  now += 6_000;
  t.equal(cache.get(key), undefined, 'dropped 5 s before expiry so no request races it');
  t.equal(cache.get(tokenCacheKey('https://auth.docker.io/token', 'registry.docker.io', 'repository:other:pull')), undefined, 'per scope');
});

t.test('Basic authorization header', async (t) => {
  t.equal(basicAuthorization('user', 'p:ss'), `Basic ${Buffer.from('user:p:ss').toString('base64')}`);
});
