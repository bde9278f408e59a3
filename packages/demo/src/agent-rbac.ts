// The demo agents' RBAC in the simulated cluster (Roles, ClusterRoles and their bindings).

/** The agents' RBAC in the simulated cluster: the baseline accounts are deliberately narrow. */
export function agentRbac(): object[] {
  const role = (namespace: string, name: string, rules: object[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { namespace, name },
    rules,
  });
  const clusterRole = (name: string, rules: object[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules,
  });
  const bind = (
    kind: 'RoleBinding' | 'ClusterRoleBinding',
    namespace: string | undefined,
    name: string,
    roleKind: string,
    role: string,
    sa: string,
  ) => {
    const [saNamespace, saName] = sa.split('/');
    return {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind,
      metadata: namespace === undefined ? { name } : { namespace, name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: role },
      subjects: [{ kind: 'ServiceAccount', namespace: saNamespace, name: saName }],
    };
  };
  const read = {
    apiGroups: [''],
    resources: ['pods', 'pods/log', 'configmaps', 'services', 'events'],
    verbs: ['get', 'list', 'watch'],
  };
  const objects: object[] = [
    clusterRole('agent-reader', [
      read,
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] },
    ]),
    clusterRole('agent-namespace-reader', [
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
    ]),
    role('staging', 'deployer', [
      read,
      {
        apiGroups: [''],
        resources: ['configmaps', 'secrets'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      {
        apiGroups: ['apps'],
        resources: ['deployments'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: [''], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], verbs: ['create'] },
    ]),
    clusterRole('elevated-deployer', [{ apiGroups: ['', 'apps'], resources: ['*'], verbs: ['*'] }]),
    // The gateway's own credential: mint agents' tokens and ask SubjectAccessReview, nothing else.
    role('agents', 'hoopgate-token-minter', [
      {
        apiGroups: [''],
        resources: ['serviceaccounts/token'],
        verbs: ['create'],
        resourceNames: ['readonly-bot', 'ci-deployer', 'ci-deployer-elevated', 'saml-bot'],
      },
    ]),
    clusterRole('hoopgate-access-reviewer', [
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
    ]),
  ];
  objects.push(
    bind('ClusterRoleBinding', undefined, 'readonly-bot-reader', 'ClusterRole', 'agent-reader', 'agents/readonly-bot'),
    bind(
      'ClusterRoleBinding',
      undefined,
      'readonly-bot-ns',
      'ClusterRole',
      'agent-namespace-reader',
      'agents/readonly-bot',
    ),
    bind('ClusterRoleBinding', undefined, 'saml-bot-reader', 'ClusterRole', 'agent-reader', 'agents/saml-bot'),
    bind('RoleBinding', 'staging', 'ci-deployer', 'Role', 'deployer', 'agents/ci-deployer'),
    bind(
      'ClusterRoleBinding',
      undefined,
      'ci-deployer-ns',
      'ClusterRole',
      'agent-namespace-reader',
      'agents/ci-deployer',
    ),
    bind(
      'ClusterRoleBinding',
      undefined,
      'ci-deployer-elevated',
      'ClusterRole',
      'elevated-deployer',
      'agents/ci-deployer-elevated',
    ),
    bind('RoleBinding', 'agents', 'hoopgate-token-minter', 'Role', 'hoopgate-token-minter', 'hoopgate/hoopgate'),
    bind(
      'ClusterRoleBinding',
      undefined,
      'hoopgate-access-reviewer',
      'ClusterRole',
      'hoopgate-access-reviewer',
      'hoopgate/hoopgate',
    ),
  );
  return objects;
}
