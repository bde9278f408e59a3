// The audit recorder: writes each request durably before it is forwarded (fail closed: no record, no
// request), then appends its outcome, exec frames and approval decisions as later chain records,
// retried until written. An outcome is not committed on its own (issue #13): it waits for the next
// request's durable write and goes out in the same transaction, or after `outcomeDelayMs` (10 ms)
// when no request comes; close() and flush() write it at once. A crash can therefore lose the
// outcomes of the last few milliseconds, never an intent: the request record is there, the event
// just has no outcome (`audit verify` passes; the chain holds only what was written).
import type { ApprovalRecord } from '../approvals/types.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { AuditRecordDraft, AuditStore } from '../store/types.js';
import { createDraftBuilder } from './drafts.js';
import { createSessionTracker } from './sessions.js';
import type { AuditHandle, AuditOutcome, AuditStart, ExecFrame } from './types.js';

export { truncateBody } from './drafts.js';

export interface AuditRecorder {
  /** Throws HoopError('ERR_AUDIT_UNAVAILABLE') if the durable write fails: answer 503, forward nothing. */
  begin(start: AuditStart): Promise<AuditHandle>;
  /** A refusal: request and outcome in one durable write. */
  record(start: AuditStart, outcome: AuditOutcome): Promise<AuditHandle>;
  /**
   * Queues exec frames (any number of calls per event, as the session runs). `settled`, if given, is
   * called once: with no argument when the batch is written, with the error of its first failed write
   * (the batch is still retried) so a live session can be ended: fail closed.
   */
  appendFrames(eventId: string, frames: readonly ExecFrame[], settled?: (error?: unknown) => void): void;
  /** A decision on a held request (queued like outcomes). */
  recordApproval(record: ApprovalRecord): void;
  stats(): { pendingOutcomes: number; failedOutcomeWrites: number };
  /**
   * Writes every queued outcome, frame and decision now and resolves once they are written (tests,
   * probes); rejects with ERR_AUDIT_UNAVAILABLE at the first failed write instead of waiting for the
   * store to come back (the records stay queued and are still retried).
   */
  flush(): Promise<void>;
  /** Flushes queued outcomes; rejects with ERR_AUDIT_UNAVAILABLE naming how many could not be written. */
  close(): Promise<void>;
}

export interface AuditRecorderDeps {
  /** The audit side of the store (or the whole Store). */
  store: AuditStore | { audit: AuditStore };
  replicaId: string;
  clock: () => number;
  maxBodyBytes: number;
  bodies: boolean;
  sessionIdleMs: number;
  metrics?: { auditFailures?: { inc(): void }; auditOutcomeFailures?: { inc(): void } };
  logger?: Logger;
  /** First retry delay for a failed outcome write (doubles up to retryMaxMs). Default 100 / 5000. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long close() keeps retrying queued writes. Default 10 s. */
  closeTimeoutMs?: number;
  /** How long an outcome waits for the next request's write before it is committed alone. Default 10 ms. */
  outcomeDelayMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** eventId → sessionId/identity (the newest `max`), so frames and outcomes land in the session of their request. */
function createEventIndex(max: number) {
  const events = new Map<string, { sessionId: string; identity: string }>();
  return {
    remember(eventId: string, sessionId: string, identity: string): void {
      if (events.size >= max) {
        const oldest = events.keys().next();
        if (oldest.done !== true) events.delete(oldest.value);
      }
      events.set(eventId, { sessionId, identity });
    },
    get: (eventId: string) => events.get(eventId),
  };
}

/** Callers waiting on a queued batch (appendFrames' `settled`): each called once, with the write's error if any. */
function createBatchWaiters() {
  const waiting = new WeakMap<AuditRecordDraft[], (error?: unknown) => void>();
  return {
    wait(list: AuditRecordDraft[], settled: ((error?: unknown) => void) | undefined): AuditRecordDraft[] {
      if (settled !== undefined) waiting.set(list, settled);
      return list;
    },
    settle(batch: AuditRecordDraft[][], error?: unknown): void {
      for (const list of batch) {
        const settled = waiting.get(list);
        waiting.delete(list);
        settled?.(error);
      }
    },
  };
}

/**
 * Outcomes waiting to ride along with the next durable write (a request's, or the retried queue's):
 * `due` is called `delayMs` after the first one when no write has taken them by then.
 */
function createDeferredOutcomes(delayMs: number, due: () => void) {
  let waiting: AuditRecordDraft[] = [];
  let timer: NodeJS.Timeout | undefined;
  return {
    add(draft: AuditRecordDraft): void {
      waiting.push(draft);
      timer ??= setTimeout(due, delayMs);
    },
    /** Every waiting outcome, handed to a write that is about to happen. */
    take(): AuditRecordDraft[] {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const taken = waiting;
      waiting = [];
      return taken;
    },
    size: () => waiting.length,
  };
}

const refused = (cause: unknown): HoopError =>
  new HoopError(
    'ERR_AUDIT_UNAVAILABLE',
    'the audit store is unavailable, so the request was not forwarded; try again shortly',
    { cause },
  );

/**
 * flush() callers, resolved when the queue is written and rejected at the first failed write; and the
 * request writes carrying deferred outcomes, which a flush waits for too.
 */
function createFlushWaiters() {
  const waiting: { resolve(): void; reject(error: unknown): void }[] = [];
  const carriers = new Set<Promise<unknown>>();
  return {
    wait: () => new Promise<void>((resolve, reject) => waiting.push({ resolve, reject })),
    written(): void {
      for (const flusher of waiting.splice(0)) flusher.resolve();
    },
    failed(error: unknown): void {
      for (const flusher of waiting.splice(0)) flusher.reject(error);
    },
    carrying(write: Promise<unknown>): void {
      const settled: Promise<unknown> = write.then(
        () => carriers.delete(settled),
        () => carriers.delete(settled),
      );
      carriers.add(settled);
    },
    /** Resolves once the carrying writes now in flight have settled (never rejects). */
    carried: () => Promise.all(carriers),
  };
}

/** The handle of a written request: its outcome is passed on once (later completions are ignored). */
function createHandle(
  eventId: string,
  sessionId: string,
  completed: boolean,
  complete: (outcome: AuditOutcome) => void,
): AuditHandle {
  let done = completed;
  return {
    eventId,
    sessionId,
    complete(outcome) {
      if (done) return;
      done = true;
      complete(outcome);
    },
  };
}

/**
 * The retried queue of outcomes, frames and decisions: one pump writes it batch by batch, a failed
 * batch goes back in front and is retried with backoff (doubling from retryBaseMs up to retryMaxMs)
 * until written or `giveUp()` (a stop past its deadline).
 */
function createRetriedQueue(options: {
  audit: AuditStore;
  logger: Logger;
  retryBaseMs: number;
  retryMaxMs: number;
  onFailure(): void;
  settled(batch: AuditRecordDraft[][], error?: unknown): void;
  drained(): void;
  giveUp(): boolean;
}) {
  let queue: AuditRecordDraft[][] = [];
  let pump: Promise<void> | undefined;
  /** Records in the batch the pump is writing now. */
  let writing = 0;
  let failures = 0;

  async function drainQueue(): Promise<void> {
    let attempt = 0;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      const records = batch.flat();
      writing = records.length;
      try {
        await options.audit.append(records);
        writing = 0;
        attempt = 0;
        options.settled(batch);
      } catch (error) {
        writing = 0;
        options.settled(batch, error);
        queue = [...batch, ...queue];
        failures += 1;
        options.onFailure();
        options.logger.warn({ err: error, pending: queue.length, attempt }, 'audit outcome write failed; retrying');
        if (options.giveUp()) return;
        attempt += 1;
        await sleep(Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  /** `pump` is cleared before the flushers hear the queue is written. */
  async function drain(): Promise<void> {
    try {
      await drainQueue();
    } finally {
      pump = undefined;
    }
    options.drained();
  }

  return {
    push(lists: AuditRecordDraft[][]): void {
      for (const list of lists) if (list.length > 0) queue.push(list);
      if (queue.length > 0) pump ??= drain();
    },
    pumping: () => pump,
    size: () => writing + queue.reduce((n, list) => n + list.length, 0),
    failures: () => failures,
  };
}

export function createAuditRecorder(deps: AuditRecorderDeps): AuditRecorder {
  const audit: AuditStore = 'audit' in deps.store ? deps.store.audit : deps.store;
  const logger = deps.logger ?? silentLogger;
  const drafts = createDraftBuilder({ ...deps, sessions: createSessionTracker({ idleMs: deps.sessionIdleMs }) });
  const events = createEventIndex(50_000);
  const { wait, settle } = createBatchWaiters();
  let closing = false;
  let deadline = Number.POSITIVE_INFINITY;
  const deferred = createDeferredOutcomes(deps.outcomeDelayMs ?? 10, () => enqueue([]));
  const flushes = createFlushWaiters();
  const retried = createRetriedQueue({
    audit,
    logger,
    retryBaseMs: deps.retryBaseMs ?? 100,
    retryMaxMs: deps.retryMaxMs ?? 5000,
    onFailure: () => deps.metrics?.auditOutcomeFailures?.inc(),
    settled: (batch, error) => {
      settle(batch, error);
      if (error !== undefined) flushes.failed(refused(error));
    },
    drained: () => flushes.written(),
    giveUp: () => closing && Date.now() >= deadline,
  });

  function enqueue(drafts: AuditRecordDraft[]): void {
    retried.push([deferred.take(), drafts]);
  }

  const handle = (eventId: string, sessionId: string, identity: string, completed: boolean): AuditHandle =>
    createHandle(eventId, sessionId, completed, (outcome) =>
      deferred.add(drafts.outcome(eventId, sessionId, identity, outcome)),
    );

  /** The request's durable write, with the deferred outcomes in front (one transaction). */
  async function write(drafts: AuditRecordDraft[]): Promise<void> {
    if (closing) throw new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down');
    const carried = deferred.take();
    const appended = audit.append(carried.length === 0 ? drafts : [...carried, ...drafts]);
    if (carried.length > 0) flushes.carrying(appended);
    try {
      await appended;
    } catch (error) {
      // The outcomes are not the refused request's: they go to the retried queue.
      if (carried.length > 0) enqueue(carried);
      deps.metrics?.auditFailures?.inc();
      logger.error({ err: error }, 'audit write failed; refusing the request');
      throw refused(error);
    }
  }

  return {
    async begin(start) {
      const { draft, eventId, sessionId, identity } = drafts.request(start);
      await write([draft]);
      events.remember(eventId, sessionId, identity);
      return handle(eventId, sessionId, identity, false);
    },
    async record(start, outcome) {
      const { draft, eventId, sessionId, identity } = drafts.request(start);
      await write([draft, drafts.outcome(eventId, sessionId, identity, outcome)]);
      return handle(eventId, sessionId, identity, true);
    },
    appendFrames(eventId, frames, settled) {
      if (frames.length === 0) return settled?.();
      enqueue(wait([drafts.frames(eventId, frames, events.get(eventId))], settled));
    },
    recordApproval(record) {
      enqueue([drafts.approval(record)]);
    },
    stats: () => ({ pendingOutcomes: deferred.size() + retried.size(), failedOutcomeWrites: retried.failures() }),
    async flush() {
      enqueue([]);
      // A request write that took outcomes re-queues them if it fails, so wait for those first.
      await flushes.carried();
      if (retried.pumping() !== undefined) await flushes.wait();
    },
    async close() {
      closing = true;
      enqueue([]);
      deadline = Date.now() + (deps.closeTimeoutMs ?? 10_000);
      while (retried.size() > 0 || retried.pumping() !== undefined) {
        if (retried.pumping() === undefined) {
          if (Date.now() >= deadline) break;
          enqueue([]);
        }
        await retried.pumping();
      }
      const lost = retried.size();
      if (lost > 0) {
        throw new HoopError(
          'ERR_AUDIT_UNAVAILABLE',
          `${lost} audit record(s) could not be written before shutdown; the store is unavailable`,
        );
      }
    },
  };
}
