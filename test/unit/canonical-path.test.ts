import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCanonicalPath } from '../../packages/gateway/src/kube/canonical-path.js';

const accepted = [
  '/',
  '/api',
  '/api/v1',
  '/apis/apps/v1/',
  '/version',
  '/openapi/v3/apis/apps/v1?hash=ABC123',
  '/api/v1/namespaces/default/pods',
  '/api/v1/namespaces/default/pods/web-0/exec?command=sh&command=-c&command=echo%20a%0Aecho%20b&stdin=true&tty=true',
  '/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ddb&limit=500',
  '/api/v1/namespaces/default/pods?labelSelector=app+in+(web,api)',
  '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregate-to-admin',
  '/api/v1/namespaces/default/pods/web~1',
  '/api/v1/namespaces/default/pods/web%3A0',
  '/api/v1/namespaces/default/configmaps/a.b.c',
  '/api/v1/namespaces/default/pods/web-0/proxy/',
  "/api/v1/namespaces/default/pods/web-0/proxy/a;b=c/!$&'()*+,@",
  '/api/v1/pods?watch=1&resourceVersion=0&allowWatchBookmarks=true',
  '/api/v1/pods?',
];

for (const path of accepted) {
  test(`accepts ${JSON.stringify(path)}`, () => {
    assert.deepEqual(checkCanonicalPath(path), { ok: true });
  });
}

const refused: Array<[string, RegExp]> = [
  ['//api/v1/pods', /empty path segment/],
  ['/api//v1/pods', /empty path segment/],
  ['/api/v1/pods//', /empty path segment/],
  ['/api/v1/namespaces/./pods', /"\." path segment/],
  ['/api/v1/namespaces/../pods', /"\.\." path segment/],
  ['/api/v1/..', /"\.\." path segment/],
  ['/api/v1/.', /"\." path segment/],
  ['/api/v1/namespaces/a%2fb/pods', /encoded "\/"/],
  ['/api/v1/namespaces/a%2Fb/pods', /encoded "\/"/],
  ['/api/v1/namespaces/a%5cb/pods', /encoded "\\"/],
  ['/api/v1/namespaces/a%5Cb/pods', /encoded "\\"/],
  ['/api/v1/namespaces/%2e%2e/pods', /encoded "\."/],
  ['/api/v1/namespaces/%2E/pods', /encoded "\."/],
  ['/api/v1/namespaces/a%2eb/pods', /encoded "\."/],
  ['/api/v1/namespaces/a%252fb/pods', /encoded "%"/],
  ['/api/v1/namespaces/a\\b/pods', /backslash/],
  ['/api/v1/pods\u0000', /control character/],
  ['/api/v1/pods\n', /control character/],
  ['/api/v1/pods\u007f', /control character/],
  ['/api/v1/pods%00', /encoded control character \(%00\)/],
  ['/api/v1/pods%0a', /encoded control character/],
  ['/api/v1/pods%0D', /encoded control character/],
  ['/api/v1/pods%1f', /encoded control character/],
  ['/api/v1/pods%7F', /encoded control character/],
  ['/api/v1/pods%', /invalid percent-encoding/],
  ['/api/v1/pods%4', /invalid percent-encoding/],
  ['/api/v1/pods%zz', /invalid percent-encoding/],
  ['/api/v1/pods%%41', /invalid percent-encoding/],
  ['api/v1/pods', /must start with "\/"/],
  ['', /must start with "\/"/],
  ['*', /must start with "\/"/],
  ['http://example.com/api', /must start with "\/"/],
  ['/api/v1/pods web', /" " must be percent-encoded/],
  ['/api/v1/pods#frag', /"#" must be percent-encoded/],
  ['/api/v1/pods/wéb', /U\+00E9 must be percent-encoded/],
  ['/api/v1/pods?watch=1\r\nX-Injected: 1', /control character .* query string/],
  ['/api/v1/pods?watch=1\u0000', /control character .* query string/],
  ['/api/v1/pods?a=b#c', /"#"/],
  ['/api/v1/pods?a=é', /must be percent-encoded in the query string/],
];

for (const [path, problem] of refused) {
  test(`refuses ${JSON.stringify(path)}`, () => {
    const result = checkCanonicalPath(path);
    assert.equal(result.ok, false);
    assert.ok(
      !result.ok && problem.test(result.problem),
      `problem for ${JSON.stringify(path)}: ${result.ok ? '' : result.problem}`,
    );
  });
}

test('the query string may hold "//", "..", encoded slashes: they are not path', () => {
  assert.deepEqual(checkCanonicalPath('/api/v1/pods?labelSelector=a%2Fb&x=..//y'), { ok: true });
});
