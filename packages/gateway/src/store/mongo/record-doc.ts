// MongoDB record documents, layout 2 (issue #17): the same compaction as SQLite layout 3. A record's
// data is a shape (store/record-shape.ts) kept once in `audit_shapes` under the first 16 bytes of its
// SHA-256, and the per-call values kept in the document (`v`, joined at HOLE; the whole canonical text
// when the data has no shape, then without `sh`). Hashes and the gateway's event and session ids are
// BinData. What the session summaries aggregate over sits beside them in three short fields
// (`cl` cluster, `ef` decision effect, `ap` approval state). The hash still covers the canonical
// record: a layout-2 document decodes to exactly the text that was hashed.
//
// Layout 1 documents (`data` as a BSON document, hex hashes, text ids) written by earlier versions are
// read as they are; queries that name an id match both forms (see idForms).
import { createHash } from 'node:crypto';
import { Binary, type Collection, type Db, type WriteConcernSettings } from 'mongodb';
import { canonicalJson } from '../chain.js';
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

export interface RecordDoc {
  _id: string;
  chain: string;
  seq: number;
  kind: string;
  time: number;
  eventId?: string | Binary;
  sessionId?: string | Binary;
  identity?: string;
  /** Layout 1: the data as a document. */
  data?: Record<string, unknown>;
  /** Layout 2: the shape's id (absent when the data is kept whole in `v`). */
  sh?: Binary;
  /** Layout 2: the shape's values, or the whole canonical data text. */
  v?: string;
  cl?: string;
  ef?: string;
  ap?: string;
  prevHash: string | Binary;
  hash: string | Binary;
}

interface ShapeDoc {
  _id: Binary;
  text: string;
}

const MAX_CACHED = 4096;

const bytes = (value: Buffer | string | null): Binary | string | undefined =>
  value === null ? undefined : typeof value === 'string' ? value : new Binary(value);

/** A stored hash (layout 1 hex text, layout 2 BinData) as hex. */
export const hashText = (value: string | Binary): string =>
  typeof value === 'string' ? value : Buffer.from(value.buffer).toString('hex');

const raw = (value: string | Binary | undefined): Buffer | string | null =>
  value === undefined || value === null ? null : typeof value === 'string' ? value : Buffer.from(value.buffer);

/** An id as every stored form can hold it (layout 1 text, layout 2 BinData), for `$in` filters. */
export function idForms(id: string, encode: (text: string) => Buffer | string | null): (string | Binary)[] {
  const compact = bytes(encode(id));
  return compact === undefined || typeof compact === 'string' ? [id] : [id, compact];
}

export const eventIdForms = (id: string): (string | Binary)[] => idForms(id, encodeEventId);
export const sessionIdForms = (id: string): (string | Binary)[] => idForms(id, encodeSessionId);

/** A stored session id (either layout) as its text. */
export const sessionIdText = (value: string | Binary): string => decodeSessionId(raw(value)) as string;

function member(data: Record<string, unknown>, path: readonly string[]): string | undefined {
  let value: unknown = data;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return typeof value === 'string' ? value : undefined;
}

/** A shape's id: the first 16 bytes of its text's SHA-256. */
export const shapeId = (text: string): Buffer => createHash('sha256').update(text).digest().subarray(0, 16);

/**
 * Shapes by id: written once (an upsert that changes nothing when the shape is there), read once per
 * reader (bounded caches). The id is derived from the text, so writing needs no lookup.
 */
export function createShapeTable(db: Db, writeConcern: WriteConcernSettings) {
  const shapes: Collection<ShapeDoc> = db.collection<ShapeDoc>('audit_shapes');
  let written = new Set<string>();
  const loaded = new Map<string, Promise<LoadedShape>>();

  return {
    idOf: shapeId,
    /** Makes the shapes durable before the records naming them are written. */
    async ensure(texts: ReadonlyMap<string, string>): Promise<void> {
      const missing = [...texts].filter(([key]) => !written.has(key));
      if (missing.length === 0) return;
      await shapes.bulkWrite(
        missing.map(([key, text]) => ({
          updateOne: {
            filter: { _id: new Binary(Buffer.from(key, 'hex')) },
            update: { $setOnInsert: { text } },
            upsert: true,
          },
        })),
        { ordered: false, writeConcern },
      );
      if (written.size + missing.length > MAX_CACHED) written = new Set();
      for (const [key] of missing) written.add(key);
    },
    /** A shape by id, from the cache or the store; concurrent reads of one id share one query. */
    load(id: Binary): Promise<LoadedShape> {
      const key = hashText(id);
      let shape = loaded.get(key);
      if (shape === undefined) {
        shape = shapes.findOne({ _id: id }).then((doc) => {
          if (doc === null) throw new Error(`audit record names shape ${key}, which is not in the store`);
          return parseShape(doc.text);
        });
        // A failed read is not kept: the next record naming the shape asks again.
        shape.catch(() => loaded.delete(key));
        if (loaded.size >= MAX_CACHED) loaded.clear();
        loaded.set(key, shape);
      }
      return shape;
    },
    forget() {
      written = new Set();
    },
  };
}

export type ShapeTable = ReturnType<typeof createShapeTable>;

/**
 * The layout-2 document of a record, and the shape it names (to be made durable first), given the
 * canonical JSON of its data (the text that was hashed).
 */
export function toDoc(
  record: AuditRecord,
  canonicalData: string,
  idOf: (text: string) => Buffer,
): { doc: RecordDoc; shape?: { key: string; text: string } } {
  const split = splitData(record.kind, record.data, canonicalData, canonicalJson);
  const doc: RecordDoc = {
    _id: `${record.chain}:${record.seq}`,
    chain: record.chain,
    seq: record.seq,
    kind: record.kind,
    time: record.time,
    prevHash: new Binary(Buffer.from(record.prevHash, 'hex')),
    hash: new Binary(Buffer.from(record.hash, 'hex')),
  };
  const eventId = bytes(encodeEventId(record.eventId));
  if (eventId !== undefined) doc.eventId = eventId;
  const sessionId = bytes(encodeSessionId(record.sessionId));
  if (sessionId !== undefined) doc.sessionId = sessionId;
  if (record.identity !== undefined) doc.identity = record.identity;
  let shape: { key: string; text: string } | undefined;
  if (split === undefined) doc.v = canonicalData;
  else {
    const id = idOf(split.shape);
    doc.sh = new Binary(id);
    doc.v = split.values;
    shape = { key: id.toString('hex'), text: split.shape };
  }
  const cluster = record.kind === 'request' ? member(record.data, ['cluster']) : undefined;
  const effect = record.kind === 'request' ? member(record.data, ['decision', 'effect']) : undefined;
  const approval = record.kind === 'outcome' ? member(record.data, ['approval', 'state']) : undefined;
  if (cluster !== undefined) doc.cl = cluster;
  if (effect !== undefined) doc.ef = effect;
  if (approval !== undefined) doc.ap = approval;
  return shape === undefined ? { doc } : { doc, shape };
}

/** The header fields of a document (either layout), without data. */
function headerOf(doc: RecordDoc): Omit<AuditRecord, 'data' | 'prevHash' | 'hash'> {
  const record = { chain: doc.chain, seq: doc.seq, kind: doc.kind as AuditRecordKind, time: doc.time } as AuditRecord;
  const eventId = decodeEventId(raw(doc.eventId));
  if (eventId !== undefined) record.eventId = eventId;
  const sessionId = decodeSessionId(raw(doc.sessionId));
  if (sessionId !== undefined) record.sessionId = sessionId;
  if (doc.identity != null) record.identity = doc.identity;
  return record;
}

/** A document (either layout) as a record whose data is an object. */
export async function recordOf(doc: RecordDoc, shapes: ShapeTable): Promise<AuditRecord> {
  const record = headerOf(doc) as AuditRecord;
  if (doc.data !== undefined) record.data = doc.data;
  else if (doc.sh === undefined) record.data = JSON.parse(doc.v ?? 'null') as Record<string, unknown>;
  else record.data = dataFromShape(await shapes.load(doc.sh), doc.v ?? '');
  record.prevHash = hashText(doc.prevHash);
  record.hash = hashText(doc.hash);
  return record;
}

/** A document (either layout) as stored for verification: `dataText` is the canonical text that was hashed. */
export async function storedOf(doc: RecordDoc, shapes: ShapeTable): Promise<StoredRecord> {
  const record = headerOf(doc) as StoredRecord;
  record.prevHash = hashText(doc.prevHash);
  record.hash = hashText(doc.hash);
  if (doc.data !== undefined) record.dataText = canonicalJson(doc.data);
  else if (doc.sh === undefined) record.dataText = doc.v ?? '';
  else record.dataText = fillShape((await shapes.load(doc.sh)).parts, doc.v ?? '');
  return record;
}
