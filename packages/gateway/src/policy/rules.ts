// What a request is authorised as, and whether an RBAC-like config rule matches it. Rules match on
// the authorization attributes, so `exec` over a websocket GET is still `create pods/exec`.
import type { Rule } from '../config/types.js';
import type { AuthorizationAttributes } from '../kube/authorization.js';
import type { RequestInfo } from '../kube/request-info.js';

export type { AuthorizationAttributes };

/**
 * Subresources that open a stream into a pod or node: authorised as `create` whatever the HTTP
 * method, as the API server does for websocket upgrades (AuthorizePodWebsocketUpgradeCreatePermission),
 * so a GET cannot slip past a rule written for the POST.
 */
export const CONNECT_SUBRESOURCES: ReadonlySet<string> = new Set(['exec', 'attach', 'portforward', 'proxy']);

/** The attributes to authorise. dryRun needs the same permission as the real call, so it changes nothing. */
export function authorizationAttributes(info: RequestInfo): AuthorizationAttributes {
  if (!info.isResourceRequest) return { kind: 'non-resource', verb: info.verb, path: info.path };
  return {
    kind: 'resource',
    verb: CONNECT_SUBRESOURCES.has(info.subresource) ? 'create' : info.verb,
    group: info.apiGroup,
    version: info.apiVersion,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name: info.name,
  };
}

function anyOrIncludes(list: readonly string[] | undefined, value: string): boolean {
  return list === undefined || list.includes('*') || list.includes(value);
}

/** `res`, `res/sub`, `*`, `*\/sub` (as RBAC) and `res/*` (any subresource of res, not res itself). */
function resourceMatches(entries: readonly string[] | undefined, resource: string, subresource: string): boolean {
  if (entries === undefined) return true;
  const combined = subresource === '' ? resource : `${resource}/${subresource}`;
  return entries.some(
    (entry) =>
      entry === '*' ||
      entry === combined ||
      (subresource !== '' && (entry === `*/${subresource}` || entry === `${resource}/*`)),
  );
}

/**
 * A namespace object counts as inside itself, so `namespaces: [prod]` also covers deleting or
 * patching namespace prod (a server-side-apply PATCH of /namespaces/prod carries no namespace).
 */
function namespaceMatches(
  list: readonly string[] | undefined,
  attrs: Extract<AuthorizationAttributes, { kind: 'resource' }>,
): boolean {
  if (anyOrIncludes(list, attrs.namespace)) return true;
  return attrs.group === '' && attrs.resource === 'namespaces' && attrs.name !== '' && anyOrIncludes(list, attrs.name);
}

/**
 * RBAC-like matching: an absent field or ["*"] matches anything. Rules are resource rules, so a
 * non-resource request (/version, /healthz) never matches one.
 */
export function matchesRule(rule: Rule, info: RequestInfo): boolean {
  const attrs = authorizationAttributes(info);
  if (attrs.kind !== 'resource') return false;
  return (
    anyOrIncludes(rule.verbs, attrs.verb) &&
    anyOrIncludes(rule.apiGroups, attrs.group) &&
    resourceMatches(rule.resources, attrs.resource, attrs.subresource) &&
    namespaceMatches(rule.namespaces, attrs) &&
    anyOrIncludes(rule.names, attrs.name)
  );
}

/** `delete namespaces/prod`, `create pods/web-0/exec -n default`, `get deployments.apps/web -n staging`, `get /healthz`. */
export function describeRequest(info: RequestInfo): string {
  if (!info.isResourceRequest) return `${info.verb} ${info.path}`;
  const attrs = authorizationAttributes(info);
  if (attrs.kind !== 'resource') return `${info.verb} ${info.path}`;
  const resource = attrs.group === '' ? attrs.resource : `${attrs.resource}.${attrs.group}`;
  const name = attrs.name === '' ? '' : `/${attrs.name}`;
  const sub = attrs.subresource === '' ? '' : `/${attrs.subresource}`;
  // A namespace object is classified as inside itself; `-n prod` after `namespaces/prod` says nothing.
  const self = attrs.group === '' && attrs.resource === 'namespaces' && attrs.name === attrs.namespace;
  const ns = attrs.namespace === '' || self ? '' : ` -n ${attrs.namespace}`;
  const verb = attrs.verb === '' ? `(method not allowed)` : attrs.verb;
  return `${verb} ${resource}${name}${sub}${ns}`;
}
