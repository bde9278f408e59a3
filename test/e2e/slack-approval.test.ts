// Issue #5 end to end: a held kubectl call, a Slack message on a local Slack Web API, a click signed
// exactly as Slack signs it, and the same kubectl process finishing (or refused) — on one replica
// or across two gateways sharing one store. The canary scan covers every Slack API call.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { startGateway, type Gateway } from '../../packages/gateway/src/gateway.js';
import { startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import {
  blockActionsBody,
  formType,
  signSlackBody,
  slashCommandBody,
  viewSubmissionBody,
} from '../helpers/slack-sign.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const signingSecret = 'e2e-signing-secret';

describe('just-in-time approval in Slack', () => {
  let world: TestWorld;
  let slack: LocalSlackServer;
  let second: Gateway | undefined;

  before(async () => {
    slack = await startSlackServer();
    world = await startTestWorld({
      // A second agent in the same group: the same identity, another subject.
      extraClients: [{ clientId: 'ci-deployer-2', clientSecret: 'ci-deployer-2-secret', groups: ['ci-deployers'] }],
      editConfig: (document) => {
        document['slack'] = { botToken: 'xoxb-e2e', signingSecret, channel: 'C0APPROVALS', apiUrl: slack.apiUrl };
        const approval = document['approval'] as Record<string, unknown>;
        const idp = (document['oidc'] as { issuers: { issuer: string }[] }).issuers[0]?.issuer;
        approval['approvers'] = {
          slackUsers: ['UAPPROVER', 'USELF'],
          oidcGroups: [{ issuer: idp, group: 'platform-oncall' }],
        };
        approval['timeout'] = '20s';
        const identities = document['identities'] as { name: string; approval?: { require: unknown[] } }[];
        const deployer = identities.find((i) => i.name === 'ci-deployer');
        // Deleting any namespace is held; reading configmaps in `guarded` is held too (for grants).
        deployer?.approval?.require.push({ verbs: ['get'], resources: ['configmaps'], namespaces: ['guarded'] });
      },
    });
    slack.emails.set('UAPPROVER', 'oncall@example.com');
    slack.emails.set('USELF', 'ci-deployer@agents.example.com');
    world.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'guarded' } });
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'settings', namespace: 'guarded' },
      data: { mode: 'strict' },
    });
  });
  after(async () => {
    await second?.close();
    await world?.assertNoCanaryLeaked();
    const slackText = JSON.stringify(slack.calls);
    for (const canary of world.sim.canaries)
      assert.ok(!slackText.includes(canary), `canary ${canary} leaked into a Slack API call`);
    await world?.close();
    await slack?.close();
  });

  function namespace(name: string): string {
    world.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    return name;
  }

  async function slackPost(gatewayUrl: string, body: string, options: { secret?: string; timestampSec?: number } = {}) {
    const headers = {
      'content-type': formType,
      ...signSlackBody(body, options.secret ?? signingSecret, options.timestampSec),
    };
    return world.call('/hoop/slack/events', { method: 'POST', headers, body, origin: gatewayUrl });
  }

  async function heldRecord(predicate: (r: ApprovalRecord) => boolean): Promise<ApprovalRecord> {
    // kubectl runs its whole discovery (~35 calls) before the held call: on a loaded 2-core machine
    // that alone has taken over 11 s, so allow as long as kubectl's own 40 s limit.
    return waitFor(
      'the held request to be posted to Slack',
      async () => {
        const pending = await world.gateway.approvals.pending();
        return pending.find((r) => predicate(r) && r.slack !== undefined);
      },
      40_000,
    );
  }

  function click(record: ApprovalRecord, userId: string, actionId = 'approval.approve', value = record.id): string {
    return blockActionsBody({
      userId,
      actionId,
      value,
      responseUrl: slack.responseUrl(`${record.id}-${userId}`),
      messageTs: record.slack?.ts ?? '',
      channel: record.slack?.channel ?? '',
    });
  }

  test('kubectl delete ns is held; an approver click lets the same kubectl finish and print the Warning', async () => {
    const ns = namespace('doomed-1');
    const kubectl = world.kubectl(['delete', 'namespace', ns], { timeoutMs: 40_000 });
    const record = await heldRecord((r) => r.request.name === ns);
    const [post] = slack.callsTo('chat.postMessage').filter((c) => JSON.stringify(c.body).includes(record.id));
    const message = JSON.stringify(post?.body);
    assert.match(message, /ci-deployer/);
    assert.match(message, new RegExp(`delete namespaces/${ns}`));
    assert.match(
      message,
      /kubectl delete/,
      'the Kubectl-Command header (kubectl sends the command path, not its arguments)',
    );

    const response = await slackPost(world.gateway.url, click(record, 'UAPPROVER'));
    assert.equal(response.status, 200);
    const result = await kubectl;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`namespace "${ns}" deleted`));
    assert.match(result.stderr, new RegExp(`Warning: hoopgate: approved by [^ ]+ \\(${record.id}\\)`));
    assert.equal(world.sim.getObject('namespaces', '', ns), undefined);
    const deletes = world.sim.requests.filter((r) => r.method === 'DELETE' && r.rawPath === `/api/v1/namespaces/${ns}`);
    assert.deepEqual(
      deletes.map((r) => r.identity),
      ['system:serviceaccount:agents:ci-deployer-elevated'],
      'the approved call ran once, as approval.serviceAccount',
    );
    const update = await waitFor('the message update', () =>
      slack.callsTo('chat.update').find((c) => c.body['ts'] === record.slack?.ts),
    );
    assert.match(JSON.stringify(update.body), /Approved/);
    assert.ok(!JSON.stringify(update.body).includes('"actions"'), 'no buttons left');
  });

  test('a non-approver click and a self-approval are refused and change nothing; Deny with a reason reaches kubectl', async () => {
    const ns = namespace('doomed-2');
    const kubectl = world.kubectl(['delete', 'namespace', ns], { timeoutMs: 40_000 });
    const record = await heldRecord((r) => r.request.name === ns);

    assert.equal((await slackPost(world.gateway.url, click(record, 'UINTRUDER'))).status, 200);
    const refusal = await waitFor('the ephemeral refusal', () =>
      slack.callsTo('response_url').find((c) => c.body['id'] === `${record.id}-UINTRUDER`),
    );
    assert.equal(refusal.body['response_type'], 'ephemeral');
    assert.equal((await slackPost(world.gateway.url, click(record, 'USELF'))).status, 200);
    await waitFor('the self-approval refusal', () =>
      slack.callsTo('response_url').find((c) => c.body['id'] === `${record.id}-USELF`),
    );
    assert.equal((await world.gateway.approvals.get(record.id))?.state, 'pending');

    // Forged signature and stale timestamp: 401, state unchanged.
    assert.equal((await slackPost(world.gateway.url, click(record, 'UAPPROVER'), { secret: 'forged' })).status, 401);
    assert.equal(
      (
        await slackPost(world.gateway.url, click(record, 'UAPPROVER'), {
          timestampSec: Math.floor(Date.now() / 1000) - 600,
        })
      ).status,
      401,
    );
    assert.equal((await world.gateway.approvals.get(record.id))?.state, 'pending');

    assert.equal((await slackPost(world.gateway.url, click(record, 'UAPPROVER', 'approval.deny'))).status, 200);
    const open = await waitFor('the deny modal', () => slack.callsTo('views.open').at(-1));
    const view = open.body['view'] as { callback_id: string; private_metadata: string };
    const submit = viewSubmissionBody({
      userId: 'UAPPROVER',
      callbackId: view.callback_id,
      privateMetadata: view.private_metadata,
      values: { reason: { value: { type: 'plain_text_input', value: 'change freeze until Monday' } } },
    });
    assert.equal((await slackPost(world.gateway.url, submit)).status, 200);
    const result = await kubectl;
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /Error from server \(Forbidden\): hoopgate: .*denied by uapprover: change freeze until Monday/,
    );
    assert.ok(world.sim.getObject('namespaces', '', ns), 'the namespace is still there');
  });

  test('a request nobody decides expires: 403 naming the timeout, and the message is updated', async () => {
    const ns = namespace('doomed-3');
    const started = Date.now();
    const kubectl = world.kubectl(['delete', 'namespace', ns], { timeoutMs: 60_000 });
    const record = await heldRecord((r) => r.request.name === ns);
    const result = await kubectl;
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Forbidden.*not approved within 20s/);
    assert.ok(Date.now() - started >= 19_000);
    const update = await waitFor('the expiry update', () =>
      slack.callsTo('chat.update').find((c) => c.body['ts'] === record.slack?.ts),
    );
    assert.match(JSON.stringify(update.body), /[Ee]xpired/);
  });

  test('a requester that disconnects leaves its approval pending: the retry joins it, no second approval (issue #16)', async () => {
    const ns = namespace('doomed-4');
    const child = world.spawnKubectl(['delete', 'namespace', ns, '--wait=false']);
    const record = await heldRecord((r) => r.request.name === ns);
    child.kill('SIGKILL');
    await once(child, 'close');
    await waitFor('the thread reply', () =>
      slack
        .callsTo('chat.postMessage')
        .find((c) => c.body['thread_ts'] === record.slack?.ts && /stopped waiting/.test(String(c.body['text']))),
    );
    assert.equal((await world.gateway.approvals.get(record.id))?.state, 'pending', 'not cancelled');
    const posts = slack.callsTo('chat.postMessage').filter((c) => c.body['thread_ts'] === undefined).length;
    // The client's retry: the same command joins the same approval, and runs once it is approved.
    const retry = world.kubectl(['delete', 'namespace', ns, '--wait=false'], { timeoutMs: 40_000 });
    const holding = async () =>
      (await world.gateway.metrics.registry.getSingleMetric('hoopgate_pending_approvals')?.get())?.values[0]?.value;
    await waitFor('the retry to be held', async () => (await holding()) === 1, 40_000);
    const pending = await world.gateway.approvals.pending();
    assert.deepEqual(
      pending.map((r) => r.id),
      [record.id],
      'no second approval',
    );
    assert.equal(
      slack.callsTo('chat.postMessage').filter((c) => c.body['thread_ts'] === undefined).length,
      posts,
      'no second message',
    );
    assert.equal((await slackPost(world.gateway.url, click(record, 'UAPPROVER'))).status, 200);
    const result = await retry;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`approved by .*\\(${record.id}\\)`));
    assert.equal(world.sim.getObject('namespaces', '', ns), undefined);
  });

  test('two gateways share one store: a click on the other replica resolves the held call within 1 s', async () => {
    second = await startGateway({
      config: { ...world.config, listen: { ...world.config.listen, port: 0 } },
      logDestination: { write: () => true } as never,
    });
    const ns = namespace('doomed-5');
    const kubectl = world.kubectl(['delete', 'namespace', ns], { timeoutMs: 40_000 });
    const record = await heldRecord((r) => r.request.name === ns);
    assert.equal(record.holder, world.gateway.replicaId);
    const clicked = Date.now();
    // The second replica serves TLS with the same certificate: post through the test world's CA.
    const body = click(record, 'UAPPROVER');
    const signed = { 'content-type': formType, ...signSlackBody(body, signingSecret) };
    const secondResponse = await world.call('/hoop/slack/events', {
      method: 'POST',
      headers: signed,
      body,
      origin: second.url,
    });
    assert.equal(secondResponse.status, 200);
    // The same signed bytes replayed to the first replica: its own cache never saw them, the store did.
    const replayed = await world.call('/hoop/slack/events', { method: 'POST', headers: signed, body });
    assert.equal(replayed.status, 401);
    assert.match(replayed.text, /replayed request \(seen by another replica\)/);
    await waitFor('the decision to reach the holding replica', async () => {
      const deletes = world.sim.requests.filter(
        (r) => r.method === 'DELETE' && r.rawPath === `/api/v1/namespaces/${ns}`,
      );
      return deletes.length > 0;
    });
    const latency = Date.now() - clicked;
    assert.ok(latency < 1_000, `resolved ${latency} ms after the click on the other replica`);
    const result = await kubectl;
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await second.approvals.get(record.id))?.decidedBy, 'uapprover');
  });

  test('an "Approve for 15m" grant lets the next matching call through without a new message', async () => {
    const first = world.kubectl(['get', 'configmap', 'settings', '-n', 'guarded', '-o', 'name'], { timeoutMs: 40_000 });
    const record = await heldRecord((r) => r.request.namespace === 'guarded');
    const posts = slack.callsTo('chat.postMessage').length;
    assert.equal(
      (await slackPost(world.gateway.url, click(record, 'UAPPROVER', 'approval.grant', `${record.id}:900000`))).status,
      200,
    );
    const result = await first;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'configmap/settings');
    const again = await world.kubectl(['get', 'configmap', 'settings', '-n', 'guarded', '-o', 'name'], {
      timeoutMs: 20_000,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(slack.callsTo('chat.postMessage').length, posts, 'no new approval message');
    const events = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const granted = events.filter((e) => (e.data['decision'] as { reason: string }).reason === 'grant');
    assert.ok(granted.length >= 1, 'the grant use is recorded as such');

    // The grant binds to the subject that asked: another agent of the same identity is held, not let through.
    const token = await world.token('ci-deployer-2');
    const controller = new AbortController();
    const other = world
      .call('/api/v1/namespaces/guarded/configmaps/settings', {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      })
      .catch((error: unknown) => error);
    const held = await heldRecord((r) => r.request.namespace === 'guarded' && r.subject === 'ci-deployer-2');
    assert.equal(held.identity, 'ci-deployer');
    assert.equal(slack.callsTo('chat.postMessage').length, posts + 1, 'a new approval message for the other subject');
    controller.abort();
    await other;
  });

  test('/hoop replay shows the session with its approval; a non-auditor is refused', async () => {
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const approved = records.find(
      (r) => r.data['path'] === '/api/v1/namespaces/doomed-1' && r.data['method'] === 'DELETE',
    );
    assert.ok(approved?.sessionId);
    const ask = (userId: string, id: string) =>
      slackPost(
        world.gateway.url,
        slashCommandBody({ userId, text: `replay ${approved.sessionId}`, responseUrl: slack.responseUrl(id) }),
      );
    const auditor = await ask('UAPPROVER', 'replay-ok');
    assert.equal(auditor.status, 200);
    // The timeline is paginated (kubectl's discovery calls come first): follow "more" to the end.
    let text = '';
    let page = await waitFor('the replay reply', () =>
      slack.callsTo('response_url').find((c) => c.body['id'] === 'replay-ok'),
    );
    for (let n = 0; ; n += 1) {
      text += JSON.stringify(page.body);
      const more = (page.body['blocks'] as { type: string; elements?: { action_id: string; value: string }[] }[])
        .find((b) => b.type === 'actions')
        ?.elements?.find((e) => e.action_id === 'audit.replay_more');
      if (more === undefined) break;
      const id = `replay-more-${n}`;
      assert.equal(
        (
          await slackPost(
            world.gateway.url,
            blockActionsBody({
              userId: 'UAPPROVER',
              actionId: 'audit.replay_more',
              value: more.value,
              responseUrl: slack.responseUrl(id),
            }),
          )
        ).status,
        200,
      );
      page = await waitFor('the next replay page', () =>
        slack.callsTo('response_url').find((c) => c.body['id'] === id),
      );
    }
    assert.match(text, /\*delete\*/);
    assert.match(text, /doomed-1/);
    assert.match(text, /uapprover|UAPPROVER/);
    await ask('UOUTSIDER', 'replay-no');
    const refused = await waitFor('the refusal', () =>
      slack.callsTo('response_url').find((c) => c.body['id'] === 'replay-no'),
    );
    assert.equal(refused.body['response_type'], 'ephemeral');
    assert.ok(!JSON.stringify(refused.body).includes('doomed-1'));
  });
});
