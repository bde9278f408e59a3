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
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError } from '../lib/errors.js';
import type { Decision } from '../policy/index.js';
import type { Logger } from '../lib/logger.js';
import { authenticate, checkNoImpersonation, mapCaller, refusedCaller } from './caller.js';
import { readRequestBody } from './body.js';
import { decide, helpersOf } from './decide.js';
import { noApprovalChannel, publicError, setupFault, withHelp } from './errors.js';
import {
  compactForHold,
  finishRecorded,
  holdFailed,
  parkUntilDecided,
  type AdmitResult,
  type Identified,
  type Parked,
  type Recorded,
} from './finish.js';
import { startHold } from './hold.js';
import { decideSelfReview, selfReviewKind, type LocalAnswer } from './self-review.js';
import { createRecordStage, type Known } from './record.js';
import { checkCanonical, classify, route } from './shape.js';
import { approvalModeOf } from './ticket.js';
import {
  refused,
  type Admission,
  type IncomingRequest,
  type PipelineDeps,
  type Refusal,
  type Step,
  type StageRefusal,
} from './types.js';

export { routeCluster } from './shape.js';
export type { Admission, ClusterRuntime, IncomingRequest, PipelineDeps, Refusal, RoutedPath } from './types.js';

export type { AdmitResult, Parked } from './finish.js';

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

  /**
   * Runs the pipeline; a call held for approval is `{ parked }`, its admission settling when the hold
   * ends — the caller's frames need not wait for it (issue #13: memory per held call).
   */
  async function admitOrPark(request: IncomingRequest): Promise<AdmitResult | Parked> {
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

  /** Runs the pipeline to its end (a held call: until the hold ends). */
  async function admit(request: IncomingRequest): Promise<AdmitResult> {
    const result = await admitOrPark(request);
    return 'parked' in result ? result.parked : result;
  }

  return { admit, admitOrPark, reject };
}

export type Admitter = ReturnType<typeof createAdmitter>;

type Records = ReturnType<typeof createRecordStage>;

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
): Promise<AdmitResult | Parked> {
  const { metrics, approvals } = deps;
  const { info, principal, identity } = caller;
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
  const recorded: Recorded = {
    deps,
    known,
    caller,
    decision,
    audit: begun.audit,
    departure: request.leaving ?? request,
    ...(decided.answer === undefined ? {} : { answer: decided.answer }),
    ...(decided.rulesNamespace === undefined ? {} : { rulesNamespace: decided.rulesNamespace }),
  };
  if (decision.effect !== 'approve' || approvals === undefined) return finishRecorded(recorded);

  // 9. Held for approval. The hold itself may fail (the gateway is shutting down, the store is gone): never forwarded.
  let hold: Awaited<ReturnType<typeof startHold>>;
  try {
    hold = await startHold({
      approvals,
      request,
      routed: known.routed,
      info,
      principal,
      identity,
      decision,
      audit: begun.audit,
      mode: caller.mode,
      config: deps.config,
      ...bodyOf(caller),
    });
  } catch (error) {
    return holdFailed(recorded, error);
  }
  if (!('waiting' in hold)) return finishRecorded(recorded, hold);
  return parkUntilDecided(compactForHold(recorded), hold.waiting);
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
