// Objects every simulated cluster starts with (the RBAC bootstrap policy, trimmed) and the optional
// seed world: namespaces, workloads, and Secrets whose every value carries a unique canary string.
import { randomBytes } from 'node:crypto';
import type { Obj } from './resources.js';

const rbacV1 = 'rbac.authorization.k8s.io/v1';
const bootstrapMeta = (name: string) => ({
  name,
  labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' },
  annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
});
const rule = (apiGroups: string[], resources: string[], verbs: string[]) => ({ apiGroups, resources, verbs });
const read = ['get', 'list', 'watch'];
const write = ['create', 'delete', 'deletecollection', 'patch', 'update'];

const viewRules = [
  rule(
    [''],
    [
      'configmaps',
      'endpoints',
      'persistentvolumeclaims',
      'persistentvolumeclaims/status',
      'pods',
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'serviceaccounts',
      'services',
      'services/status',
      'bindings',
      'events',
      'limitranges',
      'namespaces/status',
      'pods/log',
      'pods/status',
      'replicationcontrollers/status',
      'resourcequotas',
      'resourcequotas/status',
    ],
    read,
  ),
  rule([''], ['namespaces'], read),
  rule(
    ['apps'],
    [
      'controllerrevisions',
      'daemonsets',
      'daemonsets/status',
      'deployments',
      'deployments/scale',
      'deployments/status',
      'replicasets',
      'replicasets/scale',
      'replicasets/status',
      'statefulsets',
      'statefulsets/scale',
      'statefulsets/status',
    ],
    read,
  ),
  rule(['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status'], read),
  rule(['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies'], read),
  rule(['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status'], read),
];
const editRules = [
  ...viewRules,
  rule(
    [''],
    ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy'],
    ['create', 'delete', 'deletecollection', 'patch', 'update'],
  ),
  rule([''], ['pods/eviction'], ['create']),
  rule(
    [''],
    [
      'configmaps',
      'events',
      'persistentvolumeclaims',
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'secrets',
      'serviceaccounts',
      'services',
      'services/proxy',
      'endpoints',
    ],
    write,
  ),
  rule([''], ['secrets'], read),
  rule([''], ['serviceaccounts/token'], ['create']),
  rule(
    ['apps'],
    [
      'daemonsets',
      'deployments',
      'deployments/rollback',
      'deployments/scale',
      'replicasets',
      'replicasets/scale',
      'statefulsets',
      'statefulsets/scale',
    ],
    write,
  ),
  rule(['batch'], ['cronjobs', 'jobs'], write),
];
const adminRules = [
  ...editRules,
  rule(['authorization.k8s.io'], ['localsubjectaccessreviews'], ['create']),
  rule(['rbac.authorization.k8s.io'], ['rolebindings', 'roles'], [...write, ...read]),
];

export function bootstrapObjects(): { resource: string; object: Obj }[] {
  const clusterRole = (name: string, rules: Obj[]) => ({
    resource: 'rbac.authorization.k8s.io/clusterroles',
    object: { apiVersion: rbacV1, kind: 'ClusterRole', metadata: bootstrapMeta(name), rules },
  });
  const binding = (name: string, role: string, group: string) => ({
    resource: 'rbac.authorization.k8s.io/clusterrolebindings',
    object: {
      apiVersion: rbacV1,
      kind: 'ClusterRoleBinding',
      metadata: bootstrapMeta(name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
    },
  });
  return [
    clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), { nonResourceURLs: ['*'], verbs: ['*'] }]),
    clusterRole('admin', adminRules),
    clusterRole('edit', editRules),
    clusterRole('view', viewRules),
    clusterRole('system:discovery', [
      {
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
        verbs: ['get'],
      },
    ]),
    clusterRole('system:basic-user', [
      rule(['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], ['create']),
      rule(['authentication.k8s.io'], ['selfsubjectreviews'], ['create']),
    ]),
    clusterRole('system:public-info-viewer', [
      { nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] },
    ]),
    binding('cluster-admin', 'cluster-admin', 'system:masters'),
    binding('system:discovery', 'system:discovery', 'system:authenticated'),
    binding('system:basic-user', 'system:basic-user', 'system:authenticated'),
    binding('system:public-info-viewer', 'system:public-info-viewer', 'system:authenticated'),
  ];
}

export const seedNamespaces = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'staging', 'prod', 'agents'];

function canary(): string {
  return `CANARY-${randomBytes(9).toString('hex')}`;
}

const pod = (namespace: string, name: string, app: string, image: string): Obj => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels: { app } },
  spec: { containers: [{ name: app, image, ports: [{ containerPort: 8080 }] }] },
});

const deployment = (namespace: string, name: string, image: string, replicas: number): Obj => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name } },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } },
  },
});

/** The seed world (namespaces are created first, by the caller, from seedNamespaces). */
export function seedObjects(): { objects: Obj[]; canaries: string[] } {
  const canaries: string[] = [];
  const secret = (namespace: string, name: string, keys: string[], type = 'Opaque'): Obj => {
    const stringData: Record<string, string> = {};
    for (const k of keys) {
      const c = canary();
      canaries.push(c);
      stringData[k] = `${k}-${c}`;
    }
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, labels: { app: name.split('-')[0] ?? name } },
      type,
      stringData,
    };
  };
  const objects: Obj[] = [
    pod('default', 'hello', 'hello', 'nginx:1.27'),
    pod('staging', 'web-0', 'web', 'nginx:1.27'),
    pod('staging', 'web-1', 'web', 'nginx:1.27'),
    pod('prod', 'api-0', 'api', 'ghcr.io/example/api:2.4.1'),
    pod('kube-system', 'coredns-0', 'coredns', 'registry.k8s.io/coredns/coredns:v1.11.1'),
    deployment('staging', 'web', 'nginx:1.27', 2),
    deployment('prod', 'api', 'ghcr.io/example/api:2.4.1', 3),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-config', namespace: 'staging' },
      data: { LOG_LEVEL: 'debug', FEATURE_FLAGS: 'beta,canary-ui' },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app-config', namespace: 'prod' },
      data: { LOG_LEVEL: 'info', FEATURE_FLAGS: '' },
    },
    secret('default', 'demo-secret', ['username', 'password']),
    secret('staging', 'db-credentials', ['username', 'password']),
    secret('prod', 'db-credentials', ['username', 'password']),
    secret('prod', 'api-token', ['token']),
    secret('agents', 'registry-token', ['token']),
  ];
  return { objects, canaries };
}

export const defaultLogLines = [
  'starting server pid=1',
  'loaded configuration from /etc/app/config.yaml',
  'listening on 0.0.0.0:8080',
  'GET /healthz 200 1ms',
  'GET /api/items 200 12ms',
];
