// The one interval scheduler (src/lib/scheduled-job.ts) on a fake clock and fake timers: any
// interval (90s, 7m, 36h, 30d), slots aligned to the epoch by the injected clock, no overlapping
// runs, failures retried at the next slot, a clean stop; and each job built on it (checkpoints,
// retention, the weekly digest, the approval sweep) fires when it says.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createApprovalService } from '../../packages/gateway/src/approvals/service.js';
import { createCheckpointer, loadSigningKey } from '../../packages/gateway/src/audit/checkpoint.js';
import { createRetentionJob } from '../../packages/gateway/src/audit/retention.js';
import { createLogger } from '../../packages/gateway/src/lib/logger.js';
import { createScheduledJob, nextSlot, type Timers } from '../../packages/gateway/src/lib/scheduled-job.js';
import { createPrivilegesDigest } from '../../packages/gateway/src/slack/digest.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditStore } from '../../packages/gateway/src/store/types.js';
import { approvalRecord } from '../helpers/hold-request.js';
import { createMemoryApprovalRepository } from '../helpers/memory-approvals.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
/** Sunday 2023-11-12 10:13:20 UTC: not on any round slot. */
const T0 = Date.UTC(2023, 10, 12, 10, 13, 20);

/** Lets the job's promise chain (run → finally → arm) settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A clock and timers that move only when told: advance() fires each due timer at its own time (the
 * clock reads exactly that time inside it). Like Node, a delay over 2^31-1 ms fires after 1 ms.
 */
function fakeTime(start: number) {
  let now = start;
  let ids = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout(fn, ms) {
      ids += 1;
      pending.set(ids, { at: now + (ms > 2_147_483_647 ? 1 : Math.max(ms, 1)), fn });
      return ids;
    },
    clearTimeout(id) {
      pending.delete(id as number);
    },
  };
  return {
    clock: () => now,
    timers,
    async advance(ms: number): Promise<void> {
      const end = now + ms;
      for (;;) {
        await settle();
        const [id, next] = [...pending].sort(([a, x], [b, y]) => x.at - y.at || a - b)[0] ?? [];
        if (id === undefined || next === undefined || next.at > end) break;
        pending.delete(id);
        now = Math.max(now, next.at);
        next.fn();
      }
      now = end;
      await settle();
    },
    pending: () => pending.size,
  };
}

let time = fakeTime(0);
beforeEach(() => {
  time = fakeTime(T0);
});

function quietLogger(lines: string[] = []) {
  return createLogger({
    destination: { write: (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)) } as never,
  });
}

describe('nextSlot', () => {
  const cases: [string, number, number, number, number][] = [
    ['90s from 10:13:20 → 10:13:30 (90 s slots since the epoch)', T0, 90 * S, 0, Date.UTC(2023, 10, 12, 10, 13, 30)],
    ['1h → the next full hour', T0, H, 0, Date.UTC(2023, 10, 12, 11)],
    ['exactly on a slot → the one after', Date.UTC(2023, 10, 12, 11), H, 0, Date.UTC(2023, 10, 12, 12)],
    ['daily at 03:17 UTC', T0, D, 3 * H + 17 * M, Date.UTC(2023, 10, 13, 3, 17)],
    ['weekly, Mondays 09:00 UTC (the epoch was a Thursday)', T0, 7 * D, 4 * D + 9 * H, Date.UTC(2023, 10, 13, 9)],
  ];
  for (const [name, now, every, offset, expected] of cases) {
    it(name, () =>
      assert.equal(new Date(nextSlot(now, every, offset)).toISOString(), new Date(expected).toISOString()),
    );
  }
});

describe('createScheduledJob', () => {
  for (const [spelling, everyMs] of [
    ['90s', 90 * S],
    ['7m', 7 * M],
    ['36h', 36 * H],
  ] as const) {
    it(`every ${spelling}: runs exactly ${spelling} apart, on the injected clock`, async () => {
      const runs: number[] = [];
      const job = createScheduledJob({
        name: 'test',
        everyMs,
        clock: time.clock,
        timers: time.timers,
        run: async () => void runs.push(time.clock()),
        logger: quietLogger(),
        failure: 'failed',
      });
      job.start();
      // 7m slots cross hour boundaries (a cron "*/7" minute field would not: :56 → :00 is 4 minutes).
      await time.advance(5 * everyMs);
      await job.stop();
      assert.equal(runs.length, 5, `runs at ${runs.map((t) => new Date(t).toISOString()).join(', ')}`);
      const first = runs[0] ?? 0;
      assert.equal(first % everyMs, 0, 'the first run is on a slot of the epoch');
      assert.ok(first > T0 && first <= T0 + everyMs);
      runs.slice(1).forEach((t, i) => assert.equal(t - (runs[i] ?? 0), everyMs));
    });
  }

  it('an interval longer than setTimeout can wait (30d) fires once, at its slot, not at once', async () => {
    const runs: number[] = [];
    const job = createScheduledJob({
      name: 'long',
      everyMs: 30 * D,
      clock: time.clock,
      timers: time.timers,
      run: async () => void runs.push(time.clock()),
      logger: quietLogger(),
      failure: 'failed',
    });
    job.start();
    const slot = nextSlot(T0, 30 * D);
    await time.advance(slot - T0 - 1);
    assert.deepEqual(runs, [], 'nothing before the slot');
    await time.advance(1);
    assert.deepEqual(runs, [slot]);
    await job.stop();
  });

  it('never overlaps: a run longer than the interval skips the slots it covers; run() joins it', async () => {
    let active = 0;
    let most = 0;
    let calls = 0;
    let finish: (() => void) | undefined;
    const job = createScheduledJob({
      name: 'slow',
      everyMs: 10 * S,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        calls += 1;
        active += 1;
        most = Math.max(most, active);
        await new Promise<void>((resolve) => (finish = resolve));
        active -= 1;
        return calls;
      },
      logger: quietLogger(),
      failure: 'failed',
    });
    job.start();
    await time.advance(nextSlot(T0, 10 * S) - T0);
    assert.equal(calls, 1);
    const joined = job.run();
    await time.advance(35 * S); // three more slots pass while the first run is under way
    assert.equal(calls, 1, 'no second run while one is under way');
    finish?.();
    assert.equal(await joined, 1, 'run() joined the run under way');
    await settle();
    await time.advance(10 * S);
    assert.equal(calls, 2, 'the next slot after the run ends, not a burst of the skipped ones');
    assert.equal(most, 1);
    finish?.();
    await job.stop();
  });

  it('a failed run is logged and retried at the next slot', async () => {
    const lines: string[] = [];
    const logger = quietLogger(lines);
    let calls = 0;
    const job = createScheduledJob({
      name: 'flaky',
      everyMs: M,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        calls += 1;
        if (calls === 1) throw new Error('store down');
      },
      logger,
      failure: 'flaky job failed; the next run will retry',
    });
    job.start();
    await time.advance(2 * M);
    await job.stop();
    assert.equal(calls, 2);
    logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
    const logged = lines.map((line) => JSON.parse(line) as { msg: string; err: string; job: string });
    assert.deepEqual(
      logged.map((l) => [l.msg, l.err, l.job]),
      [['flaky job failed; the next run will retry', 'store down', 'flaky']],
    );
  });

  it('stop() waits for the run under way, and nothing runs after it; start() is idempotent', async () => {
    let calls = 0;
    let finish: (() => void) | undefined;
    const job = createScheduledJob({
      name: 'stoppable',
      everyMs: M,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        calls += 1;
        await new Promise<void>((resolve) => (finish = resolve));
      },
      logger: quietLogger(),
      failure: 'failed',
    });
    job.start();
    job.start();
    await time.advance(M);
    assert.equal(calls, 1, 'one schedule, not two');
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop() waits for the run');
    finish?.();
    await stopping;
    await time.advance(10 * M);
    assert.equal(calls, 1, 'nothing after stop()');
  });

  it('refuses an interval that is not a positive number', () => {
    for (const everyMs of [0, -1, Number.NaN]) {
      assert.throws(
        () =>
          createScheduledJob({
            name: 'bad',
            everyMs,
            clock: time.clock,
            timers: time.timers,
            run: async () => undefined,
            logger: quietLogger(),
            failure: 'f',
          }),
        /bad: interval must be a positive number of milliseconds/,
      );
    }
  });
});

/** An audit store whose chain heads are asked for on every checkpoint/retention run. */
function countingStore(): { store: AuditStore; runs: number[] } {
  const runs: number[] = [];
  const store = { chain: 'r-1', chainHeads: async () => (runs.push(time.clock()), []) } as unknown as AuditStore;
  return { store, runs };
}

describe('the jobs on the scheduler', () => {
  it('checkpoints: audit.checkpoint.every 90s signs every 90 s', async () => {
    const { store, runs } = countingStore();
    const checkpointer = createCheckpointer({
      store,
      key: await loadSigningKey(),
      replicaId: 'r-1',
      clock: time.clock,
      timers: time.timers,
      everyMs: 90 * S,
    });
    assert.deepEqual(checkpointer.schedule, { name: 'audit-checkpoint-r-1', everyMs: 90 * S });
    checkpointer.start();
    await time.advance(270 * S);
    assert.equal(runs.length, 3);
    await checkpointer.stop();
    assert.equal(runs.length, 4, 'stop() writes a last checkpoint');
  });

  it('retention: daily at 03:17 UTC', async () => {
    const { store, runs } = countingStore();
    const job = createRetentionJob({
      store,
      key: await loadSigningKey(),
      replicaId: 'r-1',
      clock: time.clock,
      timers: time.timers,
      retentionMs: 90 * D,
    });
    job.start();
    await time.advance(2 * D);
    await job.stop();
    assert.deepEqual(
      runs.map((t) => new Date(t).toISOString()),
      ['2023-11-13T03:17:00.000Z', '2023-11-14T03:17:00.000Z'],
    );
  });

  it('the least-privilege digest: Mondays 09:00 UTC', async () => {
    const posted: number[] = [];
    const digest = createPrivilegesDigest({
      source: { view: async () => ({ sinceText: '7d', summaries: [] }) },
      client: { chat: { postMessage: async () => void posted.push(time.clock()) } },
      channel: 'C1',
      clock: time.clock,
      timers: time.timers,
      logger: quietLogger(),
    });
    digest.start();
    await time.advance(14 * D);
    await digest.stop();
    assert.deepEqual(
      posted.map((t) => new Date(t).toISOString()),
      ['2023-11-13T09:00:00.000Z', '2023-11-20T09:00:00.000Z'],
    );
  });

  it('two replicas sharing a store post one digest a week between them (the slot is claimed once)', async () => {
    const store = await createStore('sqlite::memory:', { replicaId: 'r-a', clock: time.clock });
    const posted: string[] = [];
    const lines: string[] = [];
    const logger = quietLogger(lines);
    const digests = ['r-a', 'r-b'].map((replica) =>
      createPrivilegesDigest({
        source: { view: async () => ({ sinceText: '7d', summaries: [] }) },
        client: {
          chat: { postMessage: async () => void posted.push(`${replica}@${new Date(time.clock()).toISOString()}`) },
        },
        channel: 'C1',
        clock: time.clock,
        timers: time.timers,
        logger,
        claim: (key, expiresAt) => store.consumeOnce(key, expiresAt),
      }),
    );
    for (const digest of digests) digest.start();
    await time.advance(14 * D);
    for (const digest of digests) await digest.stop();
    await store.close();
    logger.flush?.();
    assert.deepEqual(
      posted.map((p) => p.split('@')[1]),
      ['2023-11-13T09:00:00.000Z', '2023-11-20T09:00:00.000Z'],
      `one post per week: ${posted.join(', ')}`,
    );
    assert.equal(lines.filter((l) => l.includes('posted by another replica')).length, 2);
  });

  it('the approval sweep expires an overdue pending of another replica within its interval', async () => {
    const repo = createMemoryApprovalRepository();
    await repo.create(
      approvalRecord('stale', T0 - 5 * S, {
        holder: 'gone',
        expiresAt: T0 + S,
        rule: 'identities[0].approval.require[0]',
      }),
    );
    const service = createApprovalService({
      repo,
      config: {
        timeoutMs: 5 * S,
        minApprovals: 1,
        grantOptionsMs: [],
        maxPendingPerIdentity: 10,
        approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [] },
      },
      replicaId: 'r-a',
      clock: time.clock,
      timers: time.timers,
      sweepEveryMs: 10 * S,
    });
    const sweeps = service.startSweeps();
    assert.equal(sweeps.everyMs, 10 * S);
    await time.advance(nextSlot(T0, 10 * S) - T0 - 1);
    assert.equal((await repo.get('stale'))?.state, 'pending', 'not swept before the slot');
    await time.advance(1);
    assert.equal((await repo.get('stale'))?.state, 'expired');
    await sweeps.stop();
  });
});
