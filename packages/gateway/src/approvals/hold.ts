// A held request (split out of service.ts): waits on its approval until a decision (this replica:
// at once; another: through the store watcher), expiry, the requester leaving or shutdown.
import { HoopError } from '../lib/errors.js';
import type { CreateOrJoin } from './admission.js';
import { outcomeOf, type ApprovalCore, type Waiter } from './core.js';
import type { ApprovalOutcome, HoldRequest } from './service-types.js';
import type { StoreWatcher } from './watch.js';

export function createHold(
  core: ApprovalCore,
  parts: {
    createOrJoin: CreateOrJoin;
    watcher: StoreWatcher;
    stopping: () => boolean;
    onPendingChange?: (delta: number) => void;
  },
): (request: HoldRequest, signal: AbortSignal) => Promise<ApprovalOutcome> {
  const { repo, notifier, waiting, deadlines, logger, wake } = core;
  const { createOrJoin } = parts;

  async function hold(request: HoldRequest, signal: AbortSignal): Promise<ApprovalOutcome> {
    if (parts.stopping())
      throw new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down; run the command again');
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
    parts.onPendingChange?.(1);

    const onAbort = (): void => {
      // Only this requester leaves; the approval stays pending (issue #16): a client's retry joins it,
      // or, once decided, gets the decision once (approvals/ticket.ts). Expiry ends it otherwise.
      self.reject(new HoopError('ERR_APPROVAL_CANCELLED', `approval ${record.id}: the requester disconnected`));
      if ((waiting.get(record.id)?.size ?? 0) > 1) return;
      void (async () => {
        const current = await repo.get(record.id);
        if (current?.state === 'pending')
          await notifier?.threadReply?.(
            current,
            'The agent stopped waiting. If approved, the call runs when the agent sends it again.',
          );
      })().catch((error: unknown) =>
        logger.warn({ err: error, approvalId: record.id }, 'could not post the disconnection to the thread'),
      );
    };

    try {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      parts.watcher.schedule();

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
      parts.onPendingChange?.(-1);
    }
  }

  return hold;
}
