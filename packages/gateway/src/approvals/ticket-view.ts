// What an agent may see of its own approval (issue #16): `GET /hoop/v1/approvals/ID` with the
// requester's own token. Its state as a ticket, when it ends, and what was asked: no votes, no
// approvers' names or ids, no other request's existence (anyone else's ID is answered 404).
import type { Principal } from '../authn/principal.js';
import type { ApprovalRecord, ApprovalRequestSummary } from './types.js';

/**
 * `pending` → an approver may still decide; `approved` → the same call sent again runs (once) before
 * `expiresAt`; `redeemed` → it was used; `denied`, `expired` (no decision in time, or approved but not
 * used in time), `cancelled` (the gateway restarted or shut down while it was held).
 */
export type TicketState = 'pending' | 'approved' | 'redeemed' | 'denied' | 'expired' | 'cancelled';

export interface TicketView {
  kind: 'ApprovalTicket';
  id: string;
  state: TicketState;
  createdAt: string;
  /** Pending: the approval's deadline. Approved: the last moment the retry runs. */
  expiresAt: string;
  decidedAt?: string;
  /** The approver's reason, when one was given (for a denial: why). */
  decisionReason?: string;
  redeemedAt?: string;
  request: Omit<ApprovalRequestSummary, 'authorizedVerb'>;
}

/** The principal that asked for it: same issuer and subject (an identity's other agents are strangers). */
export function isRequester(record: ApprovalRecord, principal: Pick<Principal, 'issuer' | 'subject'>): boolean {
  return record.issuer === principal.issuer && record.subject === principal.subject;
}

export function ticketView(record: ApprovalRecord, now: number, ticketTtlMs: number): TicketView {
  const usableUntil = (record.decidedAt ?? record.createdAt) + ticketTtlMs;
  const state: TicketState =
    record.redeemedAt !== undefined && record.state === 'approved'
      ? 'redeemed'
      : record.state === 'approved' && usableUntil <= now
        ? 'expired'
        : record.state;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { cluster, method, path, verb, apiGroup, resource, subresource, namespace, name } = record.request;
  return {
    kind: 'ApprovalTicket',
    id: record.id,
    state,
    createdAt: iso(record.createdAt),
    expiresAt: iso(record.state === 'approved' ? usableUntil : record.expiresAt),
    ...(record.decidedAt === undefined ? {} : { decidedAt: iso(record.decidedAt) }),
    ...(record.decisionReason === undefined ? {} : { decisionReason: record.decisionReason }),
    ...(record.redeemedAt === undefined ? {} : { redeemedAt: iso(record.redeemedAt) }),
    request: { cluster, method, path, verb, apiGroup, resource, subresource, namespace, name },
  };
}
