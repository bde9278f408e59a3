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
  /** Writes every queued outcome, frame and decision now and resolves once they are written (tests, probes). */
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

export function createAuditRecorder(deps: AuditRecorderDeps): AuditRecorder {
  const audit: AuditStore = 'audit' in deps.store ? deps.store.audit : deps.store;
  const logger = deps.logger ?? silentLogger;
  const drafts = createDraftBuilder({ ...deps, sessions: createSessionTracker({ idleMs: deps.sessionIdleMs }) });
  const retryBaseMs = deps.retryBaseMs ?? 100;
  const retryMaxMs = deps.retryMaxMs ?? 5000;
  const events = createEventIndex(50_000);
  let queue: AuditRecordDraft[][] = [];
  const { wait, settle } = createBatchWaiters();
  let failedOutcomeWrites = 0;
  let pump: Promise<void> | undefined;
  let closing = false;
  let deadline = Number.POSITIVE_INFINITY;
  const deferred = createDeferredOutcomes(deps.outcomeDelayMs ?? 10, () => enqueue([]));
  /** Records in the batch the pump is writing now. */
  let writing = 0;
  const queued = (): number => queue.reduce((n, list) => n + list.length, 0);

  function enqueue(drafts: AuditRecordDraft[]): void {
    const carried = deferred.take();
    if (carried.length > 0) queue.push(carried);
    if (drafts.length > 0) queue.push(drafts);
    if (queue.length === 0) return;
    pump ??= drain().finally(() => {
      pump = undefined;
    });
  }

  async function drain(): Promise<void> {
    let attempt = 0;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      const records = batch.flat();
      writing = records.length;
      try {
        await audit.append(records);
        writing = 0;
        attempt = 0;
        settle(batch);
      } catch (error) {
        writing = 0;
        settle(batch, error);
        queue = [...batch, ...queue];
        failedOutcomeWrites += 1;
        deps.metrics?.auditOutcomeFailures?.inc();
        logger.warn({ err: error, pending: queue.length, attempt }, 'audit outcome write failed; retrying');
        if (closing && Date.now() >= deadline) return;
        attempt += 1;
        await sleep(Math.min(retryMaxMs, retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  const handle = (eventId: string, sessionId: string, identity: string, completed: boolean): AuditHandle =>
    createHandle(eventId, sessionId, completed, (outcome) =>
      deferred.add(drafts.outcome(eventId, sessionId, identity, outcome)),
    );

  /** The request's durable write, with the deferred outcomes in front (one transaction). */
  async function write(drafts: AuditRecordDraft[]): Promise<void> {
    if (closing) throw new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down');
    const carried = deferred.take();
    try {
      await audit.append(carried.length === 0 ? drafts : [...carried, ...drafts]);
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
    stats: () => ({ pendingOutcomes: deferred.size() + writing + queued(), failedOutcomeWrites }),
    async flush() {
      enqueue([]);
      while (pump !== undefined) await pump;
    },
    async close() {
      closing = true;
      enqueue([]);
      deadline = Date.now() + (deps.closeTimeoutMs ?? 10_000);
      while (queue.length > 0 || pump !== undefined) {
        if (pump === undefined) {
          if (Date.now() >= deadline) break;
          enqueue([]);
        }
        await pump;
      }
      const lost = queued();
      if (lost > 0) {
        throw new HoopError(
          'ERR_AUDIT_UNAVAILABLE',
          `${lost} audit record(s) could not be written before shutdown; the store is unavailable`,
        );
      }
    },
  };
}
