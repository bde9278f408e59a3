// The simulated API server at the HTTP level: discovery, authn, RBAC, reviews, TokenRequest, Status
// shapes, Table, gzip, watch, patch types, dry run, collections, logs and request records.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import { parseRequestInfo } from '../../packages/sim/src/request-info.js';

const fixtures = fileURLToPath(new URL('../../packages/sim/fixtures/', import.meta.url));
const tableAccept =
  'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  text: string;
  json: any;
}

function call(
  sim: SimCluster,
  method: string,
  path: string,
  opts: { token?: string | null; headers?: Record<string, string>; body?: unknown; contentType?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? sim.adminToken : opts.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.isBuffer(opts.body)
      ? opts.body
      : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    headers['content-type'] = opts.contentType ?? 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = request(`${sim.url}${path}`, { method, headers, ca: sim.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Opens a streaming GET; returns the lines seen so far and a way to abort. */
function stream(sim: SimCluster, path: string, opts: { token?: string; accept?: string } = {}) {
  const lines: string[] = [];
  let status = 0;
  let ended = false;
  let buf = '';
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? sim.adminToken}` };
  if (opts.accept) headers['accept'] = opts.accept;
  const req = request(`${sim.url}${path}`, { headers, ca: sim.ca, agent: false }, (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    });
    res.on('end', () => (ended = true));
    res.on('error', () => (ended = true));
  });
  req.on('error', () => (ended = true));
  req.end();
  return {
    lines,
    status: () => status,
    ended: () => ended,
    abort: () => req.destroy(),
    async waitFor(pred: (lines: string[]) => boolean, ms = 5000) {
      const start = Date.now();
      while (!pred(lines)) {
        if (Date.now() - start > ms) throw new Error(`timed out; lines so far:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function assertStatus(
  r: Reply,
  code: number,
  reason: string,
  message: string | RegExp,
  details?: Record<string, unknown>,
): void {
  assert.equal(r.status, code, r.text);
  assert.equal(r.json.kind, 'Status');
  assert.equal(r.json.apiVersion, 'v1');
  assert.deepEqual(r.json.metadata, {});
  assert.equal(r.json.status, 'Failure');
  assert.equal(r.json.reason, reason);
  assert.equal(r.json.code, code);
  if (typeof message === 'string') assert.equal(r.json.message, message);
  else assert.match(r.json.message, message);
  if (details) assert.deepEqual(r.json.details, details);
}

let clock = Date.now();
let sim: SimCluster;
before(async () => {
  sim = await startSimCluster({
    seed: true,
    now: () => clock,
    logLines: ['line one', 'line two', 'line three'],
    logFollowIntervalMs: 50,
  });
});
after(async () => {
  await sim.close();
});

describe('request classification', () => {
  test('matches every case of packages/sim/fixtures/requestinfo.json', () => {
    const { cases } = JSON.parse(readFileSync(`${fixtures}requestinfo.json`, 'utf8')) as {
      cases: { method: string; url: string; expect: Record<string, unknown> }[];
    };
    for (const c of cases) {
      const got = parseRequestInfo(c.method, c.url) as unknown as Record<string, unknown>;
      const picked = Object.fromEntries(Object.keys(c.expect).map((k) => [k, got[k]]));
      assert.deepEqual(picked, c.expect, `${c.method} ${c.url}`);
    }
  });
});

describe('discovery', () => {
  test('serves the fixture documents as they are', async () => {
    for (const [path, file] of [
      ['/api', 'api.json'],
      ['/api/v1', 'api__v1.json'],
      ['/apis/apps/v1', 'apis__apps__v1.json'],
      ['/apis/rbac.authorization.k8s.io/v1', 'apis__rbac.authorization.k8s.io__v1.json'],
    ] as [string, string][]) {
      const r = await call(sim, 'GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.text, readFileSync(`${fixtures}kubernetes/discovery/${file}`, 'utf8'), path);
    }
    // /apis as in the file, less the group version that has no resources (test/integration/sim-fidelity.test.ts).
    const apis = JSON.parse(readFileSync(`${fixtures}kubernetes/discovery/apis.json`, 'utf8'));
    const storage = apis.groups.find((g: { name: string }) => g.name === 'storage.k8s.io');
    storage.versions = storage.versions.filter((v: { version: string }) => v.version !== 'v1beta1');
    assert.deepEqual((await call(sim, 'GET', '/apis')).json, apis);
  });

  test('aggregated discovery when asked for APIGroupDiscoveryList v2', async () => {
    const r = await call(sim, 'GET', '/apis', {
      headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' },
    });
    assert.equal(r.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    assert.equal(r.text, readFileSync(`${fixtures}kubernetes/discovery/aggregated_v2.json`, 'utf8'));
    const beta = await call(sim, 'GET', '/apis', {
      headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json' },
    });
    assert.equal(beta.json.kind, 'APIGroupList');
  });

  test('group versions listed without a file get a resource list; unknown ones 404', async () => {
    const r = await call(sim, 'GET', '/apis/storage.k8s.io/v1');
    assert.equal(r.json.kind, 'APIResourceList');
    assert.equal(r.json.groupVersion, 'storage.k8s.io/v1');
    assertStatus(
      await call(sim, 'GET', '/apis/nope.example.com/v1'),
      404,
      'NotFound',
      'the server could not find the requested resource',
      {},
    );
  });

  test('/version and openapi v3 (fieldValidation declared for kubectl)', async () => {
    const v = await call(sim, 'GET', '/version', { token: null });
    assert.equal(v.json.major, '1');
    const root = await call(sim, 'GET', '/openapi/v3');
    const url = String(root.json.paths['api/v1'].serverRelativeURL);
    assert.match(url, /^\/openapi\/v3\/api\/v1\?hash=/);
    const doc = await call(sim, 'GET', url);
    const patch = doc.json.paths['/api/v1/namespaces/{namespace}/pods/{name}'].patch;
    assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: '', version: 'v1', kind: 'Pod' });
    assert.ok(
      patch.parameters.some((p: { name: string; in: string }) => p.name === 'fieldValidation' && p.in === 'query'),
    );
    const v2 = await call(sim, 'GET', '/openapi/v2', {
      headers: { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' },
    });
    assert.equal(v2.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    assert.ok(v2.raw.includes(Buffer.from('fieldValidation')));
    assert.equal((await call(sim, 'GET', '/openapi/v2')).json.swagger, '2.0');
  });
});

describe('authentication and RBAC', () => {
  test('no token or an unknown token is 401 Unauthorized, recorded with identity null', async () => {
    assertStatus(await call(sim, 'GET', '/api/v1/pods', { token: null }), 401, 'Unauthorized', 'Unauthorized');
    assertStatus(await call(sim, 'GET', '/api/v1/pods', { token: 'nope' }), 401, 'Unauthorized', 'Unauthorized');
    const rec = sim.requests.at(-1)!;
    assert.equal(rec.identity, null);
    assert.equal(rec.token, 'nope');
    assert.equal(rec.status, 401);
  });

  test('a ServiceAccount without bindings is forbidden with the real message; discovery stays open', async () => {
    sim.createServiceAccount('agents', 'nobody');
    const token = sim.issueToken('agents', 'nobody');
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/default/pods', { token }),
      403,
      'Forbidden',
      'pods is forbidden: User "system:serviceaccount:agents:nobody" cannot list resource "pods" in API group "" in the namespace "default"',
      { kind: 'pods' },
    );
    assertStatus(
      await call(sim, 'GET', '/apis/apps/v1/namespaces/prod/deployments/api', { token }),
      403,
      'Forbidden',
      'deployments.apps "api" is forbidden: User "system:serviceaccount:agents:nobody" cannot get resource "deployments" in API group "apps" in the namespace "prod"',
      { name: 'api', group: 'apps', kind: 'deployments' },
    );
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces', { token }),
      403,
      'Forbidden',
      'namespaces is forbidden: User "system:serviceaccount:agents:nobody" cannot list resource "namespaces" in API group "" at the cluster scope',
    );
    assertStatus(
      await call(sim, 'GET', '/metrics', { token }),
      403,
      'Forbidden',
      'forbidden: User "system:serviceaccount:agents:nobody" cannot get path "/metrics"',
      {},
    );
    for (const path of ['/api', '/api/v1', '/apis', '/apis/apps/v1', '/version', '/openapi/v3'])
      assert.equal((await call(sim, 'GET', path, { token })).status, 200, path);
    assert.equal(sim.requests.at(-1)!.identity, 'system:serviceaccount:agents:nobody');
  });

  test('Role, RoleBinding, resourceNames, subresources, groups and ClusterRoleBindings', async () => {
    sim.createServiceAccount('agents', 'reader');
    const token = sim.issueToken('agents', 'reader');
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'pod-reader', namespace: 'staging' },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['pods/log'], verbs: ['get'], resourceNames: ['web-0'] },
      ],
    });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'reader', namespace: 'staging' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'agents' }],
    });
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/staging/pods', { token })).status, 200);
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/staging/pods/web-0/log', { token })).status, 200);
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/staging/pods/web-1/log', { token }),
      403,
      'Forbidden',
      'pods "web-1" is forbidden: User "system:serviceaccount:agents:reader" cannot get resource "pods/log" in API group "" in the namespace "staging"',
      { name: 'web-1', kind: 'pods' },
    );
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/prod/pods', { token })).status, 403);
    assert.equal((await call(sim, 'DELETE', '/api/v1/namespaces/staging/pods/web-0', { token })).status, 403);
    // A binding to the namespace's ServiceAccount group, of a ClusterRole.
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'agents-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'Group', name: 'system:serviceaccounts:agents', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/prod/pods', { token })).status, 200);
    assert.equal(
      (await call(sim, 'GET', '/api/v1/namespaces/prod/secrets', { token })).status,
      403,
      'view does not read secrets',
    );
    sim.deleteObject('clusterrolebindings', '', 'agents-view');
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/prod/pods', { token })).status, 403);
  });

  test('a binding to a missing role adds the RBAC reason to the message', async () => {
    sim.createServiceAccount('agents', 'dangling');
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'dangling', namespace: 'agents' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'gone' },
      subjects: [{ kind: 'ServiceAccount', name: 'dangling' }],
    });
    const r = await call(sim, 'GET', '/api/v1/namespaces/agents/configmaps', {
      token: sim.issueToken('agents', 'dangling'),
    });
    assertStatus(
      r,
      403,
      'Forbidden',
      'configmaps is forbidden: User "system:serviceaccount:agents:dangling" cannot list resource "configmaps" in API group "" in the namespace "agents": RBAC: role.rbac.authorization.k8s.io "gone" not found',
    );
  });
});

describe('TokenRequest', () => {
  test('mints a token that authenticates as the ServiceAccount until it expires', async () => {
    sim.createServiceAccount('agents', 'minted');
    const r = await call(sim, 'POST', '/api/v1/namespaces/agents/serviceaccounts/minted/token', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.kind, 'TokenRequest');
    assert.equal(r.json.spec.expirationSeconds, 600);
    assert.deepEqual(r.json.spec.audiences, ['https://kubernetes.default.svc.cluster.local']);
    assert.equal(Date.parse(r.json.status.expirationTimestamp), Math.floor((clock + 600_000) / 1000) * 1000);
    const token: string = r.json.status.token;
    const who = await call(sim, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      token,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    assert.equal(who.json.status.userInfo.username, 'system:serviceaccount:agents:minted');
    assert.deepEqual(who.json.status.userInfo.groups, [
      'system:serviceaccounts',
      'system:serviceaccounts:agents',
      'system:authenticated',
    ]);
    clock += 601_000;
    try {
      assertStatus(await call(sim, 'GET', '/api', { token }), 401, 'Unauthorized', 'Unauthorized');
    } finally {
      clock -= 601_000;
    }
  });

  test('refuses less than 10 minutes, a missing ServiceAccount, and callers without serviceaccounts/token', async () => {
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/agents/serviceaccounts/minted/token', {
        body: { spec: { expirationSeconds: 60 } },
      }),
      422,
      'Invalid',
      'TokenRequest.authentication.k8s.io "minted" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes',
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/agents/serviceaccounts/ghost/token', { body: { spec: {} } }),
      404,
      'NotFound',
      'serviceaccounts "ghost" not found',
      { name: 'ghost', kind: 'serviceaccounts' },
    );
    sim.createServiceAccount('agents', 'plain');
    assert.equal(
      (
        await call(sim, 'POST', '/api/v1/namespaces/agents/serviceaccounts/plain/token', {
          token: sim.issueToken('agents', 'plain'),
          body: { spec: {} },
        })
      ).status,
      403,
    );
  });

  test('tokens die with their ServiceAccount', async () => {
    sim.createServiceAccount('agents', 'shortlived');
    const token = sim.issueToken('agents', 'shortlived');
    assert.equal((await call(sim, 'GET', '/api', { token })).status, 200);
    sim.deleteObject('serviceaccounts', 'agents', 'shortlived');
    assert.equal((await call(sim, 'GET', '/api', { token })).status, 401);
  });
});

describe('access reviews', () => {
  const sar = (spec: object) => ({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec });

  test('SubjectAccessReview evaluates RBAC for the given user and groups', async () => {
    sim.createServiceAccount('agents', 'deployer');
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'deployer-edit', namespace: 'staging' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'agents' }],
    });
    const user = 'system:serviceaccount:agents:deployer';
    const groups = ['system:serviceaccounts', 'system:serviceaccounts:agents', 'system:authenticated'];
    const allowed = await call(sim, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: sar({
        user,
        groups,
        resourceAttributes: {
          namespace: 'staging',
          verb: 'patch',
          group: 'apps',
          resource: 'deployments',
          name: 'web',
        },
      }),
    });
    assert.equal(allowed.status, 201);
    assert.deepEqual(allowed.json.status, {
      allowed: true,
      reason:
        'RBAC: allowed by RoleBinding "deployer-edit/staging" of ClusterRole "edit" to ServiceAccount "deployer/agents"',
    });
    const denied = await call(sim, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: sar({
        user,
        groups,
        resourceAttributes: { namespace: 'prod', verb: 'patch', group: 'apps', resource: 'deployments' },
      }),
    });
    assert.deepEqual(denied.json.status, { allowed: false });
    const nonResource = await call(sim, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: sar({ user, groups, nonResourceAttributes: { path: '/version', verb: 'get' } }),
    });
    assert.equal(nonResource.json.status.allowed, true);
    assertStatus(
      await call(sim, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { body: sar({ user }) }),
      422,
      'Invalid',
      /exactly one of nonResourceAttributes or resourceAttributes/,
    );
  });

  test('only callers allowed to create subjectaccessreviews may ask; anyone may ask about themselves', async () => {
    sim.createServiceAccount('agents', 'curious');
    const token = sim.issueToken('agents', 'curious');
    assertStatus(
      await call(sim, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        token,
        body: sar({ user: 'x', resourceAttributes: { verb: 'get', resource: 'pods' } }),
      }),
      403,
      'Forbidden',
      'subjectaccessreviews.authorization.k8s.io is forbidden: User "system:serviceaccount:agents:curious" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope',
    );
    const self = await call(sim, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      token,
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace: 'default', verb: 'list', resource: 'pods' } },
      },
    });
    assert.equal(self.status, 201);
    assert.equal(self.json.status.allowed, false);
    const rules = await call(sim, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', {
      token,
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace: 'default' } },
    });
    assert.ok(
      rules.json.status.resourceRules.some((r: { resources: string[] }) =>
        r.resources.includes('selfsubjectaccessreviews'),
      ),
    );
  });
});

describe('objects', () => {
  test('create sets server metadata; namespaced create needs the namespace; duplicates conflict', async () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'made', namespace: 'staging' },
      data: { a: '1' },
    };
    const r = await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', { body: cm });
    assert.equal(r.status, 201);
    assert.match(r.json.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(r.json.metadata.resourceVersion, /^\d+$/);
    assert.match(r.json.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', { body: cm }),
      409,
      'AlreadyExists',
      'configmaps "made" already exists',
      { name: 'made', kind: 'configmaps' },
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/nowhere/configmaps', { body: { ...cm, metadata: { name: 'x' } } }),
      404,
      'NotFound',
      'namespaces "nowhere" not found',
      { name: 'nowhere', kind: 'namespaces' },
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', {
        body: { ...cm, metadata: { name: 'Bad_Name' } },
      }),
      422,
      'Invalid',
      /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps?fieldValidation=Strict', {
        body: { ...cm, metadata: { name: 'y' }, bogus: 1 },
      }),
      400,
      'BadRequest',
      'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"',
    );
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/staging/configmaps/missing'),
      404,
      'NotFound',
      'configmaps "missing" not found',
      { name: 'missing', kind: 'configmaps' },
    );
    const d = await call(sim, 'POST', '/apis/apps/v1/namespaces/staging/deployments', {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'd1' },
        spec: {
          selector: { matchLabels: { app: 'd1' } },
          template: { metadata: { labels: { app: 'd1' } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } },
        },
      },
    });
    assert.equal(d.json.metadata.generation, 1);
    assert.equal(d.json.spec.replicas, 1);
  });

  test('Secret stringData is merged into data as base64 and not stored', async () => {
    const r = await call(sim, 'POST', '/api/v1/namespaces/staging/secrets', {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sd' },
        data: { a: Buffer.from('x').toString('base64') },
        stringData: { b: 'hello' },
      },
    });
    assert.equal(r.status, 201);
    assert.deepEqual(r.json.data, { a: 'eA==', b: 'aGVsbG8=' });
    assert.equal(r.json.stringData, undefined);
    assert.equal(r.json.type, 'Opaque');
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/staging/secrets', {
        body: { metadata: { name: 'bad64' }, data: { a: 'not base64!' } },
      }),
      400,
      'BadRequest',
      /illegal base64 data/,
    );
  });

  test('update with a stale resourceVersion is a 409 Conflict; no-op updates keep the resourceVersion', async () => {
    const created = (
      await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', {
        body: { metadata: { name: 'upd' }, data: { a: '1' } },
      })
    ).json;
    const updated = await call(sim, 'PUT', '/api/v1/namespaces/staging/configmaps/upd', {
      body: { ...created, data: { a: '2' } },
    });
    assert.equal(updated.status, 200);
    assert.notEqual(updated.json.metadata.resourceVersion, created.metadata.resourceVersion);
    assertStatus(
      await call(sim, 'PUT', '/api/v1/namespaces/staging/configmaps/upd', { body: { ...created, data: { a: '3' } } }),
      409,
      'Conflict',
      'Operation cannot be fulfilled on configmaps "upd": the object has been modified; please apply your changes to the latest version and try again',
      { name: 'upd', kind: 'configmaps' },
    );
    const same = await call(sim, 'PUT', '/api/v1/namespaces/staging/configmaps/upd', { body: updated.json });
    assert.equal(same.json.metadata.resourceVersion, updated.json.metadata.resourceVersion);
  });

  test('merge, JSON and strategic merge patches', async () => {
    await call(sim, 'POST', '/api/v1/namespaces/staging/pods', {
      body: {
        metadata: { name: 'two' },
        spec: {
          containers: [
            { name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }] },
            { name: 'b', image: 'b:1' },
          ],
        },
      },
    });
    const merge = await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', {
      body: { metadata: { labels: { tier: 'x' } } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(merge.json.metadata.labels.tier, 'x');
    const json = await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', {
      body: [
        { op: 'replace', path: '/metadata/labels/tier', value: 'y' },
        { op: 'add', path: '/metadata/annotations', value: { k: 'v' } },
      ],
      contentType: 'application/json-patch+json',
    });
    assert.equal(json.json.metadata.labels.tier, 'y');
    assert.equal(json.json.metadata.annotations.k, 'v');
    const smp = await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', {
      body: { spec: { containers: [{ name: 'a', image: 'a:2', env: [{ name: 'Y', value: '2' }] }] } },
      contentType: 'application/strategic-merge-patch+json',
    });
    assert.deepEqual(
      smp.json.spec.containers.map((c: { name: string; image: string }) => `${c.name}=${c.image}`),
      ['a=a:2', 'b=b:1'],
    );
    assert.deepEqual(smp.json.spec.containers[0].env, [
      { name: 'X', value: '1' },
      { name: 'Y', value: '2' },
    ]);
    const del = await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', {
      body: { spec: { containers: [{ name: 'b', $patch: 'delete' }], '$setElementOrder/containers': [{ name: 'a' }] } },
      contentType: 'application/strategic-merge-patch+json',
    });
    assert.deepEqual(
      del.json.spec.containers.map((c: { name: string }) => c.name),
      ['a'],
    );
    assertStatus(
      await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', {
        body: [{ op: 'test', path: '/metadata/name', value: 'other' }],
        contentType: 'application/json-patch+json',
      }),
      422,
      'Invalid',
      /test failed/,
    );
    assertStatus(
      await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/ghost', {
        body: {},
        contentType: 'application/merge-patch+json',
      }),
      404,
      'NotFound',
      'pods "ghost" not found',
    );
    assert.equal(
      (await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/two', { body: {}, contentType: 'text/plain' })).status,
      415,
    );
  });

  test('server-side apply creates when missing and drops fields the manager stops applying', async () => {
    const path = '/api/v1/namespaces/staging/configmaps/ssa?fieldManager=tester&force=true';
    const first = await call(sim, 'PATCH', path, {
      body: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: "1"\n  b: "2"\n',
      contentType: 'application/apply-patch+yaml',
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.metadata.managedFields[0].manager, 'tester');
    assert.equal(first.json.metadata.managedFields[0].operation, 'Apply');
    const second = await call(sim, 'PATCH', path, {
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data: { a: '3' } }),
      contentType: 'application/apply-patch+yaml',
    });
    assert.equal(second.status, 200);
    assert.deepEqual(second.json.data, { a: '3' });
    assertStatus(
      await call(sim, 'PATCH', '/api/v1/namespaces/staging/configmaps/ssa', {
        body: 'apiVersion: v1\nkind: ConfigMap\n',
        contentType: 'application/apply-patch+yaml',
      }),
      422,
      'Invalid',
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
  });

  test('dryRun=All validates and answers without persisting', async () => {
    const rvBefore = (await call(sim, 'GET', '/api/v1/namespaces/staging/configmaps')).json.metadata.resourceVersion;
    const r = await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps?dryRun=All', {
      body: { metadata: { name: 'dry' }, data: {} },
    });
    assert.equal(r.status, 201);
    assert.ok(r.json.metadata.uid);
    assert.equal(r.json.metadata.resourceVersion, undefined);
    assert.equal(sim.getObject('configmaps', 'staging', 'dry'), undefined);
    const del = await call(sim, 'DELETE', '/api/v1/namespaces/staging/pods/web-0?dryRun=All');
    assert.equal(del.status, 200);
    assert.ok(sim.getObject('pods', 'staging', 'web-0'));
    assert.equal(
      (await call(sim, 'GET', '/api/v1/namespaces/staging/configmaps')).json.metadata.resourceVersion,
      rvBefore,
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps?dryRun=Some', {
        body: { metadata: { name: 'dry' } },
      }),
      400,
      'BadRequest',
      /dryRun: Unsupported value: "Some"/,
    );
  });

  test('delete returns the object for pods, a Success Status for configmaps; deletecollection returns the list', async () => {
    await call(sim, 'POST', '/api/v1/namespaces/staging/pods', {
      body: { metadata: { name: 'doomed' }, spec: { containers: [{ name: 'c', image: 'c:1' }] } },
    });
    const pod = await call(sim, 'DELETE', '/api/v1/namespaces/staging/pods/doomed', {
      body: { propagationPolicy: 'Background' },
    });
    assert.equal(pod.json?.kind, 'Pod', `${pod.status} ${pod.text}`);
    assert.ok(pod.json.metadata.deletionTimestamp);
    const cm = await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', {
      body: { metadata: { name: 'gone' } },
    });
    const status = await call(sim, 'DELETE', '/api/v1/namespaces/staging/configmaps/gone');
    assert.deepEqual(status.json, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'gone', kind: 'configmaps', uid: cm.json.metadata.uid },
    });
    for (const n of ['c1', 'c2', 'c3'])
      await call(sim, 'POST', '/api/v1/namespaces/agents/configmaps', {
        body: { metadata: { name: n, labels: { batch: n === 'c3' ? 'keep' : 'drop' } } },
      });
    const coll = await call(sim, 'DELETE', '/api/v1/namespaces/agents/configmaps?labelSelector=batch%3Ddrop');
    assert.equal(coll.json.kind, 'ConfigMapList');
    assert.deepEqual(
      coll.json.items.map((i: { metadata: { name: string } }) => i.metadata.name),
      ['c1', 'c2'],
    );
    assert.ok(sim.getObject('configmaps', 'agents', 'c3'));
    assert.equal(sim.getObject('configmaps', 'agents', 'c1'), undefined);
    assertStatus(
      await call(sim, 'DELETE', '/api/v1/namespaces'),
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  });
});

describe('lists, selectors and response formats', () => {
  test('limit/continue pages, label and field selectors', async () => {
    const page1 = await call(sim, 'GET', '/api/v1/pods?limit=2');
    assert.equal(page1.json.items.length, 2);
    assert.ok(page1.json.metadata.continue);
    assert.equal(typeof page1.json.metadata.remainingItemCount, 'number');
    assert.equal(page1.json.items[0].kind, undefined, 'list items carry no kind');
    const page2 = await call(
      sim,
      'GET',
      `/api/v1/pods?limit=100&continue=${encodeURIComponent(page1.json.metadata.continue)}`,
    );
    const all = await call(sim, 'GET', '/api/v1/pods');
    assert.equal(page1.json.items.length + page2.json.items.length, all.json.items.length);
    const names = async (q: string) =>
      (await call(sim, 'GET', `/api/v1/namespaces/staging/pods?${q}`)).json.items.map(
        (i: { metadata: { name: string } }) => i.metadata.name,
      );
    assert.deepEqual(await names('labelSelector=app%3Dweb'), ['web-0', 'web-1']);
    assert.deepEqual(await names('labelSelector=app%20in%20(web,api),app!%3Dapi'), ['web-0', 'web-1']);
    assert.ok(!(await names('labelSelector=!app')).includes('web-0'));
    assert.deepEqual(await names('fieldSelector=metadata.name%3Dweb-1'), ['web-1']);
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/staging/pods?fieldSelector=spec.bogus%3Dx'),
      400,
      'BadRequest',
      'Unable to find "/v1, Resource=pods" that match label selector "", field selector "spec.bogus=x": field label not supported: spec.bogus',
    );
  });

  test('Table output with PartialObjectMetadata rows, or full objects with includeObject=Object', async () => {
    const t = await call(sim, 'GET', '/api/v1/namespaces/staging/pods', { headers: { accept: tableAccept } });
    assert.equal(t.headers['content-type'], 'application/json;as=Table;v=v1;g=meta.k8s.io');
    assert.equal(t.json.kind, 'Table');
    assert.deepEqual(
      t.json.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates'],
    );
    const row = t.json.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'web-0');
    assert.deepEqual(row.cells.slice(0, 4), ['web-0', '1/1', 'Running', '0']);
    assert.equal(row.object.kind, 'PartialObjectMetadata');
    assert.equal(row.object.spec, undefined);
    const full = await call(sim, 'GET', '/api/v1/namespaces/prod/secrets?includeObject=Object', {
      headers: { accept: tableAccept },
    });
    assert.deepEqual(
      full.json.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Type', 'Data', 'Age'],
    );
    assert.equal(full.json.rows[0].object.kind, 'Secret');
    assert.ok(full.json.rows[0].object.data);
    const one = await call(sim, 'GET', '/apis/apps/v1/namespaces/staging/deployments/web', {
      headers: { accept: tableAccept },
    });
    assert.deepEqual(one.json.rows[0].cells.slice(0, 4), ['web', '2/2', 2, 2]);
  });

  test('gzip when the client accepts it and the body is over 128 KiB, like kube-apiserver', async () => {
    sim.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'big-for-gzip', namespace: 'default' },
      data: { blob: 'x'.repeat(140 * 1024) },
    });
    const big = await call(sim, 'GET', '/api/v1/namespaces/default/configmaps/big-for-gzip', {
      headers: { 'accept-encoding': 'gzip, deflate' },
    });
    assert.equal(big.headers['content-encoding'], 'gzip');
    assert.equal(big.raw[0], 0x1f);
    assert.equal(big.json.kind, 'ConfigMap');
    const list = await call(sim, 'GET', '/api/v1/namespaces/default/configmaps', {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(list.headers['content-encoding'], 'gzip');
    assert.equal(list.json.kind, 'ConfigMapList');
    const small = await call(sim, 'GET', '/api/v1/namespaces/staging/pods/web-0', {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(small.headers['content-encoding'], undefined, 'small bodies are not compressed');
    const plain = await call(sim, 'GET', '/api/v1/namespaces/default/configmaps/big-for-gzip');
    assert.equal(plain.headers['content-encoding'], undefined);
  });

  test('protobuf: JSON when JSON is also acceptable, else 406', async () => {
    const both = await call(sim, 'GET', '/api/v1/namespaces/staging/pods/web-0', {
      headers: { accept: 'application/vnd.kubernetes.protobuf,application/json' },
    });
    assert.equal(both.headers['content-type'], 'application/json');
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/staging/pods/web-0', {
        headers: { accept: 'application/vnd.kubernetes.protobuf' },
      }),
      406,
      'NotAcceptable',
      'only the following media types are accepted: application/json, application/yaml',
    );
  });

  test('canary secrets of the seed world', async () => {
    assert.ok(sim.canaries.length >= 5);
    const r = await call(sim, 'GET', '/api/v1/secrets');
    const decoded = r.json.items.flatMap((s: { data?: Record<string, string> }) =>
      Object.values(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString()),
    );
    for (const c of sim.canaries)
      assert.ok(
        decoded.some((v: string) => v.includes(c)),
        c,
      );
    assert.ok(!r.text.includes('CANARY-'), 'values are base64 on the wire');
  });
});

describe('watch', () => {
  test('ADDED, MODIFIED, DELETED from a resourceVersion; abort closes the stream', async () => {
    const rv = (await call(sim, 'GET', '/api/v1/namespaces/agents/configmaps')).json.metadata.resourceVersion;
    const before = sim.openWatches();
    const w = stream(sim, `/api/v1/namespaces/agents/configmaps?watch=1&resourceVersion=${rv}`);
    await until(() => w.status() === 200);
    assert.equal(sim.openWatches(), before + 1);
    sim.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1', namespace: 'agents' }, data: { a: '1' } });
    sim.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1', namespace: 'agents' }, data: { a: '2' } });
    sim.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other-ns', namespace: 'staging' } });
    sim.deleteObject('configmaps', 'agents', 'w1');
    await w.waitFor((l) => l.length >= 3);
    const events = w.lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.data?.a ?? ''}`),
      ['ADDED w1 1', 'MODIFIED w1 2', 'DELETED w1 2'],
    );
    assert.equal(events[0].object.kind, 'ConfigMap');
    w.abort();
    await until(() => sim.openWatches() === before);
  });

  test('without a resourceVersion: the current objects first; watch=true with a label selector', async () => {
    const w = stream(sim, '/api/v1/namespaces/staging/pods?watch=true&labelSelector=app%3Dweb');
    await w.waitFor((l) => l.length >= 2);
    assert.deepEqual(
      w.lines.map((l) => JSON.parse(l).object.metadata.name),
      ['web-0', 'web-1'],
    );
    // Leaving the selector is a DELETED event for this watch.
    await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/web-1', {
      body: { metadata: { labels: { app: 'moved' } } },
      contentType: 'application/merge-patch+json',
    });
    await w.waitFor((l) => l.length >= 3);
    assert.equal(JSON.parse(w.lines[2]!).type, 'DELETED');
    await call(sim, 'PATCH', '/api/v1/namespaces/staging/pods/web-1', {
      body: { metadata: { labels: { app: 'web' } } },
      contentType: 'application/merge-patch+json',
    });
    await w.waitFor((l) => l.length >= 4);
    assert.equal(JSON.parse(w.lines[3]!).type, 'ADDED');
    w.abort();
  });

  test('Table watch: column definitions on the first event only; timeoutSeconds ends the stream', async () => {
    const w = stream(sim, '/api/v1/namespaces/staging/pods?watch=true&timeoutSeconds=1', { accept: tableAccept });
    await w.waitFor((l) => l.length >= 2);
    const [first, second] = w.lines.map((l) => JSON.parse(l));
    assert.equal(first.object.kind, 'Table');
    assert.ok(Array.isArray(first.object.columnDefinitions));
    assert.equal(second.object.columnDefinitions, null);
    assert.equal(second.object.rows.length, 1);
    await until(() => w.ended(), 3000);
  });

  test('sendInitialEvents ends the initial list with a bookmark', async () => {
    const w = stream(
      sim,
      '/api/v1/namespaces/prod/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true',
    );
    await w.waitFor((l) => l.some((x) => JSON.parse(x).type === 'BOOKMARK'));
    const bookmark = w.lines.map((l) => JSON.parse(l)).find((e) => e.type === 'BOOKMARK');
    assert.equal(bookmark.object.metadata.annotations['k8s.io/initial-events-end'], 'true');
    w.abort();
  });
});

describe('logs and request records', () => {
  test('log lines as text/plain, tailLines, container errors', async () => {
    const r = await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log');
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.text, 'line one\nline two\nline three\n');
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log?tailLines=1')).text, 'line three\n');
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log?container=nope'),
      400,
      'BadRequest',
      'container nope is not valid for pod api-0',
    );
    assertStatus(
      await call(sim, 'GET', '/api/v1/namespaces/prod/pods/ghost/log'),
      404,
      'NotFound',
      'pods "ghost" not found',
    );
    assertStatus(
      await call(sim, 'POST', '/api/v1/namespaces/prod/pods/api-0/exec?command=sh'),
      400,
      'BadRequest',
      'Upgrade request required',
    );
  });

  test('follow streams new lines until the client goes away', async () => {
    const before = sim.openWatches();
    const w = stream(sim, '/api/v1/namespaces/prod/pods/api-0/log?follow=true');
    await w.waitFor((l) => l.some((x) => x.startsWith('heartbeat 2')));
    assert.equal(sim.openWatches(), before + 1);
    w.abort();
    await until(() => sim.openWatches() === before);
  });

  test('every request is recorded with its raw path, identity and headers', async () => {
    const path = '/api/v1/namespaces/staging/configmaps?labelSelector=a%3Db&limit=1&zz=1&aa=2';
    await call(sim, 'GET', path, { headers: { 'x-probe': 'p1' } });
    const rec = sim.requests.at(-1)!;
    assert.equal(rec.rawPath, path);
    assert.equal(rec.method, 'GET');
    assert.equal(rec.identity, 'admin');
    assert.equal(rec.token, sim.adminToken);
    assert.equal(rec.headers['x-probe'], 'p1');
    assert.equal(rec.status, 200);
  });

  test('connections are counted and closed', async () => {
    const agent = new Agent({ keepAlive: true, ca: sim.ca });
    await until(() => sim.openConnections() === 0);
    const base = 0;
    await new Promise<void>((resolve, reject) => {
      request(`${sim.url}/version`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(sim.openConnections(), base + 1);
    agent.destroy();
    await until(() => sim.openConnections() === base);
  });
});
