import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Rule } from '../../packages/gateway/src/config/types.js';
import { parseRequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import { authorizationAttributes, describeRequest, matchesRule } from '../../packages/gateway/src/policy/index.js';

const cases: Array<[string, Rule, string, string, boolean]> = [
  ['empty rule matches any resource request', {}, 'GET', '/api/v1/namespaces/a/pods', true],
  [
    '["*"] everywhere',
    { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], names: ['*'] },
    'DELETE',
    '/apis/apps/v1/namespaces/a/deployments/web',
    true,
  ],
  ['verb list', { verbs: ['list', 'watch'] }, 'GET', '/api/v1/pods?watch=1', true],
  ['verb mismatch', { verbs: ['get'] }, 'GET', '/api/v1/pods', false],
  ['core group is ""', { apiGroups: [''], resources: ['pods'] }, 'GET', '/api/v1/pods', true],
  ['group mismatch', { apiGroups: ['apps'], resources: ['pods'] }, 'GET', '/api/v1/pods', false],
  ['group match', { apiGroups: ['apps'], resources: ['deployments'] }, 'GET', '/apis/apps/v1/deployments', true],
  [
    'resource does not cover its subresources',
    { resources: ['pods'] },
    'GET',
    '/api/v1/namespaces/a/pods/p/log',
    false,
  ],
  ['res/sub', { resources: ['pods/log'] }, 'GET', '/api/v1/namespaces/a/pods/p/log', true],
  ['res/sub does not cover res', { resources: ['pods/log'] }, 'GET', '/api/v1/namespaces/a/pods/p', false],
  ['*/sub', { resources: ['*/scale'] }, 'PUT', '/apis/apps/v1/namespaces/a/deployments/web/scale', true],
  ['*/sub mismatch', { resources: ['*/scale'] }, 'PUT', '/apis/apps/v1/namespaces/a/deployments/web/status', false],
  ['res/*', { resources: ['pods/*'] }, 'POST', '/api/v1/namespaces/a/pods/p/eviction', true],
  ['res/* does not cover res', { resources: ['pods/*'] }, 'GET', '/api/v1/namespaces/a/pods/p', false],
  ['* covers subresources', { resources: ['*'] }, 'GET', '/api/v1/namespaces/a/pods/p/log', true],
  ['namespace match', { namespaces: ['prod'] }, 'GET', '/api/v1/namespaces/prod/pods', true],
  ['namespace mismatch', { namespaces: ['prod'] }, 'GET', '/api/v1/namespaces/staging/pods', false],
  ['cluster-wide list is in no namespace', { namespaces: ['prod'] }, 'GET', '/api/v1/pods', false],
  ['a namespace object is inside itself (delete)', { namespaces: ['prod'] }, 'DELETE', '/api/v1/namespaces/prod', true],
  [
    'a namespace object is inside itself (server-side apply PATCH)',
    { namespaces: ['prod'] },
    'PATCH',
    '/api/v1/namespaces/prod',
    true,
  ],
  ['name match', { names: ['web'] }, 'GET', '/apis/apps/v1/namespaces/a/deployments/web', true],
  ['names need a name', { names: ['web'] }, 'GET', '/apis/apps/v1/namespaces/a/deployments', false],
  [
    'name from fieldSelector',
    { names: ['db'], resources: ['secrets'] },
    'GET',
    '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb',
    true,
  ],
  [
    'exec by POST is create',
    { verbs: ['create'], resources: ['pods/exec'] },
    'POST',
    '/api/v1/namespaces/a/pods/p/exec?command=sh',
    true,
  ],
  [
    'exec by websocket GET is create too',
    { verbs: ['create'], resources: ['pods/exec'] },
    'GET',
    '/api/v1/namespaces/a/pods/p/exec?command=sh',
    true,
  ],
  [
    'exec is never get',
    { verbs: ['get'], resources: ['pods/exec'] },
    'GET',
    '/api/v1/namespaces/a/pods/p/exec?command=sh',
    false,
  ],
  [
    'attach by GET is create',
    { verbs: ['create'], resources: ['pods/attach'] },
    'GET',
    '/api/v1/namespaces/a/pods/p/attach',
    true,
  ],
  [
    'portforward by GET is create',
    { verbs: ['create'], resources: ['pods/portforward'] },
    'GET',
    '/api/v1/namespaces/a/pods/p/portforward',
    true,
  ],
  [
    'proxy subresource by GET is create',
    { verbs: ['create'], resources: ['services/proxy'] },
    'GET',
    '/api/v1/namespaces/a/services/s/proxy/metrics',
    true,
  ],
  ['log stays get', { verbs: ['get'], resources: ['pods/log'] }, 'GET', '/api/v1/namespaces/a/pods/p/log', true],
  [
    'dryRun changes nothing',
    { verbs: ['delete'], resources: ['namespaces'] },
    'DELETE',
    '/api/v1/namespaces/prod?dryRun=All',
    true,
  ],
  ['non-resource never matches a rule', {}, 'GET', '/version', false],
  ['non-resource never matches a rule (even "*")', { verbs: ['*'], resources: ['*'] }, 'GET', '/healthz', false],
];

for (const [name, rule, method, url, expected] of cases) {
  test(`matchesRule: ${name}`, () => {
    assert.equal(matchesRule(rule, parseRequestInfo(method, url)), expected);
  });
}

test('authorizationAttributes', () => {
  assert.deepEqual(authorizationAttributes(parseRequestInfo('GET', '/api/v1/namespaces/a/pods/p/exec?command=sh')), {
    kind: 'resource',
    verb: 'create',
    group: '',
    version: 'v1',
    resource: 'pods',
    subresource: 'exec',
    namespace: 'a',
    name: 'p',
  });
  assert.deepEqual(
    authorizationAttributes(parseRequestInfo('DELETE', '/apis/apps/v1/namespaces/a/deployments/web?dryRun=All')),
    {
      kind: 'resource',
      verb: 'delete',
      group: 'apps',
      version: 'v1',
      resource: 'deployments',
      subresource: '',
      namespace: 'a',
      name: 'web',
    },
  );
  assert.deepEqual(authorizationAttributes(parseRequestInfo('GET', '/metrics')), {
    kind: 'non-resource',
    verb: 'get',
    path: '/metrics',
  });
});

test('describeRequest', () => {
  assert.equal(describeRequest(parseRequestInfo('DELETE', '/api/v1/namespaces/prod')), 'delete namespaces/prod');
  assert.equal(
    describeRequest(parseRequestInfo('PUT', '/api/v1/namespaces/prod/finalize')),
    'update namespaces/prod/finalize',
  );
  assert.equal(describeRequest(parseRequestInfo('GET', '/api/v1/namespaces/a/pods/p/exec')), 'create pods/p/exec -n a');
  assert.equal(
    describeRequest(parseRequestInfo('GET', '/apis/apps/v1/namespaces/s/deployments/web')),
    'get deployments.apps/web -n s',
  );
  assert.equal(describeRequest(parseRequestInfo('GET', '/api/v1/pods')), 'list pods');
  assert.equal(describeRequest(parseRequestInfo('GET', '/healthz')), 'get /healthz');
});
