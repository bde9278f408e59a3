// Slack end to end, in process: signed requests to the Koa route, the real Bolt app and listeners, the
// approval service on the in-memory repository, and a local Slack Web API recording every call.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import {
  createApprovalService,
  type ApprovalService,
  type HoldRequest,
} from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { createSlackIntegration } from '../../packages/gateway/src/slack/app.js';
import type { AuditReader, TimelineEntry } from '../../packages/gateway/src/slack/commands.js';
import { holdRequest } from '../helpers/hold-request.js';
import { createMemoryApprovalRepository, type MemoryApprovalRepository } from '../helpers/memory-approvals.js';
import { slackConfigFor, startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import { blockActionsBody, postSigned, slashCommandBody, viewSubmissionBody } from '../helpers/slack-sign.js';

const secret = 'test-signing-secret';

const approvalConfig: ApprovalConfig = {
  timeoutMs: 20_000,
  minApprovals: 1,
  grantOptionsMs: [900_000],
  approvers: { slackUsers: ['UAPPROVER'], slackUserGroups: ['SONCALL'], oidcGroups: [], people: [] },
  maxPendingPerIdentity: 10,
};

/** The shared held call (test/helpers/hold-request.ts), with what the Slack message shows of an agent. */
const slackHoldRequest = (): HoldRequest =>
  holdRequest({
    email: 'agent-owner@example.com',
    kubectlCommand: 'kubectl delete namespace prod',
    reason: 'cleanup <!channel> & go',
    rule: 'identities[0].approval.require[0]',
  });

const timeline: TimelineEntry[] = Array.from({ length: 25 }, (_, i) => ({
  at: Date.UTC(2025, 0, 1, 12, 0, i),
  verb: i === 3 ? 'delete' : 'get',
  resource: i === 3 ? 'namespaces' : 'pods',
  name: i === 3 ? 'prod' : `pod-${i}`,
  decision: i === 3 ? 'approve→approved' : 'allow',
  status: 200,
  ...(i === 3 ? { approver: 'alice' } : {}),
}));

const audit: AuditReader = {
  async sessionTimeline(sessionId) {
    return sessionId === 'sess-1' ? timeline : [];
  },
  async listSessions() {
    return [{ sessionId: 'sess-1', identity: 'ci-deployer', startedAt: Date.UTC(2025, 0, 1), calls: 25 }];
  },
};

describe('slack approvals (signed requests, local Slack API)', () => {
  let slack: LocalSlackServer;
  let server: Server;
  let url: string;
  let repo: MemoryApprovalRepository;
  let service: ApprovalService;

  // A fresh Slack API per test: finalize calls of one test's leftovers never leak into the next.
  beforeEach(async () => {
    slack = await startSlackServer();
    slack.emails.set('UAPPROVER', 'approver@example.com');
    slack.emails.set('USELF', 'Agent-Owner@example.com');
    slack.groups.set('SONCALL', ['UGROUPIE', 'USELF']);
    const slackConfig = slackConfigFor(slack, secret, ['UAUDITOR']);
    // Built as the composition root does: notifier first, the service bound afterwards.
    const integration = createSlackIntegration({ slack: slackConfig, approval: approvalConfig, audit });
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
    app.use((ctx) => {
      ctx.status = 418;
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hoop/slack/events`;
  });

  afterEach(async () => {
    await service.shutdown('test over');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await slack.close();
  });

  async function held(): Promise<{
    outcome: ReturnType<ApprovalService['hold']>;
    record: ApprovalRecord;
    controller: AbortController;
  }> {
    const controller = new AbortController();
    const outcome = service.hold(slackHoldRequest(), controller.signal);
    await slack.waitFor('chat.postMessage');
    for (;;) {
      const [record] = await repo.list({ state: 'pending' });
      if (record?.slack !== undefined) return { outcome, record, controller };
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The requester leaves; its approval stays pending (issue #16), so the test ends it for the next one. */
  async function abandon(h: Awaited<ReturnType<typeof held>>): Promise<void> {
    h.controller.abort();
    await assert.rejects(h.outcome, /the requester disconnected/);
    await repo.transition(h.record.id, 'pending', 'cancelled', {});
  }

  function click(
    record: ApprovalRecord,
    userId: string,
    actionId = 'approval.approve',
    value = record.id,
    responseId = 'r1',
  ): string {
    return blockActionsBody({
      userId,
      actionId,
      value,
      responseUrl: slack.responseUrl(responseId),
      messageTs: record.slack?.ts ?? '',
      channel: record.slack?.channel ?? '',
    });
  }

  it('posts the approval message with escaped text and Approve / Deny / Approve-for buttons', async () => {
    const { record, controller, outcome } = await held();
    const [post] = slack.callsTo('chat.postMessage');
    assert.equal(post?.token, 'xoxb-test');
    assert.equal(post?.body['channel'], 'C0APPROVALS');
    const blocks = JSON.stringify(post?.body['blocks']);
    assert.ok(
      blocks.includes('approval.approve') && blocks.includes('approval.deny') && blocks.includes('approval.grant'),
    );
    assert.ok(blocks.includes(`${record.id}:900000`));
    assert.ok(!blocks.includes('<!channel>'), 'mention neutralised');
    assert.ok(blocks.includes('&lt;!channel&gt; &amp; go'));
    assert.ok(blocks.includes('kubectl delete namespace prod'));
    await abandon({ record, controller, outcome });
  });

  it('a signed Approve click decides and updates the message in place without buttons', async () => {
    const { record, outcome } = await held();
    const started = performance.now();
    const response = await postSigned(url, click(record, 'UAPPROVER'), secret);
    const ackMs = performance.now() - started;
    assert.equal(response.status, 200);
    assert.ok(ackMs < 1_000, `acknowledged after ${ackMs.toFixed(0)} ms (Slack allows 3 s)`);
    const result = await outcome;
    console.log(
      `# click acknowledged in ${ackMs.toFixed(0)} ms, held call answered ${(performance.now() - started).toFixed(0)} ms after the click`,
    );
    assert.equal(result.state, 'approved');
    assert.equal(result.record.decidedBy, 'uapprover');
    assert.deepEqual(
      result.record.votes.map((v) => [v.user, v.via]),
      [['UAPPROVER', 'slack']],
    );
    const [update] = await slack.waitFor('chat.update');
    assert.equal(update?.body['ts'], record.slack?.ts);
    assert.equal(update?.body['channel'], 'C0APPROVALS');
    const blocks = JSON.stringify(update?.body['blocks']);
    assert.ok(blocks.includes('Approved') && blocks.includes('<@UAPPROVER>'));
    assert.ok(!blocks.includes('"actions"'), 'no buttons left');
    assert.ok(blocks.includes('<!date^'), 'when');
    assert.equal(slack.callsTo('users.info').length, 1, 'self-approval checked against the profile email');
    // A second click on the decided request changes nothing and says so.
    const again = await postSigned(url, click(record, 'UAPPROVER', 'approval.approve', record.id, 'again'), secret);
    assert.equal(again.status, 200);
    const [refusal] = await slack.waitFor('response_url');
    assert.equal(refusal?.body['id'], 'again');
    assert.match(String(refusal?.body['text']), /already approved/);
    assert.equal(refusal?.body['response_type'], 'ephemeral');
    assert.equal(slack.callsTo('chat.update').length, 1);
  });

  it('Deny opens a modal; the submitted reason reaches the record and the message', async () => {
    const { record, outcome } = await held();
    const response = await postSigned(url, click(record, 'UAPPROVER', 'approval.deny'), secret);
    assert.equal(response.status, 200);
    const [open] = await slack.waitFor('views.open');
    assert.equal(open?.body['trigger_id'], '123.456.abc');
    const view = open?.body['view'] as { callback_id: string; private_metadata: string };
    assert.equal(view.callback_id, 'approval.deny_reason');
    assert.equal((await repo.get(record.id))?.state, 'pending', 'opening the modal decides nothing');
    const submit = viewSubmissionBody({
      userId: 'UAPPROVER',
      callbackId: view.callback_id,
      privateMetadata: view.private_metadata,
      values: { reason: { value: { type: 'plain_text_input', value: 'change freeze until Monday' } } },
    });
    const submitted = await postSigned(url, submit, secret);
    assert.equal(submitted.status, 200);
    const result = await outcome;
    assert.equal(result.state, 'denied');
    assert.equal(result.record.decisionReason, 'change freeze until Monday');
    assert.equal(result.record.decidedBy, 'uapprover');
    const [update] = await slack.waitFor('chat.update');
    assert.ok(JSON.stringify(update?.body['blocks']).includes('change freeze until Monday'));
  });

  it('refuses forged, stale and replayed requests with 401 and changes nothing', async () => {
    const { record, controller, outcome } = await held();
    const body = click(record, 'UAPPROVER');
    const forged = await postSigned(url, body, 'not-the-secret');
    assert.equal(forged.status, 401);
    assert.match(forged.text, /signature mismatch/);
    const stale = await postSigned(url, body, secret, { timestampSec: Math.floor(Date.now() / 1000) - 6 * 60 });
    assert.equal(stale.status, 401);
    assert.match(stale.text, /more than 5 minutes/);
    const future = await postSigned(url, body, secret, { timestampSec: Math.floor(Date.now() / 1000) + 6 * 60 });
    assert.equal(future.status, 401);
    const unsigned = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    assert.equal(unsigned.status, 401);
    // Tampering with the body after signing.
    const ts = Math.floor(Date.now() / 1000);
    const { signSlackBody } = await import('../helpers/slack-sign.js');
    const tampered = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...signSlackBody(click(record, 'UOTHER'), secret, ts),
      },
      body,
    });
    assert.equal(tampered.status, 401);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await repo.get(record.id))?.state, 'pending');
    assert.equal((await repo.get(record.id))?.votes.length, 0);
    assert.equal(
      slack.callsTo('users.info').length + slack.callsTo('chat.update').length + slack.callsTo('response_url').length,
      0,
    );

    // Replay: a valid request, then the very same bytes and headers again.
    const command = slashCommandBody({ userId: 'UAUDITOR', text: 'help', responseUrl: slack.responseUrl('help') });
    const headers = signSlackBody(command, secret);
    const first = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: command,
    });
    assert.equal(first.status, 200);
    await slack.waitFor('response_url');
    const replayed = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: command,
    });
    assert.equal(replayed.status, 401);
    assert.match(await replayed.text(), /replayed/);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(slack.callsTo('response_url').length, 1);
    await abandon({ record, controller, outcome });
  });

  it('a non-approver click gets an ephemeral refusal and nothing changes; Deny gives no modal', async () => {
    const { record, controller, outcome } = await held();
    assert.equal((await postSigned(url, click(record, 'UOUTSIDER'), secret)).status, 200);
    const [refusal] = await slack.waitFor('response_url');
    assert.equal(refusal?.body['response_type'], 'ephemeral');
    assert.match(String(refusal?.body['text']), /not an approver/);
    assert.equal((await postSigned(url, click(record, 'UOUTSIDER', 'approval.deny'), secret)).status, 200);
    await slack.waitFor('response_url', 2);
    assert.equal(slack.callsTo('views.open').length, 0);
    const current = await repo.get(record.id);
    assert.equal(current?.state, 'pending');
    assert.equal(current?.votes.length, 0);
    assert.equal(slack.callsTo('chat.update').length, 0);
    await abandon({ record, controller, outcome });
  });

  it('user-group members may approve; their own agent’s request is refused (profile email)', async () => {
    const { record, outcome } = await held();
    assert.equal((await postSigned(url, click(record, 'USELF'), secret)).status, 200);
    const [refusal] = await slack.waitFor('response_url');
    assert.match(String(refusal?.body['text']), /your own agent/);
    assert.equal((await repo.get(record.id))?.state, 'pending');
    assert.equal(
      (await postSigned(url, click(record, 'UGROUPIE', 'approval.grant', `${record.id}:900000`), secret)).status,
      200,
    );
    const result = await outcome;
    assert.equal(result.state, 'approved');
    assert.equal(result.record.grantMs, 900_000);
    assert.equal(repo.grants.length, 1);
    assert.equal(repo.grants[0]?.grantedBy, 'ugroupie');
    // Membership is cached: one usergroups.users.list call for both clicks.
    assert.equal(slack.callsTo('usergroups.users.list').length, 1);
    const [update] = await slack.waitFor('chat.update');
    assert.ok(JSON.stringify(update?.body['blocks']).includes('for 15m'));
  });

  it('fails closed when Slack cannot tell group membership', async () => {
    const { record, controller, outcome } = await held();
    slack.failing.add('usergroups.users.list');
    try {
      assert.equal((await postSigned(url, click(record, 'UGROUPIE'), secret)).status, 200);
      const [refusal] = await slack.waitFor('response_url');
      assert.match(String(refusal?.body['text']), /could not check your approver membership/);
      assert.equal((await repo.get(record.id))?.state, 'pending');
    } finally {
      slack.failing.delete('usergroups.users.list');
    }
    await abandon({ record, controller, outcome });
  });

  it('/hoop replay answers an auditor with a paginated timeline and refuses others', async () => {
    const ok = await postSigned(
      url,
      slashCommandBody({ userId: 'UAUDITOR', text: 'replay sess-1', responseUrl: slack.responseUrl('replay') }),
      secret,
    );
    assert.equal(ok.status, 200);
    const [reply] = await slack.waitFor('response_url');
    assert.equal(reply?.body['response_type'], 'ephemeral');
    const blocks = JSON.stringify(reply?.body['blocks']);
    assert.ok(
      blocks.includes('namespaces/prod') && blocks.includes('approved by alice') && blocks.includes('approve→approved'),
    );
    assert.ok(blocks.includes('pod-19') && !blocks.includes('pod-20'), 'first page of 20');
    assert.ok(blocks.includes('audit.replay_more'));
    const more =
      (reply?.body['blocks'] as Array<{ type: string; elements?: Array<{ value: string }> }>).find(
        (b) => b.type === 'actions',
      )?.elements?.[0]?.value ?? '';
    const page2 = await postSigned(
      url,
      blockActionsBody({
        userId: 'UAUDITOR',
        actionId: 'audit.replay_more',
        value: more,
        responseUrl: slack.responseUrl('more'),
      }),
      secret,
    );
    assert.equal(page2.status, 200);
    const [, second] = await slack.waitFor('response_url', 2);
    const secondBlocks = JSON.stringify(second?.body['blocks']);
    assert.ok(
      secondBlocks.includes('pod-24') &&
        !secondBlocks.includes('pod-19') &&
        !secondBlocks.includes('audit.replay_more'),
    );

    const refused = await postSigned(
      url,
      slashCommandBody({ userId: 'UOUTSIDER', text: 'replay sess-1', responseUrl: slack.responseUrl('no') }),
      secret,
    );
    assert.equal(refused.status, 200);
    const [, , denied] = await slack.waitFor('response_url', 3);
    assert.equal(denied?.body['response_type'], 'ephemeral');
    assert.match(String(denied?.body['text']), /not an auditor/);
    assert.equal(denied?.body['blocks'], undefined);
    const stolenMore = await postSigned(
      url,
      blockActionsBody({
        userId: 'UOUTSIDER',
        actionId: 'audit.replay_more',
        value: more,
        responseUrl: slack.responseUrl('no2'),
      }),
      secret,
    );
    assert.equal(stolenMore.status, 200);
    const [, , , denied2] = await slack.waitFor('response_url', 4);
    assert.match(String(denied2?.body['text']), /not an auditor/);
  });

  it('/hoop pending and sessions for auditors', async () => {
    const { controller, outcome, record } = await held();
    await postSigned(
      url,
      slashCommandBody({ userId: 'UAUDITOR', text: 'pending', responseUrl: slack.responseUrl('p') }),
      secret,
    );
    const [pending] = await slack.waitFor('response_url');
    assert.ok(JSON.stringify(pending?.body['blocks']).includes(record.id));
    await postSigned(
      url,
      slashCommandBody({ userId: 'UAUDITOR', text: 'sessions ci-deployer', responseUrl: slack.responseUrl('s') }),
      secret,
    );
    const [, sessions] = await slack.waitFor('response_url', 2);
    assert.ok(JSON.stringify(sessions?.body['blocks']).includes('sess-1'));
    await abandon({ record, controller, outcome });
  });

  it('in Socket Mode the Request URL is off (nothing connects until start)', async () => {
    const socket = createSlackIntegration({
      slack: {
        botToken: 'xoxb',
        signingSecret: secret,
        appToken: 'xapp-1',
        channel: 'C1',
        command: '/hoop',
        auditors: { slackUsers: [], slackUserGroups: [] },
        apiUrl: slack.apiUrl,
      },
      approval: approvalConfig,
    });
    const app = new Koa();
    app.use(socket.route);
    const s = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => s.once('listening', resolve));
    const response = await postSigned(
      `http://127.0.0.1:${(s.address() as AddressInfo).port}/hoop/slack/events`,
      'x=1',
      secret,
    );
    assert.equal(response.status, 404);
    assert.match(response.text, /Socket Mode/);
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  });

  it('answers url_verification, refuses other methods and unsigned JSON', async () => {
    const body = JSON.stringify({ type: 'url_verification', token: 't', challenge: 'abc123' });
    const ok = await postSigned(url, body, secret, { contentType: 'application/json' });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.text), { challenge: 'abc123' });
    const get = await fetch(url);
    assert.equal(get.status, 405);
    const other = await fetch(url.replace('/events', '/other'), { method: 'POST' });
    assert.equal(other.status, 418, 'other paths fall through');
  });
});
