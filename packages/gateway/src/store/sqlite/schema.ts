// SQLite schema of the embedded store: the append-only audit chain, its signed checkpoints, and the
// approval queue (mutable only through compare-and-set UPDATEs).

export const schema = `
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
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time, chain, seq);
CREATE INDEX IF NOT EXISTS audit_records_session ON audit_records (session_id, time);
CREATE INDEX IF NOT EXISTS audit_records_event ON audit_records (event_id);
CREATE INDEX IF NOT EXISTS audit_records_identity ON audit_records (identity, time);

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
