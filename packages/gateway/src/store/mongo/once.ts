// One-time use keys (SAML assertion IDs) on MongoDB: one document per key, claimed by a single
// upsert whose filter only matches an expired document — a live one makes the upsert collide on
// _id (E11000), which means "already consumed", on any replica.
import type { Db } from 'mongodb';
import { durable } from './audit.js';

interface OnceDoc {
  _id: string;
  expiresAt: Date;
}

export async function ensureOnceIndexes(db: Db): Promise<void> {
  // TTL cleanup; correctness never depends on it (the filter compares expiresAt itself).
  await db
    .collection('consumed_once')
    .createIndexes([{ key: { expiresAt: 1 }, name: 'expiry', expireAfterSeconds: 0 }]);
}

export function createMongoConsumeOnce(
  db: Db,
  clock: () => number,
): (key: string, expiresAt: number) => Promise<boolean> {
  const collection = db.collection<OnceDoc>('consumed_once');
  return async (key, expiresAt) => {
    try {
      await collection.updateOne(
        { _id: key, expiresAt: { $lte: new Date(clock()) } },
        { $set: { expiresAt: new Date(expiresAt) } },
        { upsert: true, writeConcern: durable },
      );
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 11000) return false;
      throw error;
    }
  };
}
