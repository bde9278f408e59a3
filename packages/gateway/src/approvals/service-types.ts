// The approval service's vocabulary: what callers hand it and what it answers (approvals/service.ts
// builds the service from admission.ts, core.ts, decide.ts, hold.ts and watch.ts, which share these types).
import type { ApprovalConfig } from '../config/types.js';
import type { Abortable } from '../lib/client-gone.js';
import type { ScheduledJob } from '../lib/scheduled-job.js';
import type {
  ApprovalGrant,
  ApprovalRecord,
  ApprovalRequestSummary,
  ApprovalState,
  ApprovalVote,
  SlackMessageRef,
} from './types.js';

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

export type DecideRefusal =
  'not-found' | 'not-pending' | 'already-voted' | 'self-approval' | 'not-approver' | 'invalid-grant';

export type DecideResult =
  { ok: true; record: ApprovalRecord } | { ok: false; why: DecideRefusal; record?: ApprovalRecord };

/** Who may use a grant: the identity and the exact principal that asked for the approval. */
export interface GrantHolder {
  identity: string;
  issuer: string;
  subject: string;
}

/** The parts of a classified request a grant is matched on. */
export type GrantQuery = Pick<
  ApprovalRequestSummary,
  'verb' | 'apiGroup' | 'resource' | 'subresource' | 'namespace' | 'name'
>;

/** Ticket mode (issue #16, approvals/ticket.ts): open, redeem, and mark a held call's approval used. */
export interface TicketOps {
  /** Joins an identical pending approval or opens one (posting the Slack message), without holding anything. */
  openTicket(request: HoldRequest): Promise<{ record: ApprovalRecord; joined: boolean }>;
  /**
   * The decision an identical request may use: the latest approval of this identity with this
   * fingerprint decided (approved, denied, expired) within approval.ticketTTL and not used yet,
   * redeemed for this request; null when there is none (or another request redeemed it first).
   */
  redeemTicket(identity: string, fingerprint: string): Promise<ApprovalRecord | null>;
  /**
   * A held call was told its approval's outcome: the approval is used (a later identical call needs a
   * new one). True when this call claimed it; false when an identical call already used it.
   */
  markAnswered(id: string): Promise<boolean>;
}

export interface ApprovalService extends TicketOps {
  /** `signal`: the requester leaving (an AbortSignal, or lib/client-gone.ts). */
  hold(request: HoldRequest, signal: Abortable): Promise<ApprovalOutcome>;
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
  /** The service's clock: what its deadlines and a ticket's remaining time are measured by. */
  readonly clock: () => number;
}
