// Stage 7, decide: the pure policy evaluation (policy/), asked of the baseline's RBAC only when it
// needs it, with the caller's active grant as an input: an `approve` that a grant covers is `allow`.
import type { ApprovalGrant } from '../approvals/types.js';
import type { Config, IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { helpersFrom, type Helpers } from '../policy/help.js';
import { authorizationAttributes, evaluate, needsRbac, type Decision, type EvaluateInput } from '../policy/index.js';
import type { ClusterRuntime } from './types.js';

/** Pure: a decision to hold for approval becomes `allow` when an unexpired grant covers it. */
export function applyGrant(decision: Decision, grant: ApprovalGrant | undefined): Decision {
  if (decision.effect !== 'approve' || grant === undefined) return decision;
  return {
    effect: 'allow',
    reason: 'grant',
    serviceAccount: grant.serviceAccount,
    rule: `grant ${grant.id}`,
    message: `allowed by a grant from ${grant.grantedBy} until ${new Date(grant.expiresAt).toISOString()}`,
  };
}

export interface DecideInput {
  config: Config;
  identity: IdentityConfig;
  identityIndex: number;
  info: RequestInfo;
  cluster: ClusterRuntime;
  /** The request's Audit-Id, quoted in a refusal's "who may help". */
  auditId?: string;
  /** Looks up the caller's grant for this request; asked only when the policy says `approve`. */
  findGrant?: () => Promise<ApprovalGrant | undefined>;
}

/** Who may help, built once per config (a reload brings a new config object). */
const helpersByConfig = new WeakMap<Config, Helpers>();

export function helpersOf(config: Config): Helpers {
  let helpers = helpersByConfig.get(config);
  if (helpers === undefined) helpersByConfig.set(config, (helpers = helpersFrom(config)));
  return helpers;
}

function evaluationBase(input: Omit<DecideInput, 'cluster' | 'findGrant'>): Omit<EvaluateInput, 'rbac'> {
  const { config, identity, identityIndex, info } = input;
  return {
    identity,
    identityIndex,
    info,
    helpers: helpersOf(config),
    ...(input.auditId === undefined ? {} : { auditId: input.auditId }),
    ...(config.gateway.namespace === undefined ? {} : { gatewayNamespace: config.gateway.namespace }),
  };
}

/** The decision when RBAC is known to allow the request (a rules review's rule says so); no grant applied. */
export function decideAssumingRbacAllows(input: Omit<DecideInput, 'cluster' | 'findGrant'>): Decision {
  return evaluate({ ...evaluationBase(input), rbac: { allowed: true } });
}

export async function decide(input: DecideInput): Promise<Decision> {
  const { identity, info, cluster } = input;
  const base = evaluationBase(input);
  const rbac = needsRbac({ ...base, rbac: 'not-asked' })
    ? await cluster.reviewer.review(identity.serviceAccount, authorizationAttributes(info))
    : 'not-asked';
  const decision = evaluate({ ...base, rbac });
  const grant = decision.effect === 'approve' ? await input.findGrant?.() : undefined;
  return applyGrant(decision, grant);
}
