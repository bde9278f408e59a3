// Issue #12 item 5, in process: Slack (signed requests to the real Bolt app, a local Slack API) and
// the approvals HTTP API on one approval service. Votes count per person across channels; a click
// counts only from the stored message's workspace, app, channel and message.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Koa from 'koa';
import { createApprovalsRoute } from '../../packages/gateway/src/http/approvals-route.js';
import {
  createApprovalService,
  type ApprovalService,
  type HoldRequest,
} from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import type { Principal } from '../../packages/gateway/src/authn/principal.js';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createSlackIntegration } from '../../packages/gateway/src/slack/app.js';
import { createMemoryApprovalRepository, type MemoryApprovalRepository } from '../helpers/memory-approvals.js';
import { slackConfigFor, startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import { blockActionsBody, postSigned, slashCommandBody, viewSubmissionBody } from '../helpers/slack-sign.js';
import { holdRequest as heldDelete } from '../helpers/hold-request.js';

const secret = 'test-signing-secret';
const issuer = 'https://idp.test';

const approvalConfig: ApprovalConfig = {
  timeoutMs: 20_000,
  minApprovals: 2,
  grantOptionsMs: [900_000],
  approvers: {
    slackUsers: ['UALICE', 'UBOB', 'UCAROL', 'UDAVE'],
    slackUserGroups: [],
    oidcGroups: [{ issuer, group: 'oncall' }],
    // Carol's Slack profile email differs from anything in her token: only this mapping links them.
    people: [{ slackUser: 'UCAROL', oidcIssuer: issuer, oidcSubject: 'carol-sub' }],
  },
  maxPendingPerIdentity: 10,
};

function principal(subject: string, email?: string, emailVerified?: boolean): Principal {
  return {
    issuer,
    subject,
    username: subject,
    groups: ['oncall'],
    claims: {},
    expiresAt: Date.now() + 60_000,
    ...(email === undefined ? {} : { email }),
    ...(emailVerified === undefined ? {} : { emailVerified }),
  };
}

const principals: Record<string, Principal> = {
  alice: principal('alice-sub', 'Alice@Example.com'),
  carol: principal('carol-sub'),
  // Claims Bob's email, but the IdP says it is not verified: it links nobody.
  mallory: principal('mallory-sub', 'bob@example.com', false),
};

function holdRequest(): HoldRequest {
  return heldDelete({ issuer });
}

describe('approvals cannot be gamed (issue #12 item 5)', () => {
  let slack: LocalSlackServer;
  let server: Server;
  let base: string;
  let repo: MemoryApprovalRepository;
  let service: ApprovalService;

  beforeEach(async () => {
    slack = await startSlackServer();
    slack.emails.set('UALICE', 'alice@example.com');
    slack.emails.set('UBOB', 'bob@example.com');
    slack.emails.set('UCAROL', 'carol@personal.example');
    slack.emails.set('UDAVE', 'dave@example.com');
    const slackConfig = slackConfigFor(slack, secret, ['UALICE']);
    const integration = createSlackIntegration({ slack: slackConfig, approval: approvalConfig });
    repo = createMemoryApprovalRepository();
    service = createApprovalService({
      repo,
      notifier: integration.notifier,
      config: approvalConfig,
      replicaId: 'r1',
      pollIntervalMs: 50,
    });
    integration.bindService(service);
    const app = new Koa();
    app.use(integration.route);
    app.use(
      createApprovalsRoute({
        service,
        approverGroups: approvalConfig.approvers.oidcGroups,
        authenticate: async (ctx) => {
          const found = principals[ctx.get('authorization').replace(/^Bearer /, '')];
          if (found === undefined) throw new HoopError('ERR_UNAUTHENTICATED', 'missing bearer token');
          return found;
        },
      }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await service.shutdown('test over');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await slack.close();
  });

  async function held(): Promise<{ outcome: ReturnType<ApprovalService['hold']>; record: ApprovalRecord }> {
    const outcome = service.hold(holdRequest(), new AbortController().signal);
    // Tests that leave it pending end it at shutdown (ERR_SHUTTING_DOWN): not an unhandled rejection.
    outcome.catch(() => undefined);
    for (;;) {
      const [record] = await repo.list({ state: 'pending' });
      if (record?.slack !== undefined) return { outcome, record };
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  let responses = 0;
  /** Clicks a button of the stored message (override where it claims to come from) and waits for the ephemeral reply, if any. */
  async function click(
    record: ApprovalRecord,
    userId: string,
    options: {
      action?: string;
      value?: string;
      teamId?: string;
      appId?: string;
      channel?: string;
      messageTs?: string;
      expectReply?: boolean;
    } = {},
  ) {
    const id = `r${++responses}`;
    const body = blockActionsBody({
      userId,
      actionId: options.action ?? 'approval.approve',
      value: options.value ?? record.id,
      responseUrl: slack.responseUrl(id),
      messageTs: options.messageTs ?? record.slack?.ts ?? '',
      channel: options.channel ?? record.slack?.channel ?? '',
      ...(options.teamId === undefined ? {} : { teamId: options.teamId }),
      ...(options.appId === undefined ? {} : { appId: options.appId }),
    });
    const response = await postSigned(`${base}/hoop/slack/events`, body, secret);
    assert.equal(response.status, 200);
    if (options.expectReply === false) return undefined;
    const replies = await slack.waitFor(
      'response_url',
      slack.callsTo('response_url').filter((c) => c.body['id'] !== id).length + 1,
    );
    return replies.find((c) => c.body['id'] === id);
  }

  async function api(path: string, token: string, body = '{}') {
    const response = await fetch(`${base}/hoop/v1/approvals${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        kind?: string;
        code?: number;
        reason?: string;
        message?: string;
        state?: string;
        votes?: unknown[];
      },
    };
  }

  it('one person approving through the API and again in Slack counts once (verified emails match)', async () => {
    const { record, outcome } = await held();
    const first = await api(`/${record.id}/approve`, 'alice');
    assert.equal(first.status, 200);
    assert.equal(first.body.state, 'pending');
    const again = await click(record, 'UALICE');
    assert.equal(again?.body['response_type'], 'ephemeral');
    assert.match(
      String(again?.body['text']),
      /you already approved this request \(here or through the API\/CLI as the same person\)/,
    );
    const current = await repo.get(record.id);
    assert.equal(current?.state, 'pending', 'one person is not two approvals');
    assert.equal(current?.votes.length, 1);
    // A second person completes it.
    await click(record, 'UBOB', { expectReply: false });
    const result = await outcome;
    assert.equal(result.state, 'approved');
    assert.deepEqual(
      result.record.votes.map((v) => v.user),
      ['oidc:https://idp.test#alice-sub', 'UBOB'],
    );
  });

  it('the other order too: Slack first, then the API answers 409 naming the rule', async () => {
    const { record, outcome } = await held();
    await click(record, 'UALICE', { expectReply: false });
    await slack.waitFor('chat.postMessage', 2); // the "1 of 2" thread reply
    const second = await api(`/${record.id}/approve`, 'alice');
    assert.equal(second.status, 409);
    assert.deepEqual([second.body.kind, second.body.code, second.body.reason], ['Status', 409, 'Conflict']);
    assert.match(
      String(second.body.message),
      /^hoopgate: you already approved ".*" \(here, in Slack or the CLI as the same person\)/,
    );
    assert.equal((await repo.get(record.id))?.votes.length, 1);
    await api(`/${record.id}/deny`, 'carol');
    assert.equal((await outcome).state, 'denied');
  });

  it('an explicit approval.approvers.people entry links a Slack user and an OIDC subject', async () => {
    const { record, outcome } = await held();
    assert.equal((await api(`/${record.id}/approve`, 'carol')).status, 200);
    const again = await click(record, 'UCAROL');
    assert.match(String(again?.body['text']), /already approved/);
    assert.equal((await repo.get(record.id))?.votes.length, 1);
    await click(record, 'UDAVE', { expectReply: false });
    assert.equal((await outcome).state, 'approved');
  });

  it('an unverified email claim links nobody: it is a different person from the Slack user with that email', async () => {
    const { record, outcome } = await held();
    assert.equal((await api(`/${record.id}/approve`, 'mallory')).status, 200);
    await click(record, 'UBOB', { expectReply: false });
    const result = await outcome;
    assert.equal(result.state, 'approved');
    assert.equal(result.record.votes.length, 2);
  });

  for (const [what, override] of [
    ['another workspace (team.id)', { teamId: 'T2EVIL' }],
    ['another app (api_app_id)', { appId: 'A2EVIL' }],
    ['another channel', { channel: 'C0ELSEWHERE' }],
    ['another message (ts)', { messageTs: '1.999999' }],
  ] as const) {
    it(`a correctly signed click from ${what} changes nothing and gets an ephemeral refusal`, async () => {
      const { record } = await held();
      const refusal = await click(record, 'UALICE', override);
      assert.equal(refusal?.body['response_type'], 'ephemeral');
      assert.match(
        String(refusal?.body['text']),
        /^this button does not belong to the approval message hoopgate posted .*; nothing was changed$/,
      );
      const deny = await click(record, 'UBOB', { ...override, action: 'approval.deny' });
      assert.match(String(deny?.body['text']), /does not belong to the approval message/);
      const current = await repo.get(record.id);
      assert.equal(current?.state, 'pending');
      assert.equal(current?.votes.length, 0);
      assert.equal(slack.callsTo('views.open').length, 0, 'no deny modal for a foreign click');
      assert.equal(slack.callsTo('users.info').length, 0, 'refused before anything is asked of Slack');
    });
  }

  it('a deny submission from another workspace or app changes nothing', async () => {
    const { record } = await held();
    const metadata = JSON.stringify({
      id: record.id,
      responseUrl: slack.responseUrl('deny'),
      channel: record.slack?.channel,
      ts: record.slack?.ts,
    });
    for (const override of [{ teamId: 'T2EVIL' }, { appId: 'A2EVIL' }]) {
      const body = viewSubmissionBody({
        userId: 'UBOB',
        callbackId: 'approval.deny_reason',
        privateMetadata: metadata,
        values: { reason: { value: { type: 'plain_text_input', value: 'no' } } },
        ...override,
      });
      assert.equal((await postSigned(`${base}/hoop/slack/events`, body, secret)).status, 200);
    }
    const replies = await slack.waitFor('response_url', 2);
    for (const reply of replies) assert.match(String(reply.body['text']), /does not belong to the approval message/);
    assert.equal((await repo.get(record.id))?.state, 'pending');
  });

  it('"Approve for 15m" names its scope; /hoop grants lists it, /hoop revoke-grant ends it', async () => {
    const { record, outcome } = await held();
    const [post] = slack.callsTo('chat.postMessage');
    const posted = JSON.stringify(post?.body['blocks']);
    assert.ok(posted.includes('Approve for 15m: agent-7 only, this call'), 'the button says whose and what');
    assert.ok(
      posted.includes(
        `(grant \`g-${record.id}\`): only subject \`agent-7\` (issuer https://idp.test) may repeat \`delete namespaces/prod\` on prod`,
      ),
      posted,
    );
    assert.equal((await api(`/${record.id}/approve`, 'alice')).status, 200);
    await click(record, 'UBOB', { action: 'approval.grant', value: `${record.id}:900000`, expectReply: false });
    assert.equal((await outcome).state, 'approved');
    const [update] = await slack.waitFor('chat.update');
    assert.ok(
      JSON.stringify(update?.body['blocks']).includes(`for 15m — grant \`g-${record.id}\`: only subject \`agent-7\``),
    );
    const command = async (user: string, text: string) => {
      const id = `cmd${++responses}`;
      await postSigned(
        `${base}/hoop/slack/events`,
        slashCommandBody({ userId: user, text, responseUrl: slack.responseUrl(id) }),
        secret,
      );
      for (;;) {
        const reply = slack.callsTo('response_url').find((c) => c.body['id'] === id);
        if (reply !== undefined) return reply.body;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const listed = await command('UALICE', 'grants');
    assert.ok(JSON.stringify(listed['blocks']).includes(`g-${record.id}`));
    assert.match(String((await command('UOUTSIDER', 'grants'))['text']), /not an auditor/);
    const revoked = await command('UALICE', `revoke-grant g-${record.id}`);
    assert.match(String(revoked['text']), /revoked: agent-7 may no longer repeat it/);
    assert.equal(repo.grants[0]?.revokedBy, 'slack:UALICE');
    assert.match(String((await command('UALICE', `revoke-grant g-${record.id}`))['text']), /no active grant/);
    assert.equal(
      await service.findGrant({ identity: 'ci-deployer', issuer, subject: 'agent-7' }, 'prod', holdRequest().request),
      undefined,
    );
  });
});
