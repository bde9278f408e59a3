// Issue #14 end to end: SAML assertions exchanged at /hoop/v1/token for gateway-issued tokens that
// kubectl uses as the mapped ServiceAccount; every forgery refused with invalid_grant and no token;
// the exec plugin's cache; audit events without the assertion; the canary scan.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { demoSaml, samlTokenCommand } from '../../packages/demo/src/world.js';
import {
  buildAssertion,
  createLocalSamlIdp,
  encodeAssertion,
  signElement,
} from '../../packages/demo/src/local-saml-idp.js';
import { runKubectl, writeKubeconfig } from '../helpers/kubectl.js';
import {
  billionLaughs,
  evilAssertion,
  extractAssertion,
  idOf,
  nestInAdvice,
  responseOf,
  wrapInSignatureObject,
  xxeAssertion,
} from '../helpers/saml.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const saml2Bearer = 'urn:ietf:params:oauth:grant-type:saml2-bearer';
const subject = demoSaml.agent.nameId;
const spec = (overrides: Partial<Parameters<typeof buildAssertion>[0]> = {}) => ({
  nameId: subject,
  audience: demoSaml.audience,
  attributes: { groups: ['saml-readers'] },
  ...overrides,
});

describe('SAML token exchange', () => {
  let world: TestWorld;
  let dir: string;
  const sentAssertions: string[] = [];

  before(async () => {
    world = await startTestWorld();
    dir = mkdtempSync(join(tmpdir(), 'hoop-saml-'));
  });
  after(async () => {
    // Assertions are credentials: none may reach a log or the audit store (nor any Secret canary).
    await world?.assertNoCanaryLeaked(sentAssertions.map((a) => a.slice(0, 120)));
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function exchange(
    xml: string,
    form: Record<string, string> = {},
  ): Promise<{ status: number; body: any; ms: number }> {
    const encoded = encodeAssertion(xml);
    sentAssertions.push(encoded);
    const started = performance.now();
    const response = await world.call('/hoop/v1/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: saml2Bearer, assertion: encoded, ...form }).toString(),
    });
    return { status: response.status, body: response.json(), ms: performance.now() - started };
  }

  function assertRefused(result: { status: number; body: any }, message: RegExp, error = 'invalid_grant'): void {
    assert.equal(result.status, 400, JSON.stringify(result.body));
    assert.equal(result.body.error, error);
    assert.match(result.body.error_description, message);
    assert.equal(result.body.access_token, undefined);
    assert.deepEqual(Object.keys(result.body).sort(), ['error', 'error_description']);
  }

  async function kubectlWithToken(token: string, args: string[]) {
    const kubeconfig = writeKubeconfig(
      dir,
      { server: world.gateway.url, ca: world.gatewayTls.ca, token },
      `kubeconfig-${Math.random().toString(36).slice(2)}`,
    );
    return runKubectl(args, { kubeconfig, timeoutMs: 30_000 });
  }

  function assertForwardedAsSamlBot(token: string, sinceRequest: number): void {
    // The gateway's own identity only mints tokens and asks SubjectAccessReview; every other call is the agent's.
    const forwarded = world.sim.requests
      .slice(sinceRequest)
      .filter((r) => r.identity !== 'system:serviceaccount:hoopgate:hoopgate');
    assert.ok(forwarded.length > 0, 'requests reached the API server');
    for (const record of forwarded) {
      assert.equal(record.identity, 'system:serviceaccount:agents:saml-bot');
      assert.ok(!JSON.stringify(record).includes(token), 'the gateway-issued token never reaches the API server');
    }
  }

  describe('accepted', () => {
    test('a signed assertion gives a token kubectl uses as the mapped ServiceAccount; the API server sees only the minted token', async () => {
      const result = await exchange(world.samlIdp.issue(spec()));
      assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.equal(result.body.token_type, 'Bearer');
      assert.equal(result.body.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt');
      assert.ok(
        result.body.expires_in > 250 && result.body.expires_in <= 300,
        `expires_in ${result.body.expires_in}: the assertion's 5 minutes, not tokenTTL`,
      );
      const claims = decodeJwt(result.body.access_token);
      assert.equal(claims.sub, subject);
      assert.equal(claims.aud, 'hoopgate');
      assert.equal(claims.idp, demoSaml.entityId);
      assert.deepEqual(claims.groups, ['saml-readers']);

      const seen = world.sim.requests.length;
      const got = await kubectlWithToken(result.body.access_token, ['get', 'pods', '-n', 'staging']);
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stdout, /^web-0\s+1\/1\s+Running/m);
      assertForwardedAsSamlBot(result.body.access_token, seen);
      // The identity's deny rule applies to SAML agents like any other.
      const denied = await kubectlWithToken(result.body.access_token, ['get', 'secrets', '-n', 'staging']);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /Error from server \(Forbidden\): hoopgate: /);
    });

    test('a signed Response holding an unsigned assertion (and the RFC 8693 token-exchange form)', async () => {
      const xml = world.samlIdp.issue({ ...spec(), sign: 'response' });
      assert.equal(xml.match(/<ds:Signature[\s>]/g)?.length, 1, 'one signature, on the Response');
      assert.ok(xml.indexOf('<ds:Signature') < xml.indexOf('<saml:Assertion'), 'the assertion itself is unsigned');
      const encoded = encodeAssertion(xml);
      sentAssertions.push(encoded);
      const response = await world.call('/hoop/v1/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: encoded,
          subject_token_type: 'urn:ietf:params:oauth:token-type:saml2',
        }).toString(),
      });
      assert.equal(response.status, 200, response.text);
      const token = response.json().access_token as string;
      assert.equal(decodeJwt(token).sub, subject);
      const seen = world.sim.requests.length;
      const got = await kubectlWithToken(token, ['get', 'configmaps', '-n', 'staging', '-o', 'name']);
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stdout, /configmap\/app-config/);
      assertForwardedAsSamlBot(token, seen);
    });

    test('standard base64 (not only base64url) is accepted', async () => {
      const xml = world.samlIdp.issue(spec());
      const encoded = Buffer.from(xml).toString('base64');
      sentAssertions.push(encoded);
      const response = await world.call('/hoop/v1/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: saml2Bearer, assertion: encoded }).toString(),
      });
      assert.equal(response.status, 200, response.text);
    });

    test('the issued token verifies against /hoop/.well-known/jwks.json and the discovery document names it', async () => {
      const discovery = await world.call('/hoop/.well-known/openid-configuration');
      assert.equal(discovery.status, 200);
      const metadata = discovery.json();
      assert.equal(metadata.issuer, `${world.gateway.url}/hoop`);
      assert.equal(metadata.jwks_uri, `${world.gateway.url}/hoop/.well-known/jwks.json`);
      assert.equal(metadata.token_endpoint, `${world.gateway.url}/hoop/v1/token`);
      const jwks = (await world.call('/hoop/.well-known/jwks.json')).json();
      assert.equal(jwks.keys.length, 1);
      assert.equal(jwks.keys[0].d, undefined, 'no private key material is published');
      const result = await exchange(world.samlIdp.issue(spec()));
      const { payload, protectedHeader } = await jwtVerify(result.body.access_token, createLocalJWKSet(jwks), {
        issuer: metadata.issuer,
        audience: 'hoopgate',
      });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.equal(payload.sub, subject);
    });

    test('a comment inside the NameID never truncates it: the token is for the whole signed NameID', async () => {
      // The 2018 comment-injection family: c14n drops comments, so the signature still verifies;
      // a reader of the first text node would see only "saml-bot@agents.example.com".
      const signed = world.samlIdp.issue(spec({ nameId: `${subject}.evil.test` }));
      const injected = signed.replace(`>${subject}.evil.test<`, `>${subject}<!---->.evil.test<`);
      assert.notEqual(injected, signed);
      const result = await exchange(injected);
      assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.equal(decodeJwt(result.body.access_token).sub, `${subject}.evil.test`);
    });
  });

  describe('refused with invalid_grant, no token', () => {
    const entity = () => world.samlIdp.entityId;

    test('unsigned', async () => {
      assertRefused(await exchange(buildAssertion({ ...spec(), issuer: entity() })), /not signed/);
    });

    test('signed by another key with the right entity ID', async () => {
      const impostor = createLocalSamlIdp(entity());
      assertRefused(await exchange(impostor.issue(spec())), /does not verify/);
    });

    test('an attribute changed after signing', async () => {
      const signed = world.samlIdp.issue(spec());
      const changed = signed.replace(
        '<saml:AttributeValue>saml-readers</saml:AttributeValue>',
        '<saml:AttributeValue>admins</saml:AttributeValue>',
      );
      assert.notEqual(changed, signed);
      assertRefused(await exchange(changed), /does not verify/);
    });

    test('the NameID changed after signing', async () => {
      const signed = world.samlIdp.issue(spec());
      const changed = signed.replace(`>${subject}<`, '>admin@agents.example.com<');
      assert.notEqual(changed, signed);
      assertRefused(await exchange(changed), /does not verify/);
    });

    test('another audience', async () => {
      assertRefused(
        await exchange(world.samlIdp.issue(spec({ audience: 'https://other-sp.example.com/saml' }))),
        /audience .*not https:\/\/hoopgate\.demo\.test\/saml/,
      );
    });

    test('expired', async () => {
      assertRefused(
        await exchange(world.samlIdp.issue(spec({ now: Date.now() - 10 * 60_000, ttlMs: 5 * 60_000 }))),
        /expired at/,
      );
    });

    test('NotBefore ahead (beyond the 60 s skew)', async () => {
      assertRefused(
        await exchange(world.samlIdp.issue(spec({ notBefore: Date.now() + 5 * 60_000, ttlMs: 10 * 60_000 }))),
        /not valid before/,
      );
    });

    test('an unconfigured Issuer', async () => {
      assertRefused(
        await exchange(createLocalSamlIdp('https://evil.example.com/saml').issue(spec())),
        /is not a configured SAML IdP/,
      );
    });

    test('a replayed assertion ID', async () => {
      const xml = world.samlIdp.issue(spec());
      assert.equal((await exchange(xml)).status, 200);
      assertRefused(await exchange(xml), /already exchanged/);
    });

    test('SHA-1 signatures', async () => {
      const assertion = buildAssertion({ ...spec(), issuer: entity() });
      const signed = signElement(assertion, 'Assertion', world.samlIdp.material, {
        algorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
        digest: 'http://www.w3.org/2000/09/xmldsig#sha1',
      });
      assertRefused(await exchange(signed), /signature algorithm .* is not accepted/);
    });

    describe('signature wrapping', () => {
      const evil = (overrides: { id?: string } = {}) => evilAssertion({ ...spec(), issuer: entity(), ...overrides });

      test('an evil assertion before the signed one in a Response', async () => {
        const signed = extractAssertion(world.samlIdp.issue(spec()));
        assertRefused(await exchange(responseOf(entity(), [evil(), signed])), /holds 2 assertions/);
      });

      test('an evil assertion after the signed one in a Response', async () => {
        const signed = extractAssertion(world.samlIdp.issue(spec()));
        assertRefused(await exchange(responseOf(entity(), [signed, evil()])), /holds 2 assertions/);
      });

      test('an evil assertion with the same ID as the signed one', async () => {
        const signed = extractAssertion(world.samlIdp.issue(spec()));
        assertRefused(
          await exchange(responseOf(entity(), [evil({ id: idOf(signed) }), signed])),
          /holds 2 assertions|appears twice/,
        );
      });

      test('an evil assertion added to a signed Response', async () => {
        const signed = world.samlIdp.issue({ ...spec(), sign: 'response' });
        const tampered = signed.replace('</samlp:Response>', `${evil()}</samlp:Response>`);
        assertRefused(await exchange(tampered), /holds 2 assertions/);
      });

      test('the evil assertion replaces the one in a signed Response', async () => {
        const signed = world.samlIdp.issue({ ...spec(), sign: 'response' });
        const tampered = signed.replace(extractAssertion(signed), evil({ id: idOf(signed) }));
        assertRefused(await exchange(tampered), /does not verify/);
      });

      test("the signed assertion moved into the Signature's Object", async () => {
        const signed = extractAssertion(world.samlIdp.issue(spec()));
        assertRefused(await exchange(wrapInSignatureObject(signed, evil())), /holds 2 assertions/);
      });

      test("the signed assertion nested in the evil assertion's Advice", async () => {
        const signed = extractAssertion(world.samlIdp.issue(spec()));
        assertRefused(await exchange(nestInAdvice(signed, evil())), /holds 2 assertions/);
      });

      test('the signed assertion as the only assertion, but its signature copied elsewhere', async () => {
        const signed = world.samlIdp.issue(spec());
        const signature = signed.slice(
          signed.indexOf('<ds:Signature'),
          signed.indexOf('</ds:Signature>') + '</ds:Signature>'.length,
        );
        const moved = responseOf(entity(), [signed.replace(signature, '')]).replace(
          '<samlp:Status>',
          `<samlp:Extensions>${signature}</samlp:Extensions><samlp:Status>`,
        );
        assertRefused(await exchange(moved), /unexpected place/);
      });
    });

    test('an XXE payload: refused before parsing, nothing of the file comes back', async () => {
      const secretFile = join(dir, 'xxe-target.txt');
      const canary = `XXE-CANARY-${Math.random().toString(36).slice(2)}`;
      writeFileSync(secretFile, canary);
      const result = await exchange(xxeAssertion({ ...spec(), issuer: entity() }, secretFile));
      assertRefused(result, /DOCTYPE/);
      assert.ok(!JSON.stringify(result.body).includes(canary));
      await world.assertNoCanaryLeaked([canary]);
    });

    test('entity expansion ("billion laughs"): refused well under a second, the gateway stays up', async () => {
      const result = await exchange(billionLaughs({ ...spec(), issuer: entity() }));
      assertRefused(result, /DOCTYPE/);
      assert.ok(result.ms < 500, `answered in ${result.ms.toFixed(1)} ms`);
      assert.equal((await world.call('/hoop/healthz')).status, 200);
      assert.equal((await exchange(world.samlIdp.issue(spec()))).status, 200);
    });

    test('an oversize assertion is refused unread', async () => {
      const huge = buildAssertion({ ...spec(), issuer: entity(), attributes: { filler: 'x'.repeat(300 * 1024) } });
      assertRefused(await exchange(huge), /larger than/);
    });
  });

  describe('OAuth request errors (RFC 6749 §5.2)', () => {
    const post = (body: string, contentType = 'application/x-www-form-urlencoded') =>
      world.call('/hoop/v1/token', { method: 'POST', headers: { 'content-type': contentType }, body });

    test('unsupported grant type, missing parameters, wrong subject_token_type, wrong content type, GET', async () => {
      const cases: [Awaited<ReturnType<typeof post>>, string, RegExp][] = [
        [await post('grant_type=client_credentials'), 'unsupported_grant_type', /grant_type must be/],
        [await post(''), 'invalid_request', /grant_type is required/],
        [await post(`grant_type=${encodeURIComponent(saml2Bearer)}`), 'invalid_request', /needs the assertion/],
        [
          await post(`grant_type=${encodeURIComponent(saml2Bearer)}&assertion=a&assertion=b`),
          'invalid_request',
          /more than once/,
        ],
        [
          await post(
            `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:token-exchange')}&subject_token=abc&subject_token_type=${encodeURIComponent('urn:ietf:params:oauth:token-type:jwt')}`,
          ),
          'invalid_request',
          /subject_token_type must be urn:ietf:params:oauth:token-type:saml2/,
        ],
        [await post('{"grant_type":"x"}', 'application/json'), 'invalid_request', /x-www-form-urlencoded/],
        [
          await post(`grant_type=${encodeURIComponent(saml2Bearer)}&assertion=%3C%3E%3C`),
          'invalid_grant',
          /not base64url/,
        ],
      ];
      for (const [response, error, description] of cases) {
        assert.equal(response.status, 400, response.text);
        assert.equal(response.json().error, error, response.text);
        assert.match(response.json().error_description, description);
        assert.equal(response.headers['cache-control'], 'no-store');
      }
      const get = await world.call('/hoop/v1/token');
      assert.equal(get.status, 405);
      assert.equal(get.json().error, 'invalid_request');
    });
  });

  test('every exchange is an audit event with the assertion ID and issuer, never the assertion', async () => {
    const xml = world.samlIdp.issue(spec());
    const id = idOf(xml);
    await exchange(xml);
    await exchange(xml);
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const mine = records.filter((r) => (r.data.exchange as { assertionId?: string } | undefined)?.assertionId === id);
    assert.deepEqual(
      mine.map((r) => [
        (r.data.decision as { effect: string }).effect,
        (r.data.exchange as { error?: string }).error ?? null,
        (r.data.exchange as { idp?: string }).idp,
      ]),
      [
        ['allow', null, demoSaml.entityId],
        ['deny', 'invalid_grant', demoSaml.entityId],
      ],
    );
    const refusedCount = records.filter(
      (r) => (r.data.exchange as { error?: string } | undefined)?.error !== undefined,
    ).length;
    assert.ok(refusedCount >= 15, `every refusal is recorded (${refusedCount})`);
    const stored = JSON.stringify(await world.gateway.store.audit.listRecords({}));
    for (const assertion of sentAssertions)
      assert.ok(!stored.includes(assertion.slice(0, 80)), 'no assertion in the audit store');
    assert.ok(!stored.includes('SignatureValue'), 'no XML in the audit store');
  });

  describe('hoopgate token --gateway … (exec plugin)', () => {
    test('the demo context exchanges a fresh assertion from the assertion command', async () => {
      const seen = world.sim.requests.length;
      const result = await world.kubectl(['get', 'pods', '-n', 'staging'], { context: 'saml-bot' });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^web-0\s/m);
      const agentCalls = world.sim.requests
        .slice(seen)
        .filter((r) => r.identity !== 'system:serviceaccount:hoopgate:hoopgate');
      assert.ok(agentCalls.length > 0);
      for (const record of agentCalls) assert.equal(record.identity, 'system:serviceaccount:agents:saml-bot');
    });

    test('a second kubectl run uses the cached token after the assertion was used once (a replay would be refused)', async () => {
      const xml = world.samlIdp.issue(spec());
      const file = join(dir, 'assertion.xml');
      writeFileSync(file, xml, { mode: 0o600 });
      const args = samlTokenCommand(world.gateway.url, join(world.dir, 'gateway-ca.pem'), dir, 'unused');
      const commandAt = args.indexOf('--saml-assertion-command');
      args.splice(commandAt, 2, '--saml-assertion-file', file);
      args.splice(args.indexOf('--cache-dir') + 1, 1, join(dir, 'plugin-cache'));
      const kubeconfig = writeKubeconfig(
        dir,
        { server: world.gateway.url, ca: world.gatewayTls.ca, exec: { command: process.execPath, args } },
        'kubeconfig-plugin',
      );
      const first = await runKubectl(['get', 'pods', '-n', 'staging', '-o', 'name'], { kubeconfig, timeoutMs: 30_000 });
      assert.equal(first.code, 0, first.stderr);
      const second = await runKubectl(['get', 'configmaps', '-n', 'staging', '-o', 'name'], {
        kubeconfig,
        timeoutMs: 30_000,
      });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /configmap\/app-config/);
      // The assertion was spent by the first run: only the cache can have served the second.
      sentAssertions.push(encodeAssertion(xml));
      assertRefused(await exchange(xml), /already exchanged/);
      const cacheLess = await runKubectl(['get', 'pods', '-n', 'staging'], {
        kubeconfig: writeKubeconfig(
          dir,
          {
            server: world.gateway.url,
            ca: world.gatewayTls.ca,
            exec: { command: process.execPath, args: [...args, '--no-cache'] },
          },
          'kubeconfig-nocache',
        ),
        timeoutMs: 30_000,
      });
      assert.notEqual(cacheLess.code, 0);
      assert.match(
        cacheLess.stderr,
        /the gateway refused the assertion: invalid_grant \(the assertion .* was already exchanged/,
      );
      assert.ok(!cacheLess.stderr.includes(encodeAssertion(xml).slice(0, 40)));
    });
  });
});
