import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { parseGoQuery, parseRequestInfo, type RequestInfo } from '../../packages/gateway/src/kube/request-info.js';

interface FixtureCase {
  method: string;
  url: string;
  expect: Partial<RequestInfo>;
}

const fixtureUrl = new URL('../../packages/sim/fixtures/requestinfo.json', import.meta.url);
const fixture = JSON.parse(readFileSync(fixtureUrl, 'utf8')) as { cases: FixtureCase[] };

test('fixture has cases', () => {
  assert.ok(fixture.cases.length >= 50);
});

for (const c of fixture.cases) {
  test(`fixture: ${c.method} ${c.url}`, () => {
    const info = parseRequestInfo(c.method, c.url);
    for (const [key, value] of Object.entries(c.expect)) {
      assert.deepEqual(info[key as keyof RequestInfo], value, `${key} of ${c.method} ${c.url}`);
    }
  });
}

type Expect = Partial<RequestInfo>;
const extra: Array<[string, string, Expect]> = [
  // watch is anything but "0" / "false" (case-insensitive, with Go's simple folding of "ſ")
  ['GET', '/api/v1/pods?watch=FALSE', { verb: 'list' }],
  ['GET', '/api/v1/pods?watch=False', { verb: 'list' }],
  ['GET', '/api/v1/pods?watch=fal%C5%BFe', { verb: 'list' }],
  ['GET', '/api/v1/pods?watch=yes', { verb: 'watch' }],
  ['GET', '/api/v1/pods?watch=', { verb: 'watch' }],
  ['GET', '/api/v1/pods?watch', { verb: 'watch' }],
  ['GET', '/api/v1/pods?watch=%FF', { verb: 'watch' }],
  ['GET', '/api/v1/pods?watch=0&watch=1', { verb: 'list' }],
  // Go skips pairs containing ";" and pairs with invalid escapes
  ['GET', '/api/v1/pods?watch=false;x&watch=true', { verb: 'watch' }],
  ['GET', '/api/v1/pods?watch=%zz&watch=0', { verb: 'list' }],
  ['GET', '/api/v1/pods?watch=+0', { verb: 'watch' }],
  // fieldSelector metadata.name
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3D%3Ddb', { verb: 'list', name: 'db' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%21%3Ddb', { verb: 'list', name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=type%3Dopaque,metadata.name%3Ddb', { verb: 'list', name: 'db' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Db,metadata.name%3Da', { name: 'a' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb,foo', { verb: 'list', name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb,foo&watch=true', { verb: 'watch', name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Dd%5C%3Db', { name: 'd=b' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3D..', { name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Da%25b', { name: '' }],
  // an undecodable list option resets the options: no name, watch read with ToLower (no "ſ" folding)
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb&limit=abc', { verb: 'list', name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?limit=abc&watch=fal%C5%BFe', { verb: 'watch', name: '' }],
  ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb&limit=500&timeoutSeconds=30', { name: 'db' }],
  // a named get is never a list
  ['GET', '/api/v1/namespaces/a/pods/p?watch=true', { verb: 'get', name: 'p' }],
  // decoded path, parts
  [
    'GET',
    '/api/v1/namespaces/a/pods/web%3A0',
    { name: 'web:0', parts: ['pods', 'web:0'], path: '/api/v1/namespaces/a/pods/web:0' },
  ],
  [
    'GET',
    '/apis/apps/v1/namespaces/a/deployments/web/scale?x=1',
    { parts: ['deployments', 'web', 'scale'], path: '/apis/apps/v1/namespaces/a/deployments/web/scale' },
  ],
  ['POST', '/api/v1/namespaces/a/pods/web-0/portforward', { verb: 'create', subresource: 'portforward' }],
  ['DELETE', '/api/v1/namespaces/prod', { verb: 'delete', namespace: 'prod', resource: 'namespaces', name: 'prod' }],
  ['PUT', '/api/v1/namespaces/prod', { verb: 'update', namespace: 'prod', name: 'prod' }],
  [
    'GET',
    '/api/v1/nodes/n1/proxy/metrics',
    { verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'n1', namespace: '' },
  ],
  // unknown method on a resource path: empty verb; on a non-resource path: the lower-case method
  ['OPTIONS', '/api/v1/pods', { isResourceRequest: true, verb: '' }],
  ['OPTIONS', '/version', { isResourceRequest: false, verb: 'options' }],
  ['POST', '/apis/apps', { isResourceRequest: false, verb: 'post', apiPrefix: '' }],
  ['GET', '/apis/apps/v1', { isResourceRequest: false, apiPrefix: 'apis', apiGroup: '', path: '/apis/apps/v1' }],
];

for (const [method, url, expect] of extra) {
  test(`extra: ${method} ${url}`, () => {
    const info = parseRequestInfo(method, url);
    for (const [key, value] of Object.entries(expect)) {
      assert.deepEqual(info[key as keyof RequestInfo], value, `${key} of ${method} ${url}`);
    }
  });
}

test('a special verb with nothing after it is refused like the API server refuses it', () => {
  for (const url of ['/api/v1/watch', '/api/v1/proxy', '/apis/apps/v1/watch/']) {
    assert.throws(
      () => parseRequestInfo('GET', url),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_BAD_REQUEST' &&
        /unable to determine kind and namespace/.test(error.message),
      url,
    );
  }
});

test('a path that is not percent-encoded UTF-8 is refused', () => {
  assert.throws(
    () => parseRequestInfo('GET', '/api/v1/namespaces/a/pods/%FF'),
    (error: unknown) => error instanceof HoopError && error.code === 'ERR_BAD_REQUEST',
  );
});

test('parseGoQuery follows url.ParseQuery', () => {
  const q = parseGoQuery('a=1&a=2&b=x+y&c=%41&d&;e=1&f=%zz&&g=a=b');
  assert.deepEqual(Object.fromEntries(q), { a: ['1', '2'], b: ['x y'], c: ['A'], d: [''], g: ['a=b'] });
});
