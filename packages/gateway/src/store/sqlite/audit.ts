// The audit chain on SQLite: each group-commit batch is one transaction (WAL, synchronous=FULL), so a
// resolved append() survives a crash or power loss.
import type { Database, Statement } from 'better-sqlite3';
import { createChainWriter, GENESIS_HASH } from '../chain.js';
import type {
  AuditRecord,
  AuditRecordKind,
  AuditStore,
  ChainHead,
  RecordQuery,
  SessionSummary,
  SignedCheckpoint,
} from '../types.js';

interface RecordRow {
  chain: string;
  seq: number;
  kind: string;
  time: number;
  event_id: string | null;
  session_id: string | null;
  identity: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

function fromRow(row: RecordRow): AuditRecord {
  return {
    chain: row.chain,
    seq: row.seq,
    kind: row.kind as AuditRecordKind,
    time: row.time,
    ...(row.event_id === null ? {} : { eventId: row.event_id }),
    ...(row.session_id === null ? {} : { sessionId: row.session_id }),
    ...(row.identity === null ? {} : { identity: row.identity }),
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export function createSqliteAuditStore(
  db: Database,
  options: { chain: string; groupCommit: boolean },
): AuditStore & { idle(): Promise<void> } {
  const { chain } = options;
  const insertRecord = db.prepare(
    `INSERT INTO audit_records (chain, seq, kind, time, event_id, session_id, identity, data, prev_hash, hash)
     VALUES (@chain, @seq, @kind, @time, @eventId, @sessionId, @identity, @data, @prevHash, @hash)`,
  );
  const insertCheckpoint = db.prepare(
    'INSERT INTO audit_checkpoints (chain, type, seq, time, checkpoint) VALUES (@chain, @type, @seq, @time, @checkpoint)',
  );
  const writeAll = db.transaction((records: readonly AuditRecord[]) => {
    for (const record of records) {
      insertRecord.run({
        chain: record.chain,
        seq: record.seq,
        kind: record.kind,
        time: record.time,
        eventId: record.eventId ?? null,
        sessionId: record.sessionId ?? null,
        identity: record.identity ?? null,
        data: JSON.stringify(record.data),
        prevHash: record.prevHash,
        hash: record.hash,
      });
      if (record.kind === 'checkpoint') {
        const checkpoint = record.data as unknown as SignedCheckpoint;
        insertCheckpoint.run({
          chain: checkpoint.statement.chain,
          type: checkpoint.statement.type,
          seq: checkpoint.statement.seq,
          time: checkpoint.statement.time,
          checkpoint: JSON.stringify(checkpoint),
        });
      }
    }
  });
  const headOf = db.prepare('SELECT seq, hash FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT 1') as Statement<
    [string],
    { seq: number; hash: string }
  >;

  const writer = createChainWriter({
    chain,
    groupCommit: options.groupCommit,
    loadHead: async () => headOf.get(chain) ?? { seq: 0, hash: GENESIS_HASH },
    writeBatch: async (records) => {
      writeAll.immediate(records);
    },
  });

  const readChainStmt = db.prepare('SELECT * FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?') as Statement<
    [string, number, number],
    RecordRow
  >;
  const getRecordStmt = db.prepare('SELECT * FROM audit_records WHERE chain = ? AND seq = ?') as Statement<[string, number], RecordRow>;
  const headsStmt = db.prepare(
    `SELECT r.chain AS chain, h.first_seq AS firstSeq, r.seq AS seq, r.hash AS hash, r.time AS time, h.records AS records
     FROM (SELECT chain, MIN(seq) AS first_seq, MAX(seq) AS last_seq, COUNT(*) AS records FROM audit_records GROUP BY chain) h
     JOIN audit_records r ON r.chain = h.chain AND r.seq = h.last_seq ORDER BY r.chain`,
  ) as Statement<[], ChainHead>;
  const checkpointsStmt = db.prepare('SELECT checkpoint FROM audit_checkpoints ORDER BY id') as Statement<[], { checkpoint: string }>;
  const retentionStartStmt = db.prepare(
    `SELECT * FROM audit_records WHERE chain = @chain AND (time >= @cutoff OR session_id IN
       (SELECT DISTINCT session_id FROM audit_records WHERE time >= @cutoff AND session_id IS NOT NULL))
     ORDER BY seq LIMIT 1`,
  ) as Statement<[{ chain: string; cutoff: number }], RecordRow>;
  const deleteRecordsStmt = db.prepare('DELETE FROM audit_records WHERE chain = ? AND seq < ?');
  const deleteCheckpointsStmt = db.prepare("DELETE FROM audit_checkpoints WHERE chain = ? AND type = 'head' AND seq < ?");

  return {
    chain,
    append: (drafts) => writer.append(drafts),
    async appendCheckpoint(checkpoint) {
      const [record] = await writer.append([
        { kind: 'checkpoint', time: checkpoint.statement.time, data: checkpoint as unknown as Record<string, unknown> },
      ]);
      if (record === undefined) throw new Error('checkpoint append returned no record');
      return record;
    },
    async listRecords(query: RecordQuery) {
      const where: string[] = [];
      const params: Record<string, unknown> = {};
      if (query.sessionId !== undefined) {
        where.push('session_id = @sessionId');
        params.sessionId = query.sessionId;
      }
      if (query.eventIds !== undefined) {
        if (query.eventIds.length === 0) return [];
        where.push(`event_id IN (${query.eventIds.map((_, i) => `@e${i}`).join(',')})`);
        query.eventIds.forEach((id, i) => (params[`e${i}`] = id));
      }
      if (query.kinds !== undefined) {
        if (query.kinds.length === 0) return [];
        where.push(`kind IN (${query.kinds.map((_, i) => `@k${i}`).join(',')})`);
        query.kinds.forEach((kind, i) => (params[`k${i}`] = kind));
      }
      if (query.since !== undefined) {
        where.push('time >= @since');
        params.since = query.since;
      }
      if (query.until !== undefined) {
        where.push('time < @until');
        params.until = query.until;
      }
      if (query.after !== undefined) {
        where.push('(time > @at OR (time = @at AND (chain > @ac OR (chain = @ac AND seq > @as))))');
        params.at = query.after.time;
        params.ac = query.after.chain;
        params.as = query.after.seq;
      }
      const sql = `SELECT * FROM audit_records${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
        ORDER BY time, chain, seq${query.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.trunc(query.limit))}`}`;
      return (db.prepare(sql).all(params) as RecordRow[]).map(fromRow);
    },
    async readChain(name, afterSeq, limit) {
      return readChainStmt.all(name, afterSeq, limit).map(fromRow);
    },
    async getRecord(name, seq) {
      const row = getRecordStmt.get(name, seq);
      return row === undefined ? null : fromRow(row);
    },
    async chainHeads() {
      return headsStmt.all();
    },
    async listSessions(filter = {}) {
      const where = ["session_id IS NOT NULL AND kind IN ('request', 'outcome')"];
      const params: Record<string, unknown> = { since: filter.since ?? 0, limit: filter.limit ?? 100 };
      if (filter.identity !== undefined) {
        where.push('identity = @identity');
        params.identity = filter.identity;
      }
      const rows = db
        .prepare(
          `SELECT session_id AS sessionId, MAX(identity) AS identity,
             MAX(CASE WHEN kind = 'request' THEN json_extract(data, '$.cluster') END) AS cluster,
             MIN(time) AS start, MAX(time) AS end,
             SUM(kind = 'request') AS calls,
             SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'allow') AS allow,
             SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'deny') AS deny,
             SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'approve') AS approve,
             SUM(kind = 'outcome' AND json_extract(data, '$.approval.state') = 'approved') AS approvals
           FROM audit_records WHERE ${where.join(' AND ')}
           GROUP BY session_id HAVING MAX(time) >= @since ORDER BY end DESC, session_id LIMIT @limit`,
        )
        .all(params) as Array<{
        sessionId: string;
        identity: string | null;
        cluster: string | null;
        start: number;
        end: number;
        calls: number;
        allow: number;
        deny: number;
        approve: number;
        approvals: number;
      }>;
      return rows.map(
        (row): SessionSummary => ({
          sessionId: row.sessionId,
          ...(row.identity === null ? {} : { identity: row.identity }),
          ...(row.cluster === null ? {} : { cluster: row.cluster }),
          start: row.start,
          end: row.end,
          calls: row.calls,
          decisions: { allow: row.allow, deny: row.deny, approve: row.approve },
          approvals: row.approvals,
        }),
      );
    },
    async checkpoints() {
      return checkpointsStmt.all().map((row) => JSON.parse(row.checkpoint) as SignedCheckpoint);
    },
    async retentionStart(name, cutoff) {
      const row = retentionStartStmt.get({ chain: name, cutoff });
      return row === undefined ? null : fromRow(row);
    },
    async deleteBefore(name, seq) {
      return db.transaction(() => {
        deleteCheckpointsStmt.run(name, seq);
        return deleteRecordsStmt.run(name, seq).changes;
      }).immediate();
    },
    stats: () => writer.stats(),
    idle: () => writer.idle(),
  };
}
