// The least-privilege report's RBAC side (issue #8, split out for #15's size limits): permission keys,
// the suggested Roles that allow exactly the used calls, and the over-grant (granted, never used).

/** One permission as RBAC sees it; `namespace` '' is cluster scope (or all namespaces). */
export interface PermissionKey {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
}

export interface UsedPermission extends PermissionKey {
  /** Set only when every use named one of the same few objects. */
  name?: string;
  count: number;
  lastUsed: string;
}

export interface OverGrantPermission {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  namespace: string;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface RbacObject {
  apiVersion: 'rbac.authorization.k8s.io/v1';
  kind: 'Role' | 'ClusterRole' | 'RoleBinding' | 'ClusterRoleBinding';
  metadata: { name: string; namespace?: string; labels: Record<string, string> };
  rules?: PolicyRule[];
  roleRef?: { apiGroup: 'rbac.authorization.k8s.io'; kind: 'Role' | 'ClusterRole'; name: string };
  subjects?: { kind: 'ServiceAccount'; name: string; namespace: string }[];
}

const VERB_ORDER = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

export function compareVerbs(a: string, b: string): number {
  const ia = VERB_ORDER.indexOf(a);
  const ib = VERB_ORDER.indexOf(b);
  if (ia !== -1 || ib !== -1) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
  return a.localeCompare(b);
}

export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function keyOf(p: PermissionKey): string {
  return JSON.stringify([p.namespace, p.apiGroup, p.resource, p.subresource, p.verb]);
}

/** A DNS-1123 name for the suggested objects. */
export function suggestedRoleName(identity: string): string {
  const base = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return `${(base === '' ? 'identity' : base).slice(0, 200)}-least-privilege`;
}

/**
 * The rules that allow exactly `used` in one scope: per (group, resource, verb) the names used (or
 * any name); then verbs with the same names joined; then resources with the same verbs and names
 * joined. Each step keeps the cross product exact, so nothing beyond the used calls is granted.
 */
export function compactRules(used: readonly UsedPermission[]): PolicyRule[] {
  const perVerb = new Map<
    string,
    { apiGroup: string; resource: string; verb: string; names: Set<string>; anyName: boolean }
  >();
  for (const u of used) {
    const resource = u.subresource === '' ? u.resource : `${u.resource}/${u.subresource}`;
    const id = JSON.stringify([u.apiGroup, resource, u.verb]);
    const entry = perVerb.get(id) ?? {
      apiGroup: u.apiGroup,
      resource,
      verb: u.verb,
      names: new Set<string>(),
      anyName: false,
    };
    if (u.name === undefined) entry.anyName = true;
    else entry.names.add(u.name);
    perVerb.set(id, entry);
  }
  const perResource = new Map<string, { apiGroup: string; resource: string; names: string[]; verbs: string[] }>();
  for (const e of perVerb.values()) {
    const names = e.anyName ? [] : [...e.names].sort(byText);
    const id = JSON.stringify([e.apiGroup, e.resource, names]);
    const entry = perResource.get(id) ?? { apiGroup: e.apiGroup, resource: e.resource, names, verbs: [] };
    entry.verbs.push(e.verb);
    perResource.set(id, entry);
  }
  const rules = new Map<string, PolicyRule>();
  for (const e of perResource.values()) {
    const verbs = [...e.verbs].sort(compareVerbs);
    const id = JSON.stringify([e.apiGroup, e.names, verbs]);
    const rule = rules.get(id) ?? {
      apiGroups: [e.apiGroup],
      resources: [],
      ...(e.names.length === 0 ? {} : { resourceNames: e.names }),
      verbs,
    };
    rule.resources.push(e.resource);
    rules.set(id, rule);
  }
  return [...rules.values()]
    .map((rule) => ({ ...rule, resources: rule.resources.sort(byText) }))
    .sort(
      (a, b) =>
        byText(JSON.stringify([a.apiGroups, a.resources]), JSON.stringify([b.apiGroups, b.resources])) ||
        (a.resourceNames?.length ?? 0) - (b.resourceNames?.length ?? 0) ||
        byText(JSON.stringify(a.resourceNames ?? []), JSON.stringify(b.resourceNames ?? [])),
    );
}

function splitAccount(serviceAccount: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = serviceAccount.split('/');
  return { namespace, name };
}

/** A Role + RoleBinding per namespace used, and a ClusterRole + ClusterRoleBinding for cluster scope. */
export function suggestRoles(identity: string, serviceAccount: string, used: readonly UsedPermission[]): RbacObject[] {
  const name = suggestedRoleName(identity);
  const labels = { 'app.kubernetes.io/managed-by': 'hoopgate' };
  const subject = { kind: 'ServiceAccount' as const, ...splitAccount(serviceAccount) };
  const byNamespace = new Map<string, UsedPermission[]>();
  for (const u of used) byNamespace.set(u.namespace, [...(byNamespace.get(u.namespace) ?? []), u]);
  const objects: RbacObject[] = [];
  const apiVersion = 'rbac.authorization.k8s.io/v1' as const;
  const cluster = byNamespace.get('');
  if (cluster !== undefined) {
    objects.push(
      { apiVersion, kind: 'ClusterRole', metadata: { name, labels }, rules: compactRules(cluster) },
      {
        apiVersion,
        kind: 'ClusterRoleBinding',
        metadata: { name, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [subject],
      },
    );
  }
  for (const namespace of [...byNamespace.keys()].filter((ns) => ns !== '').sort(byText)) {
    objects.push(
      {
        apiVersion,
        kind: 'Role',
        metadata: { name, namespace, labels },
        rules: compactRules(byNamespace.get(namespace) ?? []),
      },
      {
        apiVersion,
        kind: 'RoleBinding',
        metadata: { name, namespace, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [subject],
      },
    );
  }
  return objects;
}

/**
 * Granted and never used. A use at cluster scope covers the same permission in every namespace; a
 * grant at cluster scope is covered only by a use at cluster scope (using it in one namespace does not
 * justify all of them).
 */
export function computeOverGrant(
  granted: readonly PermissionKey[],
  used: readonly PermissionKey[],
): OverGrantPermission[] {
  const usedKeys = new Set(used.map(keyOf));
  const seen = new Set<string>();
  const out: OverGrantPermission[] = [];
  for (const g of [...granted].sort((a, b) => byText(keyOf(a), keyOf(b)))) {
    const id = keyOf(g);
    if (seen.has(id)) continue;
    seen.add(id);
    if (usedKeys.has(id) || usedKeys.has(keyOf({ ...g, namespace: '' }))) continue;
    out.push({
      verb: g.verb,
      apiGroup: g.apiGroup,
      resource: g.resource,
      ...(g.subresource === '' ? {} : { subresource: g.subresource }),
      namespace: g.namespace,
    });
  }
  return out;
}
