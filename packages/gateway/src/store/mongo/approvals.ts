// ApprovalRepository on MongoDB: each change is one single-document findOneAndUpdate whose filter
// carries the expected state (and, for votes, the absence of the voter): atomic on any replica set,
// no transactions needed.
import type { Collection, Db } from 'mongodb';
import {
  redeemableStates,
  slackRef,
  type ApprovalGrant,
  type ApprovalRecord,
  type ApprovalRepository,
} from '../../approvals/types.js';
import { durable } from './audit.js';

type ApprovalDoc = Omit<ApprovalRecord, 'id'> & { _id: string };
type GrantDoc = Omit<ApprovalGrant, 'id'> & { _id: string };

function fromDoc<T extends { _id: string }>(doc: T | null): (Omit<T, '_id'> & { id: string }) | null {
  if (doc === null) return null;
  const { _id, ...rest } = doc;
  return { id: _id, ...rest };
}

export async function ensureApprovalIndexes(db: Db): Promise<void> {
  await db.collection('approvals').createIndexes([
    { key: { state: 1, createdAt: 1 }, name: 'state' },
    { key: { holder: 1 }, name: 'holder' },
  ]);
  await db
    .collection('approval_grants')
    .createIndexes([{ key: { identity: 1, cluster: 1, expiresAt: 1 }, name: 'lookup' }]);
}

export function createMongoApprovalRepository(db: Db): ApprovalRepository {
  const approvals: Collection<ApprovalDoc> = db.collection<ApprovalDoc>('approvals');
  const grants: Collection<GrantDoc> = db.collection<GrantDoc>('approval_grants');
  const after = { returnDocument: 'after', writeConcern: durable } as const;

  return {
    async create(record) {
      const { id, ...rest } = record;
      await approvals.insertOne({ _id: id, ...rest }, { writeConcern: durable });
    },
    async get(id) {
      return fromDoc(await approvals.findOne({ _id: id })) as ApprovalRecord | null;
    },
    async list(filter = {}) {
      const query: Partial<Pick<ApprovalDoc, 'state' | 'holder'>> = {};
      if (filter.state !== undefined) query.state = filter.state;
      if (filter.holder !== undefined) query.holder = filter.holder;
      const docs = await approvals.find(query).sort({ createdAt: 1, _id: 1 }).toArray();
      return docs.map((doc) => fromDoc(doc) as ApprovalRecord);
    },
    async addVote(id, vote) {
      const doc = await approvals.findOneAndUpdate(
        // One person, one vote: no vote with this user, nor one sharing any of its person keys.
        {
          _id: id,
          state: 'pending',
          'votes.user': { $ne: vote.user },
          ...(vote.keys === undefined || vote.keys.length === 0 ? {} : { 'votes.keys': { $nin: [...vote.keys] } }),
        },
        {
          $push: {
            votes: {
              user: vote.user,
              label: vote.label,
              at: vote.at,
              via: vote.via,
              ...(vote.keys === undefined ? {} : { keys: [...vote.keys] }),
            },
          },
        },
        after,
      );
      return fromDoc(doc) as ApprovalRecord | null;
    },
    async transition(id, from, to, patch) {
      const set: Record<string, unknown> = { state: to };
      for (const [key, value] of Object.entries(patch)) if (value !== undefined) set[key] = value;
      const doc = await approvals.findOneAndUpdate({ _id: id, state: from }, { $set: set }, after);
      return fromDoc(doc) as ApprovalRecord | null;
    },
    async latestDecided(identity, fingerprint, since) {
      const doc = await approvals.findOne(
        {
          state: { $in: [...redeemableStates] },
          createdAt: { $gte: since },
          fingerprint,
          identity,
          redeemedAt: { $exists: false },
        },
        { sort: { createdAt: -1, _id: -1 } },
      );
      return fromDoc(doc) as ApprovalRecord | null;
    },
    async redeem(id, at) {
      // One document, its filter the expected state: exactly one request redeems it, on any replica.
      const doc = await approvals.findOneAndUpdate(
        { _id: id, state: { $in: [...redeemableStates] }, redeemedAt: { $exists: false } },
        { $set: { redeemedAt: at } },
        after,
      );
      return fromDoc(doc) as ApprovalRecord | null;
    },
    async setSlackMessage(id, slack) {
      await approvals.updateOne({ _id: id }, { $set: { slack: slackRef(slack) } }, { writeConcern: durable });
    },
    async createGrant(grant) {
      const { id, ...rest } = grant;
      await grants.insertOne({ _id: id, ...rest }, { writeConcern: durable });
    },
    async activeGrants(identity, cluster, now) {
      const docs = await grants
        .find({ identity, cluster, expiresAt: { $gt: now }, revokedAt: { $exists: false } })
        .sort({ createdAt: 1 })
        .toArray();
      return docs.map((doc) => fromDoc(doc) as ApprovalGrant);
    },
    async listGrants(filter = {}) {
      const query =
        filter.activeAt === undefined ? {} : { expiresAt: { $gt: filter.activeAt }, revokedAt: { $exists: false } };
      const docs = await grants.find(query).sort({ createdAt: 1, _id: 1 }).toArray();
      return docs.map((doc) => fromDoc(doc) as ApprovalGrant);
    },
    async revokeGrant(id, by, now) {
      const doc = await grants.findOneAndUpdate(
        { _id: id, expiresAt: { $gt: now }, revokedAt: { $exists: false } },
        { $set: { revokedAt: now, revokedBy: by } },
        after,
      );
      return fromDoc(doc) as ApprovalGrant | null;
    },
  };
}
