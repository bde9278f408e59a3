// The RBAC authorizer (plugin/pkg/auth/authorizer/rbac) over the sim's stored Roles, ClusterRoles and
// bindings: pure functions, also used for SubjectAccessReview and SelfSubjectRulesReview.
import type { Obj } from './resources.js';

export interface UserInfo {
  name: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

export interface Attributes {
  user: UserInfo;
  verb: string;
  isResourceRequest: boolean;
  /** Non-resource path (`/version`). */
  path: string;
  namespace: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  name: string;
}

export interface RbacState {
  clusterRoleBindings(): Obj[];
  roleBindings(namespace: string): Obj[];
  role(namespace: string, name: string): Obj | undefined;
  clusterRole(name: string): Obj | undefined;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

const has = (list: unknown, value: string): boolean =>
  Array.isArray(list) && list.some((x) => x === '*' || x === value);

function resourceMatches(rule: Obj, combined: string, subresource: string): boolean {
  for (const r of (rule['resources'] ?? []) as string[]) {
    if (r === '*' || r === combined) return true;
    if (subresource !== '' && r === `*/${subresource}`) return true;
  }
  return false;
}

export function ruleAllows(a: Attributes, rule: Obj): boolean {
  if (a.isResourceRequest) {
    const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const names: string[] = rule['resourceNames'] ?? [];
    return (
      has(rule['verbs'], a.verb) &&
      has(rule['apiGroups'], a.apiGroup) &&
      resourceMatches(rule, combined, a.subresource) &&
      (names.length === 0 || names.includes(a.name))
    );
  }
  if (!has(rule['verbs'], a.verb)) return false;
  return ((rule['nonResourceURLs'] ?? []) as string[]).some(
    (u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))),
  );
}

export function appliesTo(user: UserInfo, subject: Obj, bindingNamespace: string): boolean {
  switch (subject['kind']) {
    case 'User':
      return user.name === subject['name'];
    case 'Group':
      return user.groups.includes(subject['name']);
    case 'ServiceAccount': {
      const ns = subject['namespace'] || bindingNamespace;
      return ns !== '' && user.name === `system:serviceaccount:${ns}:${subject['name']}`;
    }
    default:
      return false;
  }
}

function describeSubject(s: Obj, bindingNamespace: string): string {
  if (s['kind'] === 'ServiceAccount')
    return `${s['kind']} ${JSON.stringify(`${s['name']}/${s['namespace'] || bindingNamespace}`)}`;
  return `${s['kind']} ${JSON.stringify(s['name'])}`;
}

/** Visits every rule granted to the user in the namespace ('' = cluster scope), with a description of its source. */
export function visitRules(
  state: RbacState,
  user: UserInfo,
  namespace: string,
  visit: (rule: Obj, source: string) => boolean,
  errors: string[],
): void {
  for (const b of state.clusterRoleBindings()) {
    const subject = ((b['subjects'] ?? []) as Obj[]).find((s) => appliesTo(user, s, ''));
    if (!subject) continue;
    const roleName = b['roleRef']?.['name'];
    const role = state.clusterRole(roleName);
    if (!role) {
      errors.push(`clusterrole.rbac.authorization.k8s.io ${JSON.stringify(roleName)} not found`);
      continue;
    }
    const source = `ClusterRoleBinding ${JSON.stringify(b['metadata']['name'])} of ClusterRole ${JSON.stringify(roleName)} to ${describeSubject(subject, '')}`;
    for (const rule of (role['rules'] ?? []) as Obj[]) if (!visit(rule, source)) return;
  }
  if (namespace === '') return;
  for (const b of state.roleBindings(namespace)) {
    const subject = ((b['subjects'] ?? []) as Obj[]).find((s) => appliesTo(user, s, namespace));
    if (!subject) continue;
    const ref = b['roleRef'] ?? {};
    const role = ref['kind'] === 'ClusterRole' ? state.clusterRole(ref['name']) : state.role(namespace, ref['name']);
    if (!role) {
      errors.push(
        `${ref['kind'] === 'ClusterRole' ? 'clusterrole' : 'role'}.rbac.authorization.k8s.io ${JSON.stringify(ref['name'])} not found`,
      );
      continue;
    }
    const source = `RoleBinding ${JSON.stringify(`${b['metadata']['name']}/${namespace}`)} of ${ref['kind']} ${JSON.stringify(ref['name'])} to ${describeSubject(subject, namespace)}`;
    for (const rule of (role['rules'] ?? []) as Obj[]) if (!visit(rule, source)) return;
  }
}

export function authorize(state: RbacState, a: Attributes): Decision {
  // system:masters is the API server's privileged group, allowed before RBAC is asked.
  if (a.user.groups.includes('system:masters')) return { allowed: true, reason: '' };
  let reason = '';
  const errors: string[] = [];
  visitRules(
    state,
    a.user,
    a.isResourceRequest ? a.namespace : '',
    (rule, source) => {
      if (!ruleAllows(a, rule)) return true;
      reason = `RBAC: allowed by ${source}`;
      return false;
    },
    errors,
  );
  if (reason) return { allowed: true, reason };
  return {
    allowed: false,
    reason: errors.length ? `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}` : '',
  };
}

/** The rules a user holds in a namespace, for SelfSubjectRulesReview. */
export function rulesFor(
  state: RbacState,
  user: UserInfo,
  namespace: string,
): { resourceRules: Obj[]; nonResourceRules: Obj[]; errors: string[] } {
  const resourceRules: Obj[] = [];
  const nonResourceRules: Obj[] = [];
  const errors: string[] = [];
  if (user.groups.includes('system:masters')) {
    resourceRules.push({ verbs: ['*'], apiGroups: ['*'], resources: ['*'] });
    nonResourceRules.push({ verbs: ['*'], nonResourceURLs: ['*'] });
  }
  visitRules(
    state,
    user,
    namespace,
    (rule) => {
      if (rule['nonResourceURLs'])
        nonResourceRules.push({ verbs: rule['verbs'], nonResourceURLs: rule['nonResourceURLs'] });
      else {
        const r: Obj = { verbs: rule['verbs'], apiGroups: rule['apiGroups'] ?? [], resources: rule['resources'] ?? [] };
        if (rule['resourceNames']) r['resourceNames'] = rule['resourceNames'];
        resourceRules.push(r);
      }
      return true;
    },
    errors,
  );
  return { resourceRules, nonResourceRules, errors };
}

/** `User "x" cannot list resource "pods" in API group "" in the namespace "default"` (responsewriters.forbiddenMessage). */
export function forbiddenMessage(a: Attributes): string {
  if (!a.isResourceRequest)
    return `User ${JSON.stringify(a.user.name)} cannot ${a.verb} path ${JSON.stringify(a.path)}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (a.namespace)
    return `User ${JSON.stringify(a.user.name)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} in the namespace ${JSON.stringify(a.namespace)}`;
  return `User ${JSON.stringify(a.user.name)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} at the cluster scope`;
}
