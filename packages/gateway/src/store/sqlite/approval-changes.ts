// Approvals by push on SQLite (issue #13): a trigger appends the id of every approval whose state
// changes to approval_changes (an AUTOINCREMENT sequence, pruned to the last 10,000 changes), so a
// replica learns what was decided elsewhere with one tiny indexed query per tick instead of
// re-reading every pending approval. Schema-only: the write functions are untouched (the trigger
// runs inside their transaction), and every connection to the file sees the same sequence.
// Admission reads through two partial expression indexes over the pending rows (identity, fingerprint,
// expiry), so holding the 10,000th request costs what holding the first did; createMany() commits a
// batch of new approvals in one transaction (one fsync for all the requests that arrived together).
import type { Database, Statement } from 'better-sqlite3';
import type { ApprovalChanges, ApprovalRecord, ApprovalRepository } from '../../approvals/types.js';

const keptChanges = 10_000;
const busyRetryMs = 5_000;

export const approvalChangesSchema = `
CREATE TABLE IF NOT EXISTS approval_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS approval_changes_on_state AFTER UPDATE OF state ON approvals WHEN NEW.state <> OLD.state BEGIN
  INSERT INTO approval_changes (id) VALUES (NEW.id);
  DELETE FROM approval_changes WHERE seq <= (SELECT max(seq) FROM approval_changes) - ${keptChanges};
END;
CREATE INDEX IF NOT EXISTS approvals_pending_fingerprint ON approvals (json_extract(doc, '$.identity'), json_extract(doc, '$.fingerprint'), json_extract(doc, '$.expiresAt')) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS approvals_pending_identity ON approvals (json_extract(doc, '$.identity'), json_extract(doc, '$.expiresAt')) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS approvals_pending_expiry ON approvals (json_extract(doc, '$.expiresAt')) WHERE state = 'pending';
`;

/** The repository with changesSince() (the trigger's sequence), pendingCount(), pendingWithFingerprint() (admission in SQL) and createMany() added. */
export function withApprovalChanges(db: Database, repo: ApprovalRepository): ApprovalRepository {
  db.exec(approvalChangesSchema);
  const bounds = db.prepare(
    'SELECT coalesce(min(seq), 0) AS lo, coalesce(max(seq), 0) AS hi FROM approval_changes',
  ) as Statement<[], { lo: number; hi: number }>;
  // sqlite_sequence keeps the last seq even when every row was pruned.
  const last = db.prepare(
    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'approval_changes'), 0) AS seq",
  ) as Statement<[], { seq: number }>;
  const counted = db.prepare(
    `SELECT count(*) AS count, coalesce(min(json_extract(doc, '$.expiresAt')), 0) AS next FROM approvals
     WHERE state = 'pending' AND json_extract(doc, '$.identity') = ? AND json_extract(doc, '$.expiresAt') > ?`,
  ) as Statement<[string, number], { count: number; next: number }>;
  const joinable = db.prepare(
    `SELECT state, doc FROM approvals WHERE state = 'pending' AND json_extract(doc, '$.fingerprint') = ? AND json_extract(doc, '$.identity') = ?
       AND json_extract(doc, '$.expiresAt') > ? ORDER BY created_at, id LIMIT 1`,
  ) as Statement<[string, string, number], { state: string; doc: string }>;
  const since = db.prepare(
    `SELECT seq, id FROM approval_changes WHERE seq > ? ORDER BY seq LIMIT ${keptChanges}`,
  ) as Statement<[number], { seq: number; id: string }>;
  const overdue = db.prepare(
    `SELECT state, doc FROM approvals INDEXED BY approvals_pending_expiry WHERE state = 'pending' AND json_extract(doc, '$.expiresAt') <= ?
       ORDER BY json_extract(doc, '$.expiresAt')`,
  ) as Statement<[number], { state: string; doc: string }>;
  const insert = db.prepare('INSERT INTO approvals (id, state, holder, created_at, doc) VALUES (?, ?, ?, ?, ?)');
  const insertMany = db.transaction((records: readonly ApprovalRecord[]) => {
    for (const r of records) insert.run(r.id, r.state, r.holder, r.createdAt, JSON.stringify(r));
  });
  async function createMany(records: readonly ApprovalRecord[]): Promise<void> {
    // IMMEDIATE: the write lock is taken before the first insert. Under the audit writers' commits
    // BEGIN IMMEDIATE was seen to answer SQLITE_BUSY at once rather than wait out the busy timeout,
    // so it is retried here (for up to the same 5 s) before the batch is refused.
    const deadline = Date.now() + busyRetryMs;
    for (;;) {
      try {
        insertMany.immediate(records);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
      }
    }
  }

  return {
    ...repo,
    async pendingExpired(now) {
      return overdue
        .all(now)
        .map((row) => ({ ...(JSON.parse(row.doc) as ApprovalRecord), state: row.state as ApprovalRecord['state'] }));
    },
    create: (record) => createMany([record]),
    createMany,
    async pendingCount(identity, now) {
      const { count, next } = counted.get(identity, now) ?? { count: 0, next: 0 };
      return { count, nextExpiry: next };
    },
    async pendingWithFingerprint(identity, fingerprint, now) {
      const row = joinable.get(fingerprint, identity, now);
      return row === undefined
        ? null
        : { ...(JSON.parse(row.doc) as ApprovalRecord), state: row.state as ApprovalRecord['state'] };
    },
    async changesSince(seen: number): Promise<ApprovalChanges> {
      const current = last.get()?.seq ?? 0;
      if (seen < 0) return { seq: current, ids: [], complete: false };
      if (current === seen) return { seq: seen, ids: [], complete: true };
      const { lo } = bounds.get() ?? { lo: 0 };
      const rows = since.all(seen);
      // Pruned past what we saw, or more than one page: read the pendings again.
      if (lo > seen + 1 || rows.length >= keptChanges) return { seq: current, ids: [], complete: false };
      return { seq: rows.at(-1)?.seq ?? seen, ids: rows.map((row) => row.id), complete: true };
    },
  };
}
