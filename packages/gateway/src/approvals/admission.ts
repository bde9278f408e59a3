// Admission of a held request (split out of service.ts): join an identical pending approval, or
// create one within the identity's cap of pending approvals. Count-then-create is serialised on this
// replica, so it never lets one identity exceed approval.maxPendingPerIdentity.
import { HoopError } from '../lib/errors.js';
import type { ApprovalCore } from './core.js';
import type { HoldRequest } from './service-types.js';
import type { ApprovalRecord } from './types.js';

export type CreateOrJoin = (request: HoldRequest) => Promise<{ record: ApprovalRecord; joined: boolean }>;

export function createAdmission(core: ApprovalCore, idGen: () => string): CreateOrJoin {
  const { repo, config, clock, replicaId } = core;
  let creating: Promise<unknown> = Promise.resolve();

  /** A pending, unexpired approval this identical request can join, if any. */
  async function joinable(request: HoldRequest, now: number): Promise<ApprovalRecord | undefined> {
    if (request.fingerprint === undefined) return undefined;
    if (repo.pendingWithFingerprint !== undefined)
      return (await repo.pendingWithFingerprint(request.identity, request.fingerprint, now)) ?? undefined;
    const pending = await repo.list({ state: 'pending' });
    return pending.find(
      (r) => r.fingerprint === request.fingerprint && r.identity === request.identity && r.expiresAt > now,
    );
  }

  /** Refuses a new approval when the identity already holds maxPendingPerIdentity (429, Retry-After: the next expiry). */
  async function checkPendingCap(request: HoldRequest, now: number): Promise<void> {
    let count: number;
    let next: number;
    if (repo.pendingCount !== undefined) {
      ({ count, nextExpiry: next } = await repo.pendingCount(request.identity, now));
    } else {
      const mine = (await repo.list({ state: 'pending' })).filter(
        (r) => r.identity === request.identity && r.expiresAt > now,
      );
      count = mine.length;
      next = Math.min(...mine.map((r) => r.expiresAt));
    }
    if (count < config.maxPendingPerIdentity) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((next - now) / 1000));
    throw new HoopError(
      'ERR_TOO_MANY_REQUESTS',
      `identity "${request.identity}" already has ${count} requests waiting for approval (the gateway's limit is ${config.maxPendingPerIdentity}); wait for a decision or retry in ${retryAfterSeconds}s`,
      { details: { retryAfterSeconds }, operatorDetail: 'limited by approval.maxPendingPerIdentity' },
    );
  }

  /** Joins an identical pending approval, or creates one (within the identity's cap). */
  function createOrJoin(request: HoldRequest): Promise<{ record: ApprovalRecord; joined: boolean }> {
    const run = creating.then(async () => {
      const now = clock();
      // Fail closed: if the store cannot be read or written nobody could approve it; the caller answers 503.
      try {
        const existing = await joinable(request, now);
        if (existing !== undefined) return { record: existing, joined: true };
      } catch (error) {
        throw new HoopError(
          'ERR_AUDIT_UNAVAILABLE',
          `the approval store is unavailable; the request cannot be held for approval`,
          { cause: error },
        );
      }
      let capError: unknown;
      try {
        await checkPendingCap(request, now);
      } catch (error) {
        capError = error;
      }
      if (capError instanceof HoopError && capError.code === 'ERR_TOO_MANY_REQUESTS') throw capError;
      if (capError !== undefined)
        throw new HoopError(
          'ERR_AUDIT_UNAVAILABLE',
          `the approval store is unavailable; the request cannot be held for approval`,
          { cause: capError },
        );
      const record: ApprovalRecord = {
        ...request,
        id: idGen(),
        state: 'pending',
        createdAt: now,
        expiresAt: now + config.timeoutMs,
        holder: replicaId,
        votes: [],
      };
      try {
        await repo.create(record);
      } catch (error) {
        throw new HoopError(
          'ERR_AUDIT_UNAVAILABLE',
          `the approval store is unavailable; the request cannot be held for approval`,
          { cause: error },
        );
      }
      return { record, joined: false };
    });
    creating = run.catch(() => undefined);
    return run;
  }

  return createOrJoin;
}
