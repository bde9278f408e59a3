// The per-client limiter on its own: concurrent requests, the token bucket and its Retry-After, and a
// table that stays bounded however many keys (addresses, subjects) it sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLimiter } from '../../packages/gateway/src/http/client-limits.js';

test('concurrent requests beyond maxConcurrent are refused until one ends', () => {
  const limiter = createLimiter({ maxConcurrent: 2, requestsPerSecond: 1000, burst: 1000 }, 100, () => 0);
  const a = limiter.acquire('10.0.0.1');
  const b = limiter.acquire('10.0.0.1');
  assert.ok(a.ok && b.ok);
  assert.deepEqual(limiter.acquire('10.0.0.1'), { ok: false, retryAfterSeconds: 1, why: 'concurrent' });
  assert.ok(limiter.acquire('10.0.0.2').ok, 'another address has its own count');
  a.release();
  a.release(); // twice is once
  assert.ok(limiter.acquire('10.0.0.1').ok);
  assert.equal(limiter.acquire('10.0.0.1').ok, false);
});

test('the rate is a token bucket: burst, then requestsPerSecond, with the wait in Retry-After', () => {
  let now = 0;
  const limiter = createLimiter({ maxConcurrent: 1000, requestsPerSecond: 2, burst: 3 }, 100, () => now);
  for (let i = 0; i < 3; i += 1) {
    const r = limiter.acquire('k');
    assert.ok(r.ok);
    r.release();
  }
  assert.deepEqual(limiter.acquire('k'), { ok: false, retryAfterSeconds: 1, why: 'rate' });
  now += 500; // one token back
  assert.ok(limiter.acquire('k').ok);
  assert.equal(limiter.acquire('k').ok, false);
  const slow = createLimiter({ maxConcurrent: 10, requestsPerSecond: 1, burst: 1 }, 100, () => 0);
  slow.acquire('k');
  assert.deepEqual(slow.acquire('k'), { ok: false, retryAfterSeconds: 1, why: 'rate' });
});

test('the table is bounded: a million addresses keep at most maxKeys entries, the recently seen kept', () => {
  let now = 0;
  const limiter = createLimiter({ maxConcurrent: 10, requestsPerSecond: 1, burst: 1 }, 1000, () => now);
  limiter.acquire('busy');
  for (let i = 0; i < 1_000_000; i += 1) {
    if (i % 500 === 0) assert.equal(limiter.acquire('busy').ok, false, 'the busy key is still remembered');
    limiter.acquire(`spoofed-${i}`);
    now += 0.001;
  }
  assert.equal(limiter.size(), 1000);
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 100_000; i += 1) limiter.acquire(`more-${i}`);
  assert.ok(process.memoryUsage().heapUsed - before < 32 * 1024 * 1024);
  assert.equal(limiter.size(), 1000);
});
