// How a hold learns of a decision taken on another replica (issue #13, approvals by push). A decision
// on this replica wakes its holds at once (core.finalize). Across replicas, when the store keeps a
// change sequence (ApprovalRepository.changesSince: SQLite's trigger, MongoDB's change log), each
// tick is one tiny query for the ids whose state changed since the last tick, and only those held
// here are read again; without it, the tick re-reads this replica's pending approvals. Holds past their expiry are expired
// from the local deadlines, without a store scan. The store unreachable past expiry + grace: the
// hold ends unapproved (fail closed).
import type { ApprovalCore } from './core.js';

export interface StoreWatcher {
  /** Starts ticking while holds wait (idempotent). */
  schedule(): void;
  stop(): void;
}

const storeGraceMs = 5_000;

export function createStoreWatcher(core: ApprovalCore, intervalMs: number): StoreWatcher {
  const { repo, waiting, deadlines, clock, logger } = core;
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  /** The store's change sequence seen last; -1 before the first tick (then a full read). */
  let seen = -1;

  /** Fallback: every pending approval of this replica; whatever is no longer pending was decided elsewhere. */
  async function fullRead(): Promise<void> {
    const stillPending = new Map((await repo.list({ state: 'pending', holder: core.replicaId })).map((r) => [r.id, r]));
    const now = clock();
    for (const id of [...waiting.keys()]) {
      const pending = stillPending.get(id);
      if (pending === undefined) await core.refresh(id);
      else if (pending.expiresAt <= now && (await core.expire(pending)) === null) await core.refresh(id);
    }
  }

  /** Until when no hold here is overdue: the scan of every deadline runs only then, not at every tick. */
  let quietUntil = -Infinity;
  let scannedSize = -1;

  async function expireOverdue(): Promise<void> {
    const now = clock();
    // A new hold's deadline is at least as late as those seen (same timeout), so while the earliest
    // deadline is ahead and no hold was added, nothing is overdue (10,000 holds: no scan per tick).
    if (now < quietUntil && deadlines.size <= scannedSize) return;
    const overdue: [string, number][] = [];
    let earliest = Infinity;
    for (const [id, deadline] of deadlines) {
      if (deadline <= now) overdue.push([id, deadline]);
      else earliest = Math.min(earliest, deadline);
    }
    quietUntil = overdue.length > 0 ? -Infinity : earliest;
    scannedSize = deadlines.size;
    for (const [id, deadline] of overdue) {
      if (deadline > now || !waiting.has(id)) continue;
      const record = await repo.get(id);
      if (record === null) continue;
      if (record.state === 'pending' && (await core.expire(record)) !== null) continue;
      await core.refresh(id);
    }
  }

  async function tick(): Promise<void> {
    if (polling || waiting.size === 0) return;
    polling = true;
    try {
      if (repo.changesSince === undefined) return await fullRead();
      const changes = await repo.changesSince(seen);
      seen = changes.seq;
      if (!changes.complete) await fullRead();
      else for (const id of new Set(changes.ids)) if (waiting.has(id)) await core.refresh(id);
      await expireOverdue();
    } catch (error) {
      logger.warn({ err: error }, 'approval poll failed; retrying');
      const now = clock();
      for (const [id, waiters] of waiting) {
        if ((deadlines.get(id) ?? Infinity) + storeGraceMs <= now)
          for (const waiter of waiters) waiter.reject(core.storeDown(id, error));
      }
    } finally {
      polling = false;
    }
  }

  function schedule(): void {
    if (timer !== undefined || waiting.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void tick().finally(schedule);
    }, intervalMs);
  }

  return {
    schedule,
    stop() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
