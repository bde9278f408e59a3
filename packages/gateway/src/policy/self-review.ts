// `kubectl auth can-i` answered with the gateway's own policy (issue #16 item 3): a
// SelfSubjectAccessReview becomes the request it asks about, decided by the same evaluation that
// enforces it; a SelfSubjectRulesReview keeps, of the baseline account's RBAC rules, only what would
// go through without a human. Pure: the caller asks RBAC and applies grants (docs/reference.md §4.7).
import type { RequestInfo } from '../kube/request-info.js';
import type { AccessReviewSpec } from '../kube/authorization.js';
import type { Decision } from './decision.js';

export interface AccessReviewStatus {
  allowed: boolean;
  denied?: boolean;
  reason: string;
}

export interface ResourceRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
}

export interface NonResourceRule {
  verbs: string[];
  nonResourceURLs?: string[];
}

export interface RulesReviewStatus {
  resourceRules: ResourceRule[];
  nonResourceRules: NonResourceRule[];
  incomplete: boolean;
  evaluationError?: string;
}

/** Beyond this many verb × group × resource × name combinations a rules review is cut short (incomplete). */
export const MAX_RULE_EVALUATIONS = 4096;

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The request a SelfSubjectAccessReview asks about, or null when it names neither kind of attributes. */
export function reviewRequestInfo(spec: AccessReviewSpec): RequestInfo | null {
  const resource = spec.resourceAttributes;
  if (resource !== undefined && resource !== null) {
    const group = text(resource.group);
    const version = text(resource.version);
    const namespace = text(resource.namespace);
    const name = text(resource.name);
    const subresource = text(resource.subresource);
    const kind = text(resource.resource);
    const parts = [kind, name, subresource].filter((part, index) => part !== '' || index === 0);
    const prefix = group === '' ? `/api/${version || 'v1'}` : `/apis/${group}/${version || '*'}`;
    const scope = namespace === '' ? '' : `/namespaces/${namespace}`;
    return {
      isResourceRequest: true,
      path: `${prefix}${scope}/${parts.join('/')}`,
      verb: text(resource.verb),
      apiPrefix: group === '' ? 'api' : 'apis',
      apiGroup: group,
      apiVersion: version,
      namespace,
      resource: kind,
      subresource,
      name,
      parts,
    };
  }
  const nonResource = spec.nonResourceAttributes;
  if (nonResource !== undefined && nonResource !== null) {
    return {
      isResourceRequest: false,
      path: text(nonResource.path),
      verb: text(nonResource.verb),
      apiPrefix: '',
      apiGroup: '',
      apiVersion: '',
      namespace: '',
      resource: '',
      subresource: '',
      name: '',
      parts: [],
    };
  }
  return null;
}

/**
 * The review's answer: allowed only when the call would go through without a human. A held call is
 * not allowed, and its reason says it needs approval; a deny rule or a safe default is an explicit
 * denial (`denied: true`), as an authorizer's deny is; RBAC's silence is not.
 */
export function accessReviewStatus(decision: Decision): AccessReviewStatus {
  const reason = `hoopgate: ${decision.message}`;
  if (decision.effect === 'allow') return { allowed: true, reason };
  if (decision.effect === 'approve') return { allowed: false, reason };
  const explicit = decision.reason === 'deny-rule' || decision.reason === 'safe-default';
  return explicit ? { allowed: false, denied: true, reason } : { allowed: false, reason };
}

const isWildcard = (value: string): boolean => value === '*' || value.includes('*');

function resourceInfo(namespace: string, verb: string, group: string, resource: string, name: string): RequestInfo {
  const [kind = '', subresource = ''] = resource.split('/', 2);
  const info = reviewRequestInfo({ resourceAttributes: { namespace, verb, group, resource: kind, subresource, name } });
  return info as RequestInfo;
}

interface Budget {
  left: number;
}

/** The verbs of one concrete rule that pass, or null when the rule cannot be evaluated exactly. */
function keptResourceRule(
  rule: ResourceRule,
  namespace: string,
  decide: (info: RequestInfo) => Decision,
  budget: Budget,
): ResourceRule | null {
  const groups = rule.apiGroups ?? [];
  const resources = rule.resources ?? [];
  const names = rule.resourceNames === undefined || rule.resourceNames.length === 0 ? [''] : rule.resourceNames;
  if ([...rule.verbs, ...groups, ...resources].some(isWildcard)) return null;
  const cost = rule.verbs.length * groups.length * resources.length * names.length;
  if (cost > budget.left) return null;
  budget.left -= cost;
  const verbs = rule.verbs.filter((verb) =>
    groups.every((group) =>
      resources.every((resource) =>
        names.every((name) => decide(resourceInfo(namespace, verb, group, resource, name)).effect === 'allow'),
      ),
    ),
  );
  return { ...rule, verbs };
}

function keptNonResourceRule(
  rule: NonResourceRule,
  decide: (info: RequestInfo) => Decision,
  budget: Budget,
): NonResourceRule | null {
  const urls = rule.nonResourceURLs ?? [];
  if ([...rule.verbs, ...urls].some(isWildcard)) return null;
  const cost = rule.verbs.length * urls.length;
  if (cost > budget.left) return null;
  budget.left -= cost;
  const verbs = rule.verbs.filter((verb) =>
    urls.every(
      (path) => decide(reviewRequestInfo({ nonResourceAttributes: { path, verb } }) as RequestInfo).effect === 'allow',
    ),
  );
  return { ...rule, verbs };
}

/**
 * The baseline account's rules (the API server's SelfSubjectRulesReview answer) narrowed to what the
 * gateway lets through without approval: each concrete verb × group × resource × name is decided
 * (`decide` is asked as if RBAC allows it, since the rule says it does). A rule with wildcards cannot
 * be checked against deny and approval rules one by one: it is kept and the answer marked incomplete,
 * with an evaluationError telling the agent to ask `kubectl auth can-i VERB RESOURCE` for a definite answer.
 */
export function narrowRulesReview(
  upstream: RulesReviewStatus,
  namespace: string,
  decide: (info: RequestInfo) => Decision,
): RulesReviewStatus {
  const budget: Budget = { left: MAX_RULE_EVALUATIONS };
  let unchecked = 0;
  const resourceRules: ResourceRule[] = [];
  for (const rule of upstream.resourceRules ?? []) {
    const kept = keptResourceRule(rule, namespace, decide, budget);
    if (kept === null) {
      unchecked += 1;
      resourceRules.push(rule);
    } else if (kept.verbs.length > 0) resourceRules.push(kept);
  }
  const nonResourceRules: NonResourceRule[] = [];
  for (const rule of upstream.nonResourceRules ?? []) {
    const kept = keptNonResourceRule(rule, decide, budget);
    if (kept === null) {
      unchecked += 1;
      nonResourceRules.push(rule);
    } else if (kept.verbs.length > 0) nonResourceRules.push(kept);
  }
  const notes: string[] = [];
  if (upstream.evaluationError !== undefined && upstream.evaluationError !== '') notes.push(upstream.evaluationError);
  if (unchecked > 0) {
    notes.push(
      `hoopgate: ${unchecked} rule(s) with wildcards (or too many combinations) are shown as RBAC grants them; deny rules, safe defaults and approval requirements of the gateway still apply to them: ask \`kubectl auth can-i VERB RESOURCE\` for a definite answer`,
    );
  }
  return {
    resourceRules,
    nonResourceRules,
    incomplete: upstream.incomplete || unchecked > 0,
    ...(notes.length === 0 ? {} : { evaluationError: notes.join('; ') }),
  };
}
