// Ticket mode at the request's edge (issue #16): which mode a call asks for (`X-Hoop-Approval`, or the
// identity's `approval.mode`), and the answer a call gets when it is not held: a 403 Status carrying
// the approval's ID, who can approve, and how to retry and follow it (docs/reference.md §8 says why 403).
import type { ApprovalRecord } from '../approvals/types.js';
import { ticketTtlOf } from '../approvals/ticket.js';
import type { Config, IdentityConfig } from '../config/types.js';
import { formatDuration } from '../config/values.js';
import { HoopError } from '../lib/errors.js';
import { singleHeader } from '../proxy/headers.js';
import { refused, type IncomingRequest, type Step } from './types.js';

export type ApprovalMode = 'wait' | 'ticket';

const modes: readonly ApprovalMode[] = ['wait', 'ticket'];

/**
 * The mode of this call: `ticket` when the identity says so (an operator's choice the agent cannot
 * override), or when the agent sends `X-Hoop-Approval: ticket`; otherwise `wait`. Any other value of
 * the header, or the header twice, is a 400: checked on every call, so a typo never silently waits.
 */
export function approvalModeOf(request: IncomingRequest, identity: IdentityConfig): Step<{ mode: ApprovalMode }> {
  let sent: string | undefined;
  try {
    sent = singleHeader(request.rawHeaders, 'x-hoop-approval')?.trim().toLowerCase();
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
  if (sent !== undefined && !modes.includes(sent as ApprovalMode)) {
    return refused(
      new HoopError(
        'ERR_BAD_REQUEST',
        `header X-Hoop-Approval must be "wait" (hold the call until an approver decides) or "ticket" (answer at once with the approval ID), got ${JSON.stringify(sent.slice(0, 40))}`,
      ),
    );
  }
  const mode: ApprovalMode = identity.approval.mode === 'ticket' || sent === 'ticket' ? 'ticket' : 'wait';
  return { ok: true, mode };
}

/**
 * The answer to a call in ticket mode while its approval is pending: 403, with the ID in the message
 * and details. Who can approve is appended as to every 403 (pipeline/errors.ts withHelp, policy/help.ts).
 */
export function ticketRefusal(
  record: Pick<ApprovalRecord, 'id' | 'expiresAt'>,
  what: string,
  config: Pick<Config, 'approval' | 'slack'>,
  now: number,
): HoopError {
  const ttl = formatDuration(ticketTtlOf(config.approval));
  const left = formatDuration(Math.max(1000, Math.ceil((record.expiresAt - now) / 1000) * 1000));
  return new HoopError(
    'ERR_APPROVAL_REQUIRED',
    `${what} needs approval; it was not run. Approval ${record.id} is pending (it expires in ${left}). ` +
      `Run the same command again after approval: it then runs once, within ${ttl} of the approval. ` +
      `Poll GET /hoop/v1/approvals/${record.id} with the same token to see its state`,
    { details: { kind: 'approval', name: record.id } },
  );
}
