// The event-loop side of the SQLite audit writer thread (writer-thread.ts). append() queues drafts and,
// once per event-loop turn, posts every queued append as one message; it resolves when the thread has
// committed the transaction holding them (durable: WAL, synchronous=FULL). The event loop does one
// JSON.stringify per turn; SQLite, hashing and fsync happen on the thread. Fails closed: a failed
// transaction rejects its appends; a thread that dies rejects everything pending and every later call.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { HoopError } from '../../lib/errors.js';
import { normaliseData, type ChainWriter } from '../chain.js';
import type { AuditRecord, AuditRecordDraft } from '../types.js';
import type { FromWriter, ToWriter, WriterThreadConfig } from './writer-protocol.js';

export interface ThreadedChainWriter extends ChainWriter {
  /** Rejects (ERR_AUDIT_UNAVAILABLE) when the thread is gone or cannot take the write lock. */
  health(): Promise<void>;
  /** Waits for every queued append, then stops the thread. */
  close(): Promise<void>;
  /**
   * Stops the thread as a crash would, before it takes anything more: everything pending is rejected
   * (tests).
   */
  terminate(): Promise<void>;
}

interface Pending {
  drafts: readonly AuditRecordDraft[];
  resolve: (records: AuditRecord[]) => void;
  reject: (error: unknown) => void;
}

const HEALTH_TIMEOUT_MS = 10_000;

/** dist/ runs the compiled .js; the tests run the .ts sources through tsx, which a worker must load itself. */
function spawn(config: WriterThreadConfig): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new Worker(new URL('./writer-thread.js', self), { workerData: config });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-thread.ts', self).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: config });
}

/** A record as the thread wrote it; `data` is normalised (JSON round trip) only if someone reads it. */
function toRecord(chain: string, seq: number, draft: AuditRecordDraft, prevHash: string, hash: string): AuditRecord {
  const record = {
    chain,
    seq,
    kind: draft.kind,
    time: draft.time,
    ...(draft.eventId === undefined ? {} : { eventId: draft.eventId }),
    ...(draft.sessionId === undefined ? {} : { sessionId: draft.sessionId }),
    ...(draft.identity === undefined ? {} : { identity: draft.identity }),
    prevHash,
    hash,
  } as AuditRecord;
  let data: Record<string, unknown> | undefined;
  Object.defineProperty(record, 'data', { enumerable: true, configurable: true, get: () => (data ??= normaliseData(draft.data)) });
  return record;
}

export async function startWriterThread(config: WriterThreadConfig): Promise<ThreadedChainWriter> {
  const worker = spawn(config);
  const pending = new Map<number, Pending>();
  const pings = new Map<number, (error?: string) => void>();
  let outgoing: number[] = [];
  let nextId = 1;
  let scheduled = false;
  let dead: string | undefined;
  let closed: (() => void) | undefined;
  let idleWaiters: Array<() => void> = [];
  const counters = { durableWrites: 0, recordsWritten: 0, failedWrites: 0 };
  const unavailable = (why: string): HoopError =>
    new HoopError('ERR_AUDIT_UNAVAILABLE', `the audit writer thread ${why}; the store cannot record requests until the gateway restarts`);

  // The thread keeps the process alive only while it holds work (a CLI that only reads can exit).
  const settle = (): void => {
    if (pending.size > 0 || pings.size > 0) return;
    worker.unref();
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const wake of waiters) wake();
  };

  function die(why: string): void {
    if (dead !== undefined) return;
    dead = why;
    const error = unavailable(why);
    for (const item of pending.values()) item.reject(error);
    pending.clear();
    outgoing = [];
    for (const answer of pings.values()) answer(why);
    pings.clear();
    settle();
  }

  function post(): void {
    scheduled = false;
    if (outgoing.length === 0 || dead !== undefined) return;
    const ids = outgoing;
    outgoing = [];
    const drafts = JSON.stringify(ids.map((id) => pending.get(id)?.drafts ?? []));
    worker.postMessage({ type: 'append', ids, drafts } satisfies ToWriter);
  }

  function committed(message: Extract<FromWriter, { type: 'committed' }>): void {
    let seq = message.firstSeq;
    let prevHash = message.prevHash;
    let offset = 0;
    message.ids.forEach((id, index) => {
      const item = pending.get(id);
      pending.delete(id);
      const records: AuditRecord[] = [];
      for (let n = 0; n < (message.counts[index] ?? 0); n++) {
        const hash = message.hashes.slice(offset, offset + 64);
        offset += 64;
        const draft = item?.drafts[n];
        if (draft !== undefined) records.push(toRecord(config.chain, seq, draft, prevHash, hash));
        seq += 1;
        prevHash = hash;
      }
      item?.resolve(records);
    });
    counters.durableWrites += 1;
    counters.recordsWritten += message.hashes.length / 64;
  }

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (message: FromWriter) => {
      switch (message.type) {
        case 'ready':
          resolve();
          break;
        case 'fatal':
          reject(new Error(message.message));
          die(`could not open the store: ${message.message}`);
          break;
        case 'committed':
          committed(message);
          break;
        case 'failed':
          counters.failedWrites += 1;
          for (const id of message.ids) {
            pending.get(id)?.reject(new Error(message.message));
            pending.delete(id);
          }
          break;
        case 'pong':
          pings.get(message.id)?.(message.error);
          pings.delete(message.id);
          break;
        case 'closed':
          closed?.();
          break;
      }
      settle();
    });
    worker.on('error', (error) => {
      reject(error);
      die(`failed: ${error.message}`);
    });
    worker.on('exit', (code) => {
      reject(new Error(`the writer thread exited with code ${code}`));
      die(closed === undefined ? `exited with code ${code}` : 'is closed');
    });
  });
  try {
    await ready;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  worker.unref();

  const idle = (): Promise<void> => (pending.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)));

  return {
    append(drafts) {
      if (dead !== undefined) return Promise.reject(unavailable(dead));
      if (drafts.length === 0) return Promise.resolve([]);
      return new Promise<AuditRecord[]>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { drafts, resolve, reject });
        outgoing.push(id);
        worker.ref();
        if (!scheduled) {
          scheduled = true;
          setImmediate(post);
        }
      });
    },
    stats: () => ({ ...counters }),
    idle,
    async health() {
      if (dead !== undefined) throw unavailable(dead);
      const id = nextId++;
      worker.ref();
      const error = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(`did not answer within ${HEALTH_TIMEOUT_MS} ms`), HEALTH_TIMEOUT_MS);
        pings.set(id, (why) => {
          clearTimeout(timer);
          resolve(why);
        });
        worker.postMessage({ type: 'ping', id } satisfies ToWriter);
      });
      pings.delete(id);
      settle();
      if (error !== undefined) throw unavailable(`cannot write: ${error}`);
    },
    async close() {
      if (dead !== undefined) return;
      if (outgoing.length > 0) post();
      await idle();
      if (dead !== undefined) return;
      const done = new Promise<void>((resolve) => (closed = resolve));
      worker.ref();
      worker.postMessage({ type: 'close' } satisfies ToWriter);
      await done;
      await worker.terminate();
    },
    async terminate() {
      if (dead !== undefined) return;
      // Not worker.terminate(): stopping the isolate inside a better-sqlite3 call aborts the process.
      const exited = once(worker, 'exit');
      worker.ref();
      worker.postMessage({ type: 'exit' } satisfies ToWriter);
      await exited;
    },
  };
}
