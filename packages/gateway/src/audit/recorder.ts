// The audit recorder: writes each request durably before it is forwarded (fail closed: no record, no
// request), then appends its outcome, exec frames and approval decisions as later chain records,
// retried until written.
import { randomUUID } from 'node:crypto';
import type { ApprovalRecord } from '../approvals/types.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { AuditRecordDraft, AuditStore } from '../store/types.js';
import { createSessionTracker } from './sessions.js';
import type { AuditHandle, AuditOutcome, AuditStart, ExecFrame } from './types.js';

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
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Cuts a body to `max` UTF-8 bytes without splitting a character. */
export function truncateBody(body: string, max: number): { text: string; bytes: number; truncated: boolean } {
  const bytes = Buffer.byteLength(body);
  if (bytes <= max) return { text: body, bytes, truncated: false };
  let text = Buffer.from(body).subarray(0, Math.max(0, max)).toString('utf8');
  if (text.endsWith('\ufffd')) text = text.slice(0, -1);
  return { text, bytes, truncated: true };
}

function identityOf(start: AuditStart): string {
  if (start.identity !== undefined) return start.identity;
  if (start.principal !== undefined) return `${start.principal.issuer}#${start.principal.subject}`;
  return 'anonymous';
}

export function createAuditRecorder(deps: AuditRecorderDeps): AuditRecorder {
  const audit: AuditStore = 'audit' in deps.store ? deps.store.audit : deps.store;
  const logger = deps.logger ?? silentLogger;
  const sessions = createSessionTracker({ idleMs: deps.sessionIdleMs });
  const retryBaseMs = deps.retryBaseMs ?? 100;
  const retryMaxMs = deps.retryMaxMs ?? 5000;
  /** eventId → sessionId/identity, so frames and outcomes land in the session of their request. */
  const events = new Map<string, { sessionId: string; identity: string }>();
  const maxTrackedEvents = 50_000;
  let queue: AuditRecordDraft[][] = [];
  /** Callers waiting on a queued batch (appendFrames' `settled`), called once. */
  const waiting = new WeakMap<AuditRecordDraft[], (error?: unknown) => void>();
  const settle = (batch: AuditRecordDraft[][], error?: unknown): void => {
    for (const drafts of batch) {
      const settled = waiting.get(drafts);
      waiting.delete(drafts);
      settled?.(error);
    }
  };
  let failedOutcomeWrites = 0;
  let pump: Promise<void> | undefined;
  let closing = false;
  let deadline = Number.POSITIVE_INFINITY;

  function body(prefix: 'request' | 'response', text: string | undefined): Record<string, unknown> {
    if (!deps.bodies || text === undefined) return {};
    const cut = truncateBody(text, deps.maxBodyBytes);
    return {
      [`${prefix}Body`]: cut.text,
      [`${prefix}BodyBytes`]: cut.bytes,
      ...(cut.truncated ? { [`${prefix}BodyTruncated`]: true } : {}),
    };
  }

  function requestDraft(start: AuditStart): { draft: AuditRecordDraft; eventId: string; sessionId: string; identity: string } {
    const identity = identityOf(start);
    const sessionId = sessions.sessionFor(identity, start.kubectlSession, start.time);
    const eventId = randomUUID();
    const { requestBody, time, identity: _identity, ...rest } = start;
    const draft: AuditRecordDraft = {
      kind: 'request',
      time,
      eventId,
      sessionId,
      identity,
      data: { ...rest, ...body('request', requestBody) },
    };
    return { draft, eventId, sessionId, identity };
  }

  function outcomeDraft(eventId: string, sessionId: string, identity: string, outcome: AuditOutcome): AuditRecordDraft {
    const { responseBody, ...rest } = outcome;
    return { kind: 'outcome', time: deps.clock(), eventId, sessionId, identity, data: { ...rest, ...body('response', responseBody) } };
  }

  function remember(eventId: string, sessionId: string, identity: string): void {
    if (events.size >= maxTrackedEvents) {
      const oldest = events.keys().next();
      if (oldest.done !== true) events.delete(oldest.value);
    }
    events.set(eventId, { sessionId, identity });
  }

  function enqueue(drafts: AuditRecordDraft[]): void {
    queue.push(drafts);
    pump ??= drain().finally(() => {
      pump = undefined;
    });
  }

  async function drain(): Promise<void> {
    let attempt = 0;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await audit.append(batch.flat());
        attempt = 0;
        settle(batch);
      } catch (error) {
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

  function handle(eventId: string, sessionId: string, identity: string, completed: boolean): AuditHandle {
    let done = completed;
    return {
      eventId,
      sessionId,
      complete(outcome) {
        if (done) return;
        done = true;
        enqueue([outcomeDraft(eventId, sessionId, identity, outcome)]);
      },
    };
  }

  async function write(drafts: AuditRecordDraft[]): Promise<void> {
    if (closing) throw new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down');
    try {
      await audit.append(drafts);
    } catch (error) {
      deps.metrics?.auditFailures?.inc();
      logger.error({ err: error }, 'audit write failed; refusing the request');
      throw new HoopError('ERR_AUDIT_UNAVAILABLE', 'the audit store is unavailable, so the request was not forwarded; try again shortly', {
        cause: error,
      });
    }
  }

  return {
    async begin(start) {
      const { draft, eventId, sessionId, identity } = requestDraft(start);
      await write([draft]);
      remember(eventId, sessionId, identity);
      return handle(eventId, sessionId, identity, false);
    },
    async record(start, outcome) {
      const { draft, eventId, sessionId, identity } = requestDraft(start);
      await write([draft, outcomeDraft(eventId, sessionId, identity, outcome)]);
      return handle(eventId, sessionId, identity, true);
    },
    appendFrames(eventId, frames, settled) {
      if (frames.length === 0) return settled?.();
      const known = events.get(eventId);
      const drafts: AuditRecordDraft[] = [
        {
          kind: 'frames',
          time: deps.clock(),
          eventId,
          ...(known === undefined ? {} : { sessionId: known.sessionId, identity: known.identity }),
          data: { frames: frames.map((frame) => ({ ...frame })) },
        },
      ];
      if (settled !== undefined) waiting.set(drafts, settled);
      enqueue(drafts);
    },
    recordApproval(record) {
      enqueue([
        {
          kind: 'approval',
          time: deps.clock(),
          sessionId: record.sessionId,
          identity: record.identity,
          data: {
            approvalId: record.id,
            state: record.state,
            cluster: record.request.cluster,
            verb: record.request.verb,
            path: record.request.path,
            votes: record.votes.map((vote) => ({ user: vote.user, label: vote.label, at: vote.at, via: vote.via })),
            decidedBy: record.decidedBy,
            decidedAt: record.decidedAt,
            decisionReason: record.decisionReason,
            grantMs: record.grantMs,
          },
        },
      ]);
    },
    stats: () => ({ pendingOutcomes: queue.reduce((n, drafts) => n + drafts.length, 0), failedOutcomeWrites }),
    async close() {
      closing = true;
      deadline = Date.now() + (deps.closeTimeoutMs ?? 10_000);
      while (queue.length > 0 || pump !== undefined) {
        if (pump === undefined) {
          if (Date.now() >= deadline) break;
          enqueue([]);
        }
        await pump;
      }
      const lost = queue.reduce((n, drafts) => n + drafts.length, 0);
      if (lost > 0) {
        throw new HoopError('ERR_AUDIT_UNAVAILABLE', `${lost} audit record(s) could not be written before shutdown; the store is unavailable`);
      }
    },
  };
}
