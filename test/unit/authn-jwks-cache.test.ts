import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { JWK } from 'jose';
import { createJwksCache } from '../../packages/gateway/src/authn/jwks-cache.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';

function ecJwk(kid: string): JWK {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'ES256', use: 'sig' };
}

function setup(options: { cooldownMs?: number; maxAgeMs?: number } = {}) {
  const world = { now: 1_000_000, keys: [ecJwk('k1')], fetches: 0, fail: false };
  const cache = createJwksCache({
    issuer: 'https://idp.example.test',
    jwksUri: 'https://idp.example.test/jwks',
    clock: () => world.now,
    cooldownMs: options.cooldownMs ?? 30_000,
    maxAgeMs: options.maxAgeMs ?? 600_000,
    timeoutMs: 1000,
    fetch: async () => {
      world.fetches += 1;
      await new Promise((r) => setTimeout(r, 5)); // concurrent callers overlap with the fetch
      if (world.fail) throw new TypeError('fetch failed');
      return new Response(JSON.stringify({ keys: world.keys }), { headers: { 'content-type': 'application/json' } });
    },
  });
  const get = (kid: string) => cache.getKey({ alg: 'ES256', kid }, { payload: '', signature: '', protected: '' });
  return { world, cache, get };
}

const unknownKey = (kid: string) => (error: unknown) =>
  error instanceof HoopError &&
  error.code === 'ERR_TOKEN_INVALID' &&
  error.message === `token signing key "${kid}" is unknown to issuer "https://idp.example.test"`;

describe('jwks cache', () => {
  it('fetches once and serves known keys from memory', async () => {
    const { world, get } = setup();
    await Promise.all(Array.from({ length: 20 }, () => get('k1')));
    assert.equal(world.fetches, 1);
  });

  it('refuses an unknown kid within the cooldown without refetching', async () => {
    const { world, get } = setup();
    await get('k1');
    for (let i = 0; i < 50; i += 1) await assert.rejects(get(`nope-${i}`), unknownKey(`nope-${i}`));
    assert.equal(world.fetches, 1);
  });

  it('50 concurrent unknown kids after the cooldown cause exactly one refetch', async () => {
    const { world, get } = setup();
    await get('k1');
    world.now += 30_000;
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => get(`nope-${i}`)));
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal(world.fetches, 2);
    world.now += 29_999;
    await assert.rejects(get('nope-again'), unknownKey('nope-again'));
    assert.equal(world.fetches, 2);
  });

  it('picks up a rotated key on the first token that needs it once the cooldown allows', async () => {
    const { world, get } = setup();
    await get('k1');
    world.keys = [...world.keys, ecJwk('k2')];
    await assert.rejects(get('k2'), unknownKey('k2')); // within the cooldown: refused, no fetch
    assert.equal(world.fetches, 1);
    world.now += 30_001;
    await get('k2');
    assert.equal(world.fetches, 2);
  });

  it('reports an unreachable JWKS, retries only after the cooldown, and keeps stale keys on a failed refresh', async () => {
    const { world, get, cache } = setup({ maxAgeMs: 60_000 });
    world.fail = true;
    await assert.rejects(
      get('k1'),
      /^HoopError: cannot fetch signing keys of issuer "https:\/\/idp.example.test" from https:\/\/idp.example.test\/jwks: fetch failed$/,
    );
    await assert.rejects(get('k1'), /cannot fetch signing keys/);
    assert.equal(world.fetches, 1);
    assert.equal(cache.status().ok, false);
    world.fail = false;
    world.now += 30_000;
    await get('k1');
    assert.equal(world.fetches, 2);
    assert.deepEqual(cache.status(), { ok: true, fetches: 2 });
    world.fail = true;
    world.now += 60_000; // stale: refreshed on use, but the failure does not lock agents out
    await get('k1');
    assert.equal(world.fetches, 3);
    assert.equal(cache.status().ok, false);
  });
});
