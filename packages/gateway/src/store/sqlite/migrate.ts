// Opening an audit store: a new file gets layout 3; a file of layout 1 or 2 (before issue #17's compact
// rows) is rewritten to layout 3 once, in one transaction. The hashes do not change — they cover the
// canonical record, not the stored bytes — so the chain verifies the same before and after.
import type { Database } from 'better-sqlite3';
import { canonicalJson } from '../chain.js';
import type { AuditRecord, AuditRecordKind } from '../types.js';
import { createRecordCodec } from './record-codec.js';
import { auditLayoutOf, auditRecordsV3 } from './schema.js';

/** Layout 1 (files written before layout 2), kept to build such a file in tests. */
export const auditRecordsV1 = `
CREATE TABLE IF NOT EXISTS audit_records (
  chain TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  time INTEGER NOT NULL,
  event_id TEXT,
  session_id TEXT,
  identity TEXT,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
`;

/** The indexes of layouts 1 and 2. */
export const auditIndexes = `
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time, chain, seq);
CREATE INDEX IF NOT EXISTS audit_records_session ON audit_records (session_id, time);
CREATE INDEX IF NOT EXISTS audit_records_event ON audit_records (event_id);
CREATE INDEX IF NOT EXISTS audit_records_identity ON audit_records (identity, time);
`;

interface LegacyRow {
  chain: string;
  seq: number;
  kind: string;
  time: number;
  event_id: string | null;
  session_id: string | null;
  identity: string | null;
  data: string;
  prev_hash: Buffer | string;
  hash: Buffer | string;
}

const hex = (value: Buffer | string): string => (typeof value === 'string' ? value : value.toString('hex'));

/** Creates the audit tables (layout 3), migrating an older layout first. Returns the layout found (undefined: new). */
export function applyAuditSchema(db: Database, log?: (message: string) => void): 1 | 2 | 3 | undefined {
  const found = auditLayoutOf(db);
  if (found === 1 || found === 2) migrate(db, found, log);
  else db.exec(auditRecordsV3);
  return found;
}

function migrate(db: Database, from: 1 | 2, log?: (message: string) => void): void {
  const began = Date.now();
  let moved = 0;
  db.transaction(() => {
    for (const index of [
      'audit_records_chain_seq',
      'audit_records_time',
      'audit_records_session',
      'audit_records_event',
      'audit_records_identity',
    ]) {
      db.exec(`DROP INDEX IF EXISTS ${index}`);
    }
    db.exec('ALTER TABLE audit_records RENAME TO audit_records_legacy');
    db.exec(auditRecordsV3);
    const codec = createRecordCodec(db, canonicalJson);
    const page = db.prepare(
      `SELECT chain, seq, kind, time, event_id, session_id, identity, data, prev_hash, hash FROM audit_records_legacy
       WHERE (chain, seq) > (?, ?) ORDER BY chain, seq LIMIT 1000`,
    );
    const insert = db.prepare(
      `INSERT INTO audit_records (chain, seq, kind, time, event_id, session_id, identity, shape, data, prev_hash, hash)
       VALUES (@chain, @seq, @kind, @time, @eventId, @sessionId, @identity, @shape, @data, @prevHash, @hash)`,
    );
    let after: [string, number] = ['', 0];
    for (;;) {
      const rows = page.all(...after) as LegacyRow[];
      for (const row of rows) {
        const data = JSON.parse(row.data) as Record<string, unknown>;
        const record: AuditRecord = {
          chain: row.chain,
          seq: row.seq,
          kind: row.kind as AuditRecordKind,
          time: row.time,
          ...(row.event_id === null ? {} : { eventId: row.event_id }),
          ...(row.session_id === null ? {} : { sessionId: row.session_id }),
          ...(row.identity === null ? {} : { identity: row.identity }),
          data,
          prevHash: hex(row.prev_hash),
          hash: hex(row.hash),
        };
        insert.run(codec.encode(record, canonicalJson(data)));
      }
      moved += rows.length;
      const last = rows.at(-1);
      if (last === undefined || rows.length < 1000) break;
      after = [last.chain, last.seq];
    }
    db.exec('DROP TABLE audit_records_legacy');
  }).immediate();
  log?.(
    `audit store: ${moved} records moved from layout ${from} to layout 3 in ${Date.now() - began} ms (hashes unchanged)`,
  );
}
