// The request pipeline, shared by the Koa route (http/kube-route.ts) and the upgrade handler
// (http/upgrade.ts). A request's whole life, in order:
//   1. route            shape.ts    which cluster; the path to forward
//   2. canonical check  shape.ts    never normalised: refused
//   3. classify         shape.ts    the API server's RequestInfo
//   4. authenticate     caller.ts   one bearer token, verified
//   5. map identity     caller.ts   the first matching identities[] entry; then no Impersonate-*
//   6. read the body    body.ts     only now (nothing buffered for an unauthenticated caller), masked
//   7. decide           decide.ts   pure policy evaluation, the caller's grant an input
//   8. record           record.ts   written before anything is forwarded (refusals recorded too)
//   9. hold             hold.ts     an `approve` waits for an approver (ticket mode: answered at once, ticket.ts)
//  10. mint             mint.ts     the ServiceAccount's TokenRequest token
//  (a SelfSubjectAccessReview / SelfSubjectRulesReview is answered by the gateway: self-review.ts)
//  then forward and mask: respond.ts for HTTP, http/upgrade.ts for exec/attach/port-forward;
//  and completion.ts for both: record the outcome, count it in hoopgate_requests_total, log it.
// Each stage returns `{ ok: true, … } | { ok: false, refusal }`; admit() records every refusal.
import { randomUUID } from 'node:crypto';
import type { AuditStart } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError } from '../lib/errors.js';
import type { Decision } from '../policy/index.js';
import type { Logger } from '../lib/logger.js';
import { authenticate, checkNoImpersonation, mapCaller, refusedCaller } from './caller.js';
import { readRequestBody } from './body.js';
import { decide, helpersOf } from './decide.js';
import { noApprovalChannel, publicError, setupFault, withHelp } from './errors.js';
import { holdForApproval } from './hold.js';
import { mintToken } from './mint.js';
import { answerRulesReview, decideSelfReview, selfReviewKind, type LocalAnswer } from './self-review.js';
import { createRecordStage, refusalOf, type Known } from './record.js';
import { checkCanonical, classify, route } from './shape.js';
import { approvalModeOf, type ApprovalMode } from './ticket.js';
import {
  refused,
  type Admission,
  type ClusterRuntime,
  type IncomingRequest,
  type PipelineDeps,
  type Refusal,
  type Step,
  type StageRefusal,
} from './types.js';

export { routeCluster } from './shape.js';
export type { Admission, ClusterRuntime, IncomingRequest, PipelineDeps, Refusal, RoutedPath } from './types.js';

export type AdmitResult = { ok: true; admission: Admission } | { ok: false; refusal: Refusal };

export function createAdmitter(deps: PipelineDeps) {
  const { clock } = deps;
  const records = createRecordStage({ ...deps, audit: deps.config.audit });

  /** Records and returns a refusal decided outside the stages (an unsupported upgrade). */
  async function reject(request: IncomingRequest, error: HoopError): Promise<Refusal> {
    const routed = route(request.rawUrl, deps.clusters, deps.defaultCluster);
    // An unknown cluster is recorded against the default one; the refusal stands either way.
    const known: Known = {
      requestId: randomUUID(),
      startedAt: clock(),
      routed: routed.ok
        ? { cluster: routed.cluster, path: routed.path }
        : { cluster: deps.defaultCluster, path: request.rawUrl },
    };
    return records.recordRefusal(request, known, { error });
  }

  async function admit(request: IncomingRequest): Promise<AdmitResult> {
    const known: Known = {
      requestId: randomUUID(),
      startedAt: clock(),
      routed: { cluster: deps.defaultCluster, path: request.rawUrl },
    };
    const identified = await identify(deps, request, known);
    if (!identified.ok) {
      const refusal = withHelp(identified.refusal, () => helpersOf(deps.config), known.requestId);
      return { ok: false, refusal: await records.recordRefusal(request, known, refusal) };
    }
    return authorise(deps, records, request, known, identified);
  }

  return { admit, reject };
}

export type Admitter = ReturnType<typeof createAdmitter>;

type Records = ReturnType<typeof createRecordStage>;
type Identified = {
  cluster: ClusterRuntime;
  info: RequestInfo;
  principal: Principal;
  identity: IdentityConfig;
  identityIndex: number;
  mode: ApprovalMode;
  body?: Buffer;
  maskedBody?: string;
};

/** Runs a stage; an unexpected throw becomes a generic internal refusal (the detail is logged). */
async function run<T>(logger: Logger, known: Known, stage: () => Step<T> | Promise<Step<T>>): Promise<Step<T>> {
  try {
    return await stage();
  } catch (error) {
    const refusal = publicError(error, logger, { requestId: known.requestId });
    return { ok: false, refusal: { error: setupFault(refusal, known.requestId) } };
  }
}

/** Stages 1–6: the request's shape, who is calling as which identity, and the body. Fills `known` as it goes. */
async function identify(deps: PipelineDeps, request: IncomingRequest, known: Known): Promise<Step<Identified>> {
  // 1–3. The request's shape, refused before anything else reads it.
  const routed = route(request.rawUrl, deps.clusters, deps.defaultCluster);
  if (!routed.ok) return routed;
  known.routed = { cluster: routed.cluster, path: routed.path };
  const canonical = checkCanonical(routed.path);
  if (!canonical.ok) return canonical;
  const classified = classify(request.method, routed.path);
  if (!classified.ok) return classified;
  const info = (known.info = classified.info);
  const cluster = deps.clusters.get(routed.cluster);
  if (cluster === undefined) return refused(new HoopError('ERR_INTERNAL', `cluster ${routed.cluster} has no runtime`));

  // 4–5. Who is calling, as which identity.
  const authenticated = await run(deps.logger, known, () => authenticate(request, deps.verifier));
  if (!authenticated.ok) {
    // Verified, then refused (the per-identity limit): the record names who it was (#12).
    Object.assign(known, refusedCaller(deps.config.identities, authenticated.refusal, routed.cluster));
    return authenticated;
  }
  const principal = (known.principal = authenticated.principal);
  const mapped = mapCaller(deps.config.identities, principal, routed.cluster, {
    helpers: helpersOf(deps.config),
    auditId: known.requestId,
  });
  if (!mapped.ok) return mapped;
  const identity = (known.identity = mapped.identity);
  const impersonation = checkNoImpersonation(request.rawHeaders);
  if (!impersonation.ok) return impersonation;
  const asked = approvalModeOf(request, identity);
  if (!asked.ok) return asked;

  // 6. The body, now that the caller is known.
  const body = await run(deps.logger, known, () => readRequestBody(request, info, deps.masker));
  if (!body.ok) return body;
  if (body.maskedBody !== undefined) known.maskedBody = body.maskedBody;
  const { identityIndex } = mapped;
  return { ok: true, cluster, info, principal, identity, identityIndex, mode: asked.mode, ...bodyOf(body) };
}

/** Stages 7–10 for an identified caller: decide, record, hold, mint. */
async function authorise(
  deps: PipelineDeps,
  records: Records,
  request: IncomingRequest,
  known: Known,
  caller: Identified,
): Promise<AdmitResult> {
  const { clock, logger, metrics, approvals } = deps;
  const { cluster, info, principal, identity } = caller;
  const helped = (refusal: StageRefusal) => withHelp(refusal, () => helpersOf(deps.config), known.requestId);
  const refuse = async (refusal: StageRefusal): Promise<AdmitResult> => ({
    ok: false,
    refusal: await records.recordRefusal(request, known, helped(refusal)),
  });

  // 7. The decision, the caller's grant an input (self-review.ts answers `kubectl auth can-i`).
  const decided = await decideCaller(deps, known, caller);
  if (!decided.ok) return refuse(decided.refusal);
  const { decision } = decided;
  metrics?.decisions.inc({ effect: decision.effect, reason: decision.reason });
  const recordedDecision = auditedDecision(decision);
  if (decision.effect !== 'deny') {
    const refusalAfterPolicy = request.refuseIfAllowed?.();
    if (refusalAfterPolicy !== undefined) return refuse({ error: refusalAfterPolicy });
  }
  if (decision.effect === 'deny')
    return refuse({
      error: new HoopError('ERR_POLICY_DENIED', decision.message, {
        details: kubeDetails(info),
        operatorDetail: decision.detail,
      }),
      decision: recordedDecision,
    });
  if (decision.effect === 'approve' && approvals === undefined) {
    const error = new HoopError('ERR_APPROVAL_REQUIRED', noApprovalChannel(decision.message), {
      details: kubeDetails(info),
      operatorDetail: `${decision.detail ?? decision.rule ?? decision.reason}; no approval channel is configured: configure slack or the approvals API`,
    });
    return refuse({ error, decision: recordedDecision });
  }

  // 8. Recorded before anything is forwarded.
  const begun = await records.begin(request, known, recordedDecision);
  if (!begun.ok) return begun;
  const { audit } = begun;
  /** A refusal after the record was begun completes that record instead of writing another. */
  const end = (stageRefusal: StageRefusal, approval?: Admission['approval']): AdmitResult => {
    const refusal = helped(stageRefusal);
    const { error } = refusal;
    audit.complete({
      status: error.status,
      bytesOut: 0,
      durationMs: clock() - known.startedAt,
      ...(approval === undefined ? {} : { approval }),
      error: error.message,
    });
    return { ok: false, refusal: refusalOf(known, refusal, true, error.code) };
  };

  // 9. Held for approval.
  let held: { approval: NonNullable<Admission['approval']>; warning: string } | undefined;
  if (decision.effect === 'approve' && approvals !== undefined) {
    let hold: Awaited<ReturnType<typeof holdForApproval>>;
    try {
      // The hold itself may fail (the gateway is shutting down, the store is gone): never forwarded.
      hold = await holdForApproval({
        approvals,
        request,
        routed: known.routed,
        info,
        principal,
        identity,
        decision,
        audit,
        mode: caller.mode,
        config: deps.config,
        ...bodyOf(caller),
      });
    } catch (error) {
      return end({ error: publicError(error, logger, { requestId: known.requestId }) });
    }
    if (hold.approval !== undefined) metrics?.approvalOutcomes.inc({ state: hold.approval.state });
    if (!hold.ok) return end(hold.refusal, hold.approval);
    held = { approval: hold.approval, warning: hold.warning };
  }

  // 10. The ServiceAccount's short-lived token.
  const minted = await run(logger, known, () => mintToken(cluster, decision.serviceAccount, known.requestId));
  if (!minted.ok) return end(minted.refusal, held?.approval);
  let answer = decided.answer;
  if (decided.rulesNamespace !== undefined) {
    const rules = await reviewRules(deps, request, known, caller, minted.token, decided.rulesNamespace);
    if (!rules.ok) return end(rules.refusal, held?.approval);
    answer = rules.answer;
  }
  const admission: Admission = {
    requestId: known.requestId,
    startedAt: known.startedAt,
    cluster,
    path: known.routed.path,
    info,
    principal,
    identity,
    decision,
    serviceAccount: decision.serviceAccount,
    token: minted.token,
    audit,
    ...(caller.body === undefined ? {} : { body: caller.body }),
    ...(held === undefined ? {} : { warning: held.warning, approval: held.approval }),
    ...(answer === undefined ? {} : { answer }),
  };
  return { ok: true, admission };
}

type Decided = { decision: Decision; answer?: LocalAnswer; rulesNamespace?: string };

/**
 * Stage 7: the decision, the caller's grant an input. A SelfSubjectAccessReview / SelfSubjectRulesReview
 * (`kubectl auth can-i`) is answered by the gateway: the asked-about request decided here (self-review.ts).
 */
async function decideCaller(deps: PipelineDeps, known: Known, caller: Identified): Promise<Step<Decided>> {
  const { config, clock, logger, approvals } = deps;
  const { cluster, info, principal, identity } = caller;
  const decideFor = (asked: RequestInfo): Promise<Decision> =>
    decide({
      config,
      auditId: known.requestId,
      identity,
      identityIndex: caller.identityIndex,
      info: asked,
      cluster,
      ...(approvals === undefined
        ? {}
        : {
            findGrant: () =>
              approvals.findGrant(
                { identity: identity.name, issuer: principal.issuer, subject: principal.subject },
                known.routed.cluster,
                asked,
                clock(),
              ),
          }),
    });
  const review = selfReviewKind(info);
  return run(logger, known, async (): Promise<Step<Decided>> =>
    review === undefined
      ? { ok: true, decision: await decideFor(info) }
      : decideSelfReview(review, caller.body, identity.serviceAccount, decideFor),
  );
}

/** The decision as the audit record keeps it. */
function auditedDecision(decision: Decision): AuditStart['decision'] {
  return {
    effect: decision.effect,
    reason: decision.reason,
    message: decision.message,
    ...(decision.rule === undefined ? {} : { rule: decision.rule }),
    ...(decision.effect === 'deny' ? {} : { serviceAccount: decision.serviceAccount }),
  };
}

/** A SelfSubjectRulesReview's answer, asked of the cluster with the minted token. */
function reviewRules(
  deps: PipelineDeps,
  request: IncomingRequest,
  known: Known,
  caller: Identified,
  token: string,
  namespace: string,
): Promise<Step<{ answer: LocalAnswer }>> {
  const { config } = deps;
  const { cluster, identity } = caller;
  return run(deps.logger, known, async () => ({
    ok: true as const,
    answer: await answerRulesReview(
      cluster,
      token,
      namespace,
      { config, identity, identityIndex: caller.identityIndex },
      request.signal,
    ),
  }));
}

function bodyOf(read: { body?: Buffer; maskedBody?: string }): { body?: Buffer; maskedBody?: string } {
  return {
    ...(read.body === undefined ? {} : { body: read.body }),
    ...(read.maskedBody === undefined ? {} : { maskedBody: read.maskedBody }),
  };
}

function kubeDetails(info: Admission['info']): Record<string, unknown> | undefined {
  if (!info.isResourceRequest) return undefined;
  return { ...(info.name === '' ? {} : { name: info.name }), group: info.apiGroup, kind: info.resource };
}
