// The decision for one classified request of one mapped identity, as data (docs/reference.md §4.3): safe
// defaults and `deny` → `approval.require` → the baseline account's RBAC → `approval.escalate` → 403.
// Pure and synchronous: the caller asks RBAC (SubjectAccessReview) only when needsRbac() says so.
// `message` is for the agent (what happened, what would pass, who may help: policy/help.ts); `detail`
// is for the operator (the config path that decided), written to the request's log line and `explain`.
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig, Rule, SafeDefaults } from '../config/types.js';
import type { RbacAnswer } from '../kube/authorization.js';
import type { RequestInfo } from '../kube/request-info.js';
import { whoMayHelp, type Helpers } from './help.js';
import { identityAllowsCluster, matchHolds } from './identity.js';
import { authorizationAttributes, describeRequest, matchesRule } from './rules.js';

/** Operator-facing: which config entry decided and how to change it. Never sent to the agent. */
type Detail = { detail?: string };

export type Decision = Detail &
  (
    | {
        effect: 'allow';
        reason: 'rbac-allowed' | 'non-resource' | 'grant' | 'self-review';
        serviceAccount: string;
        rule?: string;
        message: string;
      }
    | {
        effect: 'deny';
        reason: 'deny-rule' | 'safe-default' | 'rbac-denied' | 'no-identity' | 'cluster-not-allowed';
        rule?: string;
        message: string;
      }
    | {
        effect: 'approve';
        reason: 'approval-required' | 'escalation';
        serviceAccount: string;
        rule?: string;
        message: string;
      }
  );

export type { RbacAnswer };

export interface EvaluateInput {
  identity: IdentityConfig;
  identityIndex: number;
  info: RequestInfo;
  /** The namespace the gateway runs in: requests into it are refused by default. */
  gatewayNamespace?: string;
  /** The cluster the request is for; an identity limited to other clusters is refused. */
  cluster?: string;
  /** Who may help (approvers, Slack channel), named in refusal and approval messages. */
  helpers?: Helpers;
  /** The request's Audit-Id, quoted in "who may help" so an operator can find it. */
  auditId?: string;
  rbac: RbacAnswer | 'not-asked';
}

type SafeDefaultKey = keyof SafeDefaults;

interface SafeDefaultCheck {
  key: SafeDefaultKey;
  what: string;
  /** What would pass instead, for the agent. */
  instead: string;
  applies: (info: RequestInfo, verb: string, gatewayNamespace: string | undefined) => boolean;
}

/** Refused unless the identity switches the default off explicitly (issue #3). Order is report order. */
const SAFE_DEFAULTS: readonly SafeDefaultCheck[] = [
  {
    key: 'nodesProxy',
    what: 'nodes/proxy reaches every kubelet API (exec into any pod on the node)',
    instead: 'pods/log or pods/exec on a named pod may pass',
    applies: (info, verb) => info.resource === 'nodes' && (info.subresource === 'proxy' || verb === 'proxy'),
  },
  {
    key: 'impersonate',
    what: 'impersonation acts as another user, group or serviceaccount',
    instead: 'the same call as yourself (without --as or --as-group) may pass',
    applies: (_info, verb) => verb === 'impersonate',
  },
  {
    key: 'escalateBind',
    what: 'escalate and bind grant permissions the account does not hold',
    instead: 'a Role or RoleBinding granting no more than this identity already holds may pass',
    applies: (_info, verb) => verb === 'escalate' || verb === 'bind',
  },
  {
    key: 'serviceAccountTokens',
    what: 'minting serviceaccount tokens hands out another identity',
    instead: 'use your own token: the gateway mints one for each call',
    applies: (info, verb) => verb === 'create' && info.resource === 'serviceaccounts' && info.subresource === 'token',
  },
  {
    key: 'gatewayNamespace',
    what: "the gateway's own namespace holds its credentials",
    instead: 'the same call in another namespace may pass',
    applies: (info, _verb, ns) =>
      ns !== undefined &&
      ns !== '' &&
      (info.namespace === ns || (info.apiGroup === '' && info.resource === 'namespaces' && info.name === ns)),
  },
  {
    // A list or watch across all namespaces reads the gateway's namespace too. Refused rather than
    // filtered with `fieldSelector=metadata.namespace!=…`: rewriting the forwarded query breaks "the
    // path forwarded is the path classified", and an aggregated API that ignores the selector would
    // leak silently. Cluster-scoped resources hold nothing of a namespace and stay allowed.
    key: 'gatewayNamespace',
    what: "a list or watch across all namespaces includes the gateway's own namespace, which holds its credentials",
    instead: 'the same list per namespace (-n NAMESPACE) may pass',
    applies: (info, verb, ns) =>
      ns !== undefined &&
      ns !== '' &&
      info.namespace === '' &&
      (verb === 'list' || verb === 'watch') &&
      !isClusterScoped(info.apiGroup, info.resource),
  },
];

/**
 * Built-in cluster-scoped resources (Kubernetes 1.33), by `group/resource`. Anything else listed
 * without a namespace is treated as namespaced (fail closed): a cluster-scoped custom resource is
 * refused too, unless the identity sets allowUnsafe: [gatewayNamespace].
 */
const CLUSTER_SCOPED: ReadonlySet<string> = new Set([
  '/namespaces',
  '/nodes',
  '/persistentvolumes',
  '/componentstatuses',
  'rbac.authorization.k8s.io/clusterroles',
  'rbac.authorization.k8s.io/clusterrolebindings',
  'storage.k8s.io/storageclasses',
  'storage.k8s.io/csidrivers',
  'storage.k8s.io/csinodes',
  'storage.k8s.io/volumeattachments',
  'storage.k8s.io/volumeattributesclasses',
  'apiextensions.k8s.io/customresourcedefinitions',
  'apiregistration.k8s.io/apiservices',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingadmissionpolicies',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings',
  'admissionregistration.k8s.io/mutatingadmissionpolicies',
  'admissionregistration.k8s.io/mutatingadmissionpolicybindings',
  'scheduling.k8s.io/priorityclasses',
  'node.k8s.io/runtimeclasses',
  'certificates.k8s.io/certificatesigningrequests',
  'certificates.k8s.io/clustertrustbundles',
  'flowcontrol.apiserver.k8s.io/flowschemas',
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations',
  'networking.k8s.io/ingressclasses',
  'networking.k8s.io/ipaddresses',
  'networking.k8s.io/servicecidrs',
  'resource.k8s.io/deviceclasses',
  'resource.k8s.io/resourceslices',
  'internal.apiserver.k8s.io/storageversions',
  'metrics.k8s.io/nodes',
]);

function isClusterScoped(group: string, resource: string): boolean {
  return CLUSTER_SCOPED.has(`${group}/${resource}`);
}

/** Non-resource URLs any mapped identity may GET, like the API server's system:discovery role. */
export function isDiscoveryPath(path: string): boolean {
  if (['/api', '/apis', '/healthz', '/livez', '/readyz', '/openapi', '/version', '/version/'].includes(path))
    return true;
  return path.startsWith('/api/') || path.startsWith('/apis/') || path.startsWith('/openapi/');
}

/** The request as the agent reads it, bounded: its name and namespace come from the URL. */
function requestText(info: RequestInfo): string {
  return clip(describeRequest(info), 300);
}

function identityLabel(input: EvaluateInput): string {
  return `identity "${input.identity.name}"`;
}

function help(input: Pick<EvaluateInput, 'helpers' | 'auditId'>): string {
  return whoMayHelp(input.helpers, input.auditId);
}

function approvedAccount(identity: IdentityConfig): string {
  return identity.approval.serviceAccount ?? identity.serviceAccount;
}

/** At most a few entries of a config list, for a sentence. */
function few(list: readonly string[]): string {
  return list.length > 4 ? `${list.slice(0, 4).join(', ')} and ${list.length - 4} more` : list.join(', ');
}

function any(list: readonly string[] | undefined): boolean {
  return list === undefined || list.includes('*');
}

/** A rule as the agent reads it: `delete on namespaces in prod`, `any verb on secrets named db`. */
export function describeRule(rule: Rule): string {
  const verbs = any(rule.verbs) ? 'any verb' : few(rule.verbs ?? []);
  const resources = any(rule.resources) ? 'any resource' : few(rule.resources ?? []);
  const namespaces = any(rule.namespaces) ? '' : ` in ${few(rule.namespaces ?? [])}`;
  const names = any(rule.names) ? '' : ` named ${few(rule.names ?? [])}`;
  return `${verbs} on ${resources}${names}${namespaces}`;
}

function clusterRefusal(input: EvaluateInput, cluster: string, request: string): Decision {
  const { identity, identityIndex: index } = input;
  const allowed = identity.clusters ?? [];
  const instead =
    allowed.length === 0 ? 'It may use no cluster.' : `The same call on cluster ${few(allowed)} may pass.`;
  return {
    effect: 'deny',
    reason: 'cluster-not-allowed',
    rule: `identities[${index}].clusters`,
    message: `${identityLabel(input)} may not use cluster "${cluster}" (${request}). ${instead} ${help(input)}`,
    detail: `identities[${index}].clusters is [${allowed.join(', ')}]; add "${cluster}" to allow it`,
  };
}

function safeDefaultRefusal(input: EvaluateInput, check: SafeDefaultCheck, request: string): Decision {
  return {
    effect: 'deny',
    reason: 'safe-default',
    rule: `safeDefaults.${check.key}`,
    message: `${identityLabel(input)} may not ${request}: refused by default, because ${check.what}. Instead, ${check.instead}. ${help(input)}`,
    detail: `safeDefaults.${check.key}; to allow it for this identity, add ${check.key} to identities[${input.identityIndex}].allowUnsafe`,
  };
}

/** Everything decided without RBAC, or null when the baseline account's RBAC must be asked. */
function decideBeforeRbac(input: EvaluateInput): Decision | null {
  const { identity, identityIndex: index, info } = input;
  const who = identityLabel(input);
  const request = requestText(info);

  if (input.cluster !== undefined && !identityAllowsCluster(identity, input.cluster))
    return clusterRefusal(input, input.cluster, request);

  if (!info.isResourceRequest) {
    if (info.verb === 'get' && isDiscoveryPath(info.path)) {
      return {
        effect: 'allow',
        reason: 'non-resource',
        serviceAccount: identity.serviceAccount,
        message: `${who}: ${request} is API discovery, allowed for every mapped identity`,
      };
    }
    return null;
  }

  const attrs = authorizationAttributes(info);
  if (attrs.verb === '') {
    return {
      effect: 'deny',
      reason: 'safe-default',
      message: `${who} may not ${request}: this HTTP method has no Kubernetes verb on a resource path; use GET, HEAD, POST, PUT, PATCH or DELETE. ${help(input)}`,
    };
  }

  for (const check of SAFE_DEFAULTS) {
    if (identity.safeDefaults?.[check.key] === false) continue;
    if (check.applies(info, attrs.verb, input.gatewayNamespace)) return safeDefaultRefusal(input, check, request);
  }

  for (const [ruleIndex, rule] of identity.deny.entries()) {
    if (!matchesRule(rule, info)) continue;
    const path = `identities[${index}].deny[${ruleIndex}]`;
    return {
      effect: 'deny',
      reason: 'deny-rule',
      rule: path,
      message: `${who} may not ${request}: a deny rule of the gateway covers ${describeRule(rule)}, whatever RBAC allows. A call outside that rule (another verb, resource or namespace) may pass. ${help(input)}`,
      detail: `denied by ${path}; narrow or remove that rule to allow it`,
    };
  }

  for (const [ruleIndex, rule] of identity.approval.require.entries()) {
    if (!matchesRule(rule, info)) continue;
    const path = `identities[${index}].approval.require[${ruleIndex}]`;
    return {
      effect: 'approve',
      reason: 'approval-required',
      serviceAccount: approvedAccount(identity),
      rule: path,
      message: `${who}: ${request} needs approval (the gateway asks it for ${describeRule(rule)}). ${help(input)}`,
      detail: `held by ${path}; once approved it runs as serviceaccount ${approvedAccount(identity)}`,
    };
  }
  return null;
}

/** Whether the caller must ask the baseline account's RBAC (SubjectAccessReview) before evaluate(). */
export function needsRbac(input: Omit<EvaluateInput, 'rbac'> & { rbac?: EvaluateInput['rbac'] }): boolean {
  return decideBeforeRbac({ ...input, rbac: input.rbac ?? 'not-asked' }) === null;
}

/** `kubectl auth can-i --list -n staging`: the gateway answers it with what would pass. */
function canIList(info: RequestInfo): string {
  return `\`kubectl auth can-i --list${info.namespace === '' ? '' : ` -n ${clip(info.namespace, 64)}`}\``;
}

export function evaluate(input: EvaluateInput): Decision {
  const early = decideBeforeRbac(input);
  if (early !== null) return early;

  const { identity, identityIndex: index, info, rbac } = input;
  const who = identityLabel(input);
  const request = requestText(info);
  const baseline = identity.serviceAccount;
  const accountRule = `identities[${index}].serviceAccount`;

  if (rbac !== 'not-asked' && rbac.allowed) {
    return {
      effect: 'allow',
      reason: 'rbac-allowed',
      serviceAccount: baseline,
      rule: accountRule,
      message: `${who}: ${request} is allowed by the RBAC of serviceaccount ${baseline}`,
    };
  }

  // Not asked counts as not allowed: a decision never assumes a permission nobody confirmed.
  const why =
    rbac === 'not-asked'
      ? `RBAC of serviceaccount ${baseline} (${accountRule}) was not asked`
      : `serviceaccount ${baseline} (${accountRule}) is not permitted by RBAC${rbac.reason === undefined || rbac.reason === '' ? '' : ` (${rbac.reason})`}`;

  if (identity.approval.escalate) {
    const path = `identities[${index}].approval.escalate`;
    return {
      effect: 'approve',
      reason: 'escalation',
      serviceAccount: approvedAccount(identity),
      rule: path,
      message: `${who}: ${request} is more than this identity may do alone, so it needs approval. ${help(input)}`,
      detail: `${why}; held by ${path}; once approved it runs as serviceaccount ${approvedAccount(identity)}`,
    };
  }
  return {
    effect: 'deny',
    reason: 'rbac-denied',
    rule: accountRule,
    message: `${who} may not ${request}: its serviceaccount ${baseline} has no RBAC permission for it. ${canIList(info)} shows what may pass. ${help(input)}`,
    detail: `${why}; grant it to that serviceaccount with a Role/RoleBinding, or set identities[${index}].approval.escalate to hold such requests for approval`,
  };
}

/** Agent-controlled text (a token's subject or groups) quoted in a message: bounded. */
function clip(text: string, limit = 128): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}…`;
}

/** The refusal when mapIdentity() found nothing: names the cluster when an identity would match elsewhere. */
export function noIdentityDecision(
  identities: readonly IdentityConfig[],
  principal: Principal,
  cluster: string,
  helping: Pick<EvaluateInput, 'helpers' | 'auditId'> = {},
): Decision {
  const groups = principal.groups.slice(0, 8).map((group) => clip(group, 64));
  const more = principal.groups.length > groups.length ? `, and ${principal.groups.length - groups.length} more` : '';
  const who = `subject "${clip(principal.subject)}" (issuer ${clip(principal.issuer)}, groups [${groups.join(', ')}${more}])`;
  const elsewhere = identities.findIndex(
    (identity) => !identityAllowsCluster(identity, cluster) && matchHolds(identity.match, principal),
  );
  if (elsewhere !== -1) {
    const identity = identities[elsewhere] as IdentityConfig;
    const allowed = identity.clusters ?? [];
    const instead = allowed.length === 0 ? '' : ` The same call on cluster ${few(allowed)} may pass.`;
    return {
      effect: 'deny',
      reason: 'cluster-not-allowed',
      rule: `identities[${elsewhere}].clusters`,
      message: `${who} maps to identity "${identity.name}", which may not use cluster "${cluster}".${instead} ${help(helping)}`,
      detail: `identities[${elsewhere}].clusters is [${allowed.join(', ')}]; add "${cluster}" to allow it`,
    };
  }
  return {
    effect: 'deny',
    reason: 'no-identity',
    message: `no identity of this gateway maps ${who} on cluster "${cluster}": a token whose subject or groups an identity maps may pass. ${help(helping)}`,
    detail: 'add a matching entry under identities in the gateway config',
  };
}
