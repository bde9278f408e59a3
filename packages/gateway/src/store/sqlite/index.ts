// The embedded store (default): one SQLite file in WAL mode with synchronous=FULL, so every committed
// audit batch is on disk before the request it records is forwarded.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Sqlite from 'better-sqlite3';
import { HoopError } from '../../lib/errors.js';
import type { Store, StoreOptions } from '../types.js';
import { createSqliteApprovalRepository } from './approvals.js';
import { withApprovalChanges } from './approval-changes.js';
import { createSqliteAuditStore } from './audit.js';
import { createSqliteConsumeOnce } from './once.js';
import { applyAuditSchema } from './migrate.js';
import { schema } from './schema.js';
import { startWriterThread } from './writer.js';

export async function createSqliteStore(path: string, options: StoreOptions): Promise<Store> {
  let db: Sqlite.Database;
  try {
    if (path !== ':memory:') prepareFiles(path);
    db = new Sqlite(path, { timeout: options.busyTimeoutMs ?? 5000 });
    db.pragma('journal_mode = WAL');
    if (path !== ':memory:') restrictFiles(path);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    if (options.pageCacheKb !== undefined) db.pragma(`cache_size = -${Math.max(64, Math.trunc(options.pageCacheKb))}`);
    applyAuditSchema(db);
    db.exec(schema);
  } catch (error) {
    throw new HoopError(
      'ERR_AUDIT_UNAVAILABLE',
      `cannot open the audit store sqlite:${path}: ${(error as Error).message}; check that the directory exists and is writable`,
      { cause: error },
    );
  }
  const groupCommit = options.groupCommit ?? true;
  const writer =
    path === ':memory:' || options.writerThread === false
      ? undefined
      : startWriterThread({
          path,
          chain: options.replicaId,
          busyTimeoutMs: options.busyTimeoutMs ?? 5000,
          groupCommit,
        });
  const audit = createSqliteAuditStore(db, {
    chain: options.replicaId,
    groupCommit,
    ...(writer === undefined ? {} : { writer }),
  });
  const approvals = withApprovalChanges(db, createSqliteApprovalRepository(db));
  const consumeOnce = createSqliteConsumeOnce(db, options.clock ?? Date.now);
  const ping = db.prepare('SELECT 1');
  let closed = false;

  return {
    kind: 'sqlite',
    audit,
    approvals,
    consumeOnce,
    async ping() {
      if (closed) throw new HoopError('ERR_AUDIT_UNAVAILABLE', 'the audit store is closed');
      ping.get();
      await writer?.health();
    },
    async close() {
      if (closed) return;
      closed = true;
      await audit.idle();
      await writer?.close();
      db.close();
    },
  };
}

/**
 * The store holds every audited request: its folder is created 0700 and the database file 0600
 * before SQLite opens it. SQLite creates `-wal` and `-shm` with the database file's permissions;
 * files left broader by an older version are narrowed too. An existing folder is left as it is.
 */
function prepareFiles(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
}

function restrictFiles(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}
