// Credentials in paths and bodies never reach a record, a log line or an approver (issue #12 item 3).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { maskCredentialFields, withoutCredentialQuery } from '../../packages/gateway/src/proxy/mask/credentials.js';

describe('withoutCredentialQuery', () => {
  for (const [path, expected] of [
    ['/api/v1/pods', '/api/v1/pods'],
    ['/api/v1/pods?watch=1&labelSelector=a%3Db', '/api/v1/pods?watch=1&labelSelector=a%3Db'],
    ['/api/v1/pods?access_token=eyJ.secret', '/api/v1/pods?[query not logged]'],
    ['/api/v1/pods?watch=1&TOKEN=abc', '/api/v1/pods?[query not logged]'],
    ['/api/v1/pods?id_token=abc', '/api/v1/pods?[query not logged]'],
    ['/api/v1/pods?Authorization=Bearer%20abc', '/api/v1/pods?[query not logged]'],
  ] as const) {
    test(`${path} → ${expected}`, () => assert.equal(withoutCredentialQuery(path), expected));
  }
});

describe('maskCredentialFields', () => {
  test('TokenReview.spec.token (another identity’s bearer token) is masked, the rest kept', () => {
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: 'eyJhbGciOi.victim.sig', audiences: ['api'] },
    });
    const masked = maskCredentialFields(body);
    assert.doesNotMatch(masked, /victim/);
    assert.deepEqual(JSON.parse(masked), {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: '***MASKED***', audiences: ['api'] },
    });
  });
  test('TokenRequest.status.token, pretty-printed, with escaped quotes inside', () => {
    const body = JSON.stringify(
      { kind: 'TokenRequest', status: { token: 'abc\\"def"ghi', expirationTimestamp: '2026-01-01T00:00:00Z' } },
      null,
      2,
    );
    const masked = maskCredentialFields(body);
    assert.doesNotMatch(masked, /abc|def|ghi/);
    assert.equal(JSON.parse(masked).status.expirationTimestamp, '2026-01-01T00:00:00Z');
  });
  test('a body cut inside the token value drops the rest of it', () => {
    const cut = '{"kind":"TokenRequest","status":{"token":"eyJhbGciOiJSUzI1NiIsImtpZCI6';
    assert.equal(maskCredentialFields(cut), '{"kind":"TokenRequest","status":{"token":"***MASKED***');
  });
  test('a body with no token member is unchanged', () => {
    const body = '{"kind":"Pod","metadata":{"name":"token","labels":{"tokens":"x"}}}';
    assert.equal(maskCredentialFields(body), body);
  });
});
