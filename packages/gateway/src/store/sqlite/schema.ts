// SQLite schema of the embedded store: the append-only audit chain, its signed checkpoints, and the
// approval queue (mutable only through compare-and-set UPDATEs).

/**
 * The audit records of a new file (layout 2, issue #17): a rowid table, so a ~1 KB record sits in
 * its leaf page instead of spilling into a 4 KB overflow page as in the WITHOUT ROWID layout 1 (whose
 * index b-tree keeps only ~1,000 bytes of a row locally), and secondary indexes point at a small
 * rowid instead of repeating (chain, seq). Hashes are 32-byte BLOBs (layout 1: 64 hex characters) and
 * `data` is the canonical JSON that was hashed. Files of layout 1 keep their table; the code reads both.
 */
export const auditRecordsV2 = `
CREATE TABLE IF NOT EXISTS audit_records (
  id INTEGER PRIMARY KEY,
  chain TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  time INTEGER NOT NULL,
  event_id TEXT,
  session_id TEXT,
  identity TEXT,
  data TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_records_chain_seq ON audit_records (chain, seq);
`;

/** Layout 1 (files written before issue #17), created only where it already exists. */
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

/** Indexes of both layouts: export by time, replay by session, the outcome join, sessions by identity. */
export const auditIndexes = `
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time, chain, seq);
CREATE INDEX IF NOT EXISTS audit_records_session ON audit_records (session_id, time);
CREATE INDEX IF NOT EXISTS audit_records_event ON audit_records (event_id);
CREATE INDEX IF NOT EXISTS audit_records_identity ON audit_records (identity, time);
`;

/** Creates the audit tables of a new file as layout 2; a file of layout 1 keeps it. Returns the layout. */
export function applyAuditSchema(db: { prepare(sql: string): { get(...params: unknown[]): unknown }; exec(sql: string): unknown }): 1 | 2 {
  const row = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'audit_records'").get() as { sql: string } | undefined;
  const layout = row !== undefined && /WITHOUT\s+ROWID/i.test(row.sql) ? 1 : 2;
  db.exec((layout === 1 ? auditRecordsV1 : auditRecordsV2) + auditIndexes);
  return layout;
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
