import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IdentityConfig, SafeDefaults } from '../../packages/gateway/src/config/types.js';
import { parseRequestInfo, type RequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import {
  evaluate,
  needsRbac,
  type Decision,
  type EvaluateInput,
  type Helpers,
} from '../../packages/gateway/src/policy/index.js';

const allSafeDefaults: SafeDefaults = {
  nodesProxy: true,
  impersonate: true,
  escalateBind: true,
  serviceAccountTokens: true,
  gatewayNamespace: true,
};

const ciDeployer: IdentityConfig = {
  name: 'ci-deployer',
  match: { groups: ['ci-deployers'] },
  serviceAccount: 'agents/ci-deployer',
  deny: [
    { verbs: ['list', 'watch'], resources: ['secrets'] },
    { resources: ['pods/exec'], namespaces: ['prod'] },
  ],
  approval: {
    serviceAccount: 'agents/ci-deployer-elevated',
    require: [
      { verbs: ['delete', 'deletecollection'], resources: ['namespaces'] },
      { verbs: ['create'], resources: ['pods/attach', 'pods/portforward'] },
      // also matched by deny[0]: deny must win
      { verbs: ['list'], resources: ['secrets'] },
      { verbs: ['create'], resources: ['serviceaccounts/token'] },
    ],
    escalate: true,
  },
  safeDefaults: allSafeDefaults,
};

const reader: IdentityConfig = {
  name: 'reader',
  match: { groups: ['readers'] },
  serviceAccount: 'agents/reader',
  clusters: ['prod'],
  deny: [],
  approval: { require: [], escalate: false },
  // explicit overrides of two safe defaults
  safeDefaults: {
    ...allSafeDefaults,
    nodesProxy: false,
    serviceAccountTokens: false,
    impersonate: false,
    escalateBind: false,
    gatewayNamespace: false,
  },
};

const identities = [ciDeployer, reader];
const helpers: Helpers = { approvers: ['Slack user U0123', 'group platform-oncall'], channel: '#ops' };

type Rbac = EvaluateInput['rbac'];
const ALLOWED: Rbac = { allowed: true };
const DENIED: Rbac = { allowed: false, reason: 'no RBAC policy matched' };

interface Case {
  name: string;
  identity: 0 | 1;
  request: [string, string] | RequestInfo;
  rbac: Rbac;
  needsRbac: boolean;
  expect: {
    effect: Decision['effect'];
    reason: Decision['reason'];
    rule?: string;
    serviceAccount?: string;
    message?: RegExp;
    /** The operator's detail (config paths), never in the message. */
    detail?: RegExp;
  };
  cluster?: string;
}

function manual(verb: string, resource: string, extra: Partial<RequestInfo> = {}): RequestInfo {
  return {
    isResourceRequest: true,
    path: `/apis/rbac.authorization.k8s.io/v1/${resource}`,
    verb,
    apiPrefix: 'apis',
    apiGroup: 'rbac.authorization.k8s.io',
    apiVersion: 'v1',
    namespace: '',
    resource,
    subresource: '',
    name: 'admin',
    parts: [resource, 'admin'],
    ...extra,
  };
}

const cases: Case[] = [
  // deny rules
  {
    name: 'list secrets is denied',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/secrets'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'deny-rule',
      rule: 'identities[0].deny[0]',
      message:
        /^identity "ci-deployer" may not list secrets -n default: a deny rule of the gateway covers .* on secrets, whatever RBAC allows\. A call outside that .* may pass\. Who may help: ask an approver \(Slack user U0123, group platform-oncall\) in Slack channel #ops\.$/,
      detail: /^denied by identities\[0\]\.deny\[0\]; narrow or remove that rule/,
    },
  },
  {
    name: 'watch secrets is denied',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/a/secrets?watch=1'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]' },
  },
  {
    name: 'list one secret by fieldSelector is still list',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Ddb'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]', message: /list secrets\/db -n a/ },
  },
  {
    name: 'get one secret goes to RBAC',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/a/secrets/db'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: {
      effect: 'allow',
      reason: 'rbac-allowed',
      rule: 'identities[0].serviceAccount',
      serviceAccount: 'agents/ci-deployer',
      message: /get secrets\/db -n a is allowed by the RBAC of serviceaccount agents\/ci-deployer/,
    },
  },
  {
    name: 'exec in prod (POST) is denied',
    identity: 0,
    request: ['POST', '/api/v1/namespaces/prod/pods/web-0/exec?command=sh'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'deny-rule',
      rule: 'identities[0].deny[1]',
      message: /may not create pods\/web-0\/exec -n prod/,
    },
  },
  {
    name: 'exec in prod (websocket GET) is denied too',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/prod/pods/web-0/exec?command=sh'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[1]' },
  },
  {
    name: 'exec elsewhere goes to RBAC',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/pods/web-0/exec?command=sh'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed', serviceAccount: 'agents/ci-deployer' },
  },
  // approval.require
  {
    name: 'delete namespace requires approval',
    identity: 0,
    request: ['DELETE', '/api/v1/namespaces/prod'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'approve',
      reason: 'approval-required',
      rule: 'identities[0].approval.require[0]',
      serviceAccount: 'agents/ci-deployer-elevated',
      message:
        /^identity "ci-deployer": delete namespaces\/prod needs approval \(the gateway asks it for delete, deletecollection on namespaces\)\. Who may help: ask an approver \(Slack user U0123, group platform-oncall\) in Slack channel #ops\.$/,
      detail:
        /^held by identities\[0\]\.approval\.require\[0\]; once approved it runs as serviceaccount agents\/ci-deployer-elevated$/,
    },
  },
  {
    name: 'delete namespace with dryRun requires approval just the same',
    identity: 0,
    request: ['DELETE', '/api/v1/namespaces/prod?dryRun=All'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'approve', reason: 'approval-required', rule: 'identities[0].approval.require[0]' },
  },
  {
    name: 'deletecollection of namespaces requires approval',
    identity: 0,
    request: ['DELETE', '/api/v1/namespaces'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'approve', reason: 'approval-required', rule: 'identities[0].approval.require[0]' },
  },
  {
    name: 'attach by GET is create: requires approval',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/pods/web-0/attach'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'approve', reason: 'approval-required', rule: 'identities[0].approval.require[1]' },
  },
  {
    name: 'portforward by GET is create: requires approval',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/pods/web-0/portforward?ports=80'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'approve', reason: 'approval-required', rule: 'identities[0].approval.require[1]' },
  },
  // RBAC, escalate, 403
  {
    name: 'rbac denied with escalate: held for approval',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/pods'],
    rbac: DENIED,
    needsRbac: true,
    expect: {
      effect: 'approve',
      reason: 'escalation',
      rule: 'identities[0].approval.escalate',
      serviceAccount: 'agents/ci-deployer-elevated',
      message:
        /list pods -n default is more than this identity may do alone, so it needs approval\. Who may help: ask an approver/,
      detail:
        /serviceaccount agents\/ci-deployer \(identities\[0\]\.serviceAccount\) is not permitted by RBAC \(no RBAC policy matched\); held by identities\[0\]\.approval\.escalate; once approved it runs as serviceaccount agents\/ci-deployer-elevated/,
    },
  },
  {
    name: 'rbac denied without escalate: 403',
    identity: 1,
    request: ['DELETE', '/apis/apps/v1/namespaces/default/deployments/web'],
    rbac: DENIED,
    needsRbac: true,
    expect: {
      effect: 'deny',
      reason: 'rbac-denied',
      rule: 'identities[1].serviceAccount',
      message:
        /^identity "reader" may not delete deployments\.apps\/web -n default: its serviceaccount agents\/reader has no RBAC permission for it\. `kubectl auth can-i --list -n default` shows what may pass\. Who may help: /,
      detail:
        /^serviceaccount agents\/reader \(identities\[1\]\.serviceAccount\) is not permitted by RBAC \(no RBAC policy matched\); grant it to that serviceaccount with a Role\/RoleBinding, or set identities\[1\]\.approval\.escalate/,
    },
  },
  {
    name: 'rbac allowed without escalate',
    identity: 1,
    request: ['GET', '/api/v1/namespaces/default/pods'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed', serviceAccount: 'agents/reader' },
  },
  {
    name: 'rbac not asked counts as not allowed (escalate)',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/default/pods'],
    rbac: 'not-asked',
    needsRbac: true,
    expect: {
      effect: 'approve',
      reason: 'escalation',
      detail: /RBAC of serviceaccount agents\/ci-deployer \(identities\[0\]\.serviceAccount\) was not asked/,
    },
  },
  {
    name: 'rbac not asked counts as not allowed (no escalate)',
    identity: 1,
    request: ['GET', '/api/v1/namespaces/default/pods'],
    rbac: 'not-asked',
    needsRbac: true,
    expect: { effect: 'deny', reason: 'rbac-denied' },
  },
  // safe defaults and their explicit overrides
  {
    name: 'nodes/proxy is refused by default',
    identity: 0,
    request: ['GET', '/api/v1/nodes/n1/proxy/pods'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'safe-default',
      rule: 'safeDefaults.nodesProxy',
      message:
        /may not create nodes\/n1\/proxy: refused by default, because nodes\/proxy reaches every kubelet API .*\. Instead, pods\/log or pods\/exec on a named pod may pass\. Who may help/,
      detail:
        /^safeDefaults\.nodesProxy; to allow it for this identity, add nodesProxy to identities\[0\]\.allowUnsafe$/,
    },
  },
  {
    name: 'legacy /proxy/nodes is refused by default',
    identity: 0,
    request: ['GET', '/api/v1/proxy/nodes/n1/pods'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.nodesProxy' },
  },
  {
    name: 'nodes/proxy switched off goes to RBAC',
    identity: 1,
    request: ['GET', '/api/v1/nodes/n1/proxy/pods'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'serviceaccounts/token create is refused by default (before require)',
    identity: 0,
    request: ['POST', '/api/v1/namespaces/agents/serviceaccounts/ci/token'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.serviceAccountTokens' },
  },
  {
    name: 'serviceaccounts/token switched off goes to RBAC',
    identity: 1,
    request: ['POST', '/api/v1/namespaces/agents/serviceaccounts/ci/token'],
    rbac: DENIED,
    needsRbac: true,
    expect: { effect: 'deny', reason: 'rbac-denied' },
  },
  {
    name: 'reading a serviceaccount is no token mint',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/agents/serviceaccounts/ci'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'impersonate verb is refused by default',
    identity: 0,
    request: manual('impersonate', 'serviceaccounts', { apiGroup: '' }),
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.impersonate' },
  },
  {
    name: 'escalate verb is refused by default',
    identity: 0,
    request: manual('escalate', 'clusterroles'),
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.escalateBind' },
  },
  {
    name: 'bind verb is refused by default',
    identity: 0,
    request: manual('bind', 'clusterroles'),
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.escalateBind' },
  },
  {
    name: 'impersonate switched off goes to RBAC',
    identity: 1,
    request: manual('impersonate', 'users'),
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'bind switched off goes to RBAC',
    identity: 1,
    request: manual('bind', 'clusterroles'),
    rbac: DENIED,
    needsRbac: true,
    expect: { effect: 'deny', reason: 'rbac-denied' },
  },
  {
    name: 'gateway namespace: any request into it',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/hoopgate/configmaps'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'safe-default',
      rule: 'safeDefaults.gatewayNamespace',
      message: /may not list configmaps -n hoopgate/,
    },
  },
  {
    name: 'gateway namespace: deleting it is refused, not held',
    identity: 0,
    request: ['DELETE', '/api/v1/namespaces/hoopgate'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.gatewayNamespace' },
  },
  {
    name: 'gateway namespace: server-side-apply PATCH of it',
    identity: 0,
    request: ['PATCH', '/api/v1/namespaces/hoopgate'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.gatewayNamespace' },
  },
  {
    name: 'gateway namespace switched off goes to RBAC',
    identity: 1,
    request: ['GET', '/api/v1/namespaces/hoopgate/configmaps'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'gateway namespace: cluster-wide list of configmaps reads it too',
    identity: 0,
    request: ['GET', '/api/v1/configmaps'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'safe-default',
      rule: 'safeDefaults.gatewayNamespace',
      message:
        /may not list configmaps: refused by default, because a list or watch across all namespaces .*\. Instead, the same list per namespace \(-n NAMESPACE\) may pass\./,
    },
  },
  {
    name: 'gateway namespace: cluster-wide list of secrets',
    identity: 0,
    request: ['GET', '/api/v1/secrets?limit=500'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.gatewayNamespace' },
  },
  {
    name: 'gateway namespace: cluster-wide watch of events',
    identity: 0,
    request: ['GET', '/api/v1/events?watch=true'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: {
      effect: 'deny',
      reason: 'safe-default',
      rule: 'safeDefaults.gatewayNamespace',
      message: /may not watch events/,
    },
  },
  {
    name: 'gateway namespace: cluster-wide list of a custom resource (scope unknown: refused)',
    identity: 0,
    request: ['GET', '/apis/example.com/v1/widgets'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', rule: 'safeDefaults.gatewayNamespace' },
  },
  {
    name: 'gateway namespace: listing cluster-scoped nodes is fine',
    identity: 0,
    request: ['GET', '/api/v1/nodes'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'gateway namespace: listing clusterroles is fine',
    identity: 0,
    request: ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'gateway namespace: listing in another namespace is fine',
    identity: 0,
    request: ['GET', '/api/v1/namespaces/staging/configmaps'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'gateway namespace switched off: cluster-wide list goes to RBAC',
    identity: 1,
    request: ['GET', '/api/v1/configmaps'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  // non-resource
  {
    name: 'discovery /api',
    identity: 0,
    request: ['GET', '/api'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: {
      effect: 'allow',
      reason: 'non-resource',
      serviceAccount: 'agents/ci-deployer',
      message: /get \/api is API discovery/,
    },
  },
  {
    name: 'discovery /apis/apps/v1',
    identity: 1,
    request: ['GET', '/apis/apps/v1'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: { effect: 'allow', reason: 'non-resource' },
  },
  {
    name: 'discovery /openapi/v3/apis/apps/v1',
    identity: 1,
    request: ['GET', '/openapi/v3/apis/apps/v1?hash=x'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: { effect: 'allow', reason: 'non-resource' },
  },
  {
    name: 'discovery /version',
    identity: 1,
    request: ['GET', '/version'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: { effect: 'allow', reason: 'non-resource' },
  },
  {
    name: 'health /healthz',
    identity: 1,
    request: ['GET', '/healthz'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: { effect: 'allow', reason: 'non-resource' },
  },
  {
    name: 'other non-resource goes to RBAC',
    identity: 1,
    request: ['GET', '/metrics'],
    rbac: ALLOWED,
    needsRbac: true,
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
  {
    name: 'other non-resource, RBAC denied',
    identity: 1,
    request: ['GET', '/logs/'],
    rbac: DENIED,
    needsRbac: true,
    expect: { effect: 'deny', reason: 'rbac-denied', message: /may not get \/logs\// },
  },
  {
    name: 'non-GET discovery goes to RBAC',
    identity: 1,
    request: ['POST', '/api'],
    rbac: DENIED,
    needsRbac: true,
    expect: { effect: 'deny', reason: 'rbac-denied' },
  },
  {
    name: 'a deny rule does not reach discovery',
    identity: 0,
    request: ['GET', '/apis'],
    rbac: 'not-asked',
    needsRbac: false,
    expect: { effect: 'allow', reason: 'non-resource' },
  },
  // odd requests
  {
    name: 'a method with no verb is refused',
    identity: 0,
    request: ['OPTIONS', '/api/v1/pods'],
    rbac: ALLOWED,
    needsRbac: false,
    expect: { effect: 'deny', reason: 'safe-default', message: /has no Kubernetes verb/ },
  },
  {
    name: 'identity limited to another cluster',
    identity: 1,
    request: ['GET', '/api/v1/pods'],
    rbac: ALLOWED,
    needsRbac: false,
    cluster: 'staging',
    expect: {
      effect: 'deny',
      reason: 'cluster-not-allowed',
      rule: 'identities[1].clusters',
      message: /may not use cluster "staging"/,
    },
  },
  {
    name: 'identity on its cluster',
    identity: 1,
    request: ['GET', '/api/v1/pods'],
    rbac: ALLOWED,
    needsRbac: true,
    cluster: 'prod',
    expect: { effect: 'allow', reason: 'rbac-allowed' },
  },
];

for (const c of cases) {
  test(`evaluate: ${c.name}`, () => {
    const info = Array.isArray(c.request) ? parseRequestInfo(c.request[0], c.request[1]) : c.request;
    const identity = identities[c.identity] as IdentityConfig;
    const input: EvaluateInput = {
      identity,
      identityIndex: c.identity,
      info,
      gatewayNamespace: 'hoopgate',
      helpers,
      rbac: c.rbac,
      ...(c.cluster === undefined ? {} : { cluster: c.cluster }),
    };
    assert.equal(needsRbac(input), c.needsRbac, 'needsRbac');
    const decision = evaluate(input);
    assert.equal(decision.effect, c.expect.effect);
    assert.equal(decision.reason, c.expect.reason);
    if (c.expect.rule !== undefined) assert.equal(decision.rule, c.expect.rule);
    if (c.expect.serviceAccount !== undefined)
      assert.equal('serviceAccount' in decision ? decision.serviceAccount : undefined, c.expect.serviceAccount);
    if (c.expect.message !== undefined) assert.match(decision.message, c.expect.message);
    if (c.expect.detail !== undefined) assert.match(decision.detail ?? '', c.expect.detail);
    // every message names the identity; a refusal or hold says who may help, and the config path
    // that decided is in the operator's detail, never in what the agent reads (#16)
    assert.match(decision.message, new RegExp(`identity "${identity.name}"`));
    assert.doesNotMatch(decision.message, /identities\[|allowUnsafe|safeDefaults|approval\.(require|escalate)/);
    if (decision.effect !== 'allow') assert.match(decision.message, /Who may help: ask an approver \(/);
    if (decision.rule !== undefined && decision.effect !== 'allow')
      assert.ok(decision.detail?.includes(decision.rule.replace('safeDefaults.', '')), decision.detail);
  });
}

test('the decision does not depend on RBAC once deny/require/safe defaults decided', () => {
  const info = parseRequestInfo('DELETE', '/api/v1/namespaces/prod');
  const base = { identity: ciDeployer, identityIndex: 0, info, helpers };
  assert.deepEqual(evaluate({ ...base, rbac: ALLOWED }), evaluate({ ...base, rbac: DENIED }));
  assert.deepEqual(evaluate({ ...base, rbac: ALLOWED }), evaluate({ ...base, rbac: 'not-asked' }));
});

test('approval without approval.serviceAccount runs as the baseline account', () => {
  const identity: IdentityConfig = { ...ciDeployer, approval: { require: [], escalate: true } };
  const decision = evaluate({
    identity,
    identityIndex: 0,
    info: parseRequestInfo('GET', '/api/v1/pods'),
    rbac: DENIED,
  });
  assert.equal(decision.effect, 'approve');
  assert.equal(decision.effect === 'approve' && decision.serviceAccount, 'agents/ci-deployer');
  // no approvers and no channel configured: the agent is sent to the operators
  assert.match(decision.message, /needs approval\. Who may help: ask the gateway's operators\.$/);
});

test('without a gateway namespace nothing is refused for it', () => {
  const decision = evaluate({
    identity: ciDeployer,
    identityIndex: 0,
    info: parseRequestInfo('GET', '/api/v1/namespaces/hoopgate/configmaps'),
    rbac: ALLOWED,
  });
  assert.equal(decision.effect, 'allow');
});
