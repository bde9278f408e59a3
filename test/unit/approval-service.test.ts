// The approval state machine against the in-memory repository and, when the store exists, SQLite:
// decisions, races, expiry, cancellation, grants, cross-replica resolution and orphans.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createApprovalService,
  type ApprovalNotifier,
  type HoldRequest,
} from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord, ApprovalRepository, ApprovalVote } from '../../packages/gateway/src/approvals/types.js';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createMemoryApprovalRepository } from '../helpers/memory-approvals.js';
import { holdRequest as heldDelete } from '../helpers/hold-request.js';

const baseConfig: ApprovalConfig = {
  timeoutMs: 5_000,
  minApprovals: 1,
  grantOptionsMs: [900_000],
  approvers: {
    slackUsers: ['UAPPROVER'],
    slackUserGroups: [],
    oidcGroups: [{ issuer: 'https://idp.test', group: 'oncall' }],
    people: [],
  },
  maxPendingPerIdentity: 10,
};

const agent7 = { identity: 'ci-deployer', issuer: 'https://idp.test', subject: 'agent-7' };

export function holdRequest(overrides: Partial<HoldRequest> = {}): HoldRequest {
  return heldDelete({ email: 'agent@example.com', rule: 'identities[0].approval.require[0]', ...overrides });
}

function vote(user: string, via: ApprovalVote['via'] = 'slack'): ApprovalVote {
  return { user, label: `label-${user}`, at: 0, via };
}

interface RecordingNotifier extends ApprovalNotifier {
  postedRecords: ApprovalRecord[];
  finalized: ApprovalRecord[];
  replies: string[];
}

function recordingNotifier(): RecordingNotifier {
  const n: RecordingNotifier = {
    postedRecords: [],
    finalized: [],
    replies: [],
    async posted(record) {
      n.postedRecords.push(record);
      return { channel: 'C1', ts: `${n.postedRecords.length}.000` };
    },
    async finalize(record) {
      n.finalized.push(record);
    },
    async threadReply(_record, text) {
      n.replies.push(text);
    },
  };
  return n;
}

/** Waits until the hold's record exists (it is created asynchronously by hold()). */
async function firstPending(repo: ApprovalRepository): Promise<ApprovalRecord> {
  for (let i = 0; i < 200; i += 1) {
    const [first] = await repo.list({ state: 'pending' });
    if (first !== undefined && first.slack !== undefined) return first;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('no pending approval appeared');
}

type RepoFactory = () => Promise<{ repo: ApprovalRepository; close: () => Promise<void> }>;

const factories: Array<[string, RepoFactory]> = [
  ['memory', async () => ({ repo: createMemoryApprovalRepository(), close: async () => {} })],
];

// The SQLite store is written by another module; run the same table against it when it is present.
const storeModule = '../../packages/gateway/src/store/index.js';
try {
  const { createStore } = (await import(storeModule)) as {
    createStore: (
      url: string,
      options: { replicaId: string },
    ) => Promise<{ approvals: ApprovalRepository; close?: () => Promise<void> }>;
  };
  factories.push([
    'sqlite',
    async () => {
      const store = await createStore('sqlite::memory:', { replicaId: 'r-a' });
      return { repo: store.approvals, close: async () => store.close?.() };
    },
  ]);
} catch (error) {
  // Not there yet; any other failure of the store must fail the run.
  if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
}

for (const [name, makeRepo] of factories) {
  describe(`approval service (${name} repository)`, () => {
    async function setup(config: Partial<ApprovalConfig> = {}, replicaId = 'r-a') {
      const { repo, close } = await makeRepo();
      const notifier = recordingNotifier();
      const service = createApprovalService({
        repo,
        notifier,
        config: { ...baseConfig, ...config },
        replicaId,
        pollIntervalMs: 50,
      });
      return { repo, notifier, service, close };
    }

    it('approve resolves the hold, finalizes once and records who', async () => {
      const { repo, notifier, service, close } = await setup();
      const held = service.hold(holdRequest(), new AbortController().signal);
      const pending = await firstPending(repo);
      assert.deepEqual(pending.slack, { channel: 'C1', ts: '1.000' });
      assert.equal(pending.holder, 'r-a');
      assert.equal(pending.expiresAt - pending.createdAt, 5_000);
      const result = await service.decide(pending.id, {
        approve: true,
        actor: vote('U1'),
        approver: true,
        email: 'human@example.com',
      });
      assert.equal(result.ok, true);
      const outcome = await held;
      assert.equal(outcome.state, 'approved');
      assert.equal(outcome.record.decidedBy, 'label-U1');
      assert.equal(outcome.record.votes.length, 1);
      assert.equal(notifier.finalized.length, 1);
      assert.equal(notifier.finalized[0]?.state, 'approved');
      await close();
    });

    it('deny resolves with the reason; a second click changes nothing', async () => {
      const { repo, notifier, service, close } = await setup();
      const held = service.hold(holdRequest(), new AbortController().signal);
      const pending = await firstPending(repo);
      const denied = await service.decide(pending.id, {
        approve: false,
        actor: vote('U1'),
        approver: true,
        reason: 'not during the freeze',
      });
      assert.equal(denied.ok, true);
      const outcome = await held;
      assert.equal(outcome.state, 'denied');
      assert.equal(outcome.record.decisionReason, 'not during the freeze');
      const again = await service.decide(pending.id, { approve: true, actor: vote('U2'), approver: true });
      assert.deepEqual([again.ok, again.ok ? '' : again.why], [false, 'not-pending']);
      assert.equal((await repo.get(pending.id))?.state, 'denied');
      assert.equal(notifier.finalized.length, 1);
      await close();
    });

    it('double click by the same approver with minApprovals 2 counts once', async () => {
      const { repo, notifier, service, close } = await setup({ minApprovals: 2 });
      const held = service.hold(holdRequest(), new AbortController().signal);
      const pending = await firstPending(repo);
      const first = await service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true });
      assert.equal(first.ok && first.record.state, 'pending');
      const second = await service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true });
      assert.deepEqual([second.ok, second.ok ? '' : second.why], [false, 'already-voted']);
      assert.equal((await repo.get(pending.id))?.state, 'pending');
      assert.deepEqual(notifier.replies, ['label-U1 approved (1 of 2 approvals)']);
      const third = await service.decide(pending.id, { approve: true, actor: vote('U2'), approver: true });
      assert.equal(third.ok && third.record.state, 'approved');
      const outcome = await held;
      assert.equal(outcome.state, 'approved');
      assert.deepEqual(
        outcome.record.votes.map((v) => v.user),
        ['U1', 'U2'],
      );
      assert.equal(outcome.record.decidedBy, 'label-U1, label-U2');
      assert.equal(notifier.finalized.length, 1);
      await close();
    });

    it('concurrent approve and deny (and repeated clicks) yield exactly one decision', async () => {
      for (let round = 0; round < 5; round += 1) {
        const { repo, notifier, service, close } = await setup();
        const held = service.hold(holdRequest(), new AbortController().signal);
        const pending = await firstPending(repo);
        const results = await Promise.all([
          service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true }),
          service.decide(pending.id, { approve: false, actor: vote('U2'), approver: true }),
          service.decide(pending.id, { approve: true, actor: vote('U3'), approver: true }),
          service.decide(pending.id, { approve: false, actor: vote('U4'), approver: true }),
        ]);
        const outcome = await held;
        const winners = results.filter((r) => r.ok);
        assert.ok(winners.length >= 1);
        for (const w of winners) assert.equal(w.ok && w.record.state, outcome.state);
        if (outcome.state === 'denied') assert.equal(winners.length, 1);
        assert.equal(notifier.finalized.length, 1, 'finalized exactly once');
        assert.equal((await repo.get(pending.id))?.state, outcome.state);
        await close();
      }
    });

    it('refuses self-approval (case-insensitive email) and non-approvers; state unchanged', async () => {
      const { repo, service, close } = await setup();
      const held = service.hold(holdRequest({ email: 'Agent@Example.com' }), new AbortController().signal);
      const pending = await firstPending(repo);
      const self = await service.decide(pending.id, {
        approve: true,
        actor: vote('U1'),
        approver: true,
        email: 'agent@example.COM',
      });
      assert.deepEqual([self.ok, self.ok ? '' : self.why], [false, 'self-approval']);
      const outsider = await service.decide(pending.id, { approve: false, actor: vote('U9'), approver: false });
      assert.deepEqual([outsider.ok, outsider.ok ? '' : outsider.why], [false, 'not-approver']);
      const missing = await service.decide('nope', { approve: true, actor: vote('U1'), approver: true });
      assert.deepEqual([missing.ok, missing.ok ? '' : missing.why], [false, 'not-found']);
      const badGrant = await service.decide(pending.id, {
        approve: true,
        actor: vote('U1'),
        approver: true,
        grantMs: 86_400_000,
      });
      assert.deepEqual([badGrant.ok, badGrant.ok ? '' : badGrant.why], [false, 'invalid-grant']);
      const current = await repo.get(pending.id);
      assert.equal(current?.state, 'pending');
      assert.equal(current?.votes.length, 0);
      await service.decide(pending.id, { approve: false, actor: vote('U1'), approver: true });
      assert.equal((await held).state, 'denied');
      await close();
    });

    it('expires at approval.timeout and finalizes', async () => {
      const { repo, notifier, service, close } = await setup({ timeoutMs: 150 });
      const started = Date.now();
      const outcome = await service.hold(holdRequest(), new AbortController().signal);
      const elapsed = Date.now() - started;
      assert.equal(outcome.state, 'expired');
      assert.ok(elapsed >= 140 && elapsed < 1_000, `expired after ${elapsed} ms`);
      assert.equal((await repo.get(outcome.record.id))?.state, 'expired');
      assert.equal(notifier.finalized.length, 1);
      assert.equal(notifier.finalized[0]?.state, 'expired');
      const late = await service.decide(outcome.record.id, { approve: true, actor: vote('U1'), approver: true });
      assert.deepEqual([late.ok, late.ok ? '' : late.why], [false, 'not-pending']);
      await close();
    });

    it('the requester disconnecting leaves the approval pending: its retry joins it, and once decided gets the decision once (issue #16)', async () => {
      const { repo, notifier, service, close } = await setup();
      const controller = new AbortController();
      const held = service.hold(holdRequest({ fingerprint: 'fp' }), controller.signal);
      const pending = await firstPending(repo);
      controller.abort();
      await assert.rejects(held, /approval [0-9a-f]+: the requester disconnected/);
      assert.equal((await repo.get(pending.id))?.state, 'pending', 'nothing was cancelled');
      assert.equal(notifier.finalized.length, 0);
      for (let i = 0; i < 100 && notifier.replies.length === 0; i += 1) await new Promise((r) => setTimeout(r, 5));
      assert.match(notifier.replies.join('\n'), /The agent stopped waiting/);
      // The client's retry joins the same approval: no second one, no second message.
      const retry = await service.openTicket(holdRequest({ fingerprint: 'fp' }));
      assert.deepEqual([retry.record.id, retry.joined], [pending.id, true]);
      assert.equal((await repo.list()).length, 1);
      assert.equal(notifier.postedRecords.length, 1);
      assert.equal(await service.redeemTicket('ci-deployer', 'fp'), null, 'nothing to redeem while pending');
      const decided = await service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true });
      assert.equal(decided.ok, true);
      assert.equal(await service.redeemTicket('ci-deployer', 'other'), null, 'another call never redeems it');
      assert.equal(await service.redeemTicket('reader', 'fp'), null, 'another identity never redeems it');
      const redeemed = await service.redeemTicket('ci-deployer', 'fp');
      assert.equal(redeemed?.id, pending.id);
      assert.equal(redeemed?.state, 'approved');
      assert.equal(await service.redeemTicket('ci-deployer', 'fp'), null, 'once only');
      await close();
    });

    it('a held call told its outcome uses the approval: an identical call later needs a new one', async () => {
      const { repo, service, close } = await setup();
      const held = service.hold(holdRequest({ fingerprint: 'fp' }), new AbortController().signal);
      const pending = await firstPending(repo);
      await service.decide(pending.id, { approve: false, actor: vote('U1'), approver: true });
      assert.equal((await held).state, 'denied');
      await service.markAnswered(pending.id);
      assert.equal(await service.redeemTicket('ci-deployer', 'fp'), null);
      await close();
    });

    it('an approved held call whose approval an identical call already used does not claim it again', async () => {
      const { repo, service, close } = await setup();
      const held = service.hold(holdRequest({ fingerprint: 'fp' }), new AbortController().signal);
      const pending = await firstPending(repo);
      await service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true });
      assert.equal((await held).state, 'approved');
      const used = await service.redeemTicket('ci-deployer', 'fp');
      assert.equal(used?.id, pending.id, 'the identical call used the approval first');
      assert.equal(await service.markAnswered(pending.id), false, 'the held call may not run on it too');
      await close();
    });

    it('a denied ticket is told once to the identical retry; an approved one not used within approval.ticketTTL is gone', async () => {
      const { repo, close } = await makeRepo();
      let now = 1_000_000;
      const service = createApprovalService({
        repo,
        config: { ...baseConfig, ticketTtlMs: 60_000 },
        replicaId: 'r-a',
        pollIntervalMs: 50,
        clock: () => now,
      });
      const denied = await service.openTicket(holdRequest({ fingerprint: 'd' }));
      assert.equal(denied.record.ticket, true);
      await service.decide(denied.record.id, { approve: false, actor: vote('U1'), approver: true, reason: 'no' });
      assert.equal((await service.redeemTicket('ci-deployer', 'd'))?.state, 'denied');
      assert.equal(await service.redeemTicket('ci-deployer', 'd'), null, 'told once: the next call asks again');
      const approved = await service.openTicket(holdRequest({ fingerprint: 'a' }));
      await service.decide(approved.record.id, { approve: true, actor: vote('U1'), approver: true });
      now += 60_000;
      assert.equal(await service.redeemTicket('ci-deployer', 'a'), null, 'past the TTL');
      assert.equal((await repo.get(approved.record.id))?.redeemedAt, undefined);
      await service.shutdown('test over');
      await close();
    });

    it('approve with a grant creates a grant for the same request shape until now+grantMs', async () => {
      const { repo, close } = await makeRepo();
      let now = 1_000_000;
      const service = createApprovalService({
        repo,
        config: baseConfig,
        replicaId: 'r-a',
        pollIntervalMs: 50,
        clock: () => now,
      });
      const held = service.hold(holdRequest(), new AbortController().signal);
      let pending: ApprovalRecord | undefined;
      while (pending === undefined) {
        [pending] = await repo.list({ state: 'pending' });
        await new Promise((r) => setTimeout(r, 5));
      }
      const result = await service.decide(pending.id, {
        approve: true,
        actor: vote('U1'),
        approver: true,
        grantMs: 900_000,
      });
      assert.equal(result.ok && result.record.grantMs, 900_000);
      assert.equal((await held).state, 'approved');
      const shape = holdRequest().request;
      const grant = await service.findGrant(agent7, 'prod', shape, now + 1);
      assert.ok(grant);
      assert.equal(grant.approvalId, pending.id);
      assert.equal(grant.expiresAt, 1_000_000 + 900_000);
      assert.equal(grant.serviceAccount, 'agents/ci-deployer');
      assert.equal(grant.grantedBy, 'label-U1');
      assert.equal(await service.findGrant(agent7, 'prod', { ...shape, name: 'staging' }, now + 1), undefined);
      assert.equal(await service.findGrant(agent7, 'dev', shape, now + 1), undefined);
      assert.equal(await service.findGrant({ ...agent7, identity: 'other' }, 'prod', shape, now + 1), undefined);
      // Another subject of the same identity (same group), or the same sub from another issuer: not covered.
      assert.equal(await service.findGrant({ ...agent7, subject: 'agent-8' }, 'prod', shape, now + 1), undefined);
      assert.equal(
        await service.findGrant({ ...agent7, issuer: 'https://other.test' }, 'prod', shape, now + 1),
        undefined,
      );
      assert.equal(grant.subject, 'agent-7');
      assert.equal(grant.issuer, 'https://idp.test');
      // Listed while active, revoked once, then gone for everyone.
      assert.deepEqual(
        (await service.grants()).map((g) => g.id),
        [grant.id],
      );
      const revoked = await service.revokeGrant(grant.id, 'alice');
      assert.equal(revoked?.revokedBy, 'alice');
      assert.equal(await service.revokeGrant(grant.id, 'bob'), null, 'revoked once');
      assert.equal(
        await service.findGrant(agent7, 'prod', shape, now + 1),
        undefined,
        'a revoked grant allows nothing',
      );
      assert.deepEqual(await service.grants(), []);
      assert.equal((await service.grants({ all: true }))[0]?.revokedAt, now);
      assert.equal(await service.findGrant(agent7, 'prod', { ...shape, verb: 'get' }, now + 1), undefined);
      now += 900_000;
      assert.equal(await service.findGrant(agent7, 'prod', shape, now), undefined, 'expired grant');
      await close();
    });

    it('a decision taken on replica B resolves the hold on replica A within 1 s', async () => {
      const { repo, close } = await makeRepo();
      const notifierA = recordingNotifier();
      const notifierB = recordingNotifier();
      const a = createApprovalService({ repo, notifier: notifierA, config: baseConfig, replicaId: 'r-a' });
      const b = createApprovalService({ repo, notifier: notifierB, config: baseConfig, replicaId: 'r-b' });
      const held = a.hold(holdRequest(), new AbortController().signal);
      const pending = await firstPending(repo);
      const decidedAt = performance.now();
      const result = await b.decide(pending.id, { approve: true, actor: vote('U1'), approver: true });
      assert.equal(result.ok, true);
      const outcome = await held;
      const latency = performance.now() - decidedAt;
      assert.equal(outcome.state, 'approved');
      assert.ok(latency < 1_000, `resolved after ${latency.toFixed(0)} ms`);
      console.log(`# cross-replica resolution (${name}, poll 250 ms): ${latency.toFixed(0)} ms`);
      assert.equal(notifierB.finalized.length, 1, 'the deciding replica finalizes');
      assert.equal(notifierA.finalized.length, 0, 'the holding replica does not');
      await close();
    });

    it('on start, cancels this replica’s orphans and expires overdue pendings; others stay', async () => {
      const { repo, close } = await makeRepo();
      const now = Date.now();
      const base = { ...holdRequest(), state: 'pending' as const, votes: [], createdAt: now - 10_000 };
      await repo.create({
        ...base,
        id: 'mine',
        holder: 'r-a',
        expiresAt: now + 60_000,
        slack: { channel: 'C1', ts: '9.1' },
      });
      await repo.create({ ...base, id: 'overdue', holder: 'r-b', expiresAt: now - 1 });
      await repo.create({ ...base, id: 'theirs', holder: 'r-b', expiresAt: now + 60_000 });
      const notifier = recordingNotifier();
      const service = createApprovalService({ repo, notifier, config: baseConfig, replicaId: 'r-a' });
      assert.equal(await service.cancelOrphans(), 2);
      assert.equal((await repo.get('mine'))?.state, 'cancelled');
      assert.equal((await repo.get('overdue'))?.state, 'expired');
      assert.equal((await repo.get('theirs'))?.state, 'pending');
      assert.deepEqual(notifier.finalized.map((r) => `${r.id}:${r.state}`).sort(), [
        'mine:cancelled',
        'overdue:expired',
      ]);
      assert.deepEqual(notifier.finalized.find((r) => r.id === 'mine')?.slack, { channel: 'C1', ts: '9.1' });
      assert.deepEqual(
        (await service.pending()).map((r) => r.id),
        ['theirs'],
      );
      await close();
    });

    it('sweep expires overdue pendings of any replica', async () => {
      const { repo, close } = await makeRepo();
      let now = 10_000;
      const base = { ...holdRequest(), state: 'pending' as const, votes: [], createdAt: now };
      await repo.create({ ...base, id: 'x', holder: 'gone', expiresAt: now + 100 });
      const service = createApprovalService({ repo, config: baseConfig, replicaId: 'r-a', clock: () => now });
      assert.equal(await service.sweep(), 0);
      now += 100;
      assert.equal(await service.sweep(), 1);
      assert.equal((await repo.get('x'))?.state, 'expired');
      await close();
    });

    it('shutdown cancels held requests (finalized) and their holds reject with ERR_SHUTTING_DOWN', async () => {
      const { repo } = await makeRepo().then((r) => ({ repo: r.repo, close: r.close }));
      const notifier = recordingNotifier();
      const gauge: number[] = [];
      const service = createApprovalService({
        repo,
        notifier,
        config: baseConfig,
        replicaId: 'r-a',
        onPendingChange: (d) => gauge.push(d),
      });
      const held = service.hold(holdRequest(), new AbortController().signal);
      const pending = await firstPending(repo);
      await service.shutdown('gateway restarting, run again');
      await assert.rejects(
        held,
        (error: unknown) =>
          error instanceof HoopError && error.code === 'ERR_SHUTTING_DOWN' && /gateway restarting/.test(error.message),
      );
      const record = await repo.get(pending.id);
      assert.equal(record?.state, 'cancelled');
      assert.equal(record?.decisionReason, 'gateway restarting, run again');
      assert.deepEqual(
        notifier.finalized.map((r) => r.state),
        ['cancelled'],
      );
      assert.deepEqual(gauge, [1, -1]);
      await assert.rejects(
        service.hold(holdRequest(), new AbortController().signal),
        (error: unknown) => error instanceof HoopError && error.code === 'ERR_SHUTTING_DOWN',
      );
    });

    it('startSweeps expires another replica’s overdue pending on schedule; the stopper stops it', async () => {
      const { repo, close } = await makeRepo();
      const now = Date.now();
      await repo.create({
        ...holdRequest(),
        id: 'stale',
        state: 'pending',
        votes: [],
        createdAt: now - 5_000,
        holder: 'dead',
        expiresAt: now - 1,
      });
      const service = createApprovalService({ repo, config: baseConfig, replicaId: 'r-a', sweepEveryMs: 20 });
      const sweeps = service.startSweeps();
      try {
        for (let i = 0; i < 300 && (await repo.get('stale'))?.state === 'pending'; i += 1)
          await new Promise((r) => setTimeout(r, 10));
        assert.equal((await repo.get('stale'))?.state, 'expired');
      } finally {
        await sweeps.stop();
      }
      await close();
    });

    it('fails closed when the store is down: no hold without a record, none outlives its expiry', async () => {
      const { repo, close } = await makeRepo();
      let down = false;
      let offset = 0;
      const fail = async (): Promise<never> => {
        throw new Error('store down');
      };
      const flaky: ApprovalRepository = {
        ...repo,
        create: (r) => (down ? fail() : repo.create(r)),
        list: (f) => (down ? fail() : repo.list(f)),
        get: (id) => (down ? fail() : repo.get(id)),
        transition: (...a) => (down ? fail() : repo.transition(...a)),
      };
      const service = createApprovalService({
        repo: flaky,
        config: { ...baseConfig, timeoutMs: 1_000 },
        replicaId: 'r-a',
        pollIntervalMs: 20,
        clock: () => Date.now() + offset,
      });
      const held = service.hold(holdRequest(), new AbortController().signal);
      const isUnavailable = (error: unknown) => error instanceof HoopError && error.code === 'ERR_AUDIT_UNAVAILABLE';
      await new Promise((r) => setTimeout(r, 60));
      down = true;
      await new Promise((r) => setTimeout(r, 60));
      offset = 10_000;
      await assert.rejects(
        held,
        (error: unknown) => isUnavailable(error) && /was not approved/.test((error as Error).message),
      );
      await assert.rejects(
        service.hold(holdRequest(), new AbortController().signal),
        (error: unknown) => isUnavailable(error) && /cannot be held/.test((error as Error).message),
      );
      await close();
    });

    it('keeps holding when Slack is down (decided from the API)', async () => {
      const { repo, close } = await makeRepo();
      const broken: ApprovalNotifier = {
        posted: async () => {
          throw new Error('slack down');
        },
        finalize: async () => {
          throw new Error('slack down');
        },
      };
      const service = createApprovalService({
        repo,
        notifier: broken,
        config: baseConfig,
        replicaId: 'r-a',
        pollIntervalMs: 50,
      });
      const held = service.hold(holdRequest(), new AbortController().signal);
      let pending: ApprovalRecord | undefined;
      while (pending === undefined) {
        [pending] = await repo.list({ state: 'pending' });
        await new Promise((r) => setTimeout(r, 5));
      }
      const result = await service.decide(pending.id, {
        approve: true,
        actor: vote('oidc:x#y', 'api'),
        approver: true,
      });
      assert.equal(result.ok, true);
      assert.equal((await held).state, 'approved');
      await close();
    });

    it('one identity holds at most maxPendingPerIdentity approvals: more get 429 with retryAfterSeconds; others are not affected', async () => {
      const { repo, service, close } = await setup({ maxPendingPerIdentity: 2 });
      const controllers = [new AbortController(), new AbortController()];
      const holds = controllers.map((c, i) =>
        service.hold(holdRequest({ fingerprint: `f${i}` }), c.signal).catch((e: unknown) => e),
      );
      while ((await repo.list({ state: 'pending' })).length < 2) await new Promise((r) => setTimeout(r, 5));
      await assert.rejects(
        service.hold(holdRequest({ fingerprint: 'f3' }), new AbortController().signal),
        (error: unknown) => {
          assert.ok(error instanceof HoopError);
          assert.equal(error.code, 'ERR_TOO_MANY_REQUESTS');
          assert.equal(error.status, 429);
          assert.match(
            error.message,
            /identity "ci-deployer" already has 2 requests waiting for approval \(the gateway's limit is 2\); wait for a decision or retry in \d+s/,
          );
          const retry = error.details?.['retryAfterSeconds'];
          assert.ok(typeof retry === 'number' && retry >= 1 && retry <= 5, String(retry));
          return true;
        },
      );
      assert.equal((await repo.list({ state: 'pending' })).length, 2, 'nothing was created');
      // Another identity still gets its approval.
      const other = new AbortController();
      const otherHold = service
        .hold(holdRequest({ identity: 'reader', fingerprint: 'r1' }), other.signal)
        .catch((e: unknown) => e);
      while ((await repo.list({ state: 'pending' })).length < 3) await new Promise((r) => setTimeout(r, 5));
      for (const c of [...controllers, other]) c.abort();
      await Promise.all([...holds, otherHold]);
      await close();
    });

    it('identical pending requests join one approval: one message, one decision answers both; one leaving cancels nothing', async () => {
      const { repo, notifier, service, close } = await setup({ maxPendingPerIdentity: 1 });
      const first = new AbortController();
      const a = service.hold(holdRequest({ fingerprint: 'same' }), first.signal);
      const pending = await firstPending(repo);
      const b = service.hold(holdRequest({ fingerprint: 'same' }), new AbortController().signal);
      const c = service.hold(holdRequest({ fingerprint: 'same' }), new AbortController().signal);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await repo.list()).length, 1, 'joined, not created (and not refused by the cap of 1)');
      assert.equal(notifier.postedRecords.length, 1, 'one Slack message');
      first.abort();
      assert.equal(((await a.catch((e: unknown) => e)) as HoopError).code, 'ERR_APPROVAL_CANCELLED');
      assert.equal((await repo.get(pending.id))?.state, 'pending', 'the others still wait on it');
      assert.equal((await service.decide(pending.id, { approve: true, actor: vote('U1'), approver: true })).ok, true);
      assert.deepEqual([(await b).state, (await c).state], ['approved', 'approved']);
      // A different body is another request.
      const d = service.hold(holdRequest({ fingerprint: 'other' }), new AbortController().signal);
      while ((await repo.list({ state: 'pending' })).length < 1) await new Promise((r) => setTimeout(r, 5));
      const [second] = await repo.list({ state: 'pending' });
      assert.notEqual(second?.id, pending.id);
      await service.decide(second?.id ?? '', { approve: false, actor: vote('U1'), approver: true });
      assert.equal((await d).state, 'denied');
      await close();
    });
  });
}
