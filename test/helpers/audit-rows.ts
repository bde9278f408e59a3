// Tampering with stored audit rows in tests, whatever the SQLite layout's encoding: a record's data is
// decoded, changed, and written back whole (no shape), as an attacker with write access could.
import type { Database } from 'better-sqlite3';
import { canonicalJson } from '../../packages/gateway/src/store/chain.js';
import {
  createRecordCodec,
  ROW_COLUMNS,
  type RecordRow,
} from '../../packages/gateway/src/store/sqlite/record-codec.js';
import type { StoredRecord } from '../../packages/gateway/src/store/types.js';

/** Every stored record (all chains) in (chain, seq) order, decoded. */
export function storedRecords(db: Database): StoredRecord[] {
  const codec = createRecordCodec(db, canonicalJson);
  return (
    db.prepare(`SELECT ${ROW_COLUMNS} FROM audit_records ORDER BY chain, seq`).raw(true).all() as RecordRow[]
  ).map(codec.decode);
}

/** Replaces the data of the record(s) at `seq` with mutate(data); the hash is left as it was. */
export function tamperData(
  db: Database,
  seq: number,
  mutate: (data: Record<string, unknown>) => Record<string, unknown>,
): void {
  for (const record of storedRecords(db).filter((r) => r.seq === seq)) {
    const data = mutate(JSON.parse(record.dataText) as Record<string, unknown>);
    db.prepare(
      'UPDATE audit_records SET shape = NULL, data = ? WHERE seq = ? AND chain = (SELECT id FROM audit_chains WHERE name = ?)',
    ).run(canonicalJson(data), seq, record.chain);
  }
}

/** Writes a record's data, prevHash and hash (hex) back whole. */
export function rewriteRecord(
  db: Database,
  chain: string,
  seq: number,
  data: Record<string, unknown>,
  prevHash: string,
  hash: string,
): void {
  db.prepare(
    'UPDATE audit_records SET shape = NULL, data = ?, prev_hash = ?, hash = ? WHERE seq = ? AND chain = (SELECT id FROM audit_chains WHERE name = ?)',
  ).run(canonicalJson(data), Buffer.from(prevHash, 'hex'), Buffer.from(hash, 'hex'), seq, chain);
}
