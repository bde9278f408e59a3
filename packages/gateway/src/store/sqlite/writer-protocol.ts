// Messages between the gateway's event loop and the SQLite audit writer thread (writer.ts ⇄
// writer-thread.ts). Drafts cross as one JSON text per batch: a string is copied, not walked, so the
// event loop pays one JSON.stringify per batch and the thread does the rest.

export interface WriterThreadConfig {
  path: string;
  chain: string;
  busyTimeoutMs: number;
  /** False: one transaction per append() (the benchmark's baseline). */
  groupCommit: boolean;
  /**
   * One Int32 the event loop increments (and Atomics.notify's) after every message it posts: the thread
   * sleeps in Atomics.wait on it instead of in an event loop (writer-thread.ts).
   */
  wake: SharedArrayBuffer;
}

export type ToWriter =
  /** `drafts` is JSON of AuditRecordDraft[][] — one list per append(), answered under the same ids. */
  | { type: 'append'; ids: number[]; drafts: string }
  | { type: 'ping'; id: number }
  | { type: 'close' }
  /** Exit at once, as a crash would (tests). */
  | { type: 'exit' };

export type FromWriter =
  /**
   * Committed: append `ids[i]` got `counts[i]` records; together they are seq firstSeq, firstSeq + 1 …
   * after `prevHash`, with `hashes` (64 hex characters each) concatenated in order.
   */
  | { type: 'committed'; ids: number[]; counts: number[]; firstSeq: number; prevHash: string; hashes: string }
  | { type: 'failed'; ids: number[]; message: string }
  | { type: 'pong'; id: number; error?: string }
  | { type: 'closed' }
  /** The thread could not start (the file cannot be opened). */
  | { type: 'fatal'; message: string };
