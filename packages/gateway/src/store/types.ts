// The storage contract behind the audit trail and the approval queue. store/sqlite (embedded default)
// and store/mongo implement it; test/integration/store-contract.test.ts runs one suite against both.
import type { ApprovalRepository } from '../approvals/types.js';

/**
 * Every audit write is an append-only record in a per-replica hash chain: a request (written before
 * forwarding), its outcome (a second record naming the event), exec frames, approval decisions and
 * signed checkpoints. Nothing in the chain is ever updated.
 */
export type AuditRecordKind = 'request' | 'outcome' | 'frames' | 'checkpoint' | 'approval';

export interface AuditRecordDraft {
  kind: AuditRecordKind;
  /** Milliseconds since the epoch. */
  time: number;
  eventId?: string;
  sessionId?: string;
  /** The mapped identity (hoisted for session queries). */
  identity?: string;
  /** Kind-specific JSON payload; normalised (JSON round trip) before hashing. */
  data: Record<string, unknown>;
}

export interface AuditRecord extends AuditRecordDraft {
  /** The replica id of the writer: one chain per replica. */
  chain: string;
  /** 1, 2, 3 … within the chain. */
  seq: number;
  /** Hash of the record at seq − 1 (64 zeros for seq 1). */
  prevHash: string;
  /** SHA-256 (hex) of the canonical serialisation of every field above. */
  hash: string;
}

export interface ChainHead {
  chain: string;
  /** Lowest seq still stored (above 1 after retention). */
  firstSeq: number;
  seq: number;
  hash: string;
  time: number;
  /** seq − firstSeq + 1 (read from the two ends, never counted: a gap is verify's to find). */
  records: number;
}

/**
 * A signed statement. `head`: the chain had reached `seq` with `hash` at `time`. `retention`: records
 * before `seq` were deleted on purpose; the first kept record is `seq` and carries `prevHash`.
 */
export interface CheckpointStatement {
  type: 'head' | 'retention';
  chain: string;
  seq: number;
  hash: string;
  time: number;
  /** Replica that signed it. */
  by: string;
  /** Retention only: the prevHash of the first kept record. */
  prevHash?: string;
}

export interface SignedCheckpoint {
  statement: CheckpointStatement;
  /** Ed25519 signature (base64) over canonicalJson(statement). */
  signature: string;
  /** SPKI PEM of the signing key (for verifiers without a configured key). */
  publicKey: string;
  /** True when the key was generated at start (no signingKeyFile): only proves integrity, not origin. */
  keyGenerated: boolean;
}

export interface RecordQuery {
  sessionId?: string;
  eventIds?: readonly string[];
  kinds?: readonly AuditRecordKind[];
  /** Inclusive lower bound on `time`. */
  since?: number;
  /** Exclusive upper bound on `time`. */
  until?: number;
  /** Keyset paging: records strictly after this (time, chain, seq). */
  after?: { time: number; chain: string; seq: number };
  limit?: number;
}

/** Cursor options: how many records one round trip (SQLite page, MongoDB batch) reads. Default 1000. */
export interface ScanOptions {
  batchSize?: number;
}

/**
 * A record as stored, for verification: `dataText` is the JSON of `data` — the canonical JSON that was
 * hashed when the store keeps it (SQLite layout 2), any JSON of it otherwise.
 */
export interface StoredRecord extends Omit<AuditRecord, 'data'> {
  dataText: string;
}

export interface SessionSummary {
  sessionId: string;
  identity?: string;
  cluster?: string;
  start: number;
  end: number;
  /** Request events in the session. */
  calls: number;
  decisions: { allow: number; deny: number; approve: number };
  /** Outcomes whose approval ended `approved`. */
  approvals: number;
}

export interface SessionFilter {
  identity?: string;
  /** Sessions with activity at or after this time. */
  since?: number;
  /** Most recent first; default 100. */
  limit?: number;
}

export interface AuditStoreStats {
  /** Durable writes (transactions / insertMany calls) that succeeded. */
  durableWrites: number;
  recordsWritten: number;
  failedWrites: number;
}

export interface AuditStore {
  /** This replica's chain. */
  readonly chain: string;
  /**
   * Appends drafts to this replica's chain; resolves once durable. Concurrent calls are group-committed
   * (one transaction / one insertMany per batch). Rejects when the write failed: nothing of the call
   * is then assumed written.
   */
  append(drafts: readonly AuditRecordDraft[]): Promise<AuditRecord[]>;
  /** Stores a signed checkpoint (side table) and appends it to this chain as a `checkpoint` record. */
  appendCheckpoint(checkpoint: SignedCheckpoint): Promise<AuditRecord>;
  /** Records in (time, chain, seq) order. */
  listRecords(query: RecordQuery): Promise<AuditRecord[]>;
  /**
   * Records in (time, chain, seq) order like listRecords, streamed: a cursor reads `batchSize` at a
   * time, so memory is bounded by the batch, not by the number of records matched.
   */
  scanRecords(query: RecordQuery, options?: ScanOptions): AsyncIterable<AuditRecord>;
  /** One chain in seq order, seq > afterSeq. */
  readChain(chain: string, afterSeq: number, limit: number): Promise<AuditRecord[]>;
  /** One chain in seq order from seq > afterSeq to its head, streamed as stored (for verification). */
  scanChain(chain: string, afterSeq: number, options?: ScanOptions): AsyncIterable<StoredRecord>;
  /** scanChain a page at a time (a store may offer it: verification then awaits once per page, not per record). */
  scanChainPages?(chain: string, afterSeq: number, options?: ScanOptions): AsyncIterable<StoredRecord[]>;
  getRecord(chain: string, seq: number): Promise<AuditRecord | null>;
  chainHeads(): Promise<ChainHead[]>;
  /** Most recent sessions first; reads about `limit` sessions' records, not the whole store. */
  listSessions(filter?: SessionFilter): Promise<SessionSummary[]>;
  checkpoints(): Promise<SignedCheckpoint[]>;
  /** The chains the checkpoint side table names (a store may offer it, with checkpointsOf). */
  checkpointChains?(): Promise<string[]>;
  /**
   * The signed checkpoints naming `chain` by the side table's index: of `type` when given, seq ≥ `minSeq`,
   * at most `limit`, newest seq first — so verify --since-checkpoint reads what it needs, not every
   * checkpoint ever signed.
   */
  checkpointsOf?(
    chain: string,
    query: { type?: CheckpointStatement['type']; minSeq?: number; limit?: number },
  ): Promise<SignedCheckpoint[]>;
  /**
   * The first record of `chain` that retention must keep: the earliest record at or after `cutoff`,
   * or earlier if it belongs to a session still active at `cutoff`. Null when nothing is to be kept.
   */
  retentionStart(chain: string, cutoff: number): Promise<AuditRecord | null>;
  /** Deletes the records of `chain` with seq < `seq`; returns how many. Only after a retention checkpoint. */
  deleteBefore(chain: string, seq: number): Promise<number>;
  stats(): AuditStoreStats;
}

export interface Store {
  readonly kind: 'sqlite' | 'mongodb';
  readonly audit: AuditStore;
  readonly approvals: ApprovalRepository;
  /**
   * One-time use, on every replica sharing the store: resolves true the first time `key` is
   * consumed, false while an earlier consumption's `expiresAt` (ms) has not passed. A SAML
   * assertion ID is exchanged once this way.
   */
  consumeOnce(key: string, expiresAt: number): Promise<boolean>;
  /** Health check for /hoop/readyz: rejects when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  replicaId: string;
  clock?: () => number;
  /** Default true; false writes each append() alone (the benchmark's baseline). */
  groupCommit?: boolean;
  /**
   * SQLite file stores: write the audit chain on a worker thread with its own connection (default
   * true); false writes on the event loop (the benchmark's baseline). `:memory:` always writes in-process.
   */
  writerThread?: boolean;
  /** SQLite: how long a write waits for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * SQLite: the page cache of this connection in KiB (better-sqlite3's default is 16,000). The audit CLI
   * sets a small one: a streamed pass over a large store fills whatever cache it is given (issue #17).
   */
  pageCacheKb?: number;
  /** MongoDB: server selection timeout. Default 10000. */
  serverSelectionTimeoutMs?: number;
}
