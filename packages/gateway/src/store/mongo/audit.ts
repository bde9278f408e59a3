// The audit chain on MongoDB: each group-commit batch is one ordered insertMany acknowledged by a
// journaled majority. `_id` is "<chain>:<seq>", so two writers of one chain can never both land a seq.
import type { Collection, Db, Document, Filter, WriteConcernSettings } from 'mongodb';
import { HoopError } from '../../lib/errors.js';
import { createChainWriter, GENESIS_HASH } from '../chain.js';
import type {
  AuditRecord,
  AuditStore,
  ChainHead,
  RecordQuery,
  ScanOptions,
  SessionFilter,
  SessionSummary,
  SignedCheckpoint,
} from '../types.js';
import {
  createShapeTable,
  eventIdForms,
  hashText,
  recordOf,
  sessionIdForms,
  sessionIdText,
  storedOf,
  toDoc,
  type RecordDoc,
} from './record-doc.js';

export const durable: WriteConcernSettings = { w: 'majority', journal: true };

interface CheckpointDoc {
  _id: string;
  chain: string;
  type: string;
  seq: number;
  time: number;
  checkpoint: SignedCheckpoint;
}

/** The side copy of a checkpoint record, keyed by what it signs and where it sits in the chain. */
function toCheckpointDoc(record: AuditRecord): CheckpointDoc {
  const checkpoint = record.data as unknown as SignedCheckpoint;
  const s = checkpoint.statement;
  return {
    _id: `${s.chain}:${s.type}:${s.seq}:${record.chain}:${record.seq}`,
    chain: s.chain,
    type: s.type,
    seq: s.seq,
    time: s.time,
    checkpoint,
  };
}

const DEFAULT_BATCH = 1000;

function recordFilter(query: RecordQuery): Filter<RecordDoc> {
  const filter: Filter<RecordDoc> = {};
  if (query.sessionId !== undefined) filter.sessionId = { $in: sessionIdForms(query.sessionId) };
  if (query.eventIds !== undefined) filter.eventId = { $in: query.eventIds.flatMap(eventIdForms) };
  if (query.kinds !== undefined) filter.kind = { $in: [...query.kinds] };
  if (query.since !== undefined || query.until !== undefined) {
    filter.time = {
      ...(query.since === undefined ? {} : { $gte: query.since }),
      ...(query.until === undefined ? {} : { $lt: query.until }),
    };
  }
  if (query.after !== undefined) {
    const { time, chain: c, seq } = query.after;
    filter.$and = [
      { $or: [{ time: { $gt: time } }, { time, chain: { $gt: c } }, { time, chain: c, seq: { $gt: seq } }] },
    ];
  }
  return filter;
}

export async function ensureAuditIndexes(db: Db): Promise<void> {
  await db.collection('audit_records').createIndexes([
    { key: { chain: 1, seq: 1 }, name: 'chain_seq', unique: true },
    { key: { time: 1, chain: 1, seq: 1 }, name: 'time' },
    { key: { sessionId: 1, time: 1 }, name: 'session' },
    { key: { eventId: 1 }, name: 'event' },
    { key: { identity: 1, time: 1 }, name: 'identity' },
  ]);
  await db.collection('audit_checkpoints').createIndexes([{ key: { chain: 1, seq: 1 }, name: 'chain_seq' }]);
}

const requestOnly = (value: unknown, otherwise: unknown = 0): Document => ({
  $cond: [{ $eq: ['$kind', 'request'] }, value, otherwise],
});
const countWhen = (kind: string, field: unknown, value: string): Document => ({
  $sum: { $cond: [{ $and: [{ $eq: ['$kind', kind] }, { $eq: [field, value] }] }, 1, 0] },
});

/** Index seeks only (chain_seq): the chain names, then each chain's first and last record. */
async function chainHeads(records: Collection<RecordDoc>): Promise<ChainHead[]> {
  const names = ((await records.distinct('chain', {})) as string[]).sort();
  const heads: ChainHead[] = [];
  for (const name of names) {
    const [first] = await records
      .find({ chain: name })
      .sort({ seq: 1 })
      .limit(1)
      .project<{ seq: number }>({ seq: 1 })
      .toArray();
    const [last] = await records.find({ chain: name }).sort({ seq: -1 }).limit(1).toArray();
    if (first === undefined || last === undefined) continue;
    heads.push({
      chain: name,
      firstSeq: first.seq,
      seq: last.seq,
      hash: hashText(last.hash),
      time: last.time,
      records: last.seq - first.seq + 1,
    });
  }
  return heads;
}

/** Session summaries by aggregation: one group per session, newest first. */
async function listSessions(records: Collection<RecordDoc>, filter: SessionFilter): Promise<SessionSummary[]> {
  const match: Filter<RecordDoc> = {
    sessionId: { $ne: null as unknown as string },
    kind: { $in: ['request', 'outcome'] },
  };
  if (filter.identity !== undefined) match.identity = filter.identity;
  const rows = await records
    .aggregate<{
      _id: RecordDoc['sessionId'];
      identity: string | null;
      cluster: string | null;
      start: number;
      end: number;
      calls: number;
      allow: number;
      deny: number;
      approve: number;
      approvals: number;
    }>([
      { $match: match },
      {
        $group: {
          _id: '$sessionId',
          identity: { $max: '$identity' },
          cluster: { $max: requestOnly({ $ifNull: ['$cl', '$data.cluster'] }, null) },
          start: { $min: '$time' },
          end: { $max: '$time' },
          calls: { $sum: requestOnly(1) },
          allow: countWhen('request', { $ifNull: ['$ef', '$data.decision.effect'] }, 'allow'),
          deny: countWhen('request', { $ifNull: ['$ef', '$data.decision.effect'] }, 'deny'),
          approve: countWhen('request', { $ifNull: ['$ef', '$data.decision.effect'] }, 'approve'),
          approvals: countWhen('outcome', { $ifNull: ['$ap', '$data.approval.state'] }, 'approved'),
        },
      },
      { $match: { end: { $gte: filter.since ?? 0 } } },
      { $sort: { end: -1, _id: 1 } },
      { $limit: filter.limit ?? 100 },
    ])
    .toArray();
  return rows.map((row): SessionSummary => ({
    sessionId: sessionIdText(row._id as NonNullable<RecordDoc['sessionId']>),
    ...(row.identity == null ? {} : { identity: row.identity }),
    ...(row.cluster == null ? {} : { cluster: row.cluster }),
    start: row.start,
    end: row.end,
    calls: row.calls,
    decisions: { allow: row.allow, deny: row.deny, approve: row.approve },
    approvals: row.approvals,
  }));
}

export function createMongoAuditStore(
  db: Db,
  options: { chain: string; groupCommit: boolean },
): AuditStore & { idle(): Promise<void> } {
  const { chain } = options;
  const records: Collection<RecordDoc> = db.collection<RecordDoc>('audit_records');
  const checkpointsCol: Collection<CheckpointDoc> = db.collection<CheckpointDoc>('audit_checkpoints');
  const shapes = createShapeTable(db, durable);

  const writer = createChainWriter({
    chain,
    groupCommit: options.groupCommit,
    async loadHead() {
      const [head] = await records.find({ chain }).sort({ seq: -1 }).limit(1).toArray();
      return head === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: head.seq, hash: hashText(head.hash) };
    },
    async writeBatch(batch, texts) {
      const docs: RecordDoc[] = [];
      const shapeTexts = new Map<string, string>();
      batch.forEach((record, index) => {
        const { doc, shape } = toDoc(record, texts[index] as string, shapes.idOf);
        docs.push(doc);
        if (shape !== undefined) shapeTexts.set(shape.key, shape.text);
      });
      // The shapes first: a record must never name a shape the store does not hold.
      await shapes.ensure(shapeTexts);
      const checkpoints = batch.filter((record) => record.kind === 'checkpoint');
      if (checkpoints.length > 0) {
        // The side copy first: a checkpoint must outlive a truncation of the chain tail it names.
        await checkpointsCol.insertMany(checkpoints.map(toCheckpointDoc), { ordered: true, writeConcern: durable });
      }
      await records.insertMany(docs, { ordered: true, writeConcern: durable });
    },
  });

  return {
    chain,
    append: (drafts) => writer.append(drafts),
    async appendCheckpoint(checkpoint) {
      const [record] = await writer.append([
        { kind: 'checkpoint', time: checkpoint.statement.time, data: checkpoint as unknown as Record<string, unknown> },
      ]);
      if (record === undefined)
        throw new HoopError('ERR_AUDIT_UNAVAILABLE', 'the audit store wrote no record for the checkpoint');
      return record;
    },
    async listRecords(query: RecordQuery) {
      let cursor = records.find(recordFilter(query)).sort({ time: 1, chain: 1, seq: 1 });
      if (query.limit !== undefined) cursor = cursor.limit(Math.max(0, Math.trunc(query.limit)));
      const docs = await cursor.toArray();
      return Promise.all(docs.map((doc) => recordOf(doc, shapes)));
    },
    // A server cursor fetched `batchSize` documents per getMore; closed when the consumer stops early.
    async *scanRecords(query: RecordQuery, options: ScanOptions = {}) {
      let cursor = records
        .find(recordFilter(query))
        .sort({ time: 1, chain: 1, seq: 1 })
        .batchSize(Math.max(1, options.batchSize ?? DEFAULT_BATCH));
      if (query.limit !== undefined) cursor = cursor.limit(Math.max(0, Math.trunc(query.limit)));
      try {
        for await (const doc of cursor) yield await recordOf(doc, shapes);
      } finally {
        await cursor.close();
      }
    },
    async *scanChain(name: string, afterSeq: number, options: ScanOptions = {}) {
      const cursor = records
        .find({ chain: name, seq: { $gt: afterSeq } })
        .sort({ seq: 1 })
        .batchSize(Math.max(1, options.batchSize ?? DEFAULT_BATCH));
      try {
        for await (const doc of cursor) yield await storedOf(doc, shapes);
      } finally {
        await cursor.close();
      }
    },
    async readChain(name, afterSeq, limit) {
      const docs = await records
        .find({ chain: name, seq: { $gt: afterSeq } })
        .sort({ seq: 1 })
        .limit(limit)
        .toArray();
      return Promise.all(docs.map((doc) => recordOf(doc, shapes)));
    },
    async getRecord(name, seq) {
      const doc = await records.findOne({ chain: name, seq });
      return doc === null ? null : recordOf(doc, shapes);
    },
    chainHeads: () => chainHeads(records),
    listSessions: (filter = {}) => listSessions(records, filter),
    async checkpoints() {
      const docs = await checkpointsCol.find({}).sort({ time: 1, _id: 1 }).toArray();
      return docs.map((doc) => doc.checkpoint);
    },
    async retentionStart(name, cutoff) {
      const active = await records.distinct('sessionId', {
        time: { $gte: cutoff },
        sessionId: { $ne: null as unknown as string },
      });
      const [doc] = await records
        .find({ chain: name, $or: [{ time: { $gte: cutoff } }, { sessionId: { $in: active as string[] } }] })
        .sort({ seq: 1 })
        .limit(1)
        .toArray();
      return doc === undefined ? null : recordOf(doc, shapes);
    },
    async deleteBefore(name, seq) {
      await checkpointsCol.deleteMany({ chain: name, type: 'head', seq: { $lt: seq } }, { writeConcern: durable });
      const result = await records.deleteMany({ chain: name, seq: { $lt: seq } }, { writeConcern: durable });
      return result.deletedCount;
    },
    stats: () => writer.stats(),
    idle: () => writer.idle(),
  };
}
