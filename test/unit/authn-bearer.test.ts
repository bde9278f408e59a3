import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractBearer } from '../../packages/gateway/src/authn/bearer.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';

const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

function call(raw: string[], path = '/api/v1/pods'): string {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    headers[name] = headers[name] === undefined ? (raw[i + 1] ?? '') : `${headers[name]}, ${raw[i + 1]}`;
  }
  return extractBearer(headers, raw, path);
}

function refused(raw: string[], code: HoopError['code'], message: RegExp, path?: string): void {
  assert.throws(
    () => call(raw, path),
    (error: unknown) => {
      assert.ok(error instanceof HoopError);
      assert.equal(error.code, code);
      assert.match(error.message, message);
      assert.ok(!error.message.includes(jwt), 'the token never appears in a message');
      const status = statusFromError(error);
      assert.equal(status.code, 401);
      assert.equal(status.reason, 'Unauthorized');
      assert.equal(status.kind, 'Status');
      assert.match(status.message, /^hoopgate: /);
      return true;
    },
  );
}

describe('extractBearer', () => {
  it('returns the token of a single Bearer header (scheme case-insensitive)', () => {
    assert.equal(call(['Authorization', `Bearer ${jwt}`]), jwt);
    assert.equal(call(['authorization', `bearer ${jwt}`]), jwt);
    assert.equal(call(['Host', 'x', 'AUTHORIZATION', `BEARER ${jwt}`], '/api/v1/pods?limit=5&watch=true'), jwt);
  });

  it('refuses a request without Authorization', () => {
    refused(['Host', 'x'], 'ERR_UNAUTHENTICATED', /^no credentials: send "Authorization: Bearer <OIDC token>"$/);
    refused(['Authorization', ''], 'ERR_UNAUTHENTICATED', /^no credentials/);
  });

  it('refuses other schemes without echoing their credentials', () => {
    refused(
      ['Authorization', 'Basic dXNlcjpwYXNz'],
      'ERR_UNAUTHENTICATED',
      /^authorization scheme "Basic" is not accepted/,
    );
    refused(['Authorization', jwt], 'ERR_UNAUTHENTICATED', /^authorization scheme is not accepted/);
    refused(['Authorization', 'Bearer'], 'ERR_UNAUTHENTICATED', /^empty bearer token/);
    refused(['Authorization', 'Bearer   '], 'ERR_UNAUTHENTICATED', /^empty bearer token/);
  });

  it('refuses a malformed bearer value', () => {
    refused(['Authorization', `Bearer ${jwt} extra`], 'ERR_TOKEN_INVALID', /^malformed bearer token/);
    refused(['Authorization', `Bearer ${jwt}"`], 'ERR_TOKEN_INVALID', /^malformed bearer token/);
  });

  it('refuses a second Authorization header even though Node joins them', () => {
    refused(
      ['Authorization', `Bearer ${jwt}`, 'authorization', `Bearer ${jwt}`],
      'ERR_TOKEN_INVALID',
      /^request has 2 Authorization headers/,
    );
  });

  it('refuses tokens in the query string, whatever the header says', () => {
    for (const query of ['access_token=abc', 'limit=1&ACCESS_TOKEN=abc', 'id_token=x', 'token=x', 'access%5Ftoken=x']) {
      refused(
        ['Authorization', `Bearer ${jwt}`],
        'ERR_TOKEN_INVALID',
        /^tokens in the query string \("(access_token|id_token|token)"\) are refused/,
        `/api/v1/pods?${query}`,
      );
    }
    refused([], 'ERR_TOKEN_INVALID', /query string/, `/api?access_token=${jwt}`);
  });
});
