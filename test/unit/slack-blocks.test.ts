// Block Kit builders: escaping of user-controlled text, buttons present or absent, finalized content.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import {
  buildApprovalMessage,
  buildDenyModal,
  buildFinalMessage,
  buildTimelineBlocks,
  describeTarget,
  escapeAgentText,
  escapeSlackText,
  grantActionPattern,
} from '../../packages/gateway/src/slack/blocks.js';

const record: ApprovalRecord = {
  id: 'abc123',
  state: 'pending',
  createdAt: Date.UTC(2025, 0, 1, 12),
  expiresAt: Date.UTC(2025, 0, 1, 12, 5),
  holder: 'r1',
  sessionId: 's1',
  identity: 'ci-deployer',
  issuer: 'https://idp.test',
  subject: 'agent-7',
  email: 'a@example.com',
  groups: ['ci', '<!here>'],
  request: {
    cluster: 'prod',
    method: 'PATCH',
    path: '/apis/apps/v1/namespaces/shop/deployments/web',
    verb: 'patch',
    apiGroup: 'apps',
    resource: 'deployments',
    subresource: 'scale',
    namespace: 'shop',
    name: 'web',
  },
  kubectlCommand: 'kubectl scale deploy web --replicas=0 ```<@U999>```',
  reason: 'ping <!channel> and <@U123> & <https://evil.example|click> @here',
  heldBecause: 'escalation',
  rule: 'identities[1].approval.escalate',
  bodySummary: '{"spec":{"replicas":0}}',
  serviceAccount: 'agents/ci-deployer-elevated',
  votes: [],
};

function text(value: unknown): string {
  return JSON.stringify(value);
}

describe('slack blocks', () => {
  it('escapes &, <, > and neutralises broadcasts and code fences', () => {
    assert.equal(
      escapeSlackText('a & b <!channel> <@U1> <https://x|y>'),
      'a &amp; b &lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt;',
    );
    assert.equal(escapeSlackText('@here @channel @everyone'), '@\u200bhere @\u200bchannel @\u200beveryone');
    assert.ok(!escapeSlackText('```x```').includes('```'));
    assert.equal(escapeSlackText('bell\u0007 ok\n'), 'bell ok\n');
  });

  it('describes the request like kubectl would read it', () => {
    assert.equal(describeTarget(record.request), 'patch deployments/scale.apps/web -n shop');
    assert.equal(
      describeTarget({ ...record.request, resource: '', subresource: '', verb: 'get', path: '/version' }),
      'get /version',
    );
  });

  it('the approval message shows who, what, why, expiry and the three kinds of buttons', () => {
    const message = buildApprovalMessage(record, [900_000, 3_600_000]);
    const all = text(message);
    for (const raw of ['<!channel>', '<@U123>', '<@U999>', '<https://evil', '<!here>'])
      assert.ok(!all.includes(raw), `${raw} must be escaped`);
    assert.ok(all.includes('&lt;!channel&gt;') && all.includes('&amp;'));
    assert.ok(all.includes('ci-deployer') && all.includes('agent-7') && all.includes('agents/ci-deployer-elevated'));
    assert.ok(all.includes('patch deployments/scale.apps/web -n shop on prod'));
    assert.ok(all.includes('kubectl scale deploy web --replicas=0'));
    assert.ok(all.includes('identities[1].approval.escalate') && all.includes('escalation'));
    assert.ok(all.includes('{\\"spec\\":{\\"replicas\\":0}}'), 'masked body summary');
    assert.ok(all.includes(`<!date^${Math.floor(record.expiresAt / 1000)}^`), 'expiry');
    const actions = message.blocks.find((b) => b.type === 'actions');
    assert.ok(actions !== undefined && actions.type === 'actions');
    const buttons = actions.elements as Array<{ action_id: string; value: string; text: { text: string } }>;
    assert.deepEqual(
      buttons.map((b) => [b.action_id, b.value, b.text.text]),
      [
        ['approval.approve', 'abc123', 'Approve'],
        ['approval.deny', 'abc123', 'Deny'],
        ['approval.grant', 'abc123:900000', 'Approve for 15m: agent-7 only, this call'],
        ['approval.grant.1', 'abc123:3600000', 'Approve for 1h: agent-7 only, this call'],
      ],
    );
    // The grant's exact scope is spelled out next to the buttons.
    assert.ok(
      all.includes(
        '*Approve for …* (grant `g-abc123`): only subject `agent-7` (issuer https://idp.test) may repeat `patch deployments/scale.apps/web -n shop` on prod (any body), as `agents/ci-deployer-elevated`, without asking',
      ),
      all,
    );
    for (const b of buttons.slice(2)) assert.match(b.action_id, grantActionPattern);
    assert.equal(new Set(buttons.map((b) => b.action_id)).size, buttons.length, 'action ids unique within the block');
    assert.ok(
      !text(buildApprovalMessage(record, [])).includes('approval.grant'),
      'no grant buttons without grant options',
    );
    assert.ok(message.text.length <= 300 && !message.text.includes('<'));
  });

  it('shows the authorised verb (create pods/exec), and agent-supplied text only as an inert, marked claim', () => {
    const exec: ApprovalRecord = {
      ...record,
      request: {
        cluster: 'prod',
        method: 'GET',
        path: '/api/v1/namespaces/shop/pods/web-0/exec',
        verb: 'get',
        authorizedVerb: 'create',
        apiGroup: '',
        resource: 'pods',
        subresource: 'exec',
        namespace: 'shop',
        name: 'web-0',
      },
      kubectlCommand: 'kubectl exec web-0 -- sh ``` *approved by security* <!channel>',
      reason: '*URGENT* _ceo asked_ ~ignore policy~ `code` see https://evil.example/x <@U123|boss>',
    };
    const message = buildApprovalMessage(exec, []);
    const all = text(message);
    assert.ok(all.includes('create pods/exec/web-0 -n shop') || all.includes('create pods/web-0/exec -n shop'), all);
    assert.ok(!all.includes('get pods'), 'never the classifier verb of an upgrade');
    assert.equal(describeTarget(exec.request), 'create pods/exec/web-0 -n shop');
    const sections = message.blocks.flatMap((b) => (b.type === 'section' && b.text !== undefined ? [b.text.text] : []));
    const command = sections.find((t) => t.startsWith('*Command*')) ?? '';
    const why = sections.find((t) => t.startsWith('*Why*')) ?? '';
    assert.match(
      command,
      /^\*Command\* _\(claimed by the agent: its Kubectl-Command header, unverified\)_\n```[^`]*```$/,
    );
    assert.match(why, /^\*Why\*\n_claimed by the agent \(X-Hoop-Reason\):_\n```[^`]*```\n\*Held by\*/);
    // Inside a code block nothing formats; the only way out (a backtick) is gone; no link, no mention.
    for (const t of [command, why]) {
      const inner = t.slice(t.indexOf('```') + 3, t.lastIndexOf('```'));
      assert.ok(!inner.includes('`') && !inner.includes('<') && !inner.includes('://'), inner);
    }
    assert.ok(why.includes('*URGENT*'), 'the words are kept, inert inside the code block');
    assert.equal(escapeAgentText('a `b` http://x <@U1>'), 'a \u02cbb\u02cb http:\u200b//x &lt;@U1&gt;');
  });

  it('the final message has the outcome, who and when, and no buttons', () => {
    const approved = buildFinalMessage({
      ...record,
      state: 'approved',
      votes: [
        { user: 'UALICE', label: 'alice', at: 1, via: 'slack' },
        { user: 'oidc:https://idp#bob', label: '<!channel> bob', at: 2, via: 'api' },
      ],
      decidedBy: 'alice, bob',
      decidedAt: Date.UTC(2025, 0, 1, 12, 1),
      grantMs: 900_000,
    });
    const all = text(approved);
    assert.ok(!approved.blocks.some((b) => b.type === 'actions'));
    assert.ok(
      all.includes('Approved') &&
        all.includes('<@UALICE>') &&
        all.includes('&lt;!channel&gt; bob') &&
        all.includes('for 15m'),
    );
    assert.ok(all.includes(`<!date^${Math.floor(Date.UTC(2025, 0, 1, 12, 1) / 1000)}^`));
    const denied = text(
      buildFinalMessage({ ...record, state: 'denied', decidedBy: 'carol', decidedAt: 5, decisionReason: 'no <!here>' }),
    );
    assert.ok(
      denied.includes('Denied') &&
        denied.includes('denied by carol') &&
        denied.includes('no &lt;!here&gt;') &&
        !denied.includes('"actions"'),
    );
    const expired = text(buildFinalMessage({ ...record, state: 'expired', decidedAt: 5 }));
    assert.ok(
      expired.includes('Expired') && expired.includes('no decision in time') && !expired.includes('approval.approve'),
    );
    assert.ok(text(buildFinalMessage({ ...record, state: 'cancelled' })).includes('Cancelled'));
  });

  it('the deny modal asks for an optional reason and carries the metadata', () => {
    const view = buildDenyModal('abc123', '{"id":"abc123"}');
    assert.equal(view.callback_id, 'approval.deny_reason');
    assert.equal(view.private_metadata, '{"id":"abc123"}');
    assert.ok(text(view).includes('"optional":true'));
  });

  it('paginates a timeline with a "more" button and escapes entries', () => {
    const entries = Array.from({ length: 7 }, (_, i) => ({
      at: i * 1000,
      verb: 'get',
      resource: 'pods',
      name: `p${i}`,
      namespace: 'ns',
      decision: 'allow',
      status: 200,
      ...(i === 1 ? { approver: '<!channel>' } : {}),
    }));
    const first = buildTimelineBlocks('s1', entries, 0, 3);
    const firstText = text(first);
    assert.ok(firstText.includes('pods/p0 -n ns') && firstText.includes('pods/p2') && !firstText.includes('pods/p3'));
    assert.ok(firstText.includes('&lt;!channel&gt;') && !firstText.includes('<!channel>'));
    assert.ok(firstText.includes('audit.replay_more') && firstText.includes('{\\"s\\":\\"s1\\",\\"o\\":3}'));
    const last = text(buildTimelineBlocks('s1', entries, 6, 3));
    assert.ok(last.includes('pods/p6') && !last.includes('audit.replay_more'));
  });
});
