import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createAccessReviewer, reviewSpec, serviceAccountUser } from '../../packages/gateway/src/kube/access-review.js';
import {
  createClusterClient,
  type ClusterClient,
  type SubjectAccessReviewSpec,
} from '../../packages/gateway/src/kube/cluster-client.js';
import { parseRequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import { authorizationAttributes, type AuthorizationAttributes } from '../../packages/gateway/src/policy/index.js';
import { startSimCluster } from '../../packages/sim/src/index.js';

const listPods = authorizationAttributes(parseRequestInfo('GET', '/api/v1/namespaces/staging/pods'));
const deletePod = authorizationAttributes(parseRequestInfo('DELETE', '/api/v1/namespaces/staging/pods/web-0'));

function fakeClient(answer: (spec: SubjectAccessReviewSpec) => boolean) {
  const calls: SubjectAccessReviewSpec[] = [];
  let gate: Promise<void> | undefined;
  let failNext: Error | undefined;
  const client: Pick<ClusterClient, 'subjectAccessReview' | 'cluster'> = {
    cluster: 'prod',
    async subjectAccessReview(spec) {
      calls.push(spec);
      if (gate !== undefined) await gate;
      if (failNext !== undefined) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      const allowed = answer(spec);
      return allowed
        ? {
            allowed,
            denied: false,
            reason: 'RBAC: allowed by RoleBinding "ci" of Role "ci" to ServiceAccount "ci/agents"',
          }
        : { allowed, denied: false, evaluationError: 'role.rbac.authorization.k8s.io "gone" not found' };
    },
  };
  return {
    client,
    calls,
    failOnce(error: Error) {
      failNext = error;
    },
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

test('the review is for the ServiceAccount user with its groups', () => {
  assert.deepEqual(serviceAccountUser('agents/ci'), {
    user: 'system:serviceaccount:agents:ci',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:agents', 'system:authenticated'],
  });
  assert.deepEqual(
    reviewSpec(
      'agents/ci',
      authorizationAttributes(parseRequestInfo('GET', '/api/v1/namespaces/default/pods/web-0/exec?command=sh')),
    ).resourceAttributes,
    {
      verb: 'create',
      group: '',
      version: 'v1',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'default',
      name: 'web-0',
    },
  );
  assert.deepEqual(
    reviewSpec('agents/ci', authorizationAttributes(parseRequestInfo('GET', '/metrics'))).nonResourceAttributes,
    { verb: 'get', path: '/metrics' },
  );
  assert.throws(() => serviceAccountUser('agents'), /must be "namespace\/name"/);
});

test('answers are cached for ttlMs per account + attributes', async () => {
  let now = 0;
  const fake = fakeClient((spec) => spec.resourceAttributes?.verb === 'list');
  const reviewer = createAccessReviewer({ client: fake.client, ttlMs: 5000, clock: () => now });
  assert.deepEqual(await reviewer.review('agents/ci', listPods), {
    allowed: true,
    reason: 'RBAC: allowed by RoleBinding "ci" of Role "ci" to ServiceAccount "ci/agents"',
  });
  assert.deepEqual(await reviewer.review('agents/ci', deletePod), {
    allowed: false,
    reason: 'role.rbac.authorization.k8s.io "gone" not found',
  });
  assert.equal(fake.calls.length, 2);
  await reviewer.review('agents/ci', listPods);
  await reviewer.review('agents/ci', deletePod);
  assert.equal(fake.calls.length, 2);
  await reviewer.review('agents/other', listPods);
  assert.equal(fake.calls.length, 3);
  now = 4999;
  await reviewer.review('agents/ci', listPods);
  assert.equal(fake.calls.length, 3);
  now = 5000;
  await reviewer.review('agents/ci', listPods);
  assert.equal(fake.calls.length, 4);
});

test('one review in flight per key (single flight)', async () => {
  const fake = fakeClient(() => true);
  const reviewer = createAccessReviewer({ client: fake.client });
  const release = fake.hold();
  const pending = Array.from({ length: 20 }, () => reviewer.review('agents/ci', listPods));
  const other = reviewer.review('agents/ci', deletePod);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fake.calls.length, 2);
  release();
  const answers = await Promise.all([...pending, other]);
  assert.ok(answers.every((a) => a.allowed));
  assert.equal(fake.calls.length, 2);
});

test('errors are not cached and stay HoopErrors (the caller fails closed)', async () => {
  const fake = fakeClient(() => true);
  const reviewer = createAccessReviewer({ client: fake.client });
  fake.failOnce(
    new HoopError(
      'ERR_UPSTREAM_TOKEN',
      'cluster "prod": the gateway\'s credential may not create subjectaccessreviews: grant it with deploy/rbac',
    ),
  );
  await assert.rejects(
    reviewer.review('agents/ci', listPods),
    (error: unknown) => error instanceof HoopError && error.code === 'ERR_UPSTREAM_TOKEN',
  );
  fake.failOnce(new Error('socket hang up'));
  await assert.rejects(
    reviewer.review('agents/ci', listPods),
    (error: unknown) =>
      error instanceof HoopError &&
      error.code === 'ERR_UPSTREAM_UNREACHABLE' &&
      error.message ===
        'cluster "prod": the subjectaccessreview for system:serviceaccount:agents:ci failed: socket hang up',
  );
  assert.deepEqual(await reviewer.review('agents/ci', listPods), {
    allowed: true,
    reason: 'RBAC: allowed by RoleBinding "ci" of Role "ci" to ServiceAccount "ci/agents"',
  });
  assert.equal(fake.calls.length, 3);
});

test('the cache is bounded: the oldest entry goes first', async () => {
  const fake = fakeClient(() => true);
  const reviewer = createAccessReviewer({ client: fake.client, maxEntries: 3, clock: () => 0 });
  const attrs = (name: string): AuthorizationAttributes =>
    authorizationAttributes(parseRequestInfo('GET', `/api/v1/namespaces/a/pods/${name}`));
  for (const name of ['p1', 'p2', 'p3', 'p4']) await reviewer.review('agents/ci', attrs(name));
  assert.equal(fake.calls.length, 4);
  await reviewer.review('agents/ci', attrs('p4'));
  await reviewer.review('agents/ci', attrs('p2'));
  assert.equal(fake.calls.length, 4);
  await reviewer.review('agents/ci', attrs('p1')); // evicted
  assert.equal(fake.calls.length, 5);
});

test('against the simulated API server: SubjectAccessReview through client-node', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-sar-'));
  try {
    sim.createServiceAccount('agents', 'ci');
    sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'staging' } });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'ci', namespace: 'staging' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
    });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'ci', namespace: 'staging' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'ci' },
      subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: 'agents' }],
    });
    // A grant to the group every ServiceAccount of a namespace is in: the review must carry the groups.
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'agents-read-configmaps' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'agents-read-configmaps' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'agents-read-configmaps' },
      subjects: [{ kind: 'Group', name: 'system:serviceaccounts:agents', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    const caFile = join(dir, 'ca.crt');
    const tokenFile = join(dir, 'token');
    writeFileSync(caFile, sim.ca);
    writeFileSync(tokenFile, sim.adminToken);
    const cluster: ClusterConfig = {
      name: 'prod',
      server: sim.url,
      caFile,
      insecureSkipTLSVerify: false,
      credentials: { tokenFile },
      tokens: 'tokenRequest',
      tokenTTLMs: 600_000,
      staticTokens: {},
    };
    const reviewer = createAccessReviewer({ client: await createClusterClient(cluster) });

    assert.equal((await reviewer.review('agents/ci', listPods)).allowed, true);
    assert.equal((await reviewer.review('agents/ci', deletePod)).allowed, false);
    assert.equal(
      (
        await reviewer.review(
          'agents/ci',
          authorizationAttributes(parseRequestInfo('GET', '/api/v1/namespaces/prod/pods')),
        )
      ).allowed,
      false,
    );
    assert.equal(
      (
        await reviewer.review(
          'agents/ci',
          authorizationAttributes(parseRequestInfo('GET', '/api/v1/namespaces/prod/configmaps/x')),
        )
      ).allowed,
      true,
    );
    assert.equal(
      (await reviewer.review('agents/ci', authorizationAttributes(parseRequestInfo('GET', '/metrics')))).allowed,
      false,
    );
    await reviewer.review('agents/ci', listPods); // cached
    const reviews = sim.requests.filter((r) => r.rawPath === '/apis/authorization.k8s.io/v1/subjectaccessreviews');
    assert.equal(reviews.length, 5);
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('static tokens without a gateway credential: each account reviews itself (SelfSubjectAccessReview)', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-ssar-'));
  try {
    sim.createServiceAccount('agents', 'ci');
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'pod-lister' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
    });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'ci-pod-lister' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-lister' },
      subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: 'agents' }],
    });
    const caFile = join(dir, 'ca.crt');
    const tokenFile = join(dir, 'ci.token');
    writeFileSync(caFile, sim.ca);
    writeFileSync(tokenFile, sim.issueToken('agents', 'ci'));
    const client = await createClusterClient({
      name: 'edge',
      server: sim.url,
      caFile,
      insecureSkipTLSVerify: false,
      tokens: 'static',
      tokenTTLMs: 600_000,
      staticTokens: { 'agents/ci': { tokenFile } },
    });
    const reviewer = createAccessReviewer({ client });
    assert.equal((await reviewer.review('agents/ci', listPods)).allowed, true);
    assert.equal((await reviewer.review('agents/ci', deletePod)).allowed, false);
    const self = sim.requests.filter((r) => r.rawPath === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews');
    assert.ok(self.length >= 2);
    assert.ok(self.every((r) => r.identity === 'system:serviceaccount:agents:ci'));
    await assert.rejects(
      reviewer.review('agents/other', listPods),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        /has none for serviceaccount agents\/other/.test(error.message),
    );
    await assert.rejects(
      client.requestServiceAccountToken('agents', 'ci', 600),
      (error: unknown) => error instanceof HoopError && /cannot mint a token for agents\/ci/.test(error.message),
    );
    writeFileSync(tokenFile, 'revoked');
    await assert.rejects(
      client.subjectAccessReview(reviewSpec('agents/ci', deletePod)),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        /answered 401 .*replace the token file of staticTokens\["agents\/ci"\]/.test(error.message),
    );
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
