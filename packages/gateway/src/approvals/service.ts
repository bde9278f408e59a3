// The just-in-time approval state machine (issue #5): hold a request until a decision taken on any
// replica, expiry or the requester leaving. Every transition is a compare-and-set in the repository,
// so exactly one replica wins it and only that replica finalizes (updates the Slack message).
import { randomBytes } from 'node:crypto';
import type { ApprovalConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { createScheduledJob, type Timers } from '../lib/scheduled-job.js';
import { createAdmission } from './admission.js';
import { createApprovalCore } from './core.js';
import { createDecide } from './decide.js';
import { createHold } from './hold.js';
import { createTickets } from './ticket.js';
import type { ApprovalGrant, ApprovalRecord, ApprovalRepository } from './types.js';
import { createStoreWatcher } from './watch.js';
import type { ApprovalNotifier, GrantHolder, GrantQuery, ApprovalService } from './service-types.js';

export type {
  ApprovalNotifier,
  HoldRequest,
  ApprovalOutcome,
  DecideInput,
  DecideRefusal,
  DecideResult,
  GrantHolder,
  GrantQuery,
  ApprovalService,
} from './service-types.js';

export interface ApprovalServiceDeps {
  repo: ApprovalRepository;
  notifier?: ApprovalNotifier;
  config: ApprovalConfig;
  replicaId: string;
  clock?: () => number;
  /**
   * How often a hold asks the store for decisions taken on other replicas; at most 1 s. Default 50 ms
   * when the store keeps a change sequence (one tiny query), else 250 ms (re-reads the pendings).
   */
  pollIntervalMs?: number;
  /** How often sweep() runs (default 10 s). */
  sweepEveryMs?: number;
  timers?: Timers;
  idGen?: () => string;
  logger?: Logger;
  /** +1 when this replica starts holding a request, -1 when the hold ends (a gauge). */
  onPendingChange?: (delta: number) => void;
}

function defaultId(): string {
  return randomBytes(6).toString('hex');
}

/** The active grant ("approve for 15m") covering this exact call by this exact principal, if any. */
async function findGrant(
  repo: ApprovalRepository,
  who: GrantHolder,
  cluster: string,
  info: GrantQuery,
  now: number,
): Promise<ApprovalGrant | undefined> {
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

export function createApprovalService(deps: ApprovalServiceDeps): ApprovalService {
  const { repo, config, replicaId } = deps;
  const clock = deps.clock ?? Date.now;
  const logger = deps.logger ?? silentLogger;
  const pollIntervalMs = Math.min(
    Math.max(deps.pollIntervalMs ?? (repo.changesSince === undefined ? 250 : 50), 10),
    1000,
  );
  const core = createApprovalCore({ repo, notifier: deps.notifier, config, replicaId, clock, logger });
  const { waiting, move, expire } = core;
  const watcher = createStoreWatcher(core, pollIntervalMs);
  let stopping = false;
  const createOrJoin = createAdmission(core, deps.idGen ?? defaultId);
  const hold = createHold(core, {
    createOrJoin,
    watcher,
    stopping: () => stopping,
    ...(deps.onPendingChange === undefined ? {} : { onPendingChange: deps.onPendingChange }),
  });
  const decide = createDecide(core);

  async function sweep(): Promise<number> {
    const now = clock();
    let expired = 0;
    // With pendingExpired (an index on the expiry), a sweep reads only the overdue, not every pending approval.
    const overdue = repo.pendingExpired?.(now) ?? repo.list({ state: 'pending' });
    for (const record of await overdue) {
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
      // A ticket has no held call to lose: it stays pending until decided or expired.
      else if (record.holder === replicaId && record.ticket !== true) {
        moved = await move(record.id, 'cancelled', {
          decidedAt: now,
          decisionReason: 'the gateway restarted while the request was held',
        });
      }
      if (moved !== null) ended += 1;
    }
    return ended;
  }

  return {
    config,
    clock,
    hold,
    ...createTickets(core, createOrJoin),
    decide,
    findGrant: (who, cluster, info, now = clock()) => findGrant(repo, who, cluster, info, now),
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
      const held = [...waiting];
      // Every hold is answered (503) first, then the approvals are cancelled in the store: 10,000 held
      // calls are released at once instead of one store write apart. Rejected before the cancellation,
      // which would otherwise resolve the hold as 'cancelled' (403).
      for (const [id, waiters] of held)
        for (const waiter of waiters)
          waiter.reject(new HoopError('ERR_SHUTTING_DOWN', `approval ${id} cancelled: ${reason}`));
      for (const [index, [id]] of held.entries()) {
        // Let the answers go out between the writes.
        if (index > 0 && index % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
        try {
          await move(id, 'cancelled', { decidedAt: clock(), decisionReason: reason });
        } catch (error) {
          logger.warn({ err: error, approvalId: id }, 'could not cancel a held approval at shutdown');
        }
      }
      watcher.stop();
    },
  };
}
