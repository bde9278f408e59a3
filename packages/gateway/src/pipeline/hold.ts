// Stage 9, hold: an `approve` decision becomes a held call until an approver decides, it expires or
// the client goes away. Identical requests (same principal, identity, call and body) share one hold.
// In ticket mode (issue #16) the call is answered at once; the identical call after approval runs once.
import { createHash } from 'node:crypto';
import type { ApprovalService, HoldRequest } from '../approvals/service.js';
import type { ApprovalRecord } from '../approvals/types.js';
import type { AuditHandle } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { Config, IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError, assertNever } from '../lib/errors.js';
import { authorizationAttributes, describeRequest, type Decision } from '../policy/index.js';
import { ticketRefusal, type ApprovalMode } from './ticket.js';
import type { Admission, IncomingRequest, RoutedPath, Step } from './types.js';

export interface HoldInput {
  approvals: ApprovalService;
  request: IncomingRequest;
  routed: RoutedPath;
  info: RequestInfo;
  principal: Principal;
  identity: IdentityConfig;
  decision: Extract<Decision, { effect: 'approve' }>;
  audit: AuditHandle;
  body?: Buffer;
  maskedBody?: string;
  /** `ticket`: answer at once with the approval's ID instead of holding (pipeline/ticket.ts). */
  mode: ApprovalMode;
  config: Pick<Config, 'approval' | 'slack'>;
}

type Approval = NonNullable<Admission['approval']>;

/** How a hold ended: `ok` with the approval and the Warning to send, or the refusal. */
export type HoldAnswer = Step<{ approval: Approval; warning: string }> & { approval?: Approval };

/**
 * Holds the request (or, in ticket mode, answers at once with the approval's ID). First, a decision
 * already taken for this identical call and not used yet (a ticket, or a held call whose agent left)
 * is used, once (approvals/ticket.ts): answered at once. Otherwise `waiting`: the hold's end, which
 * rejects when the call cannot be held (the gateway is shutting down, the store is gone, the cap).
 */
export async function startHold(input: HoldInput): Promise<HoldAnswer | { waiting: Promise<HoldAnswer> }> {
  const { approvals, request, info, identity } = input;
  const asked = holdRequestOf(input);
  const redeemed = await approvals.redeemTicket(identity.name, asked.fingerprint);
  if (redeemed !== null) return answer(redeemed, redeemed.state as 'approved' | 'denied' | 'expired', info);
  if (input.mode === 'ticket') {
    const { record } = await approvals.openTicket(asked);
    const error = ticketRefusal(record, describeRequest(info), input.config, approvals.clock());
    return { ok: false, refusal: { error, reason: 'ticket' }, approval: { id: record.id, state: 'pending', by: [] } };
  }
  // Wrapped, not awaited: while the call is held, no frame of the pipeline waits on it (issue #13,
  // memory per held call); the continuation keeps only the service and the call's RequestInfo.
  return {
    waiting: approvals
      .hold(asked, request.leaving ?? request.signal)
      .then((outcome) => afterHold(approvals, outcome, info)),
  };
}

/** Holds the request until its hold ends (startHold, awaited). */
export async function holdForApproval(input: HoldInput): Promise<HoldAnswer> {
  const started = await startHold(input);
  return 'waiting' in started ? started.waiting : started;
}

/** A held call's end: an approval is claimed before the call runs; any other end is answered. */
async function afterHold(
  approvals: ApprovalService,
  outcome: Awaited<ReturnType<ApprovalService['hold']>>,
  info: RequestInfo,
): Promise<HoldAnswer> {
  if (outcome.state === 'approved') {
    // Claimed before it runs (a compare-and-set in the store): an identical call that arrived
    // meanwhile and already used this approval (approvals/ticket.ts) means this one does not run too.
    if (!(await approvals.markAnswered(outcome.record.id))) {
      const error = new HoopError(
        'ERR_APPROVAL_REQUIRED',
        `approval ${outcome.record.id} for ${describeRequest(info)} was already used by an identical call, which ran; this one was not run. Send it again to ask for a new approval`,
      );
      return {
        ok: false,
        refusal: { error, reason: 'approval-used' },
        approval: { id: outcome.record.id, state: 'approved', by: [] },
      };
    }
  } else if (outcome.state !== 'cancelled') {
    // Told to this call: a later identical call needs a new approval (a cancelled one is never used).
    void approvals.markAnswered(outcome.record.id).catch(() => undefined);
  }
  return answer(outcome.record, outcome.state, info);
}

function answer(
  record: ApprovalRecord,
  state: 'approved' | 'denied' | 'expired' | 'cancelled',
  info: RequestInfo,
): HoldAnswer {
  const approval = { id: record.id, state, by: record.votes.map((v) => v.label) };
  if (state !== 'approved') {
    return {
      ok: false,
      refusal: { error: approvalRefusal(state, record, describeRequest(info)), reason: state },
      approval,
    };
  }
  const who = record.votes.map((v) => v.label).join(', ') || record.decidedBy || 'unknown';
  return { ok: true, approval, warning: `299 - "hoopgate: approved by ${who.replace(/["\\]/g, '')} (${record.id})"` };
}

/** What the approval service keeps of the call: who, what, why, and the fingerprint identical calls share. */
function holdRequestOf(input: HoldInput): HoldRequest & { fingerprint: string } {
  const { request, routed, info, principal, identity, decision } = input;
  return {
    sessionId: input.audit.sessionId,
    identity: identity.name,
    issuer: principal.issuer,
    subject: principal.subject,
    ...(principal.email === undefined ? {} : { email: principal.email }),
    groups: principal.groups,
    request: {
      cluster: routed.cluster,
      method: request.method,
      path: routed.path,
      verb: info.verb,
      authorizedVerb: authorizationAttributes(info).verb,
      apiGroup: info.apiGroup,
      resource: info.resource,
      subresource: info.subresource,
      namespace: info.namespace,
      name: info.name,
    },
    ...headerField(request, 'kubectl-command', 'kubectlCommand'),
    ...headerField(request, 'x-hoop-reason', 'reason'),
    heldBecause: decision.reason,
    ...(decision.rule === undefined ? {} : { rule: decision.rule }),
    ...(input.maskedBody === undefined ? {} : { bodySummary: input.maskedBody.slice(0, 2000) }),
    serviceAccount: decision.serviceAccount,
    fingerprint: requestFingerprint(
      [principal.issuer, principal.subject, identity.name, routed.cluster, request.method, routed.path],
      input.body,
    ),
  };
}

/** Identical requests (same principal, identity, call and body) share one approval. */
function requestFingerprint(parts: readonly string[], body: Buffer | undefined): string {
  const bodyHash = createHash('sha256')
    .update(body ?? Buffer.alloc(0))
    .digest('hex');
  return createHash('sha256')
    .update(JSON.stringify([...parts, bodyHash]))
    .digest('hex');
}

function headerField<K extends string>(request: IncomingRequest, header: string, key: K): Partial<Record<K, string>> {
  const value = request.headers[header];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? {} : ({ [key]: first } as Partial<Record<K, string>>);
}

function approvalRefusal(
  state: 'denied' | 'expired' | 'cancelled',
  record: { id: string; decidedBy?: string; decisionReason?: string; expiresAt: number; createdAt: number },
  what: string,
): HoopError {
  switch (state) {
    case 'denied':
      return new HoopError(
        'ERR_APPROVAL_DENIED',
        `${what} was denied by ${record.decidedBy ?? 'an approver'}${record.decisionReason ? `: ${record.decisionReason}` : ''} (approval ${record.id})`,
      );
    case 'expired':
      return new HoopError(
        'ERR_APPROVAL_EXPIRED',
        `${what} was not approved within ${Math.round((record.expiresAt - record.createdAt) / 1000)}s (approval ${record.id} timed out); run it again when an approver can answer`,
      );
    case 'cancelled':
      return new HoopError(
        'ERR_APPROVAL_CANCELLED',
        `${what}: approval ${record.id} was cancelled (the requester disconnected or the gateway restarted); run it again`,
      );
    default:
      return assertNever(state, 'approval state');
  }
}
