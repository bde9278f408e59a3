// Admission of a held request (split out of service.ts): join an identical pending approval, or
// create one within the identity's cap of pending approvals. Admission is serialised on this replica
// (so one identity never exceeds approval.maxPendingPerIdentity), but in batches (issue #13): the
// requests that arrived while the previous batch was being written are checked together — counting
// the batch's own new approvals — and created in one write (repo.createMany: one commit, one fsync)
// instead of one commit each, so holding 10,000 requests does not queue them behind 10,000 fsyncs.
import { HoopError } from '../lib/errors.js';
import type { ApprovalCore } from './core.js';
import type { HoldRequest } from './service-types.js';
import type { ApprovalRecord, ApprovalRepository } from './types.js';

export type CreateOrJoin = (request: HoldRequest) => Promise<{ record: ApprovalRecord; joined: boolean }>;

interface Queued {
  request: HoldRequest;
  resolve: (admitted: { record: ApprovalRecord; joined: boolean }) => void;
  reject: (error: unknown) => void;
}

/** The most requests admitted in one write (bounds a batch's transaction and its latency). */
const maxBatch = 500;

function storeUnavailable(cause: unknown): HoopError {
  return new HoopError(
    'ERR_AUDIT_UNAVAILABLE',
    `the approval store is unavailable; the request cannot be held for approval`,
    { cause },
  );
}

/**
 * What one batch knows as it admits its requests, so each request costs O(1) here (issue #13: taking
 * 10,000 held calls was quadratic): each identity's pending count and next expiry, read from the store
 * once per batch and kept in step as the batch adds approvals, and the batch's new approvals by
 * identity and fingerprint.
 */
interface Batch {
  now: number;
  fresh: ApprovalRecord[];
  pending: Map<string, { count: number; next: number }>;
  joins: Map<string, ApprovalRecord>;
}

const joinKey = (identity: string, fingerprint: string) => `${identity}\u0000${fingerprint}`;

/** A pending, unexpired approval this identical request can join, if any (the batch's own new ones first). */
async function joinable(
  repo: ApprovalRepository,
  request: HoldRequest,
  batch: Batch,
): Promise<ApprovalRecord | undefined> {
  const { fingerprint } = request;
  if (fingerprint === undefined) return undefined;
  const inBatch = batch.joins.get(joinKey(request.identity, fingerprint));
  if (inBatch !== undefined) return inBatch;
  const { now } = batch;
  if (repo.pendingWithFingerprint !== undefined)
    return (await repo.pendingWithFingerprint(request.identity, fingerprint, now)) ?? undefined;
  return (await repo.list({ state: 'pending' })).find(
    (r) => r.fingerprint === fingerprint && r.identity === request.identity && r.expiresAt > now,
  );
}

/** The identity's unexpired pending approvals (count, earliest expiry) in the store, read once per batch. */
async function pendingOf(
  repo: ApprovalRepository,
  identity: string,
  batch: Batch,
): Promise<{ count: number; next: number }> {
  const known = batch.pending.get(identity);
  if (known !== undefined) return known;
  const { now } = batch;
  let counted: { count: number; next: number };
  if (repo.pendingCount !== undefined) {
    const { count, nextExpiry } = await repo.pendingCount(identity, now);
    counted = { count, next: count === 0 ? Infinity : nextExpiry };
  } else {
    const mine = (await repo.list({ state: 'pending' })).filter((r) => r.identity === identity && r.expiresAt > now);
    counted = { count: mine.length, next: Math.min(...mine.map((r) => r.expiresAt)) };
  }
  batch.pending.set(identity, counted);
  return counted;
}

/** Refuses a new approval when the identity already holds maxPendingPerIdentity (429, Retry-After: the next expiry). */
async function checkPendingCap(
  { repo, config }: Pick<ApprovalCore, 'repo' | 'config'>,
  request: HoldRequest,
  batch: Batch,
): Promise<void> {
  const { count, next } = await pendingOf(repo, request.identity, batch);
  if (count < config.maxPendingPerIdentity) return;
  const retryAfterSeconds = Math.max(1, Math.ceil((next - batch.now) / 1000));
  throw new HoopError(
    'ERR_TOO_MANY_REQUESTS',
    `identity "${request.identity}" already has ${count} requests waiting for approval (the gateway's limit is ${config.maxPendingPerIdentity}); wait for a decision or retry in ${retryAfterSeconds}s`,
    { details: { retryAfterSeconds }, operatorDetail: 'limited by approval.maxPendingPerIdentity' },
  );
}

/** Adds a new approval to the batch, keeping the identity's count and the joins in step. */
function addToBatch(batch: Batch, record: ApprovalRecord): void {
  batch.fresh.push(record);
  const pending = batch.pending.get(record.identity);
  if (pending !== undefined) {
    pending.count += 1;
    pending.next = Math.min(pending.next, record.expiresAt);
  }
  if (record.fingerprint !== undefined) batch.joins.set(joinKey(record.identity, record.fingerprint), record);
}

export function createAdmission(core: ApprovalCore, idGen: () => string): CreateOrJoin {
  const { repo, config, clock, replicaId } = core;
  const queue: Queued[] = [];
  let draining = false;

  /** One request of a batch: the approval it joins, or the new one it adds to `fresh` (written with the batch). */
  async function admitOne(request: HoldRequest, batch: Batch): Promise<{ record: ApprovalRecord; joined: boolean }> {
    // Fail closed: if the store cannot be read or written nobody could approve it; the caller answers 503.
    try {
      const existing = await joinable(repo, request, batch);
      if (existing !== undefined) return { record: existing, joined: true };
      await checkPendingCap(core, request, batch);
    } catch (error) {
      if (error instanceof HoopError && error.code === 'ERR_TOO_MANY_REQUESTS') throw error;
      core.logger.warn({ err: error }, 'the approval store could not be read; the request was refused (503)');
      throw storeUnavailable(error);
    }
    const { now } = batch;
    const record: ApprovalRecord = {
      ...request,
      id: idGen(),
      state: 'pending',
      createdAt: now,
      expiresAt: now + config.timeoutMs,
      holder: replicaId,
      votes: [],
    };
    addToBatch(batch, record);
    return { record, joined: false };
  }

  async function admitBatch(queuedBatch: readonly Queued[]): Promise<void> {
    const batch: Batch = { now: clock(), fresh: [], pending: new Map(), joins: new Map() };
    const { fresh } = batch;
    const admitted: { queued: Queued; result: { record: ApprovalRecord; joined: boolean } }[] = [];
    for (const queued of queuedBatch) {
      try {
        admitted.push({ queued, result: await admitOne(queued.request, batch) });
      } catch (error) {
        queued.reject(error);
      }
    }
    const failed = new Map<string, unknown>();
    if (fresh.length > 1 && repo.createMany !== undefined) {
      try {
        await repo.createMany(fresh);
      } catch (error) {
        for (const record of fresh) failed.set(record.id, error);
      }
    } else {
      for (const record of fresh) await repo.create(record).catch((error: unknown) => failed.set(record.id, error));
    }
    if (failed.size > 0)
      core.logger.warn(
        { err: failed.values().next().value, approvals: failed.size },
        'the approval store could not be written; the requests were refused (503)',
      );
    // A request that joined one of this batch's new approvals shares its fate.
    for (const { queued, result } of admitted) {
      if (failed.has(result.record.id)) queued.reject(storeUnavailable(failed.get(result.record.id)));
      else queued.resolve(result);
    }
  }

  /** Runs the queued batches one after another; started on the next turn of the event loop, so the requests that arrived in this one are one batch. */
  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) await admitBatch(queue.splice(0, maxBatch));
    } finally {
      draining = false;
    }
  }

  /** Joins an identical pending approval, or creates one (within the identity's cap). */
  function createOrJoin(request: HoldRequest): Promise<{ record: ApprovalRecord; joined: boolean }> {
    return new Promise((resolve, reject) => {
      queue.push({ request, resolve, reject });
      if (draining) return;
      draining = true;
      setImmediate(() => void drain());
    });
  }

  return createOrJoin;
}
