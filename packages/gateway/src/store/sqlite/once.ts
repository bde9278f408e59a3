// One-time use keys (SAML assertion IDs) in the embedded store: one row per key; a key whose
// expiry has passed may be consumed again (the assertion itself is then expired anyway).
import type Sqlite from 'better-sqlite3';

export const onceSchema = `
CREATE TABLE IF NOT EXISTS consumed_once (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS consumed_once_expiry ON consumed_once (expires_at);
`;

export function createSqliteConsumeOnce(
  db: Sqlite.Database,
  clock: () => number,
): (key: string, expiresAt: number) => Promise<boolean> {
  db.exec(onceSchema);
  // One statement: insert, or take over an expired row; `changes` says whether this call won.
  const claim = db.prepare(
    'INSERT INTO consumed_once (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE consumed_once.expires_at <= ?',
  );
  const purge = db.prepare('DELETE FROM consumed_once WHERE expires_at <= ?');
  let claims = 0;
  return async (key, expiresAt) => {
    const now = clock();
    if (++claims % 1000 === 0) purge.run(now);
    return claim.run(key, expiresAt, now).changes === 1;
  };
}
