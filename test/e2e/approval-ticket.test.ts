// Issue #16, "held calls are visible", end to end: ticket mode. An identity with `approval.mode: ticket`
// gets kubectl's `Error from server (Forbidden)` with the approval ID at once; once approved through the
// approvals API the same kubectl command runs, once. `X-Hoop-Approval: ticket` does the same for a
// wait-mode identity over plain HTTPS; agents poll their own approval; another subject, path or body
// never redeems it; concurrent retries run once. The canary scan covers clients, logs, audit and Slack.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

type Answer = Awaited<ReturnType<TestWorld['call']>>;

function assertStatus(response: Answer, code: number, reason: string, message: RegExp): any {
  assert.equal(response.status, code, response.text);
  const body = response.json();
  assert.deepEqual(
    [body.kind, body.apiVersion, body.status, body.code, body.reason],
    ['Status', 'v1', 'Failure', code, reason],
  );
  assert.match(body.message, /^hoopgate: /);
  assert.match(body.message, message);
  return body;
}

/** The ticket answer: 403 Forbidden, the ID in the message and in details, who approves, how to retry and poll. */
function assertTicket(response: Answer): string {
  const body = assertStatus(
    response,
    403,
    'Forbidden',
    /needs approval; it was not run\. Approval (\w+) is pending \(it expires in \d+s\)\. Run the same command again after approval: it then runs once, within 15m of the approval\. Poll GET \/hoop\/v1\/approvals\/\1 with the same token to see its state\. Who may help: ask an approver \(Slack user UAPPROVER, group platform-oncall\) in Slack channel C0TICKETS, quoting Audit-Id \w+/,
  );
  const id = /Approval (\w+) is pending/.exec(body.message)?.[1] ?? '';
  assert.deepEqual(body.details, { kind: 'approval', name: id });
  return id;
}

describe('ticket mode: a call that needs approval is answered at once with the approval ID (issue #16)', () => {
  let world: TestWorld;
  let slack: LocalSlackServer;
  const tokens: Record<string, string> = {};
  const bearer = (who: string) => ({ authorization: `Bearer ${tokens[who]}` });

  before(async () => {
    slack = await startSlackServer();
    world = await startTestWorld({
      extraClients: [
        { clientId: 'oncall', clientSecret: 'oncall-secret', groups: ['platform-oncall'] },
        { clientId: 'ops-bot', clientSecret: 'ops-bot-secret', groups: ['ops'] },
        // The same identity as ops-bot, another subject.
        { clientId: 'ops-bot-2', clientSecret: 'ops-bot-2-secret', groups: ['ops'] },
      ],
      editConfig: (document) => {
        document['slack'] = {
          botToken: 'xoxb-e2e',
          signingSecret: 'e2e-signing-secret',
          channel: 'C0TICKETS',
          apiUrl: slack.apiUrl,
        };
        const approval = document['approval'] as Record<string, unknown>;
        const idp = (document['oidc'] as { issuers: { issuer: string }[] }).issuers[0]?.issuer;
        approval['approvers'] = { slackUsers: ['UAPPROVER'], oidcGroups: [{ issuer: idp, group: 'platform-oncall' }] };
        approval['grantOptions'] = 0;
        const identities = document['identities'] as Record<string, any>[];
        const deployer = identities.find((i) => i['name'] === 'ci-deployer');
        if (deployer !== undefined) deployer['approval']['mode'] = 'ticket';
        // A wait-mode identity whose agents ask for tickets with the header.
        identities.push({
          name: 'ops-bot',
          match: { groups: ['ops'] },
          serviceAccount: 'agents/ci-deployer',
          approval: {
            serviceAccount: 'agents/ci-deployer-elevated',
            require: [{ verbs: ['delete'], resources: ['namespaces'] }],
          },
        });
      },
    });
    for (const who of ['ci-deployer', 'oncall', 'ops-bot', 'ops-bot-2']) tokens[who] = await world.token(who);
  });

  after(async () => {
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

  const deletesOf = (ns: string) =>
    world.sim.requests.filter((r) => r.method === 'DELETE' && r.rawPath === `/api/v1/namespaces/${ns}`).length;
  const topPosts = () => slack.callsTo('chat.postMessage').filter((c) => c.body['thread_ts'] === undefined);

  async function decide(id: string, verdict: 'approve' | 'deny', reason?: string): Promise<void> {
    const response = await world.call(`/hoop/v1/approvals/${id}/${verdict}`, {
      method: 'POST',
      headers: { ...bearer('oncall'), 'content-type': 'application/json' },
      body: JSON.stringify(reason === undefined ? {} : { reason }),
    });
    assert.equal(response.status, 200, response.text);
  }

  const deleteCall = (ns: string, who: string, headers: Record<string, string> = {}, body?: string) =>
    world.call(`/api/v1/namespaces/${ns}`, {
      method: 'DELETE',
      headers: { ...bearer(who), 'x-hoop-approval': 'ticket', ...headers },
      ...(body === undefined ? {} : { body }),
    });

  test('kubectl with approval.mode: ticket: Forbidden with the ID at once; after approval the same command runs, once', async () => {
    const ns = namespace('ticket-kubectl');
    const args = ['delete', 'namespace', ns, '--wait=false'];
    const started = Date.now();
    const first = await world.kubectl(args);
    const elapsed = Date.now() - started;
    assert.notEqual(first.code, 0);
    const id =
      /Error from server \(Forbidden\): hoopgate: .*needs approval; it was not run\. Approval (\w+) is pending/.exec(
        first.stderr,
      )?.[1];
    assert.ok(id !== undefined, first.stderr);
    assert.match(first.stderr, new RegExp(`Poll GET /hoop/v1/approvals/${id} with the same token`));
    // Not held: kubectl's own start-up and discovery are most of it.
    assert.ok(elapsed < 15_000, `answered after ${elapsed} ms`);
    assert.equal(deletesOf(ns), 0, 'nothing reached the API server');
    assert.ok(world.sim.getObject('namespaces', '', ns));

    // The Slack message says nobody waits.
    const post = await waitFor('the approval message', () =>
      topPosts().find((c) => JSON.stringify(c.body).includes(id)),
    );
    assert.match(JSON.stringify(post.body), /the agent is not waiting; once approved, its next identical call runs/);

    // While pending, the same command answers the same ticket: no new approval, no second message.
    const again = await world.kubectl(args);
    assert.match(again.stderr, new RegExp(`Approval ${id} is pending`));
    assert.deepEqual(
      (await world.gateway.approvals.pending()).map((r) => r.id),
      [id],
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(topPosts().filter((c) => JSON.stringify(c.body).includes(id)).length, 1);

    // A ticket answered at once is no held call's outcome: nothing is counted as "pending".
    const counted = async () =>
      Object.fromEntries(
        (await world.gateway.metrics.approvalOutcomes.get()).values.map((v) => [String(v.labels['state']), v.value]),
      );
    assert.deepEqual(await counted(), {});

    // The agent polls its own approval.
    const polled = await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ci-deployer') });
    assert.equal(polled.status, 200, polled.text);
    assert.equal(polled.json().state, 'pending');

    await decide(id, 'approve');
    const approved = await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ci-deployer') });
    assert.equal(approved.json().state, 'approved');
    const ran = await world.kubectl(args);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stderr, new RegExp(`approved by oncall.*\\(${id}\\)`));
    assert.equal(deletesOf(ns), 1);
    assert.equal(world.sim.getObject('namespaces', '', ns), undefined);
    const used = await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ci-deployer') });
    assert.equal(used.json().state, 'redeemed');
    assert.deepEqual(await counted(), { approved: 1 }, 'the call that ran after approval is counted once');

    // The audit record of the call that ran names the approval.
    const records = await world.gateway.store.audit.listRecords({});
    const outcomes = records.filter((r) => r.kind === 'outcome').map((r) => JSON.stringify(r));
    assert.equal(
      outcomes.filter((text) => text.includes(id) && /approved/.test(text) && /200/.test(text)).length,
      1,
      `the outcome names the approval: ${outcomes.filter((text) => text.includes(id)).join('\n')}`,
    );

    // Used once: the same command again needs a new approval.
    namespace(ns);
    const next = await world.kubectl(args);
    const nextId = /Approval (\w+) is pending/.exec(next.stderr)?.[1];
    assert.ok(nextId !== undefined && nextId !== id, next.stderr);
    assert.equal(deletesOf(ns), 1);
    // A wait-mode header never overrides the identity's ticket mode.
    const header = await world.call(`/api/v1/namespaces/${ns}`, {
      method: 'DELETE',
      headers: { ...bearer('ci-deployer'), 'x-hoop-approval': 'wait' },
    });
    // (kubectl sends DeleteOptions in the body: another call, another ticket.)
    const headerId = assertTicket(header);
    assert.notEqual(headerId, id);
    for (const open of [nextId, headerId]) await decide(open, 'deny');
  });

  test('X-Hoop-Approval: ticket over HTTPS; other values refused; agents see only their own approval; another subject, path or body never redeems it', async () => {
    const ns = namespace('ticket-header');
    namespace('ticket-header-other');
    assertStatus(
      await deleteCall(ns, 'ops-bot', { 'x-hoop-approval': 'later' }),
      400,
      'BadRequest',
      /header X-Hoop-Approval must be "wait" \(hold the call until an approver decides\) or "ticket" \(answer at once with the approval ID\), got "later"/,
    );
    assertStatus(
      await world.call(`/api/v1/namespaces/${ns}`, {
        method: 'DELETE',
        headers: { ...bearer('ops-bot'), 'x-hoop-approval': ['ticket', 'ticket'] },
      }),
      400,
      'BadRequest',
      /header x-hoop-approval appears more than once/,
    );
    // The header is checked on every call, also one that needs no approval.
    assertStatus(
      await world.call('/api/v1/namespaces/staging/pods', { headers: { ...bearer('ops-bot'), 'x-hoop-approval': '' } }),
      400,
      'BadRequest',
      /must be "wait".*or "ticket"/,
    );

    const started = Date.now();
    const id = assertTicket(await deleteCall(ns, 'ops-bot'));
    assert.ok(Date.now() - started < 5_000);
    assert.equal(deletesOf(ns), 0);

    // Polling: the requester sees its own state only; anyone else's ID, or an unknown one, is 404.
    const own = (await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ops-bot') })).json();
    assert.equal(own.kind, 'ApprovalTicket');
    assert.equal(own.id, id);
    assert.equal(own.state, 'pending');
    assert.ok(Date.parse(own.expiresAt) > Date.now());
    assert.deepEqual([own.request.method, own.request.path], ['DELETE', `/api/v1/namespaces/${ns}`]);
    for (const key of ['votes', 'subject', 'email', 'groups', 'slack', 'fingerprint', 'decidedBy'])
      assert.equal(own[key], undefined, `no ${key} for the agent`);
    const notFound = (body: any, missing: string) =>
      assert.equal(
        body.message,
        `hoopgate: approval "${missing}" not found among your requests; use the ID from the answer to your call, with the token that made it`,
      );
    for (const who of ['ops-bot-2', 'ci-deployer']) {
      const other = await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer(who) });
      notFound(assertStatus(other, 404, 'NotFound', /not found among your requests/), id);
    }
    const unknown = await world.call('/hoop/v1/approvals/0123456789ab', { headers: bearer('ops-bot') });
    notFound(assertStatus(unknown, 404, 'NotFound', /not found/), '0123456789ab');
    assertStatus(await world.call(`/hoop/v1/approvals/${id}`), 401, 'Unauthorized', /./);
    // Agents may not list or decide: approvers' access is unchanged.
    assertStatus(
      await world.call('/hoop/v1/approvals', { headers: bearer('ops-bot') }),
      403,
      'Forbidden',
      /not an approver/,
    );
    const full = await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('oncall') });
    assert.equal(typeof full.json().subject, 'string');
    assert.ok(Array.isArray(full.json().votes), 'an approver sees the whole record');

    await decide(id, 'approve');
    assert.equal(
      (await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ops-bot') })).json().state,
      'approved',
    );
    // Another subject of the same identity, another path, another body: each a new approval.
    const fresh = [
      assertTicket(await deleteCall(ns, 'ops-bot-2')),
      assertTicket(await deleteCall('ticket-header-other', 'ops-bot')),
      assertTicket(
        await deleteCall(
          ns,
          'ops-bot',
          { 'content-type': 'application/json' },
          '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}',
        ),
      ),
    ];
    assert.equal(new Set([id, ...fresh]).size, 4, 'none of them used the approved ticket');
    assert.equal(deletesOf(ns), 0);
    assert.equal((await world.gateway.approvals.get(id))?.redeemedAt, undefined);
    for (const other of fresh) await decide(other, 'deny');

    // The approved call itself runs.
    const ran = await deleteCall(ns, 'ops-bot');
    assert.equal(ran.status, 200, ran.text);
    assert.match(String(ran.headers['warning']), new RegExp(`approved by oncall.*\\(${id}\\)`));
    assert.equal(deletesOf(ns), 1);
  });

  test('a denied ticket: the identical retry is told who denied it, once; the next asks again', async () => {
    const ns = namespace('ticket-denied');
    const id = assertTicket(await deleteCall(ns, 'ops-bot'));
    await decide(id, 'deny', 'not during the freeze');
    const polled = (await world.call(`/hoop/v1/approvals/${id}`, { headers: bearer('ops-bot') })).json();
    assert.deepEqual([polled.state, polled.decisionReason], ['denied', 'not during the freeze']);
    assertStatus(
      await deleteCall(ns, 'ops-bot'),
      403,
      'Forbidden',
      new RegExp(`was denied by oncall.*: not during the freeze \\(approval ${id}\\)`),
    );
    const again = assertTicket(await deleteCall(ns, 'ops-bot'));
    assert.notEqual(again, id);
    await decide(again, 'deny');
    assert.equal(deletesOf(ns), 0);
  });

  test('concurrent identical retries of an approved ticket: exactly one runs', async () => {
    const ns = namespace('ticket-race');
    const id = assertTicket(await deleteCall(ns, 'ops-bot'));
    await decide(id, 'approve');
    const answers = await Promise.all(Array.from({ length: 6 }, () => deleteCall(ns, 'ops-bot')));
    const ran = answers.filter((a) => a.status === 200);
    assert.equal(ran.length, 1, answers.map((a) => a.status).join(','));
    const others = answers.filter((a) => a.status !== 200).map(assertTicket);
    assert.equal(new Set(others).size, 1, 'the others share one new approval');
    assert.ok(!others.includes(id));
    assert.equal(deletesOf(ns), 1);
    await decide(others[0] ?? '', 'deny');
  });

  test('a held call (wait mode) whose client gives up: the retry joins the same approval and runs once approved', async () => {
    const ns = namespace('ticket-retry');
    const controller = new AbortController();
    const first = world
      .call(`/api/v1/namespaces/${ns}`, { method: 'DELETE', headers: bearer('ops-bot'), signal: controller.signal })
      .catch((e: unknown) => e);
    const record = await waitFor('the held call', async () =>
      (await world.gateway.approvals.pending()).find((r) => r.request.name === ns),
    );
    controller.abort();
    await first;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await world.gateway.approvals.get(record.id))?.state, 'pending', 'the approval stays');
    // Approved while nobody waits; the client's retry (same call, no header) gets it.
    await decide(record.id, 'approve');
    const retry = await world.call(`/api/v1/namespaces/${ns}`, { method: 'DELETE', headers: bearer('ops-bot') });
    assert.equal(retry.status, 200, retry.text);
    assert.match(String(retry.headers['warning']), new RegExp(`\\(${record.id}\\)`));
    assert.equal(
      (await world.gateway.approvals.list()).filter((r) => r.request.name === ns).length,
      1,
      'one approval in all',
    );
    assert.equal(deletesOf(ns), 1);
  });
});
