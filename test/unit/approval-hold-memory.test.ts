// Issue #13 (10,000 held approvals): while a call is held, the approval service keeps a small
// HeldCall per call, not the call's request: the HoldRequest handed to hold() (and what it alone
// references) can be collected while the call waits. Before, the suspended hold() frame kept it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createApprovalService } from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { createMemoryApprovalRepository } from '../helpers/memory-approvals.js';
import type { HoldRequest } from '../../packages/gateway/src/approvals/service.js';
import { holdRequest as heldDelete } from '../helpers/hold-request.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const config: ApprovalConfig = {
  timeoutMs: 60_000,
  minApprovals: 1,
  grantOptionsMs: [900_000],
  approvers: { slackUsers: ['UAPPROVER'], slackUserGroups: [], oidcGroups: [], people: [] },
  maxPendingPerIdentity: 10,
};

function askedOf(): HoldRequest {
  return heldDelete();
}

const approver = { user: 'UAPPROVER', label: 'approver', at: 0, via: 'slack' as const };

describe('a held call keeps no reference to its request while it waits (issue #13)', () => {
  it('the HoldRequest is collected while held; the call is still approved and answered', async () => {
    const repo = createMemoryApprovalRepository();
    const service = createApprovalService({ repo, config, replicaId: 'r-a', pollIntervalMs: 1000 });
    const controller = new AbortController();
    // Only the weak reference outlives this block; the record the store keeps is a copy.
    let seen: WeakRef<object>;
    const outcome = (() => {
      const asked = askedOf();
      seen = new WeakRef(asked);
      return service.hold(asked, controller.signal);
    })();
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      id = (await service.pending())[0]?.id;
    }
    assert.ok(id !== undefined, 'the call is held');
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    }
    assert.equal(seen!.deref(), undefined, 'the held call still references the request it was given');
    const decided = await service.decide(id, { approve: true, actor: approver, approver: true });
    assert.equal(decided.ok, true);
    assert.equal((await outcome).state, 'approved');
    await service.shutdown('test over');
  });
});
