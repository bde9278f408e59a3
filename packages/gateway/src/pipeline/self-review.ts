// `kubectl auth can-i` answered by the gateway (issue #16 item 3), inside the pipeline: a
// SelfSubjectAccessReview is never forwarded — the request it asks about goes through the same
// decide stage the gateway enforces, and the answer says whether it would pass without a human. A
// SelfSubjectRulesReview asks the API server as the baseline ServiceAccount (its minted token), then
// keeps only the rules the gateway lets through (policy/self-review.ts). The review call itself is
// recorded like any call, with the decision reason `self-review`.
import type { RequestInfo } from '../kube/request-info.js';
import { readReviewBody } from '../kube/review-body.js';
import { HoopError } from '../lib/errors.js';
import type { Decision } from '../policy/index.js';
import {
  accessReviewStatus,
  narrowRulesReview,
  reviewRequestInfo,
  type RulesReviewStatus,
} from '../policy/self-review.js';
import { forwardToUpstream } from '../proxy/forward.js';
import { decideAssumingRbacAllows, type DecideInput } from './decide.js';
import type { ClusterRuntime, Step } from './types.js';

export type SelfReviewKind = 'access' | 'rules';

/** A locally built answer: sent as JSON instead of forwarding the request. */
export interface LocalAnswer {
  status: number;
  body: Record<string, unknown>;
}

const API_VERSION = 'authorization.k8s.io/v1';
const MAX_UPSTREAM_ANSWER_BYTES = 4 * 1024 * 1024;

/** Which review a request is (a create of selfsubjectaccessreviews / selfsubjectrulesreviews), if any. */
export function selfReviewKind(info: RequestInfo): SelfReviewKind | undefined {
  if (
    !info.isResourceRequest ||
    info.apiGroup !== 'authorization.k8s.io' ||
    info.verb !== 'create' ||
    info.subresource !== '' ||
    info.name !== ''
  )
    return undefined;
  if (info.resource === 'selfsubjectaccessreviews') return 'access';
  if (info.resource === 'selfsubjectrulesreviews') return 'rules';
  return undefined;
}

/** The decision recorded for the review call itself: answered by the gateway. */
export function selfReviewDecision(serviceAccount: string, message: string): Decision {
  return { effect: 'allow', reason: 'self-review', serviceAccount, message };
}

function readBody(body: Buffer | undefined): ReturnType<typeof readReviewBody> {
  if (body === undefined || body.length === 0)
    throw new HoopError(
      'ERR_BAD_REQUEST',
      'the review has no body: send a SelfSubjectAccessReview or SelfSubjectRulesReview object',
    );
  return readReviewBody(body);
}

/**
 * A SelfSubjectAccessReview's answer: the asked-about request decided by `decideFor` (the pipeline's
 * decide stage). A review naming neither resourceAttributes nor nonResourceAttributes is refused
 * with 422 Invalid, as the API server refuses it.
 */
export async function answerAccessReview(
  body: Buffer | undefined,
  decideFor: (info: RequestInfo) => Promise<Decision>,
): Promise<Step<{ answer: LocalAnswer; summary: string }>> {
  const review = readBody(body);
  const spec = review.access ?? {};
  const info = reviewRequestInfo(spec);
  if (info === null) {
    const error = new HoopError(
      'ERR_INVALID',
      'SelfSubjectAccessReview is invalid: exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
    return { ok: false, refusal: { error } };
  }
  const decision = await decideFor(info);
  const status = accessReviewStatus(decision);
  const answer: LocalAnswer = {
    status: 201,
    body: {
      kind: 'SelfSubjectAccessReview',
      apiVersion: API_VERSION,
      metadata: { creationTimestamp: null },
      spec,
      status,
    },
  };
  const asked = info.isResourceRequest ? `${info.verb} ${info.path}` : `${info.verb} ${info.path} (non-resource)`;
  return {
    ok: true,
    answer,
    summary: `self-review of ${asked}: ${status.allowed ? 'allowed' : 'not allowed'} (${decision.effect}, ${decision.reason})`,
  };
}

/** The namespace a SelfSubjectRulesReview asks about (read before recording, so a bad body is refused early). */
export function rulesReviewNamespace(body: Buffer | undefined): string {
  return readBody(body).namespace ?? '';
}

/** A SelfSubjectRulesReview: the API server's answer for the baseline account, narrowed by the gateway's policy. */
export async function answerRulesReview(
  cluster: ClusterRuntime,
  token: string,
  namespace: string,
  input: Omit<DecideInput, 'cluster' | 'findGrant' | 'info'>,
  signal: AbortSignal,
): Promise<LocalAnswer> {
  const spec = { namespace };
  const upstream = await forwardToUpstream(cluster.upstream, {
    method: 'POST',
    path: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: Buffer.from(JSON.stringify({ apiVersion: API_VERSION, kind: 'SelfSubjectRulesReview', spec })),
    signal,
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of upstream.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_UPSTREAM_ANSWER_BYTES) {
      upstream.body.destroy();
      throw new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `the API server's SelfSubjectRulesReview answer is larger than ${MAX_UPSTREAM_ANSWER_BYTES} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  let parsed: { status?: RulesReviewStatus; message?: string } = {};
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
  } catch {
    // handled below: no status
  }
  if (upstream.status !== 201 && upstream.status !== 200) {
    throw new HoopError(
      'ERR_UPSTREAM_UNREACHABLE',
      `the API server refused the SelfSubjectRulesReview of the baseline account (HTTP ${upstream.status}${parsed.message === undefined ? '' : `: ${parsed.message}`})`,
    );
  }
  if (parsed.status === undefined)
    throw new HoopError('ERR_UPSTREAM_UNREACHABLE', "the API server's SelfSubjectRulesReview answer has no status");
  const status = narrowRulesReview(parsed.status, namespace, (info) => decideAssumingRbacAllows({ ...input, info }));
  return {
    status: 201,
    body: {
      kind: 'SelfSubjectRulesReview',
      apiVersion: API_VERSION,
      metadata: { creationTimestamp: null },
      spec,
      status,
    },
  };
}

/**
 * Stage 7 for a review: the decision recorded for the call itself, and for an access review its
 * answer (decided now, by `decideFor`); a rules review is answered after the token is minted.
 */
export async function decideSelfReview(
  kind: SelfReviewKind,
  body: Buffer | undefined,
  serviceAccount: string,
  decideFor: (info: RequestInfo) => Promise<Decision>,
): Promise<Step<{ decision: Decision; answer?: LocalAnswer; rulesNamespace?: string }>> {
  if (kind === 'rules') {
    const namespace = rulesReviewNamespace(body);
    return {
      ok: true,
      decision: selfReviewDecision(
        serviceAccount,
        `self-review: the rules in namespace "${namespace}" that pass the gateway's policy`,
      ),
      rulesNamespace: namespace,
    };
  }
  const answered = await answerAccessReview(body, decideFor);
  if (!answered.ok) return answered;
  return { ok: true, decision: selfReviewDecision(serviceAccount, answered.summary), answer: answered.answer };
}
