// `kubectl auth can-i` answered from the gateway's policy (issue #16 item 3): the review bodies kubectl
// sends (JSON and protobuf) and the pure mapping from a decision to a review's answer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readReviewBody } from '../../packages/gateway/src/kube/review-body.js';
import type { RequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import type { Decision } from '../../packages/gateway/src/policy/decision.js';
import {
  accessReviewStatus,
  MAX_RULE_EVALUATIONS,
  narrowRulesReview,
  reviewRequestInfo,
} from '../../packages/gateway/src/policy/self-review.js';

// Bodies captured from kubectl v1.32 (`kubectl auth can-i create pods/exec -n team-a` — TYPE/NAME, so
// `exec` is the pod's name; a subresource is `--subresource` —, `kubectl auth
// can-i get /version`, `kubectl auth can-i --list -n x`) against a recording HTTP server.
const PROTOBUF_EXEC =
  '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441636365737352657669657712420a100a0012001a0022002a0032003800420012240a220a067465616d2d6112066372656174651a0022002a04706f647332003a04657865631a08080012001a0020001a002200';
const PROTOBUF_SUBRESOURCE = // `kubectl auth can-i create pods --subresource=exec -n team-a`
  '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441636365737352657669657712420a100a0012001a0022002a0032003800420012240a220a067465616d2d6112066372656174651a0022002a04706f64733204657865633a001a08080012001a0020001a002200';
const PROTOBUF_VERSION =
  '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374416363657373526576696577122f0a100a0012001a0022002a003200380042001211120f0a082f76657273696f6e12036765741a08080012001a0020001a002200';
const PROTOBUF_RULES =
  '6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a65637452756c6573526576696577121d0a100a0012001a0022002a0032003800420012030a01781a04180022001a002200';

const allow: Decision = { effect: 'allow', reason: 'rbac-allowed', serviceAccount: 'sa', message: 'allowed by RBAC' };

describe('review bodies', () => {
  it('reads the protobuf SelfSubjectAccessReview kubectl sends', () => {
    const review = readReviewBody(Buffer.from(PROTOBUF_EXEC, 'hex'));
    assert.equal(review.kind, 'SelfSubjectAccessReview');
    assert.equal(review.apiVersion, 'authorization.k8s.io/v1');
    assert.deepEqual(review.access, {
      resourceAttributes: { namespace: 'team-a', verb: 'create', resource: 'pods', name: 'exec' },
    });
  });

  it('reads a subresource', () => {
    assert.deepEqual(readReviewBody(Buffer.from(PROTOBUF_SUBRESOURCE, 'hex')).access, {
      resourceAttributes: { namespace: 'team-a', verb: 'create', resource: 'pods', subresource: 'exec' },
    });
  });

  it('reads non-resource attributes and a rules review namespace', () => {
    assert.deepEqual(readReviewBody(Buffer.from(PROTOBUF_VERSION, 'hex')).access, {
      nonResourceAttributes: { path: '/version', verb: 'get' },
    });
    const rules = readReviewBody(Buffer.from(PROTOBUF_RULES, 'hex'));
    assert.equal(rules.kind, 'SelfSubjectRulesReview');
    assert.equal(rules.namespace, 'x');
  });

  it('reads JSON reviews', () => {
    const body = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: 'delete', resource: 'namespaces', name: 'prod' } },
    };
    assert.deepEqual(readReviewBody(Buffer.from(JSON.stringify(body))).access, body.spec);
  });

  it('refuses bodies it cannot read, with a 400 saying why', () => {
    for (const body of [
      Buffer.from('not json'),
      Buffer.from('[1]'),
      Buffer.from('6b387300ff', 'hex'),
      Buffer.from('6b3873000a7f', 'hex'),
    ]) {
      assert.throws(
        () => readReviewBody(body),
        (error: unknown) =>
          (error as { code?: string }).code === 'ERR_BAD_REQUEST' && /review could not be read/.test(String(error)),
      );
    }
  });
});

describe('reviewRequestInfo', () => {
  it('builds the request an access review asks about', () => {
    const info = reviewRequestInfo({
      resourceAttributes: { namespace: 'team-a', verb: 'create', resource: 'pods', subresource: 'exec', name: 'web' },
    });
    assert.deepEqual(info, {
      isResourceRequest: true,
      path: '/api/v1/namespaces/team-a/pods/web/exec',
      verb: 'create',
      apiPrefix: 'api',
      apiGroup: '',
      apiVersion: '',
      namespace: 'team-a',
      resource: 'pods',
      subresource: 'exec',
      name: 'web',
      parts: ['pods', 'web', 'exec'],
    });
    const apps = reviewRequestInfo({
      resourceAttributes: { verb: 'list', group: 'apps', version: 'v1', resource: 'deployments' },
    });
    assert.equal(apps?.path, '/apis/apps/v1/deployments');
    assert.equal(apps?.apiGroup, 'apps');
    assert.equal(
      reviewRequestInfo({ nonResourceAttributes: { path: '/version', verb: 'get' } })?.isResourceRequest,
      false,
    );
  });

  it('is null when the review names neither kind of attributes', () => {
    assert.equal(reviewRequestInfo({}), null);
  });
});

describe('accessReviewStatus', () => {
  it('allows only what runs without a human', () => {
    assert.deepEqual(accessReviewStatus(allow), { allowed: true, reason: 'hoopgate: allowed by RBAC' });
    const held: Decision = {
      effect: 'approve',
      reason: 'escalation',
      serviceAccount: 'sa',
      message: 'needs approval; approvers: alice',
    };
    assert.deepEqual(accessReviewStatus(held), {
      allowed: false,
      reason: 'hoopgate: needs approval; approvers: alice',
    });
  });

  it('marks deny rules and safe defaults as explicit denials, RBAC silence not', () => {
    assert.equal(accessReviewStatus({ effect: 'deny', reason: 'deny-rule', rule: 'r', message: 'm' }).denied, true);
    assert.equal(accessReviewStatus({ effect: 'deny', reason: 'safe-default', message: 'm' }).denied, true);
    assert.equal(accessReviewStatus({ effect: 'deny', reason: 'rbac-denied', message: 'm' }).denied, undefined);
  });
});

describe('narrowRulesReview', () => {
  const decide = (info: RequestInfo): Decision =>
    info.verb === 'delete'
      ? { effect: 'deny', reason: 'deny-rule', message: 'no deletes' }
      : info.subresource === 'exec'
        ? { effect: 'approve', reason: 'approval-required', serviceAccount: 'sa', message: 'held' }
        : allow;

  it('keeps only verbs that pass without a human', () => {
    const narrowed = narrowRulesReview(
      {
        resourceRules: [
          { verbs: ['get', 'list', 'delete'], apiGroups: [''], resources: ['pods'] },
          { verbs: ['create'], apiGroups: [''], resources: ['pods/exec'] },
          { verbs: ['delete'], apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['web'] },
        ],
        nonResourceRules: [{ verbs: ['get'], nonResourceURLs: ['/version'] }],
        incomplete: false,
      },
      'team-a',
      decide,
    );
    assert.deepEqual(narrowed, {
      resourceRules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'] }],
      nonResourceRules: [{ verbs: ['get'], nonResourceURLs: ['/version'] }],
      incomplete: false,
    });
  });

  it('keeps wildcard rules it cannot check and says so', () => {
    const narrowed = narrowRulesReview(
      {
        resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
        nonResourceRules: [{ verbs: ['get'], nonResourceURLs: ['/api/*'] }],
        incomplete: false,
      },
      'team-a',
      decide,
    );
    assert.equal(narrowed.incomplete, true);
    assert.equal(narrowed.resourceRules.length, 1);
    assert.equal(narrowed.nonResourceRules.length, 1);
    assert.match(narrowed.evaluationError ?? '', /2 rule\(s\) with wildcards .*kubectl auth can-i VERB RESOURCE/);
  });

  it('stops evaluating beyond its budget instead of growing with a hostile rule set', () => {
    let calls = 0;
    const counting = (info: RequestInfo): Decision => {
      calls += 1;
      return decide(info);
    };
    const resources = Array.from({ length: 100 }, (_, i) => `r${i}`);
    const verbs = Array.from({ length: 100 }, (_, i) => `v${i}`);
    const narrowed = narrowRulesReview(
      { resourceRules: [{ verbs, apiGroups: [''], resources }], nonResourceRules: [], incomplete: false },
      'ns',
      counting,
    );
    assert.equal(calls, 0);
    assert.ok(100 * 100 > MAX_RULE_EVALUATIONS);
    assert.equal(narrowed.incomplete, true);
  });
});
