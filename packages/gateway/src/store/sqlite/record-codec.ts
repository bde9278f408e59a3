// The compact row of an audit record (SQLite layout 3, issue #17): what the hash covers is still the
// canonical record (store/chain.ts); only the stored bytes are smaller. A record's `data` is split into
// a shape — its canonical JSON with the per-call members cut out — stored once in audit_shapes, and
// the cut-out values, stored in the row. Chains are small integers, kinds are codes, and the
// gateway's event and session ids are 16-byte BLOBs. decode(encode(x)) gives the hashed text back
// byte for byte; encode falls back to the whole text when it would not.
import { createHash } from 'node:crypto';
import {
  dataFromShape,
  decodeEventId,
  decodeSessionId,
  encodeEventId,
  encodeSessionId,
  fillShape,
  parseShape,
  splitData,
  type LoadedShape,
} from '../record-shape.js';
import type { AuditRecord, AuditRecordKind, StoredRecord } from '../types.js';

export const KIND_CODES: Readonly<Record<AuditRecordKind, number>> = {
  request: 1,
  outcome: 2,
  frames: 3,
  checkpoint: 4,
  approval: 5,
};
const KIND_NAMES: readonly (AuditRecordKind | undefined)[] = [
  undefined,
  'request',
  'outcome',
  'frames',
  'checkpoint',
  'approval',
];

/** What the row stores of a record (the insert's parameters). */
export interface EncodedRecord {
  chain: number;
  seq: number;
  kind: number;
  time: number;
  eventId: Buffer | string | null;
  sessionId: Buffer | string | null;
  identity: string | null;
  shape: number | null;
  data: string;
  prevHash: Buffer;
  hash: Buffer;
}

/** The raw row as read (`SELECT ${ROW_COLUMNS}`, raw mode). */
export type RecordRow = [
  chain: number,
  seq: number,
  kind: number,
  time: number,
  eventId: Buffer | string | null,
  sessionId: Buffer | string | null,
  identity: string | null,
  shape: number | null,
  data: string,
  prevHash: Buffer,
  hash: Buffer,
];

export const ROW_COLUMNS = 'chain, seq, kind, time, event_id, session_id, identity, shape, data, prev_hash, hash';

/** SQL: a UUID's 16 bytes as its lowercase text (what decodeEventId gives). */
const uuidSql = (bytes: string): string =>
  `lower(substr(hex(${bytes}),1,8)||'-'||substr(hex(${bytes}),9,4)||'-'||substr(hex(${bytes}),13,4)||'-'||substr(hex(${bytes}),17,4)||'-'||substr(hex(${bytes}),21))`;

/**
 * The columns of a chain walk (verification), decoded by SQLite itself: ids and hashes come back as
 * text, so no Buffer is made per row (Buffers were half the cost of reading a row). Same texts as
 * decodeEventId / decodeSessionId / toString('hex').
 */
export const VERIFY_COLUMNS = [
  'seq',
  'kind',
  'time',
  `CASE WHEN typeof(event_id) = 'blob' THEN ${uuidSql('event_id')} ELSE event_id END`,
  `CASE WHEN typeof(session_id) <> 'blob' THEN session_id
        WHEN substr(session_id, 1, 1) = x'6b' THEN 'k-' || lower(hex(substr(session_id, 2)))
        ELSE 's-' || ${uuidSql('substr(session_id, 2)')} END`,
  'identity',
  'shape',
  'data',
  'lower(hex(prev_hash))',
  'lower(hex(hash))',
].join(', ');

/** A row of VERIFY_COLUMNS (raw mode). */
export type VerifyRow = [
  seq: number,
  kind: number,
  time: number,
  eventId: string | null,
  sessionId: string | null,
  identity: string | null,
  shape: number | null,
  data: string,
  prevHash: string,
  hash: string,
];

/** The columns of record reads (export, replay, reports): VERIFY_COLUMNS and the chain id. */
export const READ_COLUMNS = `chain, ${VERIFY_COLUMNS}`;

/** A row of READ_COLUMNS (raw mode). */
export type ReadRow = [chain: number, ...VerifyRow];

interface CodecDb {
  prepare(sql: string): {
    get(...params: unknown[]): unknown;
    run(...params: unknown[]): { lastInsertRowid: number | bigint };
  };
}

const MAX_CACHED = 4096;

/** audit_shapes: id by text (inserted when new), parts and parsed members by id; both cached. */
function createShapeTable(db: CodecDb) {
  const shapeIdOf = db.prepare('SELECT id FROM audit_shapes WHERE digest = ?');
  const shapeTextOf = db.prepare('SELECT text FROM audit_shapes WHERE id = ?');
  const insertShape = db.prepare('INSERT INTO audit_shapes (digest, text) VALUES (?, ?)');
  let shapeIds = new Map<string, number>();
  const shapes = new Map<number, LoadedShape>();

  function shapeId(text: string): number {
    let id = shapeIds.get(text);
    if (id !== undefined) return id;
    const digest = createHash('sha256').update(text).digest().subarray(0, 16);
    const row = shapeIdOf.get(digest) as { id: number } | undefined;
    id = row?.id ?? Number(insertShape.run(digest, text).lastInsertRowid);
    if (shapeIds.size >= MAX_CACHED) shapeIds = new Map();
    shapeIds.set(text, id);
    return id;
  }

  function loadShape(id: number): LoadedShape {
    let shape = shapes.get(id);
    if (shape === undefined) {
      const row = shapeTextOf.get(id) as { text: string } | undefined;
      if (row === undefined) throw new Error(`audit record names shape ${id}, which is not in the store`);
      shape = parseShape(row.text);
      if (shapes.size >= MAX_CACHED) shapes.clear();
      shapes.set(id, shape);
    }
    return shape;
  }

  return {
    id: shapeId,
    load: loadShape,
    forget() {
      shapeIds = new Map();
    },
  };
}

/** A VERIFY_COLUMNS row as stored for verification; built without spreads (one per record of a walk). */
function decodeVerifyRow(chain: string, row: VerifyRow, loadShape: (id: number) => LoadedShape): StoredRecord {
  const [seq, kind, time, eventId, sessionId, identity, shape, data, prevHash, hash] = row;
  const record = {
    chain,
    seq,
    kind: KIND_NAMES[kind] ?? (`unknown-${kind}` as AuditRecordKind),
    time,
    prevHash,
    hash,
    dataText: shape === null ? data : fillShape(loadShape(shape).parts, data),
  } as StoredRecord;
  if (eventId !== null) record.eventId = eventId;
  if (sessionId !== null) record.sessionId = sessionId;
  if (identity !== null) record.identity = identity;
  return record;
}

/** A READ_COLUMNS row as a record, its properties added in the order of the other decoders. */
function readRecordRow(
  row: ReadRow,
  chainName: (id: number) => string,
  dataOf: (shape: number | null, text: string) => Record<string, unknown>,
): AuditRecord {
  const [chain, seq, kind, time, eventId, sessionId, identity, shape, data, prevHash, hash] = row;
  const record = { chain: chainName(chain), seq, kind: KIND_NAMES[kind] ?? `unknown-${kind}`, time } as AuditRecord;
  if (eventId !== null) record.eventId = eventId;
  if (sessionId !== null) record.sessionId = sessionId;
  if (identity !== null) record.identity = identity;
  record.data = dataOf(shape, data);
  record.prevHash = prevHash;
  record.hash = hash;
  return record;
}

/**
 * Encoder (writer side) and decoder (readers) over one connection. Shapes and chain ids are cached;
 * a failed write transaction must call forget(), since ids it inserted were rolled back.
 */
export function createRecordCodec(db: CodecDb, canonical: (value: unknown) => string) {
  const chainIdOf = db.prepare('SELECT id FROM audit_chains WHERE name = ?');
  const chainNameOf = db.prepare('SELECT name FROM audit_chains WHERE id = ?');
  const insertChain = db.prepare('INSERT INTO audit_chains (name) VALUES (?)');
  let chainIds = new Map<string, number>();
  const chainNames = new Map<number, string>();
  const shapes = createShapeTable(db);
  const loadShape = shapes.load;

  /** The id of a chain name; `create` false: undefined when the store never held the chain. */
  function chainId(name: string, create: boolean): number | undefined {
    let id = chainIds.get(name);
    if (id !== undefined) return id;
    const row = chainIdOf.get(name) as { id: number } | undefined;
    if (row === undefined && !create) return undefined;
    id = row?.id ?? Number(insertChain.run(name).lastInsertRowid);
    chainIds.set(name, id);
    return id;
  }

  function chainName(id: number): string {
    let name = chainNames.get(id);
    if (name === undefined) {
      name = (chainNameOf.get(id) as { name: string } | undefined)?.name ?? `#${id}`;
      chainNames.set(id, name);
    }
    return name;
  }

  function header(row: RecordRow): Omit<StoredRecord, 'dataText'> {
    const [chain, seq, kind, time, eventId, sessionId, identity, , , prevHash, hash] = row;
    const event = decodeEventId(eventId);
    const session = decodeSessionId(sessionId);
    return {
      chain: chainName(chain),
      seq,
      kind: KIND_NAMES[kind] ?? (`unknown-${kind}` as AuditRecordKind),
      time,
      ...(event === undefined ? {} : { eventId: event }),
      ...(session === undefined ? {} : { sessionId: session }),
      ...(identity === null ? {} : { identity }),
      prevHash: prevHash.toString('hex'),
      hash: hash.toString('hex'),
    };
  }

  const codec = {
    chainId,
    chainName,
    kindCode: (kind: AuditRecordKind): number => KIND_CODES[kind],
    shapeParts: (id: number): string[] => loadShape(id).parts,
    /** A row's data as an object: the shape's members (shared, frozen) and the row's values parsed alone. */
    dataOf(shape: number | null, text: string): Record<string, unknown> {
      if (shape === null) return JSON.parse(text) as Record<string, unknown>;
      return dataFromShape(loadShape(shape), text);
    },
    sessionIdText: (value: Buffer | string): string => decodeSessionId(value) as string,
    /** `canonicalData` is canonicalJson(record.data): the text that was hashed. */
    encode(record: AuditRecord, canonicalData: string): EncodedRecord {
      const split = splitData(record.kind, record.data, canonicalData, canonical);
      const shape = split === undefined ? null : shapes.id(split.shape);
      const data = split === undefined ? canonicalData : split.values;
      return {
        chain: chainId(record.chain, true) as number,
        seq: record.seq,
        kind: KIND_CODES[record.kind],
        time: record.time,
        eventId: encodeEventId(record.eventId),
        sessionId: encodeSessionId(record.sessionId),
        identity: record.identity ?? null,
        shape,
        data,
        prevHash: Buffer.from(record.prevHash, 'hex'),
        hash: Buffer.from(record.hash, 'hex'),
      };
    },
    /** The row as stored for verification: `dataText` is the canonical JSON that was hashed. */
    decode(row: RecordRow): StoredRecord {
      const [, , , , , , , shape, data] = row;
      return { ...header(row), dataText: shape === null ? data : fillShape(loadShape(shape).parts, data) };
    },
    /** A VERIFY_COLUMNS row of `chain` as stored for verification. */
    decodeVerify: (chain: string, row: VerifyRow): StoredRecord => decodeVerifyRow(chain, row, loadShape),
    /** A READ_COLUMNS row as a record (keys in the order of the other decoders); no Buffer, no spread. */
    readRecord: (row: ReadRow): AuditRecord => readRecordRow(row, chainName, codec.dataOf),
    /** The row as a record whose data is an object (export, replay, reports): no whole-text parse. */
    record(row: RecordRow): AuditRecord {
      const [, , , , , , , shape, data] = row;
      const { prevHash, hash, ...rest } = header(row);
      return { ...rest, data: codec.dataOf(shape, data), prevHash, hash };
    },
    forget() {
      chainIds = new Map();
      shapes.forget();
    },
  };
  return codec;
}

export type RecordCodec = ReturnType<typeof createRecordCodec>;
