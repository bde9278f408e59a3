// Verified tokens are remembered by digest until exp (issue #13): the second call does not verify the
// signature again, and the cache never outlives the token's exp nor the key that signed it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import { createVerifiedTokenCache } from '../../packages/gateway/src/authn/verified-tokens.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { startStaticIssuer } from '../helpers/idp.js';

function refused(message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof HoopError, `expected a HoopError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_TOKEN_INVALID');
    assert.match(error.message, message);
    const status = statusFromError(error);
    assert.deepEqual([status.kind, status.code, status.reason], ['Status', 401, 'Unauthorized']);
    assert.match(status.message, /^hoopgate: /);
    return true;
  };
}

const config = (issuer: string) => [{ issuer, audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' }];

describe('verified-token cache', () => {
  it('answers a repeated token from the cache (same Principal object), and refuses it once exp has passed', async () => {
    const issuer = await startStaticIssuer();
    const key = issuer.addKey();
    let now = Date.now();
    const verifier = createOidcVerifier(config(issuer.issuer), { clock: () => now });
    try {
      const exp = Math.floor(now / 1000) + 120;
      const token = await key.sign({ exp, iat: Math.floor(now / 1000) });
      const first = await verifier.verify(token);
      const second = await verifier.verify(token);
      assert.equal(second, first, 'the second call is answered from the cache');
      now = exp * 1000 + 61_000; // past exp and the 60 s clock tolerance
      await assert.rejects(verifier.verify(token), refused(/^token expired at /));
      await assert.rejects(verifier.verify(token), refused(/^token expired at /), 'and stays refused');
    } finally {
      await verifier.close();
      await issuer.close();
    }
  });

  it('forgets the tokens of a key the issuer no longer publishes (revoked) once the keys are refreshed', async () => {
    const issuer = await startStaticIssuer();
    const revoked = issuer.addKey();
    const kept = issuer.addKey();
    let now = Date.now();
    const verifier = createOidcVerifier(config(issuer.issuer), {
      clock: () => now,
      jwksMaxAgeMs: 60_000,
      jwksCooldownMs: 1_000,
    });
    try {
      const token = await revoked.sign({ exp: Math.floor(now / 1000) + 3600 });
      const other = await kept.sign({ exp: Math.floor(now / 1000) + 3600 });
      const before = await verifier.verify(token);
      assert.equal(await verifier.verify(token), before, 'cached while the key is published');
      await verifier.verify(other);
      revoked.unpublish();
      now += 61_000; // the keys are stale: the next use refreshes them
      await assert.rejects(verifier.verify(token), refused(/^token signing key ".+" is unknown to issuer /));
      const again = await verifier.verify(other);
      assert.notEqual(again, undefined, 'a token of a key still published verifies again after the rotation');
      assert.equal(issuer.jwksRequests, 2);
    } finally {
      await verifier.close();
      await issuer.close();
    }
  });

  it('a tampered copy of a cached token is not answered from the cache', async () => {
    const issuer = await startStaticIssuer();
    const key = issuer.addKey();
    const verifier = createOidcVerifier(config(issuer.issuer));
    try {
      const token = await key.sign();
      await verifier.verify(token);
      const [h, p, sig] = token.split('.');
      const tampered = `${h}.${p}.${(sig ?? '').slice(0, -4)}AAAA`;
      await assert.rejects(verifier.verify(tampered), refused(/^token signature is invalid$|^malformed token/));
    } finally {
      await verifier.close();
      await issuer.close();
    }
  });

  it('is bounded: the least recently used entry goes first', () => {
    const cache = createVerifiedTokenCache(2);
    const entry = (n: number) => ({
      principal: { subject: String(n) } as never,
      issuer: 'i',
      keyGeneration: 1,
      expiresAt: Infinity,
    });
    cache.set('a', entry(1));
    cache.set('b', entry(2));
    cache.get('a');
    cache.set('c', entry(3));
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.notEqual(cache.get('a'), undefined);
    assert.notEqual(cache.get('c'), undefined);
  });
});
