import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import type { OidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { forge, getToken, startStaticIssuer, startTestIdp } from '../helpers/idp.js';
import type { TestIdp } from '../helpers/idp.js';

function assertInvalid(message: string | RegExp, token?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof HoopError, `expected a HoopError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_TOKEN_INVALID');
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    if (token !== undefined) {
      assert.ok(!error.message.includes(token), 'the token never appears in a message');
      for (const part of token.split('.')) if (part.length > 8) assert.ok(!error.message.includes(part));
    }
    const status = statusFromError(error);
    assert.deepEqual([status.kind, status.code, status.reason], ['Status', 401, 'Unauthorized']);
    assert.match(status.message, /^hoopgate: /);
    return true;
  };
}

describe('oidc verifier against the local IdP (https, private CA file)', () => {
  let idp: TestIdp;
  let verifier: OidcVerifier;

  before(async () => {
    idp = await startTestIdp();
    verifier = createOidcVerifier([idp.issuerConfig()]);
    await verifier.ready();
  });
  after(async () => {
    await verifier.close();
    await idp.close();
  });

  it('is ready once discovery and keys are fetched', () => {
    assert.deepEqual(verifier.status(), [{ issuer: idp.issuer, ok: true }]);
  });

  it('accepts a real client-credentials token and yields the Principal', async () => {
    const token = await getToken(idp, 'ci-deployer');
    const principal = await verifier.verify(token);
    assert.equal(principal.issuer, idp.issuer);
    assert.equal(principal.subject, 'ci-deployer');
    assert.equal(principal.username, 'ci-deployer');
    assert.equal(principal.email, 'ci-deployer@agents.example.test');
    assert.deepEqual(principal.groups, ['ci-deployers']);
    assert.equal(principal.claims.aud, 'hoopgate');
    assert.ok(principal.expiresAt > Date.now() + 3_000_000 && principal.expiresAt <= Date.now() + 3_600_000);
  });

  it('exposes custom claims (CI tokens without groups)', async () => {
    const principal = await verifier.verify(await getToken(idp, 'gh-actions'));
    assert.deepEqual(principal.groups, []);
    assert.equal(principal.email, undefined);
    assert.equal(principal.claims.repository, 'org/app');
  });

  it('verifies many tokens with one JWKS fetch', async () => {
    const before = idp.stats.jwks;
    const tokens = await Promise.all(
      ['ci-deployer', 'readonly-bot', 'ai-agent', 'oncall'].map((c) => getToken(idp, c)),
    );
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    assert.equal(idp.stats.jwks, before);
  });

  const cases: [string, () => Promise<string>, string | RegExp][] = [
    ['a token signed by a foreign key', () => forge.foreignKey(idp), 'token signature is invalid'],
    [
      'a real token with an altered signature',
      async () => forge.tamperedSignature(await getToken(idp, 'readonly-bot')),
      'token signature is invalid',
    ],
    [
      'a real token with altered claims',
      async () => forge.tamperedPayload(await getToken(idp, 'readonly-bot')),
      'token signature is invalid',
    ],
    [
      'HS256 keyed with the issuer public key',
      () => forge.hs256WithPublicKey(idp),
      /^token algorithm HS256 is not allowed: only asymmetric signatures/,
    ],
    ['alg none', async () => forge.algNone(idp), /^token algorithm none is not allowed/],
    [
      'an unknown kid',
      () => forge.unknownKid(idp, 'rotated-away'),
      () => `token signing key "rotated-away" is unknown to issuer "${idp.issuer}"`,
    ] as never,
    [
      'an expired token',
      () => forge.expired(idp),
      /^token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z: get a new one$/,
    ],
    ['a token not valid yet', () => forge.notYetValid(idp), /^token is not valid before \d{4}-/],
    [
      'a token for another audience',
      () => forge.wrongAudience(idp),
      'token audience "another-service" does not include "hoopgate"',
    ],
    [
      'a token for several other audiences',
      () => forge.wrongAudience(idp, ['a', 'b']),
      'token audience ["a","b"] does not include "hoopgate"',
    ],
    [
      'a token from an untrusted issuer',
      () => forge.wrongIssuer(idp),
      'token issuer "https://evil.example.test" is not trusted',
    ],
    ['a token without exp', () => forge.noExpiry(idp), 'token has no "exp" claim'],
    ['an encrypted token', () => forge.jwe(idp), 'encrypted tokens (JWE) are not accepted: send a signed JWT'],
    ['garbage', async () => 'not-a-jwt', 'malformed token: a JWT has three dot-separated parts'],
    ['a non-JSON header', async () => 'AAAA.BBBB.CCCC', 'malformed token: its header is not JSON'],
  ];
  for (const [name, make, expected] of cases) {
    it(`refuses ${name}`, async () => {
      const token = await make();
      const message = typeof expected === 'function' ? (expected as () => string)() : expected;
      await assert.rejects(verifier.verify(token), assertInvalid(message, token));
    });
  }

  it('accepts an audience list that contains the configured audience', async () => {
    const principal = await verifier.verify(await idp.mintForTests({ sub: 'x', aud: ['other', 'hoopgate'] }));
    assert.equal(principal.subject, 'x');
  });

  it('honours a small clock skew (≤ 60 s) but no more', async () => {
    const now = Math.floor(Date.now() / 1000);
    await verifier.verify(await idp.mintForTests({ sub: 'x', exp: now - 30 }));
    await verifier.verify(await idp.mintForTests({ sub: 'x', nbf: now + 30 }));
    await assert.rejects(
      verifier.verify(await idp.mintForTests({ sub: 'x', exp: now - 90 })),
      assertInvalid(/^token expired at/),
    );
  });

  it('refuses a token issued more than the leeway in the future (iat), accepts a small skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    await verifier.verify(await idp.mintForTests({ sub: 'x', iat: now + 30 }));
    const token = await idp.mintForTests({ sub: 'x', iat: now + 3600, exp: now + 7200 });
    await assert.rejects(
      verifier.verify(token),
      assertInvalid(/^token is issued in the future \(iat \d{4}-.*more than 60s ahead\): check the IdP's clock/, token),
    );
  });

  it('with several audiences, refuses an azp naming another client (OpenID Connect Core 3.1.3.7)', async () => {
    const token = await idp.mintForTests({ sub: 'x', aud: ['hoopgate', 'other-app'], azp: 'other-app' });
    await assert.rejects(
      verifier.verify(token),
      assertInvalid(
        'token has several audiences and its authorized party (azp) "other-app" is not "hoopgate" nor in the issuer\'s authorizedParties: ask the IdP for a token issued to this gateway, or list that client in oidc.issuers[].authorizedParties',
        token,
      ),
    );
    const listed = createOidcVerifier([idp.issuerConfig({ authorizedParties: ['other-app'] })], { fetch: idp.fetch });
    try {
      assert.equal((await listed.verify(token)).subject, 'x');
      await assert.rejects(
        listed.verify(await idp.mintForTests({ sub: 'x', aud: ['hoopgate', 'b'], azp: 'b' })),
        assertInvalid(/azp\) "b" is not "hoopgate"/),
      );
    } finally {
      await listed.close();
    }
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', aud: ['hoopgate', 'other-app'], azp: 'hoopgate' })))
        .subject,
      'x',
    );
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', aud: ['hoopgate', 'other-app'] }))).subject,
      'x',
    );
    // One audience: azp names the client that asked for it (an access token), which is fine.
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', aud: 'hoopgate', azp: 'ci-client' }))).subject,
      'x',
    );
  });

  it('marks an email the token says is unverified', async () => {
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', email: 'a@example.test', email_verified: false })))
        .emailVerified,
      false,
    );
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', email: 'a@example.test', email_verified: 'false' })))
        .emailVerified,
      false,
    );
    assert.equal(
      (await verifier.verify(await idp.mintForTests({ sub: 'x', email: 'a@example.test', email_verified: true })))
        .emailVerified,
      true,
    );
  });

  it('uses the injected clock', async () => {
    const token = await getToken(idp, 'ci-deployer');
    const late = createOidcVerifier([idp.issuerConfig()], { clock: () => Date.now() + 2 * 3_600_000 });
    try {
      await assert.rejects(late.verify(token), assertInvalid(/^token expired at/, token));
    } finally {
      await late.close();
    }
  });

  it('refuses a token whose username or groups claim is missing or malformed', async () => {
    const byEmail = createOidcVerifier([idp.issuerConfig({ usernameClaim: 'email' })], { fetch: idp.fetch });
    try {
      assert.equal((await byEmail.verify(await getToken(idp, 'oncall'))).username, 'oncall@example.test');
      await assert.rejects(
        byEmail.verify(await getToken(idp, 'gh-actions')),
        assertInvalid('token has no string "email" claim (the configured usernameClaim)'),
      );
    } finally {
      await byEmail.close();
    }
    await assert.rejects(
      verifier.verify(await idp.mintForTests({ sub: 'x', groups: { admin: true } })),
      assertInvalid('token claim "groups" (the configured groupsClaim) must be a string or a list of strings'),
    );
    assert.deepEqual((await verifier.verify(await idp.mintForTests({ sub: 'x', groups: 'solo' }))).groups, ['solo']);
  });

  it('reads groups by dot path', async () => {
    const nested = createOidcVerifier([idp.issuerConfig({ groupsClaim: 'realm_access.roles' })], { fetch: idp.fetch });
    try {
      const principal = await nested.verify(await getToken(idp, 'nested-roles'));
      assert.deepEqual(principal.groups, ['ci-deployers', 'auditors']);
      assert.deepEqual((await nested.verify(await getToken(idp, 'ci-deployer'))).groups, []);
    } finally {
      await nested.close();
    }
  });

  it('refuses the local IdP when its CA is not trusted, naming the issuer as unreachable', async () => {
    const { caFile: _ignored, ...config } = idp.issuerConfig();
    const untrusting = createOidcVerifier([config]);
    try {
      await untrusting.ready();
      const [status] = untrusting.status();
      assert.equal(status?.ok, false);
      assert.match(status?.error ?? '', new RegExp(`^issuer "${idp.issuer}" is unreachable or invalid: `));
      await assert.rejects(
        untrusting.verify(await getToken(idp, 'ci-deployer')),
        assertInvalid(/is unreachable or invalid: .*tokens from it cannot be verified until it is reachable$/),
      );
    } finally {
      await untrusting.close();
    }
  });
});

describe('oidc verifier with several issuers', () => {
  it('picks the issuer by iss and verifies against that issuer only', async () => {
    const a = await startTestIdp();
    const b = await startTestIdp({ tls: false, audience: 'https://gateway.example.test' });
    const verifier = createOidcVerifier([a.issuerConfig(), b.issuerConfig()]);
    try {
      await verifier.ready();
      assert.deepEqual(
        verifier.status().map((s) => s.ok),
        [true, true],
      );
      const fromA = await verifier.verify(await getToken(a, 'ci-deployer'));
      const fromB = await verifier.verify(await getToken(b, 'oncall'));
      assert.equal(fromA.issuer, a.issuer);
      assert.equal(fromB.issuer, b.issuer);
      assert.deepEqual(fromB.groups, ['platform-oncall']);
      // B's token with its iss rewritten to A: A's keys do not verify it.
      const fromBAsA = await b.mintForTests({ sub: 'x', iss: a.issuer, aud: 'hoopgate' });
      await assert.rejects(verifier.verify(fromBAsA), assertInvalid(/^token signing key ".*" is unknown to issuer/));
      // A's key, B's audience requirement: A's token names A, so B's audience is never consulted.
      await assert.rejects(
        verifier.verify(await a.mintForTests({ sub: 'x', aud: 'https://gateway.example.test' })),
        assertInvalid('token audience "https://gateway.example.test" does not include "hoopgate"'),
      );
    } finally {
      await verifier.close();
      await a.close();
      await b.close();
    }
  });

  it('refuses an issuer whose metadata names a different issuer string', async () => {
    const s = await startStaticIssuer();
    const verifier = createOidcVerifier([
      { issuer: `${s.issuer}/`, audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' },
    ]);
    try {
      await verifier.ready();
      assert.match(verifier.status()[0]?.error ?? '', /which is not exactly the configured/);
    } finally {
      await s.close();
    }
  });

  it('refuses plain http issuers off loopback at creation', () => {
    assert.throws(
      () =>
        createOidcVerifier([
          { issuer: 'http://idp.example.com', audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' },
        ]),
      (e: unknown) => e instanceof HoopError && e.code === 'ERR_CONFIG' && /must use https/.test(e.message),
    );
  });
});

describe('oidc verifier when the IdP is down at start', () => {
  it('fails closed with 401 naming the issuer, retries at most every 10 s, and recovers without a restart', async () => {
    const s = await startStaticIssuer();
    const token = await s.addKey().sign({ groups: ['ci-deployers'] });
    let now = Date.now();
    let down = true;
    let attempts = 0;
    const verifier = createOidcVerifier(
      [{ issuer: s.issuer, audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' }],
      {
        clock: () => now,
        fetch: (url, init) => {
          attempts += 1;
          return down
            ? Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') }))
            : fetch(url, init);
        },
      },
    );
    try {
      await verifier.ready();
      assert.equal(verifier.status()[0]?.ok, false);
      await assert.rejects(
        verifier.verify(token),
        assertInvalid(
          new RegExp(
            `^issuer "${s.issuer}" is unreachable or invalid: .*ECONNREFUSED.*; tokens from it cannot be verified until it is reachable$`,
          ),
          token,
        ),
      );
      await Promise.all(
        Array.from({ length: 20 }, () => assert.rejects(verifier.verify(token), assertInvalid(/unreachable/))),
      );
      assert.equal(attempts, 1, 'no retry before discoveryRetryMs');
      down = false;
      now += 10_000;
      const principal = await verifier.verify(token);
      assert.deepEqual(principal.groups, ['ci-deployers']);
      assert.deepEqual(verifier.status(), [{ issuer: s.issuer, ok: true }]);
      assert.equal(s.discoveryRequests, 1);
      assert.equal(s.jwksRequests, 1);
    } finally {
      await verifier.close();
      await s.close();
    }
  });
});
