// The audit chain on SQLite: each group-commit batch is one transaction (WAL, synchronous=FULL), so a
// resolved append() survives a crash or power loss. Rows are written in layout 3 (record-codec.ts),
// either here on the event loop or by the writer thread (writer-thread.ts), both through prepareRecordWrites.
import type { Database, Statement } from 'better-sqlite3';
import { HoopError } from '../../lib/errors.js';
import { canonicalJson, createChainWriter, GENESIS_HASH, type ChainWriter } from '../chain.js';
import type { AuditRecord, AuditStore, SignedCheckpoint } from '../types.js';
import { createSqliteAuditReads } from './audit-read.js';
import { createRecordCodec } from './record-codec.js';

/** The write side of the record encoding: one transaction per batch (BEGIN IMMEDIATE), on `db`. */
export interface RecordWrites {
  loadHead(chain: string): { seq: number; hash: string };
  writeBatch(records: readonly AuditRecord[], texts: readonly string[]): void;
}

/**
 * Prepares the inserts of records (and of checkpoints in their side table) on a connection: the
 * gateway's own in-process writer and the writer thread both use it.
 */
export function prepareRecordWrites(db: Database, codec = createRecordCodec(db, canonicalJson)): RecordWrites {
  const insertRecord = db.prepare(
    `INSERT INTO audit_records (chain, seq, kind, time, event_id, session_id, identity, shape, data, prev_hash, hash)
     VALUES (@chain, @seq, @kind, @time, @eventId, @sessionId, @identity, @shape, @data, @prevHash, @hash)`,
  );
  const insertCheckpoint = db.prepare(
    'INSERT INTO audit_checkpoints (chain, type, seq, time, checkpoint) VALUES (@chain, @type, @seq, @time, @checkpoint)',
  );
  const writeAll = db.transaction((records: readonly AuditRecord[], texts: readonly string[]) => {
    for (const [index, record] of records.entries()) {
      insertRecord.run(codec.encode(record, texts[index] ?? canonicalJson(record.data)));
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
  const headOf = db.prepare(
    'SELECT seq, hash FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT 1',
  ) as Statement<[number], { seq: number; hash: Buffer }>;
  return {
    loadHead(chain) {
      const id = codec.chainId(chain, false);
      const head = id === undefined ? undefined : headOf.get(id);
      return head === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: head.seq, hash: head.hash.toString('hex') };
    },
    writeBatch(records, texts) {
      try {
        writeAll.immediate(records, texts);
      } catch (error) {
        codec.forget(); // chain and shape ids of the rolled-back transaction
        throw error;
      }
    },
  };
}

export function createSqliteAuditStore(
  db: Database,
  options: { chain: string; groupCommit: boolean; writer?: ChainWriter },
): AuditStore & { idle(): Promise<void> } {
  const { chain } = options;
  const codec = createRecordCodec(db, canonicalJson);
  const writer =
    options.writer ??
    (() => {
      const writes = prepareRecordWrites(db, codec);
      return createChainWriter({
        chain,
        groupCommit: options.groupCommit,
        loadHead: async () => writes.loadHead(chain),
        writeBatch: async (records, texts) => writes.writeBatch(records, texts),
      });
    })();

  const deleteRecordsStmt = db.prepare('DELETE FROM audit_records WHERE chain = ? AND seq < ?');
  const deleteCheckpointsStmt = db.prepare(
    "DELETE FROM audit_checkpoints WHERE chain = ? AND type = 'head' AND seq < ?",
  );

  return {
    chain,
    ...createSqliteAuditReads(db, codec),
    append: (drafts) => writer.append(drafts),
    async appendCheckpoint(checkpoint) {
      const [record] = await writer.append([
        { kind: 'checkpoint', time: checkpoint.statement.time, data: checkpoint as unknown as Record<string, unknown> },
      ]);
      if (record === undefined)
        throw new HoopError('ERR_AUDIT_UNAVAILABLE', 'the audit store wrote no record for the checkpoint');
      return record;
    },
    async deleteBefore(name, seq) {
      const id = codec.chainId(name, false);
      return db
        .transaction(() => {
          deleteCheckpointsStmt.run(name, seq);
          return id === undefined ? 0 : deleteRecordsStmt.run(id, seq).changes;
        })
        .immediate();
    },
    stats: () => writer.stats(),
    idle: () => writer.idle(),
  };
}
