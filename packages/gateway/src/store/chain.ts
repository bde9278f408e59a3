// The hash chain: canonical serialisation, record hashing and the group-commit writer that assigns
// seq/prevHash/hash to drafts and hands whole batches to the store's durable write.
import { hash as oneShotHash } from 'node:crypto';
import type { AuditRecord, AuditRecordDraft } from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * JSON round trip (drops undefined, NaN → null) with lone surrogates replaced, so the payload hashes
 * the same after a trip through SQLite text or MongoDB BSON (which stores UTF-8 only).
 */
export function normaliseData(data: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(data, (_key, value: unknown) =>
    typeof value === 'string' ? value.replace(loneSurrogate, '\ufffd') : value,
  );
  return JSON.parse(text) as Record<string, unknown>;
}

/** JSON with object keys sorted at every level: the byte string that is hashed and signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/**
 * The byte string hashed for a record (format version 1): canonicalJson of
 * `{v: 1, chain, seq, kind, time, eventId?, sessionId?, identity?, data, prevHash}`, written out with
 * the keys already in canonical order so a verifier holding the canonical JSON of `data` (as the SQLite
 * store keeps it) needs no parse. test/unit/audit-hash-vector.test.ts pins it to a literal hash.
 */
export function canonicalRecordText(record: Omit<AuditRecord, 'hash' | 'data'>, canonicalData: string): string {
  // Built by concatenation without closures or temporary arrays: verification runs this per record.
  let text = `{"chain":${JSON.stringify(record.chain)},"data":${canonicalData}`;
  if (record.eventId !== undefined) text += `,"eventId":${JSON.stringify(record.eventId)}`;
  if (record.identity !== undefined) text += `,"identity":${JSON.stringify(record.identity)}`;
  text += `,"kind":${JSON.stringify(record.kind)},"prevHash":${JSON.stringify(record.prevHash)},"seq":${JSON.stringify(record.seq)}`;
  if (record.sessionId !== undefined) text += `,"sessionId":${JSON.stringify(record.sessionId)}`;
  return `${text},"time":${JSON.stringify(record.time)},"v":1}`;
}

/** SHA-256 (hex) of the text's UTF-8 bytes, in one native call. */
export function sha256Hex(text: string): string {
  return oneShotHash('sha256', text, 'hex');
}

/** SHA-256 over every field of the record except `hash` itself (format version 1). */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(canonicalRecordText(record, canonicalJson(record.data)));
}

/** The reference definition of the hash, kept to prove canonicalRecordText equal to it (tests). */
export function hashRecordReference(record: Omit<AuditRecord, 'hash'>): string {
  const hashed = {
    v: 1,
    chain: record.chain,
    seq: record.seq,
    kind: record.kind,
    time: record.time,
    eventId: record.eventId,
    sessionId: record.sessionId,
    identity: record.identity,
    data: record.data,
    prevHash: record.prevHash,
  };
  return sha256Hex(canonicalJson(hashed));
}

export interface ChainedBatch {
  /** The records of each draft list, in order. */
  slices: AuditRecord[][];
  /** canonicalJson(data) of every record of the batch, in order (the text that was hashed). */
  texts: string[];
  /** The chain's head after the batch. */
  head: { seq: number; hash: string };
}

/**
 * Assigns seq / prevHash / hash to every draft of a batch after `head`: the chain's CPU work
 * (normalising, canonical JSON, SHA-256). The in-process writer and the SQLite writer thread share it.
 * `normalised`: the drafts' data already went through normaliseData's round trip (parsed JSON text
 * holding no lone surrogate), so it is not repeated.
 */
export function chainDrafts(
  chain: string,
  head: { seq: number; hash: string },
  batch: readonly (readonly AuditRecordDraft[])[],
  options: { normalised?: boolean } = {},
): ChainedBatch {
  let { seq, hash } = head;
  const slices: AuditRecord[][] = [];
  const texts: string[] = [];
  for (const drafts of batch) {
    const slice: AuditRecord[] = [];
    for (const draft of drafts) {
      seq += 1;
      const unhashed: Omit<AuditRecord, 'hash'> = {
        chain,
        seq,
        kind: draft.kind,
        time: draft.time,
        ...(draft.eventId === undefined ? {} : { eventId: draft.eventId }),
        ...(draft.sessionId === undefined ? {} : { sessionId: draft.sessionId }),
        ...(draft.identity === undefined ? {} : { identity: draft.identity }),
        data: options.normalised === true ? draft.data : normaliseData(draft.data),
        prevHash: hash,
      };
      const text = canonicalJson(unhashed.data);
      hash = sha256Hex(canonicalRecordText(unhashed, text));
      texts.push(text);
      slice.push({ ...unhashed, hash });
    }
    slices.push(slice);
  }
  return { slices, texts, head: { seq, hash } };
}

export interface ChainWriterDeps {
  chain: string;
  /** The stored head of the chain (seq 0 / GENESIS_HASH when empty). */
  loadHead(): Promise<{ seq: number; hash: string }>;
  /**
   * One durable write of the whole batch (a transaction, an ordered insertMany). `canonicalData[i]` is
   * canonicalJson(records[i].data), the text that was hashed (the SQLite store keeps it as is).
   */
  writeBatch(records: readonly AuditRecord[], canonicalData: readonly string[]): Promise<void>;
  groupCommit: boolean;
}

export interface ChainWriter {
  append(drafts: readonly AuditRecordDraft[]): Promise<AuditRecord[]>;
  stats(): { durableWrites: number; recordsWritten: number; failedWrites: number };
  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void>;
}

interface Pending {
  drafts: readonly AuditRecordDraft[];
  resolve: (records: AuditRecord[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: appends queue up while a batch is being written and go out together as the next
 * batch the moment the previous one finishes. The first append after a quiet period is flushed on
 * setImmediate (no timer delay), which also gathers the appends of the same event-loop turn.
 */
export function createChainWriter(deps: ChainWriterDeps): ChainWriter {
  const queue: Pending[] = [];
  let head: { seq: number; hash: string } | undefined;
  let flushing = false;
  let scheduled = false;
  let idleWaiters: Array<() => void> = [];
  const counters = { durableWrites: 0, recordsWritten: 0, failedWrites: 0 };

  function schedule(): void {
    if (flushing || scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void flush();
    });
  }

  async function flush(): Promise<void> {
    if (flushing) return;
    const batch = deps.groupCommit ? queue.splice(0) : queue.splice(0, 1);
    if (batch.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
      return;
    }
    flushing = true;
    try {
      head ??= await deps.loadHead();
      const {
        slices,
        texts,
        head: next,
      } = chainDrafts(
        deps.chain,
        head,
        batch.map((item) => item.drafts),
      );
      const records = slices.flat();
      await deps.writeBatch(records, texts);
      head = next;
      counters.durableWrites += 1;
      counters.recordsWritten += records.length;
      batch.forEach((item, index) => item.resolve(slices[index] ?? []));
    } catch (error) {
      // A failed (or partly applied) batch: re-read the head before the next one.
      head = undefined;
      counters.failedWrites += 1;
      for (const item of batch) item.reject(error);
    } finally {
      flushing = false;
    }
    void flush();
  }

  return {
    append(drafts) {
      if (drafts.length === 0) return Promise.resolve([]);
      return new Promise<AuditRecord[]>((resolve, reject) => {
        queue.push({ drafts, resolve, reject });
        schedule();
      });
    },
    stats: () => ({ ...counters }),
    idle() {
      if (!flushing && !scheduled && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}
