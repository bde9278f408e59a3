// The approval queue's data and its storage port. The state machine (approvals/service.ts) is
// written against ApprovalRepository; store/sqlite and store/mongo implement it with atomic
// compare-and-set operations only, so any replica may take a decision exactly once.

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';

export interface ApprovalRequestSummary {
  cluster: string;
  method: string;
  /** The raw, classified path (already canonical). */
  path: string;
  /** The classifier's verb (grants match on it). */
  verb: string;
  /** The verb the API server authorises (`create` for exec over a GET upgrade): what messages show. */
  authorizedVerb?: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export interface ApprovalVote {
  /** Slack user id (`U…`) or `oidc:<issuer>#<subject>` for the HTTP API / CLI. */
  user: string;
  /** Display name for messages. */
  label: string;
  at: number;
  via: 'slack' | 'api' | 'cli';
  /** The person's keys (approvals/people.ts): a vote sharing one with an earlier vote is that person's second. */
  keys?: readonly string[];
}

export interface ApprovalRecord {
  id: string;
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  /** Replica id holding the HTTP call; used to cancel orphans at start. */
  holder: string;
  sessionId: string;
  identity: string;
  /** The requesting token's issuer and subject: a grant binds to exactly this principal. */
  issuer?: string;
  subject: string;
  email?: string;
  groups: readonly string[];
  request: ApprovalRequestSummary;
  kubectlCommand?: string;
  /** X-Hoop-Reason as sent (untrusted text: escape before display). */
  reason?: string;
  /** Why it was held: 'approval-required' | 'escalation', and the rule's config path. */
  heldBecause: string;
  rule?: string;
  /** Masked, truncated summary of the request body (e.g. the patch). */
  bodySummary?: string;
  /** The account the call runs as once approved. */
  serviceAccount: string;
  /**
   * SHA-256 over issuer, subject, identity, cluster, method, path and the body's SHA-256: an identical
   * request arriving while this one is pending joins it instead of opening another approval.
   */
  fingerprint?: string;
  /**
   * Opened by a request that did not wait (`X-Hoop-Approval: ticket`, or the identity's
   * `approval.mode: ticket`): the Slack message says the call runs when the agent sends it again.
   */
  ticket?: boolean;
  /**
   * When the decision was used (approvals/ticket.ts): an approved call ran on it, or a denial or expiry
   * was told to the requester. Set once, by compare-and-set; an identical request after that needs a
   * new approval.
   */
  redeemedAt?: number;
  votes: readonly ApprovalVote[];
  decidedBy?: string;
  decidedAt?: number;
  decisionReason?: string;
  /** Set when approved with an "Approve for …" option. */
  grantMs?: number;
  slack?: SlackMessageRef;
}

/** Where the approval message was posted; a click counts only when it comes from exactly there. */
export interface SlackMessageRef {
  channel: string;
  ts: string;
  /** Workspace (team id) and app that posted it, from chat.postMessage's answer. */
  team?: string;
  appId?: string;
}

export interface ApprovalGrant {
  id: string;
  approvalId: string;
  identity: string;
  /** Only this principal (issuer + sub) may use the grant, not every subject of the identity. */
  issuer: string;
  subject: string;
  cluster: string;
  /** The request shape the grant covers: same verb, group, resource, subresource, namespace (and name). */
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  serviceAccount: string;
  grantedBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt?: number;
  revokedBy?: string;
}

export interface ApprovalRepository {
  create(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | null>;
  list(filter?: { state?: ApprovalState; holder?: string }): Promise<ApprovalRecord[]>;
  /** Appends a vote atomically iff the approval is pending and no vote has this user or shares a key; returns the new record or null. */
  addVote(id: string, vote: ApprovalVote): Promise<ApprovalRecord | null>;
  /** Compare-and-set: moves `from` → `to` applying `patch` iff the current state is `from`; returns the new record or null. */
  transition(
    id: string,
    from: ApprovalState,
    to: ApprovalState,
    patch: Partial<Pick<ApprovalRecord, 'decidedBy' | 'decidedAt' | 'decisionReason' | 'grantMs'>>,
  ): Promise<ApprovalRecord | null>;
  /** Non-state fields only (the Slack message coordinates). */
  setSlackMessage(id: string, slack: SlackMessageRef): Promise<void>;
  createGrant(grant: ApprovalGrant): Promise<void>;
  /** Grants of this identity on this cluster still valid (not expired, not revoked) at `now`. */
  activeGrants(identity: string, cluster: string, now: number): Promise<ApprovalGrant[]>;
  /** Grants in creation order; with `activeAt`, only those valid then. */
  listGrants(filter?: { activeAt?: number }): Promise<ApprovalGrant[]>;
  /** Ends a grant now, once: returns it revoked, or null when it is unknown, expired or already revoked. */
  revokeGrant(id: string, by: string, now: number): Promise<ApprovalGrant | null>;
  /**
   * Push support (optional): the ids of approvals whose state changed after change number `since`,
   * and the latest change number. `complete: false` (first call with -1, or changes pruned) asks the
   * caller to read the pending approvals again instead.
   */
  changesSince?(since: number): Promise<ApprovalChanges>;
  /** Optional, for admission without reading every pending approval: the identity's unexpired pendings (count, earliest expiry). */
  pendingCount?(identity: string, now: number): Promise<{ count: number; nextExpiry: number }>;
  /**
   * Ticket mode (approvals/ticket.ts): the most recently created approval of `identity` with this
   * fingerprint that is decided (approved, denied or expired), not yet redeemed, and created at or
   * after `createdSince`; or null. A read only: redeem() decides who gets it.
   */
  latestDecided(identity: string, fingerprint: string, createdSince: number): Promise<ApprovalRecord | null>;
  /**
   * Compare-and-set: sets `redeemedAt` iff the approval is decided (approved, denied or expired) and not
   * redeemed yet; returns the new record, or null (unknown, pending, cancelled, or redeemed by another
   * request, on any replica). Never changes `state`.
   */
  redeem(id: string, at: number): Promise<ApprovalRecord | null>;
  /** Optional, likewise: an unexpired pending approval of `identity` with this fingerprint, or null. */
  pendingWithFingerprint?(identity: string, fingerprint: string, now: number): Promise<ApprovalRecord | null>;
  /** Optional, for the sweep without reading every pending approval: pending approvals whose expiry is at or before `now`. */
  pendingExpired?(now: number): Promise<ApprovalRecord[]>;
  /** Optional: creates several approvals at once, all or none (one commit for the requests that arrived together). */
  createMany?(records: readonly ApprovalRecord[]): Promise<void>;
}

/** The end states a ticket can be redeemed from: a cancelled approval (gateway restart) is never a ticket's answer. */
export const redeemableStates: readonly ApprovalState[] = ['approved', 'denied', 'expired'];

export interface ApprovalChanges {
  seq: number;
  ids: string[];
  complete: boolean;
}

/** The stored form of a message reference: known fields only. */
export function slackRef(slack: SlackMessageRef): SlackMessageRef {
  return {
    channel: slack.channel,
    ts: slack.ts,
    ...(slack.team === undefined ? {} : { team: slack.team }),
    ...(slack.appId === undefined ? {} : { appId: slack.appId }),
  };
}

/** A grant's id is derived from its approval's, so the approval message can name it before it exists. */
export function grantIdOf(approvalId: string): string {
  return `g-${approvalId}`;
}
