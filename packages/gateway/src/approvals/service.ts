// The just-in-time approval state machine (issue #5): hold a request until a decision taken on any
// replica, expiry or the requester leaving. Every transition is a compare-and-set in the repository,
// so exactly one replica wins it and only that replica finalizes (updates the Slack message).
import { randomBytes } from 'node:crypto';
import type { ApprovalConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { createScheduledJob, type ScheduledJob, type Timers } from '../lib/scheduled-job.js';
import { samePerson } from './people.js';
import type {
  ApprovalGrant,
  ApprovalRecord,
  ApprovalRepository,
  ApprovalRequestSummary,
  ApprovalState,
  ApprovalVote,
  SlackMessageRef,
} from './types.js';
import { grantIdOf } from './types.js';

/** Where approvals are shown to humans (Slack); every method is best effort, never blocks a decision. */
export interface ApprovalNotifier {
  /** Posts the interactive message; returns its coordinates so any replica can update it later. */
  posted(record: ApprovalRecord): Promise<SlackMessageRef | undefined>;
  /** Replaces the message with the outcome (no buttons). Called once, by the replica whose CAS won. */
  finalize(record: ApprovalRecord): Promise<void>;
  threadReply?(record: ApprovalRecord, text: string): Promise<void>;
}

export type HoldRequest = Omit<ApprovalRecord, 'id' | 'state' | 'createdAt' | 'expiresAt' | 'holder' | 'votes'>;

export type ApprovalOutcome =
  | { state: 'approved'; record: ApprovalRecord }
  | { state: 'denied'; record: ApprovalRecord }
  | { state: 'expired'; record: ApprovalRecord }
  | { state: 'cancelled'; record: ApprovalRecord };

export interface DecideInput {
  approve: boolean;
  actor: ApprovalVote;
  /** Established by the caller at click/request time (Slack user or group, OIDC group, CLI operator). */
  approver: boolean;
  /** The actor's email when known (Slack profile, OIDC claim): equal to the record's email → self-approval. */
  email?: string;
  /** The actor's OIDC subject when deciding through the API: equal to the record's subject → self-approval. */
  subject?: string;
  reason?: string;
  /** "Approve for …": must be one of approval.grantOptions. */
  grantMs?: number;
}

export type DecideRefusal = 'not-found' | 'not-pending' | 'already-voted' | 'self-approval' | 'not-approver' | 'invalid-grant';

export type DecideResult = { ok: true; record: ApprovalRecord } | { ok: false; why: DecideRefusal; record?: ApprovalRecord };

/** Who may use a grant: the identity and the exact principal that asked for the approval. */
export interface GrantHolder {
  identity: string;
  issuer: string;
  subject: string;
}

/** The parts of a classified request a grant is matched on. */
export type GrantQuery = Pick<ApprovalRequestSummary, 'verb' | 'apiGroup' | 'resource' | 'subresource' | 'namespace' | 'name'>;

export interface ApprovalService {
  hold(request: HoldRequest, signal: AbortSignal): Promise<ApprovalOutcome>;
  decide(id: string, input: DecideInput): Promise<DecideResult>;
  /** A grant valid now for exactly this principal (issuer + subject) of this identity, and this request shape. */
  findGrant(who: GrantHolder, cluster: string, info: GrantQuery, now?: number): Promise<ApprovalGrant | undefined>;
  /** Grants, active ones only unless `all`. */
  grants(options?: { all?: boolean }): Promise<ApprovalGrant[]>;
  /** Ends a grant at once; null when it is unknown, expired or already revoked. */
  revokeGrant(id: string, by: string): Promise<ApprovalGrant | null>;
  /** Expires overdue pending approvals (any replica's). */
  sweep(): Promise<number>;
  /** At start: this replica's pendings from a previous run → cancelled; overdue ones → expired. */
  cancelOrphans(): Promise<number>;
  list(filter?: { state?: ApprovalState }): Promise<ApprovalRecord[]>;
  pending(): Promise<ApprovalRecord[]>;
  get(id: string): Promise<ApprovalRecord | null>;
  /** Schedules sweep() every sweepEveryMs; returns the started job (stop() ends it). */
  startSweeps(): ScheduledJob<number>;
  /**
   * The replica is going away: its held requests cannot be answered later, so each is cancelled (Slack
   * updated) and its hold() rejects with ERR_SHUTTING_DOWN (503: the agent retries elsewhere).
   */
  shutdown(reason: string): Promise<void>;
  readonly config: ApprovalConfig;
}

export interface ApprovalServiceDeps {
  repo: ApprovalRepository;
  notifier?: ApprovalNotifier;
  config: ApprovalConfig;
  replicaId: string;
  clock?: () => number;
  /** How often a hold polls the store for decisions taken on other replicas; at most 1 s. */
  pollIntervalMs?: number;
  /** How often sweep() runs (default 10 s). */
  sweepEveryMs?: number;
  timers?: Timers;
  idGen?: () => string;
  logger?: Logger;
  /** +1 when this replica starts holding a request, -1 when the hold ends (a gauge). */
  onPendingChange?: (delta: number) => void;
}

interface Waiter {
  resolve: (record: ApprovalRecord) => void;
  reject: (error: Error) => void;
}

const terminal: ReadonlySet<ApprovalState> = new Set(['approved', 'denied', 'expired', 'cancelled']);

function outcomeOf(record: ApprovalRecord): ApprovalOutcome | undefined {
  switch (record.state) {
    case 'approved':
    case 'denied':
    case 'expired':
    case 'cancelled':
      return { state: record.state, record };
    case 'pending':
      return undefined;
  }
}

function defaultId(): string {
  return randomBytes(6).toString('hex');
}

export function createApprovalService(deps: ApprovalServiceDeps): ApprovalService {
  const { repo, notifier, config, replicaId } = deps;
  const clock = deps.clock ?? Date.now;
  const pollIntervalMs = Math.min(Math.max(deps.pollIntervalMs ?? 250, 10), 1000);
  const idGen = deps.idGen ?? defaultId;
  const logger = deps.logger ?? silentLogger;

  /** Holds on this replica. A decision taken here resolves at once, others by polling. */
  /** Several holds may wait on one approval: identical pending requests join it (issue #12 item 5). */
  const waiting = new Map<string, Set<Waiter>>();
  /** Serialises count-then-create, so this replica never lets one identity exceed maxPendingPerIdentity. */
  let creating: Promise<unknown> = Promise.resolve();
  let pollTimer: NodeJS.Timeout | undefined;
  let polling = false;
  let stopping = false;
  const deadlines = new Map<string, number>();
  const storeGraceMs = 5_000;
  const storeDown = (id: string, cause: unknown) =>
    new HoopError('ERR_AUDIT_UNAVAILABLE', `approval ${id} could not be read from the store; the request was not approved`, { cause });

  function wake(record: ApprovalRecord): void {
    if (!terminal.has(record.state)) return;
    for (const waiter of waiting.get(record.id) ?? []) waiter.resolve(record);
  }

  async function finalize(record: ApprovalRecord): Promise<void> {
    wake(record);
    if (notifier === undefined) return;
    try {
      await notifier.finalize(record);
    } catch (error) {
      logger.warn({ err: error, approvalId: record.id }, 'could not update the approval message');
    }
  }

  /** The CAS every end state goes through; the winner finalizes (unless `defer`), the loser gets null. */
  async function move(
    id: string,
    to: ApprovalState,
    patch: Parameters<ApprovalRepository['transition']>[3],
    defer = false,
  ): Promise<ApprovalRecord | null> {
    const moved = await repo.transition(id, 'pending', to, patch);
    if (moved !== null && !defer) await finalize(moved);
    return moved;
  }

  async function expire(record: ApprovalRecord): Promise<ApprovalRecord | null> {
    return move(record.id, 'expired', { decidedAt: clock(), decisionReason: `no decision within ${Math.round(config.timeoutMs / 1000)}s` });
  }

  function schedulePoll(): void {
    if (pollTimer !== undefined || waiting.size === 0) return;
    pollTimer = setTimeout(() => {
      pollTimer = undefined;
      void poll().finally(schedulePoll);
    }, pollIntervalMs);
  }

  /** One store query per tick for all holds of this replica: whatever is no longer pending was decided elsewhere. */
  async function poll(): Promise<void> {
    if (polling || waiting.size === 0) return;
    polling = true;
    try {
      const stillPending = new Map((await repo.list({ state: 'pending', holder: replicaId })).map((r) => [r.id, r]));
      const now = clock();
      for (const id of [...waiting.keys()]) {
        const pending = stillPending.get(id);
        if (pending === undefined) {
          const current = await repo.get(id);
          if (current !== null) wake(current);
        } else if (pending.expiresAt <= now) {
          const expired = await expire(pending);
          if (expired === null) {
            const current = await repo.get(id);
            if (current !== null) wake(current);
          }
        }
      }
    } catch (error) {
      logger.warn({ err: error }, 'approval poll failed; retrying');
      // Fail closed: a hold whose expiry has passed while the store is unreachable ends unapproved.
      const now = clock();
      for (const [id, waiters] of waiting) {
        if ((deadlines.get(id) ?? Infinity) + storeGraceMs <= now) for (const waiter of waiters) waiter.reject(storeDown(id, error));
      }
    } finally {
      polling = false;
    }
  }

  /** A pending, unexpired approval this identical request can join, if any. */
  async function joinable(request: HoldRequest, now: number): Promise<ApprovalRecord | undefined> {
    if (request.fingerprint === undefined) return undefined;
    const pending = await repo.list({ state: 'pending' });
    return pending.find((r) => r.fingerprint === request.fingerprint && r.identity === request.identity && r.expiresAt > now);
  }

  /** Refuses a new approval when the identity already holds maxPendingPerIdentity (429, Retry-After: the next expiry). */
  async function checkPendingCap(request: HoldRequest, now: number): Promise<void> {
    const mine = (await repo.list({ state: 'pending' })).filter((r) => r.identity === request.identity && r.expiresAt > now);
    if (mine.length < config.maxPendingPerIdentity) return;
    const next = Math.min(...mine.map((r) => r.expiresAt));
    const retryAfterSeconds = Math.max(1, Math.ceil((next - now) / 1000));
    throw new HoopError(
      'ERR_TOO_MANY_REQUESTS',
      `identity "${request.identity}" already has ${mine.length} requests waiting for approval (approval.maxPendingPerIdentity: ${config.maxPendingPerIdentity}); wait for a decision or retry in ${retryAfterSeconds}s`,
      { details: { retryAfterSeconds } },
    );
  }

  /** Joins an identical pending approval, or creates one (within the identity's cap). */
  async function createOrJoin(request: HoldRequest): Promise<{ record: ApprovalRecord; joined: boolean }> {
    const run = creating.then(async () => {
      const now = clock();
      // Fail closed: if the store cannot be read or written nobody could approve it; the caller answers 503.
      try {
        const existing = await joinable(request, now);
        if (existing !== undefined) return { record: existing, joined: true };
      } catch (error) {
        throw new HoopError('ERR_AUDIT_UNAVAILABLE', `the approval store is unavailable; the request cannot be held for approval`, { cause: error });
      }
      let capError: unknown;
      try {
        await checkPendingCap(request, now);
      } catch (error) {
        capError = error;
      }
      if (capError instanceof HoopError && capError.code === 'ERR_TOO_MANY_REQUESTS') throw capError;
      if (capError !== undefined) throw new HoopError('ERR_AUDIT_UNAVAILABLE', `the approval store is unavailable; the request cannot be held for approval`, { cause: capError });
      const record: ApprovalRecord = {
        ...request,
        id: idGen(),
        state: 'pending',
        createdAt: now,
        expiresAt: now + config.timeoutMs,
        holder: replicaId,
        votes: [],
      };
      try {
        await repo.create(record);
      } catch (error) {
        throw new HoopError('ERR_AUDIT_UNAVAILABLE', `the approval store is unavailable; the request cannot be held for approval`, { cause: error });
      }
      return { record, joined: false };
    });
    creating = run.catch(() => undefined);
    return run;
  }

  async function hold(request: HoldRequest, signal: AbortSignal): Promise<ApprovalOutcome> {
    if (stopping) throw new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down; run the command again');
    const { record, joined } = await createOrJoin(request);

    let waiter: Waiter | undefined;
    const settled = new Promise<ApprovalOutcome>((resolve, reject) => {
      waiter = {
        resolve: (r) => {
          const outcome = outcomeOf(r);
          if (outcome !== undefined) resolve(outcome);
        },
        reject,
      };
    });
    // Awaited below; a rejection that arrives while the message is being posted is not "unhandled".
    settled.catch(() => undefined);
    const self = waiter as unknown as Waiter;
    const waiters = waiting.get(record.id) ?? new Set<Waiter>();
    waiters.add(self);
    waiting.set(record.id, waiters);
    deadlines.set(record.id, record.expiresAt);
    deps.onPendingChange?.(1);

    const onAbort = (): void => {
      // Others still wait on this approval (identical requests joined it): only this requester leaves.
      if ((waiting.get(record.id)?.size ?? 0) > 1 || record.holder !== replicaId) {
        self.reject(new HoopError('ERR_APPROVAL_CANCELLED', `approval ${record.id}: the requester disconnected`));
        return;
      }
      void (async () => {
        try {
          const cancelled = await move(record.id, 'cancelled', { decidedAt: clock(), decisionReason: 'requester disconnected' });
          if (cancelled === null) {
            const current = await repo.get(record.id);
            if (current !== null) wake(current);
          }
        } catch (error) {
          logger.warn({ err: error, approvalId: record.id }, 'could not cancel an abandoned approval; the sweep will expire it');
          // The requester is gone: end the hold anyway so nothing waits on it.
          self.reject(storeDown(record.id, error));
        }
      })();
    };

    try {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      schedulePoll();

      if (joined) {
        // Decided while we joined? Then there is nothing to wait for.
        const current = await repo.get(record.id);
        if (current !== null) wake(current);
      } else if (notifier !== undefined) {
        try {
          const where = await notifier.posted(record);
          if (where !== undefined) await repo.setSlackMessage(record.id, where);
        } catch (error) {
          // The queue still works without Slack (API, CLI), so the hold goes on.
          logger.warn({ err: error, approvalId: record.id }, 'could not post the approval message');
        }
      }
      return await settled;
    } finally {
      signal.removeEventListener('abort', onAbort);
      waiters.delete(self);
      if (waiters.size === 0) {
        waiting.delete(record.id);
        deadlines.delete(record.id);
      }
      deps.onPendingChange?.(-1);
    }
  }

  async function decide(id: string, input: DecideInput): Promise<DecideResult> {
    const record = await repo.get(id);
    if (record === null) return { ok: false, why: 'not-found' };
    if (!input.approver) return { ok: false, why: 'not-approver', record };
    const sameEmail = input.email !== undefined && record.email !== undefined && input.email.trim().toLowerCase() === record.email.trim().toLowerCase();
    const sameSubject = input.subject !== undefined && input.subject === record.subject;
    if (input.approve && (sameEmail || sameSubject)) return { ok: false, why: 'self-approval', record };
    if (record.state !== 'pending') return { ok: false, why: 'not-pending', record };
    const now = clock();
    if (record.expiresAt <= now) {
      await expire(record);
      return { ok: false, why: 'not-pending', record: (await repo.get(id)) ?? record };
    }
    if (input.approve && input.grantMs !== undefined && !config.grantOptionsMs.includes(input.grantMs)) {
      return { ok: false, why: 'invalid-grant', record };
    }

    if (!input.approve) {
      const patch: Parameters<ApprovalRepository['transition']>[3] = { decidedBy: input.actor.label, decidedAt: now };
      if (input.reason !== undefined && input.reason.trim() !== '') patch.decisionReason = input.reason.trim();
      const denied = await move(id, 'denied', patch);
      if (denied === null) return { ok: false, why: 'not-pending', record: (await repo.get(id)) ?? record };
      return { ok: true, record: denied };
    }

    const voted = await repo.addVote(id, { ...input.actor, at: now });
    if (voted === null) {
      const current = (await repo.get(id)) ?? record;
      if (current.state === 'pending' && current.votes.some((v) => samePerson(v, input.actor))) {
        return { ok: false, why: 'already-voted', record: current };
      }
      return { ok: false, why: current.state === 'pending' ? 'already-voted' : 'not-pending', record: current };
    }
    // Each stored vote is a different person (the store refuses a second vote sharing a person key).
    const voters = voted.votes.length;
    if (voters < config.minApprovals) {
      try {
        await notifier?.threadReply?.(voted, `${input.actor.label} approved (${voters} of ${config.minApprovals} approvals)`);
      } catch (error) {
        logger.warn({ err: error, approvalId: id }, 'could not post the vote to the thread');
      }
      return { ok: true, record: voted };
    }
    const patch: Parameters<ApprovalRepository['transition']>[3] = {
      decidedBy: voted.votes.map((v) => v.label).join(', '),
      decidedAt: now,
    };
    if (input.reason !== undefined && input.reason.trim() !== '') patch.decisionReason = input.reason.trim();
    if (input.grantMs !== undefined) patch.grantMs = input.grantMs;
    // Finalized only after the grant exists, so the agent's next call already finds it.
    const approved = await move(id, 'approved', patch, true);
    if (approved === null) {
      // Another vote completed the quorum at the same moment (ours counts), or a deny won the race.
      const current = (await repo.get(id)) ?? voted;
      return current.state === 'approved' ? { ok: true, record: current } : { ok: false, why: 'not-pending', record: current };
    }
    try {
      if (input.grantMs !== undefined) {
        const r = approved.request;
        await repo.createGrant({
          id: grantIdOf(id),
          approvalId: id,
          identity: approved.identity,
          // Bound to the principal that asked, not every subject the identity maps.
          issuer: approved.issuer ?? '',
          subject: approved.subject,
          cluster: r.cluster,
          verb: r.verb,
          apiGroup: r.apiGroup,
          resource: r.resource,
          subresource: r.subresource,
          namespace: r.namespace,
          name: r.name,
          serviceAccount: approved.serviceAccount,
          grantedBy: patch.decidedBy ?? input.actor.label,
          createdAt: now,
          expiresAt: now + input.grantMs,
        });
      }
    } finally {
      await finalize(approved);
    }
    return { ok: true, record: approved };
  }

  async function findGrant(who: GrantHolder, cluster: string, info: GrantQuery, now = clock()): Promise<ApprovalGrant | undefined> {
    const grants = await repo.activeGrants(who.identity, cluster, now);
    return grants.find(
      (g) =>
        g.expiresAt > now &&
        g.revokedAt === undefined &&
        g.issuer === who.issuer &&
        g.subject === who.subject &&
        g.verb === info.verb &&
        g.apiGroup === info.apiGroup &&
        g.resource === info.resource &&
        g.subresource === info.subresource &&
        g.namespace === info.namespace &&
        g.name === info.name,
    );
  }

  async function sweep(): Promise<number> {
    const now = clock();
    let expired = 0;
    for (const record of await repo.list({ state: 'pending' })) {
      if (record.expiresAt <= now && (await expire(record)) !== null) expired += 1;
    }
    return expired;
  }

  async function cancelOrphans(): Promise<number> {
    const now = clock();
    let ended = 0;
    for (const record of await repo.list({ state: 'pending' })) {
      if (waiting.has(record.id)) continue;
      let moved: ApprovalRecord | null = null;
      if (record.expiresAt <= now) moved = await expire(record);
      else if (record.holder === replicaId) {
        moved = await move(record.id, 'cancelled', { decidedAt: now, decisionReason: 'the gateway restarted while the request was held' });
      }
      if (moved !== null) ended += 1;
    }
    return ended;
  }

  return {
    config,
    hold,
    decide,
    findGrant,
    grants: (options) => repo.listGrants(options?.all === true ? {} : { activeAt: clock() }),
    revokeGrant: (id, by) => repo.revokeGrant(id, by, clock()),
    sweep,
    cancelOrphans,
    list: (filter) => repo.list(filter?.state === undefined ? undefined : { state: filter.state }),
    pending: () => repo.list({ state: 'pending' }),
    get: (id) => repo.get(id),
    startSweeps() {
      const job = createScheduledJob({
        name: `approvals-sweep-${replicaId}`,
        everyMs: deps.sweepEveryMs ?? 10_000,
        clock,
        run: sweep,
        logger,
        failure: 'approval sweep failed; the next run will retry',
        ...(deps.timers === undefined ? {} : { timers: deps.timers }),
      });
      job.start();
      return job;
    },
    async shutdown(reason) {
      stopping = true;
      for (const [id, waiters] of [...waiting]) {
        // Rejected first: the cancellation below would otherwise resolve the hold as 'cancelled' (403).
        for (const waiter of waiters) waiter.reject(new HoopError('ERR_SHUTTING_DOWN', `approval ${id} cancelled: ${reason}`));
        try {
          await move(id, 'cancelled', { decidedAt: clock(), decisionReason: reason });
        } catch (error) {
          logger.warn({ err: error, approvalId: id }, 'could not cancel a held approval at shutdown');
        }
      }
      if (pollTimer !== undefined) clearTimeout(pollTimer);
      pollTimer = undefined;
    },
  };
}
