// The read side of the SQLite audit store (layout 3): keyset cursors for export, replay and
// verification, chain heads by index seeks, sessions summed in JS from one session's rows. Rows are
// read in raw mode and decoded by record-codec.ts.
import type { Database, Statement } from 'better-sqlite3';
import type {
  AuditRecord,
  AuditStore,
  ChainHead,
  RecordQuery,
  ScanOptions,
  SessionSummary,
  SignedCheckpoint,
  StoredRecord,
} from '../types.js';
import { encodeEventId, encodeSessionId } from '../record-shape.js';
import { READ_COLUMNS, VERIFY_COLUMNS, type RecordCodec, type ReadRow, type VerifyRow } from './record-codec.js';

type AuditReads = Pick<
  AuditStore,
  | 'listRecords'
  | 'scanRecords'
  | 'scanChain'
  | 'scanChainPages'
  | 'readChain'
  | 'getRecord'
  | 'chainHeads'
  | 'listSessions'
  | 'checkpoints'
  | 'checkpointChains'
  | 'checkpointsOf'
  | 'retentionStart'
>;

const DEFAULT_BATCH = 1000;

/** `after` as a row-value comparison, which SQLite answers from the (time, chain, seq) index. */
function recordFilter(
  codec: RecordCodec,
  query: RecordQuery,
): { where: string; params: Record<string, unknown>; empty: boolean } {
  const where: string[] = [];
  const params: Record<string, unknown> = {};
  if (query.sessionId !== undefined) {
    where.push('session_id = @sessionId');
    params.sessionId = encodeSessionId(query.sessionId);
  }
  if (query.eventIds !== undefined) {
    if (query.eventIds.length === 0) return { where: '', params, empty: true };
    where.push(`event_id IN (${query.eventIds.map((_, i) => `@e${i}`).join(',')})`);
    query.eventIds.forEach((id, i) => (params[`e${i}`] = encodeEventId(id)));
  }
  if (query.kinds !== undefined) {
    if (query.kinds.length === 0) return { where: '', params, empty: true };
    where.push(`kind IN (${[...new Set(query.kinds.map(codec.kindCode))].join(',')})`);
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
    params.ac = codec.chainId(query.after.chain, false) ?? 0;
    params.as = query.after.seq;
  }
  return {
    where: where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '',
    params,
    empty: false,
  };
}

/** listSessions: the most recent sessions, each summed from its own rows (session index). */
function createSessionLister(db: Database, codec: RecordCodec): AuditStore['listSessions'] {
  const sessionRows = db
    .prepare(
      `SELECT kind, time, identity, shape, data FROM audit_records WHERE session_id = @sessionId AND kind IN (1, 2) AND (@identity IS NULL OR identity = @identity)`,
    )
    .raw(true) as Statement<[Record<string, unknown>], [number, number, string | null, number | null, string]>;

  function summarize(sessionId: string, identity: string | undefined): SessionSummary {
    const summary = {
      sessionId,
      identity: undefined as string | undefined,
      cluster: undefined as string | undefined,
      start: Infinity,
      end: -Infinity,
      calls: 0,
    };
    const decisions = { allow: 0, deny: 0, approve: 0 };
    let approvals = 0;
    const params = {
      sessionId: encodeSessionId(sessionId),
      identity: identity ?? null,
    };
    for (const [kind, time, who, shape, text] of sessionRows.iterate(params)) {
      const data = codec.dataOf(shape, text);
      summary.start = Math.min(summary.start, time);
      summary.end = Math.max(summary.end, time);
      if (who !== null && (summary.identity === undefined || who > summary.identity)) summary.identity = who;
      if (kind === 1) {
        summary.calls += 1;
        const cluster = data['cluster'];
        if (typeof cluster === 'string' && (summary.cluster === undefined || cluster > summary.cluster))
          summary.cluster = cluster;
        const effect = (data['decision'] as { effect?: unknown } | undefined)?.effect;
        if (effect === 'allow' || effect === 'deny' || effect === 'approve') decisions[effect] += 1;
      } else if ((data['approval'] as { state?: unknown } | undefined)?.state === 'approved') approvals += 1;
    }
    return {
      sessionId,
      ...(summary.identity === undefined ? {} : { identity: summary.identity }),
      ...(summary.cluster === undefined ? {} : { cluster: summary.cluster }),
      start: summary.start,
      end: summary.end,
      calls: summary.calls,
      decisions,
      approvals,
    };
  }

  // Newest first without grouping the whole store: walk the time (or identity) index backwards until
  // `limit` distinct sessions are seen — the first sighting of a session is its end — then sum each.
  return async (filter = {}) => {
    const limit = filter.limit ?? 100;
    const params: Record<string, unknown> = { since: filter.since ?? 0 };
    if (filter.identity !== undefined) params.identity = filter.identity;
    const recent = db
      .prepare(
        `SELECT session_id FROM audit_records
           WHERE session_id IS NOT NULL AND kind IN (1, 2) AND time >= @since${filter.identity === undefined ? '' : ' AND identity = @identity'}
           ORDER BY time DESC`,
      )
      .pluck() as Statement<[Record<string, unknown>], Buffer | string>;
    const ids: string[] = [];
    const seen = new Set<string>();
    if (limit > 0) {
      for (const value of recent.iterate(params)) {
        const id = codec.sessionIdText(value);
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
        if (ids.length >= limit) break;
      }
    }
    const summaries = ids.map((id) => summarize(id, filter.identity));
    return summaries.sort(
      (a, b) => b.end - a.end || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0),
    );
  };
}

/** A chain's records for verification, in keyset pages over the (chain, seq) index, each read whole (see scanRecords). */
function createChainPages(db: Database, codec: RecordCodec): NonNullable<AuditStore['scanChainPages']> {
  const verifyPage = db
    .prepare(`SELECT ${VERIFY_COLUMNS} FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`)
    .raw(true) as Statement<[number, number, number], VerifyRow>;
  return async function* scanChainPages(name, afterSeq, options: ScanOptions = {}) {
    const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
    const chain = codec.chainId(name, false);
    if (chain === undefined) return;
    let after = afterSeq;
    for (;;) {
      const rows = verifyPage.all(chain, after, batchSize);
      const page = new Array<StoredRecord>(rows.length);
      for (let i = 0; i < rows.length; i++) page[i] = codec.decodeVerify(name, rows[i] as VerifyRow);
      if (page.length > 0) yield page;
      const last = page.at(-1);
      if (last === undefined || page.length < batchSize) return;
      after = last.seq;
    }
  };
}

/** checkpointChains and checkpointsOf: index seeks on audit_checkpoints (chain, type, seq) and (chain, seq). */
function createCheckpointQueries(db: Database): Required<Pick<AuditStore, 'checkpointChains' | 'checkpointsOf'>> {
  const chains = db.prepare('SELECT DISTINCT chain FROM audit_checkpoints').pluck() as Statement<[], string>;
  const ofType = db
    .prepare(
      'SELECT checkpoint FROM audit_checkpoints WHERE chain = ? AND type = ? AND seq >= ? ORDER BY seq DESC, id DESC LIMIT ?',
    )
    .pluck() as Statement<[string, string, number, number], string>;
  const ofAny = db
    .prepare('SELECT checkpoint FROM audit_checkpoints WHERE chain = ? AND seq >= ? ORDER BY seq DESC, id DESC LIMIT ?')
    .pluck() as Statement<[string, number, number], string>;
  return {
    checkpointChains: async () => chains.all(),
    async checkpointsOf(chain, query) {
      const [minSeq, limit] = [query.minSeq ?? Number.MIN_SAFE_INTEGER, query.limit ?? -1];
      const texts =
        query.type === undefined ? ofAny.all(chain, minSeq, limit) : ofType.all(chain, query.type, minSeq, limit);
      return texts.map((text) => JSON.parse(text) as SignedCheckpoint);
    },
  };
}

export function createSqliteAuditReads(db: Database, codec: RecordCodec): AuditReads {
  // Prepared statements of the dynamic queries, reused: a statement's native memory is freed only when
  // the JS GC finalises it, which a streaming read (little JS garbage) can postpone for hundreds of MB.
  const prepared = new Map<string, Statement>();
  const rows = (sql: string): Statement<unknown[], ReadRow> => {
    let stmt = prepared.get(sql);
    if (stmt === undefined) {
      if (prepared.size >= 64) prepared.delete(prepared.keys().next().value as string);
      stmt = db.prepare(sql).raw(true);
      prepared.set(sql, stmt);
    }
    return stmt as Statement<unknown[], ReadRow>;
  };
  const decode = (row: ReadRow): AuditRecord => codec.readRecord(row);

  const chainPage = rows(`SELECT ${READ_COLUMNS} FROM audit_records WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?`);
  const oneRecord = rows(`SELECT ${READ_COLUMNS} FROM audit_records WHERE chain = ? AND seq = ?`);
  // Chain heads by index seeks only (no scan): the next chain id, then its first and last seq.
  const nextChain = db
    .prepare('SELECT chain FROM audit_records WHERE chain > ? ORDER BY chain LIMIT 1')
    .pluck() as Statement<[number], number>;
  const firstSeq = db
    .prepare('SELECT seq FROM audit_records WHERE chain = ? ORDER BY seq LIMIT 1')
    .pluck() as Statement<[number], number>;
  const lastRecord = db.prepare(
    'SELECT seq, hash, time FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT 1',
  ) as Statement<[number], { seq: number; hash: Buffer; time: number }>;
  const checkpointRows = db.prepare('SELECT checkpoint FROM audit_checkpoints ORDER BY id') as Statement<
    [],
    { checkpoint: string }
  >;
  const retentionStartRow = rows(
    `SELECT ${READ_COLUMNS} FROM audit_records WHERE chain = @chain AND (time >= @cutoff OR session_id IN
       (SELECT DISTINCT session_id FROM audit_records WHERE time >= @cutoff AND session_id IS NOT NULL))
     ORDER BY seq LIMIT 1`,
  );
  const scanChainPages = createChainPages(db, codec);
  return {
    async listRecords(query) {
      const { where, params, empty } = recordFilter(codec, query);
      if (empty) return [];
      const limit = query.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.trunc(query.limit))}`;
      return rows(`SELECT ${READ_COLUMNS} FROM audit_records${where} ORDER BY time, chain, seq${limit}`)
        .all(params)
        .map(decode);
    },
    // Cursors are keyset pages: each page is read whole before it is yielded, so no statement stays
    // open across an await — the gateway's writer shares this connection, and better-sqlite3 refuses a
    // write while a read statement is still being iterated.
    async *scanRecords(query, options: ScanOptions = {}) {
      const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
      let remaining = query.limit ?? Number.POSITIVE_INFINITY;
      let after = query.after;
      while (remaining > 0) {
        const { where, params, empty } = recordFilter(codec, {
          ...query,
          ...(after === undefined ? {} : { after }),
        });
        if (empty) return;
        const take = Math.min(batchSize, remaining);
        const page = rows(`SELECT ${READ_COLUMNS} FROM audit_records${where} ORDER BY time, chain, seq LIMIT ${take}`)
          .all(params)
          .map(decode);
        yield* page;
        remaining -= page.length;
        const last = page.at(-1);
        if (last === undefined || page.length < take) return;
        after = { time: last.time, chain: last.chain, seq: last.seq };
      }
    },
    async *scanChain(name, afterSeq, options: ScanOptions = {}) {
      for await (const page of scanChainPages(name, afterSeq, options)) yield* page;
    },
    scanChainPages,
    async readChain(name, afterSeq, limit) {
      const chain = codec.chainId(name, false);
      return chain === undefined ? [] : chainPage.all(chain, afterSeq, limit).map(decode);
    },
    async getRecord(name, seq) {
      const chain = codec.chainId(name, false);
      const row = chain === undefined ? undefined : oneRecord.get(chain, seq);
      return row === undefined ? null : decode(row);
    },
    async chainHeads() {
      const heads: ChainHead[] = [];
      for (let id = nextChain.get(-1); id !== undefined; id = nextChain.get(id)) {
        const first = firstSeq.get(id);
        const last = lastRecord.get(id);
        if (first === undefined || last === undefined) continue;
        heads.push({
          chain: codec.chainName(id),
          firstSeq: first,
          seq: last.seq,
          hash: last.hash.toString('hex'),
          time: last.time,
          records: last.seq - first + 1,
        });
      }
      return heads.sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
    },
    listSessions: createSessionLister(db, codec),
    async checkpoints() {
      return checkpointRows.all().map((row) => JSON.parse(row.checkpoint) as SignedCheckpoint);
    },
    ...createCheckpointQueries(db),
    async retentionStart(name, cutoff) {
      const chain = codec.chainId(name, false);
      const row = chain === undefined ? undefined : retentionStartRow.get({ chain, cutoff });
      return row === undefined ? null : decode(row);
    },
  };
}
