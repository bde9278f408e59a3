// The MongoDB store for several replicas: each replica appends to its own chain in one shared
// database; approvals are shared documents changed only by compare-and-set.
import { MongoClient } from 'mongodb';
import { HoopError } from '../../lib/errors.js';
import type { Store, StoreOptions } from '../types.js';
import { withMongoApprovalChanges, ensureApprovalChangeIndexes } from './approval-changes.js';
import { createMongoApprovalRepository, ensureApprovalIndexes } from './approvals.js';
import { createMongoAuditStore, ensureAuditIndexes } from './audit.js';
import { createMongoConsumeOnce, ensureOnceIndexes } from './once.js';

/** The URL without its password, for messages and logs. */
export function redactMongoUrl(url: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}

export async function createMongoStore(url: string, options: StoreOptions): Promise<Store> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 10_000,
    ignoreUndefined: true,
    appName: `hoopgate/${options.replicaId}`,
  });
  let db;
  try {
    await client.connect();
    db = client.db();
    await db.command({ ping: 1 });
    await ensureAuditIndexes(db);
    await ensureApprovalIndexes(db);
    await ensureApprovalChangeIndexes(db);
    await ensureOnceIndexes(db);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new HoopError(
      'ERR_AUDIT_UNAVAILABLE',
      `cannot use the audit store ${redactMongoUrl(url)}: ${(error as Error).message}; check the URL, credentials and that MongoDB is reachable`,
      { cause: error },
    );
  }
  const audit = createMongoAuditStore(db, { chain: options.replicaId, groupCommit: options.groupCommit ?? true });
  const approvals = withMongoApprovalChanges(db, createMongoApprovalRepository(db), options.clock);
  let closed = false;

  return {
    kind: 'mongodb',
    audit,
    approvals,
    consumeOnce: createMongoConsumeOnce(db, options.clock ?? Date.now),
    async ping() {
      if (closed) throw new HoopError('ERR_AUDIT_UNAVAILABLE', 'the audit store is closed');
      await db.command({ ping: 1 });
    },
    async close() {
      if (closed) return;
      closed = true;
      await audit.idle();
      await client.close();
    },
  };
}
