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
  if (!self.endsWith('.ts'))
    return new Worker(new URL('./writer-thread.js', self), { workerData: config, resourceLimits: writerHeap });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-thread.ts', self).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: config, resourceLimits: writerHeap });
}

/**
 * The writer thread's young generation kept small (#12): its allocations are short-lived (a batch's
 * records), and V8's default lets the space grow to tens of MB of garbage under a flood of large
 * refusals. Only scavenges become more frequent; the old generation is not limited (no OOM risk).
 */
const writerHeap = { maxYoungGenerationSizeMb: 4 };

/** Where a written record keeps its draft until `data` is first read (not enumerable: not in spreads or JSON). */
const lazy = Symbol('lazy data');
interface LazyData {
  [lazy]: { draft: AuditRecordDraft; data?: Record<string, unknown> };
}

/**
 * Every record's `data` getter is this one function (#12): a getter closure per record gave each
 * record a hidden class of its own, and those (old-generation objects) kept every draft alive through
 * young-generation collections: ~2.5 KB promoted per refusal, old space +17 MB under the hostile bench.
 */
function readData(this: LazyData): Record<string, unknown> {
  const state = this[lazy];
  return (state.data ??= normaliseData(state.draft.data));
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
  Object.defineProperty(record, lazy, { value: { draft } });
  Object.defineProperty(record, 'data', { enumerable: true, configurable: true, get: readData });
  return record;
}

/** Resolves each append of a committed transaction with its records, in chain order. */
function resolveCommitted(
  chain: string,
  pending: Map<number, Pending>,
  message: Extract<FromWriter, { type: 'committed' }>,
): void {
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
      if (draft !== undefined) records.push(toRecord(chain, seq, draft, prevHash, hash));
      seq += 1;
      prevHash = hash;
    }
    item?.resolve(records);
  });
}

const unavailable = (why: string): HoopError =>
  new HoopError(
    'ERR_AUDIT_UNAVAILABLE',
    `the audit writer thread ${why}; the store cannot record requests until the gateway restarts`,
  );

class WriterClient implements ThreadedChainWriter {
  private readonly pending = new Map<number, Pending>();
  private readonly pings = new Map<number, (error?: string) => void>();
  private outgoing: number[] = [];
  private nextId = 1;
  private scheduled = false;
  private dead: string | undefined;
  private closed: (() => void) | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { durableWrites: 0, recordsWritten: 0, failedWrites: 0 };

  constructor(
    private readonly worker: Worker,
    private readonly chain: string,
    /** The thread's wake counter (writer-protocol.ts WriterThreadConfig.wake). */
    private readonly wake: Int32Array,
  ) {}

  /** Posts a message and wakes the thread (it sleeps in Atomics.wait, not in an event loop). */
  private send(message: ToWriter): void {
    this.worker.postMessage(message);
    Atomics.add(this.wake, 0, 1);
    Atomics.notify(this.wake, 0);
  }

  append(drafts: readonly AuditRecordDraft[]): Promise<AuditRecord[]> {
    if (this.dead !== undefined) return Promise.reject(unavailable(this.dead));
    if (drafts.length === 0) return Promise.resolve([]);
    return new Promise<AuditRecord[]>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { drafts, resolve, reject });
      this.outgoing.push(id);
      this.worker.ref();
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.post());
      }
    });
  }

  stats(): { durableWrites: number; recordsWritten: number; failedWrites: number } {
    return { ...this.counters };
  }

  idle(): Promise<void> {
    return this.pending.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  async health(): Promise<void> {
    if (this.dead !== undefined) throw unavailable(this.dead);
    const id = this.nextId++;
    this.worker.ref();
    const error = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(`did not answer within ${HEALTH_TIMEOUT_MS} ms`), HEALTH_TIMEOUT_MS);
      this.pings.set(id, (why) => {
        clearTimeout(timer);
        resolve(why);
      });
      this.send({ type: 'ping', id });
    });
    this.pings.delete(id);
    this.settle();
    if (error !== undefined) throw unavailable(`cannot write: ${error}`);
  }

  async close(): Promise<void> {
    if (this.dead !== undefined) return;
    if (this.outgoing.length > 0) this.post();
    await this.idle();
    if (this.dead !== undefined) return;
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    this.worker.ref();
    this.send({ type: 'close' });
    await done;
    await this.worker.terminate();
  }

  async terminate(): Promise<void> {
    if (this.dead !== undefined) return;
    // Not worker.terminate(): stopping the isolate inside a better-sqlite3 call aborts the process.
    const exited = once(this.worker, 'exit');
    this.worker.ref();
    this.send({ type: 'exit' });
    await exited;
  }

  /** Every message from the thread but 'fatal'. */
  receive(message: FromWriter): void {
    if (message.type === 'committed') {
      resolveCommitted(this.chain, this.pending, message);
      this.counters.durableWrites += 1;
      this.counters.recordsWritten += message.hashes.length / 64;
    } else if (message.type === 'failed') {
      this.counters.failedWrites += 1;
      for (const id of message.ids) {
        this.pending.get(id)?.reject(new Error(message.message));
        this.pending.delete(id);
      }
    } else if (message.type === 'pong') {
      this.pings.get(message.id)?.(message.error);
      this.pings.delete(message.id);
    } else if (message.type === 'closed') {
      this.closed?.();
    }
    this.settle();
  }

  /** Fails closed: everything pending and every later call is refused. */
  die(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = this.closed === undefined ? why : 'is closed';
    const error = unavailable(this.dead);
    for (const item of this.pending.values()) item.reject(error);
    this.pending.clear();
    this.outgoing = [];
    for (const answer of this.pings.values()) answer(why);
    this.pings.clear();
    this.settle();
  }

  /** The thread keeps the process alive only while it holds work (a CLI that only reads can exit). */
  private settle(): void {
    if (this.pending.size > 0 || this.pings.size > 0) return;
    this.worker.unref();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** One message (one JSON text) for every append queued during this event-loop turn. */
  private post(): void {
    this.scheduled = false;
    if (this.outgoing.length === 0 || this.dead !== undefined) return;
    const ids = this.outgoing;
    this.outgoing = [];
    const drafts = JSON.stringify(ids.map((id) => this.pending.get(id)?.drafts ?? []));
    this.send({ type: 'append', ids, drafts });
  }
}

/**
 * Starts the thread without waiting for it: appends and health checks posted meanwhile wait in its
 * port until it has opened the file (gateway start-up and read-only CLI commands do not pay for its
 * start). A thread that cannot open the file refuses every append.
 */
export function startWriterThread(options: Omit<WriterThreadConfig, 'wake'>): ThreadedChainWriter {
  const config: WriterThreadConfig = { ...options, wake: new SharedArrayBuffer(4) };
  const worker = spawn(config);
  const client = new WriterClient(worker, config.chain, new Int32Array(config.wake));
  worker.on('message', (message: FromWriter) => {
    if (message.type === 'fatal') client.die(`could not open the store: ${message.message}`);
    else client.receive(message);
  });
  worker.on('error', (error) => client.die(`failed: ${error.message}`));
  worker.on('exit', (code) => client.die(`exited with code ${code}`));
  worker.unref();
  return client;
}
