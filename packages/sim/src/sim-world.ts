// The simulated cluster's world: discovery and the resource registry, the object store with its
// write semantics, RBAC and the authenticator over it, bootstrapped (and optionally seeded) the way a
// fresh kube-apiserver with its controllers looks; plus the lookups the test-facing API needs.
import { createAuthenticator, type Authenticator } from './authn.js';
import { bootstrapObjects, seedNamespaces, seedObjects } from './bootstrap.js';
import { loadDiscovery, resolveFixturesDir, type DiscoveryDocuments } from './discovery.js';
import type { VersionInfo, SimRequestRecord } from './handler/context.js';
import { createObjectOps, type ObjectOps, type WriteOptions, type WriteResult } from './objects.js';
import type { RbacState } from './rbac.js';
import { createRegistry, type Obj, type Registry, type ResourceDef } from './resources.js';
import { createStore, type Store } from './store.js';

export interface SimWorldOptions {
  now: () => number;
  /** PEM of the CA every namespace's kube-root-ca.crt carries. */
  ca: string;
  fixturesDir?: string;
  adminToken?: string;
  seed?: boolean;
  minor?: number;
}

export interface SimWorld {
  registry: Registry;
  store: Store;
  ops: ObjectOps;
  rbac: RbacState;
  authn: Authenticator;
  discovery: DiscoveryDocuments;
  version: VersionInfo;
  requests: SimRequestRecord[];
  canaries: string[];
  /** `pods`, `deployments.apps`, …: the definition a test names. */
  def(resource: string): ResourceDef;
  byStoreKey(key: string): ResourceDef;
  /** The definition serving an object's apiVersion and kind. */
  kindDef(o: Obj): ResourceDef;
  /** Creates or replaces an object as admin, keeping its status when the new one has none. */
  upsert(d: ResourceDef, obj: Obj): WriteResult;
}

/** `pods`, `deployments.apps`, …: the definition a test names (core, apps and RBAC win without a group). */
function defByName(registry: Registry, resource: string): ResourceDef {
  const [name, ...groupParts] = resource.split('.');
  const group = groupParts.join('.');
  const found = registry
    .all()
    .find(
      (d) =>
        d.resource === name &&
        (group === ''
          ? ['', 'apps', 'rbac.authorization.k8s.io'].includes(d.group) &&
            (d.group === '' || !registry.all().some((x) => x.resource === name && x.group === ''))
          : d.group === group),
    );
  if (!found) throw new Error(`simulated api server: unknown resource ${JSON.stringify(resource)}`);
  return registry.byStoreKey(found.storeKey) ?? found;
}

function defByKind(registry: Registry, o: Obj): ResourceDef {
  const d = registry.byKind(String(o['apiVersion'] ?? ''), String(o['kind'] ?? ''));
  if (!d) throw new Error(`simulated api server: cannot apply ${o['apiVersion']}/${o['kind']}: not a served kind`);
  return d;
}

export function createSimWorld(options: SimWorldOptions): SimWorld {
  const now = options.now;
  const tls = { ca: options.ca };
  const discovery = loadDiscovery(resolveFixturesDir(options.fixturesDir));
  const registry = createRegistry(discovery.resources);
  const store = createStore();
  const minor = options.minor ?? 33;
  const version: VersionInfo = {
    major: '1',
    minor: String(minor),
    gitVersion: `v1.${minor}.0`,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-04-23T00:00:00Z',
    goVersion: 'go1.24.2',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
  const requests: SimRequestRecord[] = [];

  const def = (resource: string) => defByName(registry, resource);
  const kindDef = (o: Obj) => defByKind(registry, o);
  const byStoreKey = (key: string) => {
    const d = registry.byStoreKey(key);
    if (!d) throw new Error(`simulated api server: ${key} is not in the discovery fixtures`);
    return d;
  };

  const admin: WriteOptions = { dryRun: false, fieldManager: 'hoopgate-sim', fieldValidation: 'Ignore' };
  const ops = createObjectOps({
    registry,
    store,
    now,
    onNamespaceCreated: (ns) => {
      // What the ServiceAccount and root-CA controllers add to every new namespace.
      ops.create(
        byStoreKey('/serviceaccounts'),
        ns,
        { metadata: { name: 'default' } },
        { ...admin, fieldManager: 'kube-controller-manager' },
      );
      ops.create(
        byStoreKey('/configmaps'),
        ns,
        {
          metadata: {
            name: 'kube-root-ca.crt',
            annotations: {
              'kubernetes.io/description':
                'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.',
            },
          },
          data: { 'ca.crt': tls.ca },
        },
        { ...admin, fieldManager: 'kube-controller-manager' },
      );
    },
  });
  const rbacKey = 'rbac.authorization.k8s.io';
  const rbac: RbacState = {
    clusterRoleBindings: () => store.list(`${rbacKey}/clusterrolebindings`),
    roleBindings: (ns) => store.list(`${rbacKey}/rolebindings`, ns),
    role: (ns, name) => store.get(`${rbacKey}/roles`, ns, name),
    clusterRole: (name) => store.get(`${rbacKey}/clusterroles`, '', name),
  };
  const authn = createAuthenticator({
    now,
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    serviceAccountUid: (ns, name) => store.get('/serviceaccounts', ns, name)?.['metadata']?.['uid'],
  });

  const upsert = (d: ResourceDef, obj: Obj) => {
    const ns = d.namespaced ? (obj['metadata']?.['namespace'] ?? 'default') : '';
    const name = obj['metadata']?.['name'];
    const existing = name ? store.get(d.storeKey, ns, name) : undefined;
    if (!existing) return ops.create(d, ns, obj, admin);
    const next = structuredClone(obj);
    next['metadata'] = { ...next['metadata'], resourceVersion: existing['metadata']['resourceVersion'] };
    if (next['status'] === undefined && existing['status'] !== undefined) next['status'] = existing['status'];
    return ops.update(d, ns, name, next, admin);
  };

  for (const { resource, object } of bootstrapObjects()) upsert(byStoreKey(resource), object);
  const namespaces = options.seed ? seedNamespaces : ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
  for (const ns of namespaces)
    upsert(byStoreKey('/namespaces'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const canaries: string[] = [];
  if (options.seed) {
    const seed = seedObjects();
    canaries.push(...seed.canaries);
    for (const o of seed.objects) upsert(kindDef(o), o);
  }

  return {
    registry,
    store,
    ops,
    rbac,
    authn,
    discovery,
    version,
    requests,
    canaries,
    def,
    byStoreKey,
    kindDef,
    upsert,
  };
}
