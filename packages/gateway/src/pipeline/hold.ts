// Stage 9, hold: an `approve` decision becomes a held call until an approver decides, it expires or
// the client goes away. Identical requests (same principal, identity, call and body) share one hold.
import { createHash } from 'node:crypto';
import type { ApprovalService } from '../approvals/service.js';
import type { AuditHandle } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError, assertNever } from '../lib/errors.js';
import { authorizationAttributes, describeRequest, type Decision } from '../policy/index.js';
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
}

type Approval = NonNullable<Admission['approval']>;

/** Holds the request; `ok` with the approval and the Warning to send, or the refusal (hold failed, denied, expired, cancelled). */
export async function holdForApproval(
  input: HoldInput,
): Promise<Step<{ approval: Approval; warning: string }> & { approval?: Approval }> {
  const { approvals, request, routed, info, principal, identity, decision } = input;
  const outcome = await approvals.hold(
    {
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
    },
    request.signal,
  );
  const record = outcome.record;
  const approval = { id: record.id, state: outcome.state, by: record.votes.map((v) => v.label) };
  if (outcome.state !== 'approved') {
    return {
      ok: false,
      refusal: { error: approvalRefusal(outcome.state, record, describeRequest(info)), reason: outcome.state },
      approval,
    };
  }
  const who = record.votes.map((v) => v.label).join(', ') || record.decidedBy || 'unknown';
  return { ok: true, approval, warning: `299 - "hoopgate: approved by ${who.replace(/["\\]/g, '')} (${record.id})"` };
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
