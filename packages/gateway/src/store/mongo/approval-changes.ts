// Approvals by push on MongoDB (issue #13), the counterpart of store/sqlite/approval-changes.ts: every
// state change a replica makes takes the next number of a shared counter ($inc) and appends the
// approval's id under it to approval_changes, so the other replicas learn what was decided with one
// small indexed query per tick ("changes after N") instead of re-reading their pending approvals.
// The counter is taken after the compare-and-set that won, so a change can land a little out of
// order: a reader advances only over consecutive numbers, and a gap older than gapGraceMs (a replica
// died between the two writes) makes it read its pending approvals once instead (complete: false).
// Admission and the sweep read through indexes (pendingCount, pendingWithFingerprint, pendingExpired),
// and createMany is one insertMany.
import type { Collection, Db } from 'mongodb';
import type { ApprovalChanges, ApprovalRecord, ApprovalRepository } from '../../approvals/types.js';
import { durable } from './audit.js';

const keptChanges = 10_000;
const gapGraceMs = 2_000;

type ApprovalDoc = Omit<ApprovalRecord, 'id'> & { _id: string };

export async function ensureApprovalChangeIndexes(db: Db): Promise<void> {
  await db.collection('approvals').createIndexes([
    { key: { state: 1, identity: 1, fingerprint: 1, expiresAt: 1 }, name: 'pending_fingerprint' },
    { key: { state: 1, identity: 1, expiresAt: 1 }, name: 'pending_identity' },
    { key: { state: 1, expiresAt: 1 }, name: 'pending_expiry' },
  ]);
}

function fromDoc(doc: ApprovalDoc): ApprovalRecord {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest };
}

export function withMongoApprovalChanges(
  db: Db,
  repo: ApprovalRepository,
  clock: () => number = Date.now,
): ApprovalRepository {
  const approvals: Collection<ApprovalDoc> = db.collection<ApprovalDoc>('approvals');
  const counter = db.collection<{ _id: string; seq: number }>('approval_change_seq');
  const changes = db.collection<{ _id: number; id: string }>('approval_changes');
  /** The first gap the reader met (number and when), to skip it once it is older than gapGraceMs. */
  let gap: { at: number; since: number } | undefined;

  async function record(id: string): Promise<void> {
    const next = await counter.findOneAndUpdate(
      { _id: 'approvals' },
      { $inc: { seq: 1 } },
      { upsert: true, returnDocument: 'after', writeConcern: durable },
    );
    const seq = next?.seq ?? 0;
    await changes.insertOne({ _id: seq, id }, { writeConcern: durable });
    if (seq % 1000 === 0) await changes.deleteMany({ _id: { $lte: seq - keptChanges } });
  }

  async function latest(): Promise<number> {
    return (await counter.findOne({ _id: 'approvals' }))?.seq ?? 0;
  }

  return {
    ...repo,
    async transition(id, from, to, patch) {
      const moved = await repo.transition(id, from, to, patch);
      // Not recorded (the store failed between the two writes): the holder learns it at its next full
      // read or at the approval's expiry, so nothing is approved that was not.
      if (moved !== null && moved.state !== from) await record(id);
      return moved;
    },
    async createMany(records) {
      await approvals.insertMany(
        records.map(({ id, ...rest }) => ({ _id: id, ...rest })),
        { ordered: true, writeConcern: durable },
      );
    },
    async pendingCount(identity, now) {
      const query = { state: 'pending' as const, identity, expiresAt: { $gt: now } };
      const count = await approvals.countDocuments(query);
      if (count === 0) return { count, nextExpiry: 0 };
      const first = await approvals.find(query).sort({ expiresAt: 1 }).limit(1).toArray();
      return { count, nextExpiry: first[0]?.expiresAt ?? 0 };
    },
    async pendingWithFingerprint(identity, fingerprint, now) {
      const docs = await approvals
        .find({ state: 'pending', identity, fingerprint, expiresAt: { $gt: now } })
        .sort({ createdAt: 1, _id: 1 })
        .limit(1)
        .toArray();
      return docs[0] === undefined ? null : fromDoc(docs[0]);
    },
    async pendingExpired(now) {
      const docs = await approvals
        .find({ state: 'pending', expiresAt: { $lte: now } })
        .sort({ expiresAt: 1 })
        .toArray();
      return docs.map(fromDoc);
    },
    async changesSince(seen: number): Promise<ApprovalChanges> {
      if (seen < 0) return { seq: await latest(), ids: [], complete: false };
      const rows = await changes
        .find({ _id: { $gt: seen } })
        .sort({ _id: 1 })
        .limit(keptChanges)
        .toArray();
      if (rows.length === 0) return { seq: seen, ids: [], complete: true };
      let seq = seen;
      const ids: string[] = [];
      for (const row of rows) {
        if (row._id !== seq + 1) break;
        seq = row._id;
        ids.push(row.id);
      }
      if (rows.length >= keptChanges) return { seq: await latest(), ids: [], complete: false };
      if (seq === rows.at(-1)?._id) {
        gap = undefined;
        return { seq, ids, complete: true };
      }
      // A gap after seq: wait for it a little (a change being written), then read the pendings again.
      const now = clock();
      if (gap === undefined || gap.since !== seq) gap = { at: now, since: seq };
      if (now - gap.at < gapGraceMs) return { seq, ids, complete: true };
      gap = undefined;
      return { seq: rows.at(-1)?._id ?? seq, ids: [], complete: false };
    },
  };
}
