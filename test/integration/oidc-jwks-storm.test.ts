// No fetch storms: tokens with unknown kids (forged, or a rotation the gateway has not seen) cause at
// most one JWKS request per cooldown, counted at the IdP's own JWKS endpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createOidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { forge, getToken, startStaticIssuer, startTestIdp } from '../helpers/idp.js';

const isUnknownKid = (error: unknown) =>
  error instanceof HoopError &&
  error.code === 'ERR_TOKEN_INVALID' &&
  /^token signing key ".*" is unknown to issuer "/.test(error.message);

describe('jwks fetch storms', () => {
  it('50 unknown-kid tokens against the local IdP cost at most one JWKS request per cooldown', async () => {
    const idp = await startTestIdp();
    let now = Date.now();
    const verifier = createOidcVerifier([idp.issuerConfig()], { clock: () => now }); // default cooldown: 30 s
    try {
      await verifier.ready();
      assert.equal(idp.stats.jwks, 1);
      // ready() doubles as a readiness probe: calling it again fetches nothing.
      await Promise.all(Array.from({ length: 10 }, () => verifier.ready()));
      assert.deepEqual([idp.stats.discovery, idp.stats.jwks], [1, 1]);
      const forged = await Promise.all(Array.from({ length: 50 }, (_, i) => forge.unknownKid(idp, `storm-${i}`)));

      // Within the cooldown of the initial fetch: no refetch at all, sequential or concurrent.
      for (const token of forged.slice(0, 25)) await assert.rejects(verifier.verify(token), isUnknownKid);
      await Promise.all(forged.slice(25).map((token) => assert.rejects(verifier.verify(token), isUnknownKid)));
      assert.equal(idp.stats.jwks, 1);

      // Cooldown over: 50 concurrent unknown kids share exactly one refetch.
      now += 30_000;
      const started = performance.now();
      await Promise.all(forged.map((token) => assert.rejects(verifier.verify(token), isUnknownKid)));
      const elapsed = performance.now() - started;
      assert.equal(idp.stats.jwks, 2);
      // Real tokens keep working throughout, from memory.
      await verifier.verify(await getToken(idp, 'ci-deployer'));
      assert.equal(idp.stats.jwks, 2);
      assert.ok(elapsed < 5_000, `50 refusals took ${elapsed.toFixed(0)} ms`);
    } finally {
      await verifier.close();
      await idp.close();
    }
  });

  it('a rotated key is accepted after one refetch; an unpublished one never triggers more than one per cooldown', async () => {
    const issuer = await startStaticIssuer();
    const first = issuer.addKey();
    const next = issuer.addKey({ publish: false });
    let now = Date.now();
    const verifier = createOidcVerifier(
      [{ issuer: issuer.issuer, audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' }],
      {
        clock: () => now,
        jwksCooldownMs: 5_000,
      },
    );
    try {
      await verifier.verify(await first.sign());
      assert.equal(issuer.jwksRequests, 1);
      const early = await next.sign();
      await assert.rejects(verifier.verify(early), isUnknownKid);
      assert.equal(issuer.jwksRequests, 1);

      now += 5_000;
      await Promise.all(Array.from({ length: 50 }, () => assert.rejects(verifier.verify(early), isUnknownKid)));
      assert.equal(issuer.jwksRequests, 2); // fetched, still not published

      next.publish();
      await assert.rejects(verifier.verify(early), isUnknownKid); // cooldown: not yet re-asked
      now += 5_000;
      const principal = await verifier.verify(await next.sign({ groups: 'rotated' }));
      assert.deepEqual(principal.groups, ['rotated']);
      assert.equal(issuer.jwksRequests, 3);
      assert.equal(issuer.discoveryRequests, 1);
    } finally {
      await verifier.close();
      await issuer.close();
    }
  });
});
