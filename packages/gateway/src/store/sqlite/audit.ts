// The audit chain on SQLite: each group-commit batch is one transaction (WAL, synchronous=FULL), so a
// resolved append() survives a crash or power loss.
import type { Database, Statement } from 'better-sqlite3';
import { canonicalJson, createChainWriter, GENESIS_HASH } from '../chain.js';
import type {
  AuditRecord,
  AuditRecordKind,
  AuditStore,
  ChainHead,
  RecordQuery,
  ScanOptions,
  SessionSummary,
  SignedCheckpoint,
  StoredRecord,
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
  /** Layout 2: 32 bytes; layout 1: 64 hex characters. */
  prev_hash: Buffer | string;
  hash: Buffer | string;
}

const columns = 'chain, seq, kind, time, event_id, session_id, identity, data, prev_hash, hash';
const hex = (value: Buffer | string): string => (typeof value === 'string' ? value : value.toString('hex'));

function storedFromRow(row: RecordRow): StoredRecord {
  return {
    chain: row.chain,
    seq: row.seq,
    kind: row.kind as AuditRecordKind,
    time: row.time,
    ...(row.event_id === null ? {} : { eventId: row.event_id }),
    ...(row.session_id === null ? {} : { sessionId: row.session_id }),
    ...(row.identity === null ? {} : { identity: row.identity }),
    dataText: row.data,
    prevHash: hex(row.prev_hash),
    hash: hex(row.hash),
  };
}

function fromRow(row: RecordRow): AuditRecord {
  const { dataText, ...rest } = storedFromRow(row);
  return { ...rest, data: JSON.parse(dataText) as Record<string, unknown> };
}

/** `after` as a row-value comparison, which SQLite answers from the (time, chain, seq) index. */
function recordFilter(query: RecordQuery): { where: string[]; params: Record<string, unknown>; empty: boolean } {
  const where: string[] = [];
  const params: Record<string, unknown> = {};
  if (query.sessionId !== undefined) {
    where.push('session_id = @sessionId');
    params.sessionId = query.sessionId;
  }
  if (query.eventIds !== undefined) {
    if (query.eventIds.length === 0) return { where, params, empty: true };
    where.push(`event_id IN (${query.eventIds.map((_, i) => `@e${i}`).join(',')})`);
    query.eventIds.forEach((id, i) => (params[`e${i}`] = id));
  }
  if (query.kinds !== undefined) {
    if (query.kinds.length === 0) return { where, params, empty: true };
    where.push(`kind IN (${query.kinds.map((_, i) => `@k${i}`).join(',')})`);
    query.kinds.forEach((kind, i) => (params[`k${i}`] = kind));
  }
  // With a keyset position past `since`, the row-value bound alone must seed the index search: given
  // both, SQLite seeks from `since` and skips every earlier page again (quadratic over a long window).
  if (query.since !== undefined && (query.after === undefined || query.after.time < query.since)) {
    where.push('time >= @since');
    params.since = query.since;
  }
  if (query.until !== undefined) {
    where.push('time < @until');
    params.until = query.until;
  }
  if (query.after !== undefined) {
    where.push('(time, chain, seq) > (@at, @ac, @as)');
    params.at = query.after.time;
    params.ac = query.after.chain;
    params.as = query.after.seq;
  }
  return { where, params, empty: false };
}

const DEFAULT_BATCH = 1000;

export function createSqliteAuditStore(
  db: Database,
  options: { chain: string; groupCommit: boolean },
): AuditStore & { idle(): Promise<void> } {
  const { chain } = options;
  // Prepared statements of the dynamic queries, reused: a statement's native memory is freed only when
  // the JS GC finalises it, which a streaming read (little JS garbage) can postpone for hundreds of MB.
  const prepared = new Map<string, Statement>();
  const prepare = (sql: string): Statement => {
    let stmt = prepared.get(sql);
    if (stmt === undefined) {
      if (prepared.size >= 64) prepared.delete(prepared.keys().next().value as string);
      stmt = db.prepare(sql);
      prepared.set(sql, stmt);
    }
    return stmt;
  };
  const insertRecord = db.prepare(
    `INSERT INTO audit_records (chain, seq, kind, time, event_id, session_id, identity, data, prev_hash, hash)
     VALUES (@chain, @seq, @kind, @time, @eventId, @sessionId, @identity, @data, @prevHash, @hash)`,
  );
  const insertCheckpoint = db.prepare(
    'INSERT INTO audit_checkpoints (chain, type, seq, time, checkpoint) VALUES (@chain, @type, @seq, @time, @checkpoint)',
  );
  const writeAll = db.transaction((records: readonly AuditRecord[], texts: readonly string[]) => {
    for (const [index, record] of records.entries()) {
      insertRecord.run({
        chain: record.chain,
        seq: record.seq,
        kind: record.kind,
        time: record.time,
        eventId: record.eventId ?? null,
        sessionId: record.sessionId ?? null,
        identity: record.identity ?? null,
        data: texts[index] ?? canonicalJson(record.data),
        prevHash: Buffer.from(record.prevHash, 'hex'),
        hash: Buffer.from(record.hash, 'hex'),
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
    { seq: number; hash: Buffer | string }
  >;

  const writer = createChainWriter({
    chain,
    groupCommit: options.groupCommit,
    loadHead: async () => {
      const head = headOf.get(chain);
      return head === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: head.seq, hash: hex(head.hash) };
    },
    writeBatch: async (records, texts) => {
      writeAll.immediate(records, texts);
    },
  });

  const readChainStmt = db.prepare(`SELECT ${columns} FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`) as Statement<
    [string, number, number],
    RecordRow
  >;
  const getRecordStmt = db.prepare(`SELECT ${columns} FROM audit_records WHERE chain = ? AND seq = ?`) as Statement<[string, number], RecordRow>;
  // Chain heads by index seeks only (no scan): the next chain name, then its first and last seq.
  const nextChainStmt = db.prepare('SELECT chain FROM audit_records WHERE chain > ? ORDER BY chain LIMIT 1').pluck() as Statement<[string], string>;
  const firstSeqStmt = db.prepare('SELECT seq FROM audit_records WHERE chain = ? ORDER BY seq LIMIT 1').pluck() as Statement<[string], number>;
  const lastRecordStmt = db.prepare('SELECT seq, hash, time FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT 1') as Statement<
    [string],
    { seq: number; hash: Buffer | string; time: number }
  >;
  const scanChainStmt = db.prepare(`SELECT ${columns} FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`) as Statement<
    [string, number, number],
    RecordRow
  >;
  const checkpointsStmt = db.prepare('SELECT checkpoint FROM audit_checkpoints ORDER BY id') as Statement<[], { checkpoint: string }>;
  const retentionStartStmt = db.prepare(
    `SELECT ${columns} FROM audit_records WHERE chain = @chain AND (time >= @cutoff OR session_id IN
       (SELECT DISTINCT session_id FROM audit_records WHERE time >= @cutoff AND session_id IS NOT NULL))
     ORDER BY seq LIMIT 1`,
  ) as Statement<[{ chain: string; cutoff: number }], RecordRow>;
  const sessionSummaryStmt = db.prepare(
    `SELECT @sessionId AS sessionId, MAX(identity) AS identity,
       MAX(CASE WHEN kind = 'request' THEN json_extract(data, '$.cluster') END) AS cluster,
       MIN(time) AS start, MAX(time) AS end,
       SUM(kind = 'request') AS calls,
       SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'allow') AS allow,
       SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'deny') AS deny,
       SUM(kind = 'request' AND json_extract(data, '$.decision.effect') = 'approve') AS approve,
       SUM(kind = 'outcome' AND json_extract(data, '$.approval.state') = 'approved') AS approvals
     FROM audit_records WHERE session_id = @sessionId AND kind IN ('request', 'outcome') AND (@byIdentity = 0 OR identity = @identity)`,
  );
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
      const { where, params, empty } = recordFilter(query);
      if (empty) return [];
      const sql = `SELECT ${columns} FROM audit_records${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
        ORDER BY time, chain, seq${query.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.trunc(query.limit))}`}`;
      return (prepare(sql).all(params) as RecordRow[]).map(fromRow);
    },
    // Cursors are keyset pages: each page is read whole (statement.iterate) before it is yielded, so no
    // statement stays open across an await — the gateway's writer shares this connection, and
    // better-sqlite3 refuses a write while a read statement is still being iterated.
    async *scanRecords(query: RecordQuery, options: ScanOptions = {}) {
      const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
      let remaining = query.limit ?? Number.POSITIVE_INFINITY;
      let after = query.after;
      while (remaining > 0) {
        const { where, params, empty } = recordFilter({ ...query, ...(after === undefined ? {} : { after }) });
        if (empty) return;
        const take = Math.min(batchSize, remaining);
        const stmt = prepare(
          `SELECT ${columns} FROM audit_records${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time, chain, seq LIMIT ${take}`,
        ) as Statement<[Record<string, unknown>], RecordRow>;
        const page: AuditRecord[] = [];
        for (const row of stmt.iterate(params)) page.push(fromRow(row));
        yield* page;
        remaining -= page.length;
        const last = page.at(-1);
        if (last === undefined || page.length < take) return;
        after = { time: last.time, chain: last.chain, seq: last.seq };
      }
    },
    async *scanChain(name: string, afterSeq: number, options: ScanOptions = {}) {
      const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
      let after = afterSeq;
      for (;;) {
        const page: StoredRecord[] = [];
        for (const row of scanChainStmt.iterate(name, after, batchSize)) page.push(storedFromRow(row));
        yield* page;
        const last = page.at(-1);
        if (last === undefined || page.length < batchSize) return;
        after = last.seq;
      }
    },
    async readChain(name, afterSeq, limit) {
      return readChainStmt.all(name, afterSeq, limit).map(fromRow);
    },
    async getRecord(name, seq) {
      const row = getRecordStmt.get(name, seq);
      return row === undefined ? null : fromRow(row);
    },
    async chainHeads() {
      const heads: ChainHead[] = [];
      for (let name = nextChainStmt.get(''); name !== undefined; name = nextChainStmt.get(name)) {
        const first = firstSeqStmt.get(name);
        const last = lastRecordStmt.get(name);
        if (first === undefined || last === undefined) continue;
        heads.push({ chain: name, firstSeq: first, seq: last.seq, hash: hex(last.hash), time: last.time, records: last.seq - first + 1 });
      }
      return heads;
    },
    // Newest first without grouping the whole store: walk the time (or identity) index backwards until
    // `limit` distinct sessions are seen — the first sighting of a session is its end — then sum each.
    async listSessions(filter = {}) {
      const limit = filter.limit ?? 100;
      const params: Record<string, unknown> = { since: filter.since ?? 0 };
      if (filter.identity !== undefined) params.identity = filter.identity;
      const recent = db
        .prepare(
          `SELECT session_id FROM audit_records
           WHERE session_id IS NOT NULL AND kind IN ('request', 'outcome') AND time >= @since${filter.identity === undefined ? '' : ' AND identity = @identity'}
           ORDER BY time DESC`,
        )
        .pluck() as Statement<[Record<string, unknown>], string>;
      const ids: string[] = [];
      const seen = new Set<string>();
      if (limit > 0) {
        for (const id of recent.iterate(params)) {
          if (seen.has(id)) continue;
          seen.add(id);
          ids.push(id);
          if (ids.length >= limit) break;
        }
      }
      const rows = ids.map(
        (sessionId) =>
          sessionSummaryStmt.get({ sessionId, identity: filter.identity ?? null, byIdentity: filter.identity === undefined ? 0 : 1 }) as {
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
          },
      );
      rows.sort((a, b) => b.end - a.end || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
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
