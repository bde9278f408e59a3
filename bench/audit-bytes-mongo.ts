// Bytes per event in the MongoDB store (issue #17), computed rather than read from a server: the BSON
// size of each document as store/mongo/audit.ts writes it (layout 2, store/mongo/record-doc.ts; the
// shape a document names is stored once per distinct shape and not counted per call), and an estimate of its index entries (each
// index key's BSON value bytes plus an 8-byte record id per entry, `_id` included). Both are
// uncompressed figures: WiredTiger's block compression (snappy) and index prefix compression make the
// files smaller, so they are upper bounds of what a real mongod stores.
import { BSON } from 'mongodb';
import { chainDrafts, GENESIS_HASH } from '../packages/gateway/src/store/chain.js';
import { shapeId, toDoc } from '../packages/gateway/src/store/mongo/record-doc.js';
import type { AuditRecordDraft } from '../packages/gateway/src/store/types.js';

/** The record indexes of ensureAuditIndexes, plus `_id`. */
const INDEXES: readonly (readonly string[])[] = [
  ['_id'],
  ['chain', 'seq'],
  ['time', 'chain', 'seq'],
  ['sessionId', 'time'],
  ['eventId'],
  ['identity', 'time'],
];

function valueBytes(value: unknown): number {
  if (value === undefined || value === null) return 1;
  // A one-member document minus its framing: the value's own bytes plus its type byte.
  return BSON.calculateObjectSize({ v: value }) - 4 - 1 - 2;
}

export interface MongoBytes {
  document: number;
  indexes: number;
}

/** Document and index bytes of one call (its request + outcome drafts) at a steady-state position in a chain. */
export function mongoBytesPerCall(drafts: readonly AuditRecordDraft[]): MongoBytes {
  const { slices, texts } = chainDrafts('replica-abcdef12', { seq: 1_000_000, hash: GENESIS_HASH }, [drafts]);
  let document = 0;
  let indexes = 0;
  for (const [index, record] of slices.flat().entries()) {
    const doc = toDoc(record, texts[index] as string, shapeId).doc as unknown as Record<string, unknown>;
    document += BSON.calculateObjectSize(doc);
    for (const fields of INDEXES) indexes += 8 + fields.reduce((sum, field) => sum + valueBytes(doc[field]), 0);
  }
  return { document, indexes };
}
