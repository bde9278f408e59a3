// A held request (split out of service.ts): waits on its approval until a decision (this replica:
// at once; another: through the store watcher), expiry, the requester leaving or shutdown.
// While it waits, a held call is one small HeldCall (the approval's id, the abort signal and the
// promise's two settle functions) in core.waiting, and no suspended async frame of its own: hold()
// returns the HeldCall's promise at once; admission and posting run beside it (issue #13: 10,000
// held calls, memory per held call). The HeldCall is its own abort listener (no closure per call).
import type { Abortable } from '../lib/client-gone.js';
import { HoopError } from '../lib/errors.js';
import type { CreateOrJoin } from './admission.js';
import { outcomeOf, type ApprovalCore, type Waiter } from './core.js';
import type { ApprovalOutcome, HoldRequest } from './service-types.js';
import type { StoreWatcher } from './watch.js';

interface HoldParts {
  createOrJoin: CreateOrJoin;
  watcher: StoreWatcher;
  stopping: () => boolean;
  onPendingChange?: (delta: number) => void;
}

/** What every held call of this service shares: where it is registered, and what its requester leaving does. */
interface Shared {
  core: ApprovalCore;
  parts: HoldParts;
  /** The requester of approval `id` left and nobody else waits on it: tell the thread (best effort). */
  leftAlone(id: string): void;
}

/** One held call: settled once, by a decision, expiry, the requester leaving or shutdown; then unregistered. */
class HeldCall implements Waiter {
  /** The approval it waits on, once admitted (registered in core.waiting). */
  id = '';
  private ended = false;

  constructor(
    private readonly signal: Abortable,
    private readonly shared: Shared,
    private readonly settle: (outcome: ApprovalOutcome) => void,
    private readonly fail: (error: Error) => void,
  ) {}

  resolve(record: Parameters<Waiter['resolve']>[0]): void {
    const outcome = outcomeOf(record);
    if (outcome === undefined || !this.end()) return;
    this.settle(outcome);
  }

  reject(error: Error): void {
    if (this.end()) this.fail(error);
  }

  /** The requester disconnected (the signal's 'abort'). */
  handleEvent(): void {
    // Only this requester leaves; the approval stays pending (issue #16): a client's retry joins it,
    // or, once decided, gets the decision once (approvals/ticket.ts). Expiry ends it otherwise.
    const alone = (this.shared.core.waiting.get(this.id)?.size ?? 0) <= 1;
    this.reject(new HoopError('ERR_APPROVAL_CANCELLED', `approval ${this.id}: the requester disconnected`));
    if (alone) this.shared.leftAlone(this.id);
  }

  /** Registers the call on approval `id` (its expiry `expiresAt`) and listens for the requester leaving. */
  register(id: string, expiresAt: number): void {
    const { waiting, deadlines } = this.shared.core;
    this.id = id;
    const waiters = waiting.get(id) ?? new Set<Waiter>();
    waiters.add(this);
    waiting.set(id, waiters);
    deadlines.set(id, expiresAt);
    this.shared.parts.onPendingChange?.(1);
    if (this.signal.aborted) this.handleEvent();
    else this.signal.addEventListener('abort', this, { once: true });
  }

  /** Unregisters the call; false when it had already ended. */
  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    if (this.id === '') return true;
    const { core, parts } = this.shared;
    this.signal.removeEventListener('abort', this);
    const waiters = core.waiting.get(this.id);
    waiters?.delete(this);
    if (waiters?.size === 0) {
      core.waiting.delete(this.id);
      core.deadlines.delete(this.id);
    }
    parts.onPendingChange?.(-1);
    return true;
  }
}

export function createHold(
  core: ApprovalCore,
  parts: HoldParts,
): (request: HoldRequest, signal: Abortable) => Promise<ApprovalOutcome> {
  const { repo, notifier, logger, wake } = core;
  const shared: Shared = {
    core,
    parts,
    leftAlone(id) {
      void (async () => {
        const current = await repo.get(id);
        if (current?.state === 'pending')
          await notifier?.threadReply?.(
            current,
            'The agent stopped waiting. If approved, the call runs when the agent sends it again.',
          );
      })().catch((error: unknown) =>
        logger.warn({ err: error, approvalId: id }, 'could not post the disconnection to the thread'),
      );
    },
  };

  /** Admits the call (joins or creates its approval), registers it, then posts the message; a failure ends it. */
  async function admit(call: HeldCall, request: HoldRequest): Promise<void> {
    const { record, joined } = await parts.createOrJoin(request);
    call.register(record.id, record.expiresAt);
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
  }

  /**
   * The returned promise is the held call's own: once admitted, nothing but the HeldCall (in
   * core.waiting) and the caller's continuation stays while the call waits, no suspended frame.
   */
  function hold(request: HoldRequest, signal: Abortable): Promise<ApprovalOutcome> {
    if (parts.stopping())
      return Promise.reject(new HoopError('ERR_SHUTTING_DOWN', 'the gateway is shutting down; run the command again'));
    let resolve: (outcome: ApprovalOutcome) => void = () => undefined;
    let reject: (error: Error) => void = () => undefined;
    const settled = new Promise<ApprovalOutcome>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const call = new HeldCall(signal, shared, resolve, reject);
    admit(call, request).catch((error: unknown) => call.reject(error as Error));
    return settled;
  }

  return hold;
}
