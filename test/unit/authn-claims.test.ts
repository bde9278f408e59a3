import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readClaim, readStringList } from '../../packages/gateway/src/authn/claims.js';

const claims = {
  sub: 'bot',
  groups: ['a', 'b'],
  group: 'solo',
  realm_access: { roles: ['x', 'y'], nested: { deep: 'z' } },
  'https://example.com/groups': ['namespaced'],
  bad: [1, 'two'],
  list: [{ a: 1 }],
};

describe('readClaim', () => {
  it('walks dot paths', () => {
    assert.equal(readClaim(claims, 'sub'), 'bot');
    assert.deepEqual(readClaim(claims, 'realm_access.roles'), ['x', 'y']);
    assert.equal(readClaim(claims, 'realm_access.nested.deep'), 'z');
  });
  it('prefers a whole key containing dots (namespaced claims)', () => {
    assert.deepEqual(readClaim(claims, 'https://example.com/groups'), ['namespaced']);
  });
  it('reads inside a key containing dots (the kubernetes.io claim of ServiceAccount tokens)', () => {
    const sa = { 'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'bot', uid: 'u-1' } } };
    assert.equal(readClaim(sa, 'kubernetes.io.namespace'), 'agents');
    assert.equal(readClaim(sa, 'kubernetes.io.serviceaccount.name'), 'bot');
    assert.equal(readClaim(sa, 'kubernetes.io.missing'), undefined);
    assert.equal(readClaim(sa, 'kubernetes'), undefined);
  });
  it('returns undefined for missing paths, through arrays and scalars, and for inherited keys', () => {
    assert.equal(readClaim(claims, 'realm_access.missing'), undefined);
    assert.equal(readClaim(claims, 'sub.length'), undefined);
    assert.equal(readClaim(claims, 'list.0.a'), undefined);
    assert.equal(readClaim(claims, 'constructor'), undefined);
    assert.equal(readClaim(claims, 'realm_access.__proto__'), undefined);
  });
});

describe('readStringList', () => {
  it('accepts a list, a single string, or nothing', () => {
    assert.deepEqual(readStringList(claims, 'groups'), ['a', 'b']);
    assert.deepEqual(readStringList(claims, 'group'), ['solo']);
    assert.deepEqual(readStringList(claims, 'realm_access.roles'), ['x', 'y']);
    assert.deepEqual(readStringList(claims, 'absent'), []);
  });
  it('reports anything else as malformed (undefined)', () => {
    assert.equal(readStringList(claims, 'bad'), undefined);
    assert.equal(readStringList(claims, 'realm_access'), undefined);
  });
});
