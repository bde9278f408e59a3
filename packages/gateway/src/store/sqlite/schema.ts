// SQLite schema of the embedded store: the append-only audit chain, its signed checkpoints, and the
// approval queue (mutable only through compare-and-set UPDATEs).

/**
 * The audit records (layout 3, issue #17): a rowid table of compact rows — see record-codec.ts: chain
 * ids, kind codes, 16-byte event/session ids, 32-byte hashes, and `data` split into a shared shape
 * (audit_shapes) and the row's own values. Secondary indexes point at the small rowid.
 */
export const auditRecordsV3 = `
CREATE TABLE IF NOT EXISTS audit_chains (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS audit_shapes (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL UNIQUE,
  text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_records (
  id INTEGER PRIMARY KEY,
  chain INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  time INTEGER NOT NULL,
  event_id BLOB,
  session_id BLOB,
  identity TEXT,
  shape INTEGER,
  data TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_records_chain_seq ON audit_records (chain, seq);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time, chain, seq);
CREATE INDEX IF NOT EXISTS audit_records_session ON audit_records (session_id, time);
CREATE INDEX IF NOT EXISTS audit_records_event ON audit_records (event_id);
CREATE INDEX IF NOT EXISTS audit_records_identity ON audit_records (identity, time);
`;

/** The layout of an existing audit_records table: 1 (WITHOUT ROWID), 2 (rowid, one JSON text), 3; none yet: undefined. */
export function auditLayoutOf(db: {
  prepare(sql: string): { get(...params: unknown[]): unknown };
}): 1 | 2 | 3 | undefined {
  const row = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'audit_records'").get() as
    { sql: string } | undefined;
  if (row === undefined) return undefined;
  if (/WITHOUT\s+ROWID/i.test(row.sql)) return 1;
  return /\bshape\b/.test(row.sql) ? 3 : 2;
}

export const schema = `
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  chain TEXT NOT NULL,
  type TEXT NOT NULL,
  seq INTEGER NOT NULL,
  time INTEGER NOT NULL,
  checkpoint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_checkpoints_chain ON audit_checkpoints (chain, seq);
CREATE INDEX IF NOT EXISTS audit_checkpoints_type ON audit_checkpoints (chain, type, seq);

CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  holder TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, created_at);

CREATE TABLE IF NOT EXISTS approval_grants (
  id TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  cluster TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_grants_lookup ON approval_grants (identity, cluster, expires_at);
`;
