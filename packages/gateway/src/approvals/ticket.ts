// Ticket mode (issue #16): a call that needs approval is answered at once with the approval's ID
// instead of being held; the identical call sent again after the decision gets that decision, once.
// An approval is opened (or joined: same fingerprint) as for a held call, without a waiter. Redemption
// is the store's compare-and-set on `redeemedAt` (ApprovalRepository.redeem), so two identical
// retries, even on two replicas, never both run on one approval.
import { HoopError } from '../lib/errors.js';
import type { CreateOrJoin } from './admission.js';
import type { ApprovalCore } from './core.js';
import type { TicketOps } from './service-types.js';
import type { ApprovalRecord } from './types.js';

/** `approval.ticketTTL` when absent: how long an approved ticket waits for the agent's retry. */
export const defaultTicketTtlMs = 15 * 60_000;

export function ticketTtlOf(config: { ticketTtlMs?: number }): number {
  return config.ticketTtlMs ?? defaultTicketTtlMs;
}

export function createTickets(core: ApprovalCore, createOrJoin: CreateOrJoin): TicketOps {
  const { repo, notifier, config, clock, logger } = core;
  const ttl = ticketTtlOf(config);
  const storeDown = (cause: unknown): HoopError =>
    new HoopError(
      'ERR_AUDIT_UNAVAILABLE',
      'the approval store is unavailable; the request was neither run nor held for approval, run it again later',
      { cause },
    );

  async function post(record: ApprovalRecord): Promise<void> {
    if (notifier === undefined) return;
    try {
      const where = await notifier.posted(record);
      if (where !== undefined) await repo.setSlackMessage(record.id, where);
    } catch (error) {
      // The queue still works without Slack (API, CLI).
      logger.warn({ err: error, approvalId: record.id }, 'could not post the approval message');
    }
  }

  return {
    async openTicket(request) {
      const opened = await createOrJoin({ ...request, ticket: true });
      // Answered at once: the agent does not wait for Slack.
      if (!opened.joined) void post(opened.record);
      return opened;
    },

    async redeemTicket(identity, fingerprint) {
      const now = clock();
      let redeemed: ApprovalRecord | null;
      try {
        // Decided within the TTL means created at most approval.timeout before that.
        const candidate = await repo.latestDecided(identity, fingerprint, now - ttl - config.timeoutMs);
        if (candidate === null || (candidate.decidedAt ?? candidate.createdAt) + ttl <= now) return null;
        redeemed = await repo.redeem(candidate.id, now);
      } catch (error) {
        throw storeDown(error);
      }
      if (redeemed?.state === 'approved' && notifier?.threadReply !== undefined) {
        void notifier
          .threadReply(redeemed, 'The agent sent the call again: it ran on this approval (once).')
          .catch((error: unknown) =>
            logger.warn({ err: error, approvalId: redeemed.id }, 'could not post the redemption to the thread'),
          );
      }
      return redeemed;
    },

    async markAnswered(id) {
      try {
        return (await repo.redeem(id, clock())) !== null;
      } catch (error) {
        throw storeDown(error);
      }
    },
  };
}
