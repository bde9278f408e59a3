// Stage 9 (pipeline/hold.ts): a held call that was approved claims its approval in the store before it
// runs; when an identical call already used that approval (ticket redemption), the held call is refused
// instead of running a second time on one approval. The approval service itself is tested with real
// stores in approval-service.test.ts; here its answers are fixed to reach each branch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApprovalService } from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { parseRequestInfo } from '../../packages/gateway/src/kube/request-info.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { holdForApproval, type HoldInput } from '../../packages/gateway/src/pipeline/hold.js';

const record = {
  id: 'a1b2c3',
  state: 'approved',
  votes: [{ label: 'alice' }],
  createdAt: 1_000,
  expiresAt: 301_000,
} as unknown as ApprovalRecord;

function input(markAnswered: () => Promise<boolean>, claimed: string[]): HoldInput {
  const approvals = {
    redeemTicket: () => Promise.resolve(null),
    hold: () => Promise.resolve({ state: 'approved', record }),
    markAnswered: (id: string) => {
      claimed.push(id);
      return markAnswered();
    },
  } as unknown as ApprovalService;
  return {
    approvals,
    request: {
      method: 'DELETE',
      rawUrl: '/api/v1/namespaces/prod',
      rawHeaders: [],
      headers: {},
      signal: new AbortController().signal,
    },
    routed: { cluster: 'prod', path: '/api/v1/namespaces/prod' },
    info: parseRequestInfo('DELETE', '/api/v1/namespaces/prod'),
    principal: { issuer: 'https://idp.example.com', subject: 'bot', groups: [] },
    identity: { name: 'ci-deployer', approval: { mode: 'wait' } },
    decision: { effect: 'approve', reason: 'approval-required', serviceAccount: 'agents/deployer' },
    audit: { sessionId: 's-1' },
    mode: 'wait',
    config: { approval: {} },
  } as unknown as HoldInput;
}

test('an approved held call claims its approval before it runs', async () => {
  const claimed: string[] = [];
  const result = await holdForApproval(input(() => Promise.resolve(true), claimed));
  assert.deepEqual(claimed, ['a1b2c3']);
  assert.equal(result.ok, true);
  if (result.ok) assert.match(result.warning, /hoopgate: approved by alice \(a1b2c3\)/);
});

test('an approved held call whose approval an identical call already used is refused, not run twice', async () => {
  const claimed: string[] = [];
  const result = await holdForApproval(input(() => Promise.resolve(false), claimed));
  assert.deepEqual(claimed, ['a1b2c3']);
  assert.equal(result.ok, false);
  if (result.ok) return;
  const { error, reason } = result.refusal;
  assert.equal(reason, 'approval-used');
  assert.equal(error.status, 403);
  assert.equal(error.code, 'ERR_APPROVAL_REQUIRED');
  const status = statusFromError(error);
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, 403);
  assert.equal(status.reason, 'Forbidden');
  assert.match(
    status.message,
    /^hoopgate: approval a1b2c3 for .+ was already used by an identical call, which ran; this one was not run\. Send it again to ask for a new approval$/,
  );
  assert.equal(result.approval?.id, 'a1b2c3');
});

test('a held call whose approval cannot be claimed (the store is down) is not run', async () => {
  const claimed: string[] = [];
  await assert.rejects(holdForApproval(input(() => Promise.reject(new Error('store down')), claimed)), /store down/);
  assert.deepEqual(claimed, ['a1b2c3']);
});
