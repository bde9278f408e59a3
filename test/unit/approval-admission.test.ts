// Admission of held calls in batches (approvals/admission.ts, issue #13): each identity's pending count
// is read from the store once per batch and kept in step as the batch adds approvals — O(1) per call,
// not a store count and a scan of the batch for each of 10,000 calls — and the cap still holds:
// at approval.maxPendingPerIdentity a new hold is refused with 429 and retryAfterSeconds, and a
// decision frees a place for the next batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApprovalService } from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord, ApprovalRepository } from '../../packages/gateway/src/approvals/types.js';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { holdRequest } from '../helpers/hold-request.js';
import { createMemoryApprovalRepository } from '../helpers/memory-approvals.js';

const config: ApprovalConfig = {
  timeoutMs: 60_000,
  minApprovals: 1,
  grantOptionsMs: [900_000],
  approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [] },
  maxPendingPerIdentity: 25,
};

/** The memory repository with pendingCount (as SQLite and MongoDB have it), its calls counted. */
function countingRepo(): { repo: ApprovalRepository; counts: string[] } {
  const base = createMemoryApprovalRepository();
  const counts: string[] = [];
  const repo: ApprovalRepository = {
    ...base,
    async pendingCount(identity, now) {
      counts.push(identity);
      const mine = (await base.list({ state: 'pending' })).filter((r) => r.identity === identity && r.expiresAt > now);
      return { count: mine.length, nextExpiry: Math.min(...mine.map((r) => r.expiresAt)) };
    },
  };
  return { repo, counts };
}

const distinct = (i: number, identity = 'ci-deployer') =>
  holdRequest({
    identity,
    fingerprint: `${identity}-${i}`,
    request: { ...holdRequest().request, name: `ns-${i}`, path: `/api/v1/namespaces/ns-${i}` },
  });

async function pendingOf(repo: ApprovalRepository, identity: string): Promise<ApprovalRecord[]> {
  return (await repo.list({ state: 'pending' })).filter((r) => r.identity === identity);
}

test('a batch reads each identity’s pending count once, and the cap counts the batch’s own approvals', async () => {
  const { repo, counts } = countingRepo();
  let now = 1_000_000;
  const service = createApprovalService({ repo, config, replicaId: 'r-a', clock: () => now });
  const signal = new AbortController().signal;
  const holds = [
    ...Array.from({ length: 40 }, (_, i) => service.hold(distinct(i), signal)),
    ...Array.from({ length: 5 }, (_, i) => service.hold(distinct(i, 'reader'), signal)),
  ].map((hold) =>
    hold.then(
      () => 'ended',
      (error: HoopError) => error,
    ),
  );
  for (let i = 0; i < 200 && (await repo.list({ state: 'pending' })).length < 30; i++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(counts.sort(), ['ci-deployer', 'reader'], 'one count per identity for the whole batch');
  assert.equal((await pendingOf(repo, 'ci-deployer')).length, 25, 'the cap holds within the batch');
  assert.equal((await pendingOf(repo, 'reader')).length, 5, 'another identity is not affected');
  const refused = (await Promise.all(holds.slice(25, 40))) as HoopError[];
  for (const error of refused) {
    assert.ok(error instanceof HoopError);
    assert.equal(error.code, 'ERR_TOO_MANY_REQUESTS');
    assert.equal(error.status, 429);
    assert.equal(error.details?.['retryAfterSeconds'], 60, 'retry when the oldest pending one expires');
    assert.match(
      error.message,
      /^identity "ci-deployer" already has 25 requests waiting for approval \(the gateway's limit is 25\); wait for a decision or retry in 60s$/,
    );
  }

  // A decision frees a place: the next batch reads the count again and admits one more, then refuses.
  const [first] = await pendingOf(repo, 'ci-deployer');
  assert.ok(first !== undefined);
  const actor = { user: 'oncall', label: 'oncall', at: now, via: 'api' as const };
  assert.equal((await service.decide(first.id, { approve: false, actor, approver: true })).ok, true);
  now += 10_000;
  const next = [service.hold(distinct(100), signal), service.hold(distinct(101), signal)].map((hold) =>
    hold.then(
      () => 'ended',
      (error: HoopError) => error,
    ),
  );
  const over = (await next[1]) as HoopError;
  assert.equal(over.code, 'ERR_TOO_MANY_REQUESTS');
  assert.equal(over.details?.['retryAfterSeconds'], 50);
  assert.equal((await pendingOf(repo, 'ci-deployer')).length, 25);
  assert.equal(counts.filter((identity) => identity === 'ci-deployer').length, 2, 'one more count, for the next batch');
  await service.shutdown('test over');
  await Promise.all([...holds, ...next]);
});
