// "Who may help" (policy/help.ts): built from the approvers and the Slack channel of the config, or
// the gateway's operators with the Audit-Id when none is configured (issue #16).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalConfig, SlackConfig } from '../../packages/gateway/src/config/types.js';
import { helpersFrom, whoMayHelp } from '../../packages/gateway/src/policy/help.js';
import { setupFault, withHelp } from '../../packages/gateway/src/pipeline/errors.js';
import { mintToken } from '../../packages/gateway/src/pipeline/mint.js';
import type { ClusterRuntime } from '../../packages/gateway/src/pipeline/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createLogger } from '../../packages/gateway/src/lib/logger.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { createAdmitter } from '../../packages/gateway/src/pipeline/index.js';

function approval(approvers: Partial<ApprovalConfig['approvers']>): ApprovalConfig {
  return {
    timeoutMs: 300_000,
    minApprovals: 1,
    grantOptionsMs: [],
    approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [], ...approvers },
    maxPendingPerIdentity: 10,
  };
}

const slack: SlackConfig = {
  botToken: 'xoxb-not-a-real-token',
  signingSecret: 'not-a-real-secret',
  channel: '#k8s-approvals',
  command: '/hoop',
  auditors: { slackUsers: [], slackUserGroups: [] },
  apiUrl: 'https://slack.com/api/',
};

test('approvers by email where a person links their Slack user, then groups; and the Slack channel', () => {
  const helpers = helpersFrom({
    approval: approval({
      slackUsers: ['U0ALICE', 'U0BOB'],
      slackUserGroups: ['S0SRE'],
      oidcGroups: [{ issuer: 'https://idp.example.com', group: 'platform-oncall' }],
      people: [{ slackUser: 'U0ALICE', email: 'alice@example.com' }],
    }),
    slack,
  });
  assert.deepEqual(helpers, {
    approvers: ['alice@example.com', 'Slack user U0BOB', 'Slack group S0SRE', 'group platform-oncall'],
    channel: '#k8s-approvals',
  });
  assert.equal(
    whoMayHelp(helpers, 'a1b2'),
    'Who may help: ask an approver (alice@example.com, Slack user U0BOB, Slack group S0SRE, group platform-oncall) in Slack channel #k8s-approvals, quoting Audit-Id a1b2.',
  );
  // the Slack credentials never reach a message
  assert.doesNotMatch(whoMayHelp(helpers), /xoxb|not-a-real-secret/);
});

test('many approvers are counted, not listed', () => {
  const helpers = helpersFrom({
    approval: approval({ oidcGroups: ['a', 'b', 'c', 'd', 'e', 'f'].map((group) => ({ issuer: 'i', group })) }),
  });
  assert.equal(whoMayHelp(helpers), 'Who may help: ask an approver (group a, group b, group c, group d and 2 more).');
});

test('only a channel, or nothing: the channel, or the operators with the Audit-Id', () => {
  assert.equal(
    whoMayHelp(helpersFrom({ approval: approval({}), slack })),
    'Who may help: ask in Slack channel #k8s-approvals.',
  );
  assert.equal(
    whoMayHelp(helpersFrom({ approval: approval({}) }), '5f0c'),
    "Who may help: ask the gateway's operators, quoting Audit-Id 5f0c.",
  );
});

test('withHelp appends to a 403 once, keeps code, details and operator detail, and leaves other statuses alone', () => {
  const helpers = helpersFrom({ approval: approval({}) });
  const denied = new HoopError('ERR_APPROVAL_DENIED', 'get pods was denied by alice (approval x)', {
    details: { kind: 'pods' },
    operatorDetail: 'op',
  });
  const { error } = withHelp({ error: denied }, helpers, 'id-1');
  assert.equal(error.code, 'ERR_APPROVAL_DENIED');
  assert.equal(
    error.message,
    "get pods was denied by alice (approval x). Who may help: ask the gateway's operators, quoting Audit-Id id-1.",
  );
  assert.deepEqual(error.details, { kind: 'pods' });
  assert.equal(error.operatorDetail, 'op');
  assert.equal(withHelp({ error }, helpers, 'id-1').error, error, 'not twice');
  const badRequest = new HoopError('ERR_BAD_REQUEST', 'bad');
  assert.equal(withHelp({ error: badRequest }, helpers, 'id-1').error, badRequest);
});

test("the gateway's own token failure reads as the gateway's, the config key only in the operator detail", async () => {
  const cause = new HoopError(
    'ERR_UPSTREAM_TOKEN',
    'cluster "prod" uses static tokens but has none for serviceaccount agents/x: add staticTokens["agents/x"].tokenFile to that cluster',
  );
  const cluster = {
    config: { name: 'prod' },
    tokens: {
      tokenFor: () => Promise.reject(cause),
    },
  } as unknown as ClusterRuntime;
  const step = await mintToken(cluster, 'agents/x', 'id-9');
  assert.equal(step.ok, false);
  if (step.ok) return;
  const { error } = step.refusal;
  assert.equal(error.code, 'ERR_UPSTREAM_TOKEN');
  assert.equal(
    error.message,
    `the gateway could not get a token for serviceaccount agents/x on cluster "prod": its own setup needs fixing, not your call; run it again later or ask the gateway's operators, quoting Audit-Id id-9`,
  );
  assert.equal(error.operatorDetail, cause.message);
  const review = setupFault(cause, 'id-8');
  assert.doesNotMatch(review.message, /staticTokens/);
  assert.match(review.message, /ask the gateway's operators, quoting Audit-Id id-8$/);
  assert.equal(review.operatorDetail, cause.message);
  const other = new HoopError('ERR_UPSTREAM_UNREACHABLE', 'x');
  assert.equal(setupFault(other, 'id'), other);
});

test('approval needed but no approval channel: 403 ERR_APPROVAL_REQUIRED for the agent, the rule in the operator detail', async () => {
  const identity = {
    name: 'ci',
    match: {},
    serviceAccount: 'agents/ci',
    deny: [],
    approval: { require: [{ verbs: ['delete'] }], escalate: false },
    safeDefaults: {},
  };
  const admitter = createAdmitter({
    config: {
      audit: { bodies: false, maxBodyBytes: 0 },
      identities: [identity],
      approval: approval({ oidcGroups: [{ issuer: 'https://idp', group: 'oncall' }] }),
      gateway: {},
    } as never,
    clusters: new Map([['demo', {} as never]]),
    defaultCluster: 'demo',
    verifier: { verify: async () => ({ issuer: 'https://idp', subject: 's', groups: [], claims: {} }) as never },
    recorder: { record: async () => undefined } as never,
    masker: { maskRequestBody: () => '' },
    logger: createLogger({ destination: { write: () => true } as never }),
    clock: () => 0,
  });
  const result = await admitter.admit({
    method: 'DELETE',
    rawUrl: '/api/v1/namespaces/a/pods/p',
    rawHeaders: ['Authorization', 'Bearer x'],
    headers: { authorization: 'Bearer x' },
    signal: new AbortController().signal,
  });
  assert.equal(result.ok, false);
  if (result.ok) return;
  const status = statusFromError(result.refusal.error);
  assert.deepEqual([status.kind, status.code, status.reason], ['Status', 403, 'Forbidden']);
  assert.equal(result.refusal.error.code, 'ERR_APPROVAL_REQUIRED');
  assert.match(
    status.message,
    new RegExp(
      `^hoopgate: identity "ci": delete pods/p -n a needs approval \\(the gateway asks it for delete on any resource\\)\\. This gateway has no approval channel, so the call is refused now instead of held\\. Who may help: ask an approver \\(group oncall\\), quoting Audit-Id ${result.refusal.requestId}\\.$`,
    ),
  );
  assert.match(
    String(result.refusal.error.operatorDetail),
    /^held by identities\[0\]\.approval\.require\[0\]; .*no approval channel is configured: configure slack or the approvals API$/,
  );
});
