// What every part of the approval service shares (split out of service.ts, issue #15 size limits):
// the holds waiting on this replica, the compare-and-set every end state goes through, and waking
// the holds of a record that reached an end state.
import type { ApprovalConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ApprovalOutcome, ApprovalNotifier } from './service-types.js';
import type { ApprovalRecord, ApprovalRepository, ApprovalState } from './types.js';

export interface Waiter {
  resolve: (record: ApprovalRecord) => void;
  reject: (error: Error) => void;
}

export type TransitionPatch = Parameters<ApprovalRepository['transition']>[3];

export interface ApprovalCore {
  repo: ApprovalRepository;
  notifier: ApprovalNotifier | undefined;
  config: ApprovalConfig;
  replicaId: string;
  clock: () => number;
  logger: Logger;
  /** Holds on this replica by approval id. Several holds may wait on one approval: identical pending requests join it (issue #12 item 5). */
  waiting: Map<string, Set<Waiter>>;
  /** Expiry of each approval held here. */
  deadlines: Map<string, number>;
  /** Resolves the holds of `record` when it is in an end state. */
  wake(record: ApprovalRecord): void;
  finalize(record: ApprovalRecord): Promise<void>;
  /** The CAS every end state goes through; the winner finalizes (unless `defer`), the loser gets null. */
  move(id: string, to: ApprovalState, patch: TransitionPatch, defer?: boolean): Promise<ApprovalRecord | null>;
  expire(record: ApprovalRecord): Promise<ApprovalRecord | null>;
  /** Reads the record again and wakes its holds (after a lost CAS, or a change seen in the store). */
  refresh(id: string): Promise<void>;
  storeDown(id: string, cause: unknown): HoopError;
}

export const terminal: ReadonlySet<ApprovalState> = new Set(['approved', 'denied', 'expired', 'cancelled']);

export function outcomeOf(record: ApprovalRecord): ApprovalOutcome | undefined {
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

export function createApprovalCore(
  deps: Pick<ApprovalCore, 'repo' | 'notifier' | 'config' | 'replicaId' | 'clock' | 'logger'>,
): ApprovalCore {
  const { repo, notifier, config, clock, logger } = deps;
  const waiting = new Map<string, Set<Waiter>>();

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

  async function move(
    id: string,
    to: ApprovalState,
    patch: TransitionPatch,
    defer = false,
  ): Promise<ApprovalRecord | null> {
    const moved = await repo.transition(id, 'pending', to, patch);
    if (moved !== null && !defer) await finalize(moved);
    return moved;
  }

  return {
    ...deps,
    waiting,
    deadlines: new Map(),
    wake,
    finalize,
    move,
    expire: (record) =>
      move(record.id, 'expired', {
        decidedAt: clock(),
        decisionReason: `no decision within ${Math.round(config.timeoutMs / 1000)}s`,
      }),
    async refresh(id) {
      const current = await repo.get(id);
      if (current !== null) wake(current);
    },
    storeDown: (id, cause) =>
      new HoopError(
        'ERR_AUDIT_UNAVAILABLE',
        `approval ${id} could not be read from the store; the request was not approved`,
        { cause },
      ),
  };
}
