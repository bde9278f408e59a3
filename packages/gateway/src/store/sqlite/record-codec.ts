// The compact row of an audit record (SQLite layout 3, issue #17): what the hash covers is still the
// canonical record (store/chain.ts); only the stored bytes are smaller. A record's `data` is split into
// a shape — its canonical JSON with the per-call members cut out — stored once in audit_shapes, and
// the cut-out values, stored in the row. Chains are small integers, kinds are codes, and the
// gateway's event and session ids are 16-byte BLOBs. decode(encode(x)) gives the hashed text back
// byte for byte; encode falls back to the whole text when it would not.
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditRecordKind, StoredRecord } from '../types.js';

/** Separates the holes of a shape and their values: canonical JSON never holds a raw control character. */
const HOLE = '\u0001';

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

/**
 * Members that repeat from call to call stay in the shape; every other member (ids, paths, timings,
 * bodies, anything unknown) is a hole. Before authentication only what the gateway itself wrote is
 * kept in the shape: the caller's path, headers and classification are values of the row, so a
 * stranger's requests cannot grow the shape table and each refusal costs the same.
 */
const SHAPED: Readonly<Record<string, ReadonlySet<string>>> = {
  request: new Set(['cluster', 'decision', 'info', 'kubectlCommand', 'method', 'principal', 'userAgent']),
  anonymousRequest: new Set(['cluster', 'decision', 'method']),
  outcome: new Set(['status', 'error']),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX32 = /^[0-9a-f]{32}$/;

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

function uuidText(bytes: Buffer, offset: number): string {
  const h = bytes.toString('hex', offset, offset + 16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A lowercase UUID as 16 bytes; anything else as it is. */
export function encodeEventId(id: string | undefined): Buffer | string | null {
  if (id === undefined) return null;
  return UUID.test(id) ? uuidBytes(id) : id;
}

function decodeEventId(value: Buffer | string | null): string | undefined {
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  return uuidText(value, 0);
}

/** The gateway's session ids (`k-` + 32 hex, `s-` + a UUID) as a marker byte and 16 bytes. */
export function encodeSessionId(id: string | undefined): Buffer | string | null {
  if (id === undefined) return null;
  if (id.startsWith('k-') && HEX32.test(id.slice(2)))
    return Buffer.concat([Buffer.of(0x6b), Buffer.from(id.slice(2), 'hex')]);
  if (id.startsWith('s-') && UUID.test(id.slice(2))) return Buffer.concat([Buffer.of(0x73), uuidBytes(id.slice(2))]);
  return id;
}

function decodeSessionId(value: Buffer | string | null): string | undefined {
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  return value[0] === 0x6b ? `k-${value.toString('hex', 1)}` : `s-${uuidText(value, 1)}`;
}

/** canonicalJson of a plain object whose members are already canonical texts, keys in canonical order. */
function shapeOf(
  kind: AuditRecordKind,
  data: Record<string, unknown>,
  memberText: (value: unknown) => string,
): { shape: string; holes: string[] } | undefined {
  const shaped =
    kind === 'request'
      ? data['principal'] === undefined
        ? SHAPED['anonymousRequest']
        : SHAPED['request']
      : SHAPED[kind];
  if (shaped === undefined) return undefined;
  const keys = Object.keys(data)
    .filter((key) => data[key] !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const holes: string[] = [];
  let shape = '{';
  keys.forEach((key, index) => {
    const text = memberText(data[key]);
    shape += `${index === 0 ? '' : ','}${JSON.stringify(key)}:`;
    if (shaped.has(key)) shape += text;
    else {
      shape += HOLE;
      holes.push(text);
    }
  });
  return { shape: `${shape}}`, holes };
}

const isHole = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.keys(value).length === 1 &&
  (value as Record<string, unknown>)['\u0001'] === 0;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Fills a shape's holes (its text split at HOLE) with the row's values. */
export function fillShape(parts: readonly string[], values: string): string {
  if (parts.length === 1) return parts[0] as string;
  const filled = values.split(HOLE);
  let text = parts[0] as string;
  for (let i = 1; i < parts.length; i++) text += (filled[i - 1] ?? '') + (parts[i] as string);
  return text;
}

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

/** A shape as read: its text split at the holes, and its members parsed once (deep-frozen: rows share them). */
interface LoadedShape {
  parts: string[];
  /** [key, value] of every member in canonical order; a hole's value is undefined. */
  members: [string, unknown][];
}

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
      const parsed = JSON.parse(row.text.replaceAll(HOLE, '{"\\u0001":0}')) as Record<string, unknown>;
      const members = Object.entries(parsed).map(([key, value]): [string, unknown] => [
        key,
        isHole(value) ? undefined : deepFreeze(value),
      ]);
      shape = { parts: row.text.split(HOLE), members };
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
      const { members } = loadShape(shape);
      const values = text.split(HOLE);
      const data: Record<string, unknown> = {};
      let hole = 0;
      for (const [key, value] of members)
        data[key] = value === undefined ? JSON.parse(values[hole++] as string) : value;
      return data;
    },
    sessionIdText: (value: Buffer | string): string => decodeSessionId(value) as string,
    /** `canonicalData` is canonicalJson(record.data): the text that was hashed. */
    encode(record: AuditRecord, canonicalData: string): EncodedRecord {
      let shape: number | null = null;
      let data = canonicalData;
      const split = shapeOf(record.kind, record.data, canonical);
      if (
        split !== undefined &&
        split.holes.every((hole) => !hole.includes(HOLE)) &&
        fillShape(split.shape.split(HOLE), split.holes.join(HOLE)) === canonicalData
      ) {
        shape = shapes.id(split.shape);
        data = split.holes.join(HOLE);
      }
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
