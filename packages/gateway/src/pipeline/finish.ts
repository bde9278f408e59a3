// Stages 9 (a hold's end) and 10 (mint) of a recorded call, from one compact record. A call held for
// approval waits as this record and the hold's promise, with no suspended frame of the pipeline or
// of Koa (issue #13: 10,000 held calls, memory per held call): pipeline/index.ts hands the route
// `{ parked }`, and the route answers outside Koa when it settles (http/parked.ts).
import type { AuditHandle } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import type { Decision } from '../policy/index.js';
import { helpersOf } from './decide.js';
import { publicError, setupFault, withHelp } from './errors.js';
import type { HoldAnswer } from './hold.js';
import { mintToken } from './mint.js';
import { refusalOf, type Known } from './record.js';
import { answerRulesReview, type LocalAnswer } from './self-review.js';
import type { ApprovalMode } from './ticket.js';
import type { Admission, ClusterRuntime, PipelineDeps, Refusal, Step, StageRefusal } from './types.js';

export type AdmitResult = { ok: true; admission: Admission } | { ok: false; refusal: Refusal };

/** A call held for approval: its admission settles when the hold ends (approved, refused, or the call could not be held). */
export interface Parked {
  parked: Promise<AdmitResult>;
}

/** Who is calling, as which identity, and the body (pipeline stages 1–6). */
export interface Identified {
  cluster: ClusterRuntime;
  info: RequestInfo;
  principal: Principal;
  identity: IdentityConfig;
  identityIndex: number;
  mode: ApprovalMode;
  body?: Buffer;
  maskedBody?: string;
}

/** What stage 10 needs of a decided, recorded call: all a held call keeps while it waits. */
export interface Recorded {
  deps: PipelineDeps;
  known: Known;
  caller: Identified;
  decision: Exclude<Decision, { effect: 'deny' }>;
  answer?: LocalAnswer;
  /** A SelfSubjectRulesReview: its namespace, answered with the minted token. */
  rulesNamespace?: string;
  audit: AuditHandle;
  /** Where the request's AbortSignal is (read only when needed: creating one costs ~700 B, lib/client-gone.ts). */
  departure: { readonly signal: AbortSignal };
}

/** The compact record of a call about to wait: the parts the pipeline read that forwarding no longer needs are dropped. */
export function compactForHold(recorded: Recorded): Recorded {
  const { known, caller, decision } = recorded;
  const { maskedBody: _masked, ...kept } = caller;
  // The decision's message and detail (a few hundred bytes, per call) were recorded at stage 8; what
  // follows uses its effect, reason, rule and ServiceAccount only.
  const { detail: _detail, ...decided } = decision;
  return {
    ...recorded,
    decision: { ...decided, message: '' },
    known: {
      requestId: known.requestId,
      startedAt: known.startedAt,
      routed: known.routed,
      principal: caller.principal,
      identity: caller.identity,
      info: caller.info,
    },
    caller: kept,
  };
}

/**
 * While it waits, a held call is its compact record and the hold's promise: no frame of the pipeline
 * waits on it (issue #13). Built here, not in the pipeline's frame, whose context would stay alive
 * with the closures (the request as read, the helpers).
 */
export function parkUntilDecided(recorded: Recorded, waiting: Promise<HoldAnswer>): Parked {
  return {
    // Settles, never rejects: a throw after the hold (minting, the rules review) ends the record too.
    parked: waiting
      .then(
        (ended) => finishRecorded(recorded, ended),
        (error: unknown) => holdFailed(recorded, error),
      )
      .catch((error: unknown) => holdFailed(recorded, error)),
  };
}

/** A refusal after the record was begun completes that record instead of writing another. */
export function endRecorded(
  recorded: Recorded,
  stageRefusal: StageRefusal,
  approval?: Admission['approval'],
): AdmitResult {
  const { deps, known, audit } = recorded;
  const refusal = withHelp(stageRefusal, () => helpersOf(deps.config), known.requestId);
  const { error } = refusal;
  audit.complete({
    status: error.status,
    bytesOut: 0,
    durationMs: deps.clock() - known.startedAt,
    ...(approval === undefined ? {} : { approval }),
    error: error.message,
  });
  return { ok: false, refusal: refusalOf(known, refusal, true, error.code) };
}

/** The hold could not start or end (the gateway is shutting down, the store is gone): never forwarded. */
export function holdFailed(recorded: Recorded, error: unknown): AdmitResult {
  return endRecorded(recorded, {
    error: publicError(error, recorded.deps.logger, { requestId: recorded.known.requestId }),
  });
}

/** Stage 9's end and stage 10: a hold's refusal ends the record; otherwise the ServiceAccount's token is minted. */
export async function finishRecorded(recorded: Recorded, hold?: HoldAnswer): Promise<AdmitResult> {
  const { deps, known, caller, decision, audit } = recorded;
  // A final state only: a ticket answered at once (still pending) is counted when its call runs again.
  if (hold?.approval !== undefined && hold.approval.state !== 'pending')
    deps.metrics?.approvalOutcomes.inc({ state: hold.approval.state });
  if (hold !== undefined && !hold.ok) return endRecorded(recorded, hold.refusal, hold.approval);
  const held = hold?.ok === true ? hold : undefined;

  // 10. The ServiceAccount's short-lived token.
  const minted = await run(recorded, () => mintToken(caller.cluster, decision.serviceAccount, known.requestId));
  if (!minted.ok) return endRecorded(recorded, minted.refusal, held?.approval);
  let { answer } = recorded;
  if (recorded.rulesNamespace !== undefined) {
    const namespace = recorded.rulesNamespace;
    const { config } = deps;
    const rules = await run(recorded, async () => ({
      ok: true as const,
      answer: await answerRulesReview(
        caller.cluster,
        minted.token,
        namespace,
        { config, identity: caller.identity, identityIndex: caller.identityIndex },
        recorded.departure.signal,
      ),
    }));
    if (!rules.ok) return endRecorded(recorded, rules.refusal, held?.approval);
    answer = rules.answer;
  }
  const admission: Admission = {
    requestId: known.requestId,
    startedAt: known.startedAt,
    cluster: caller.cluster,
    path: known.routed.path,
    info: caller.info,
    principal: caller.principal,
    identity: caller.identity,
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

/** Runs a stage; an unexpected throw becomes a generic internal refusal (the detail is logged). */
async function run<T>(
  recorded: Pick<Recorded, 'deps' | 'known'>,
  stage: () => Step<T> | Promise<Step<T>>,
): Promise<Step<T>> {
  const { requestId } = recorded.known;
  try {
    return await stage();
  } catch (error) {
    const refusal = publicError(error, recorded.deps.logger, { requestId });
    return { ok: false, refusal: { error: setupFault(refusal, requestId) } };
  }
}
