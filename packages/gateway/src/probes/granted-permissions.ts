// What a baseline ServiceAccount is granted, asked of the API server: every verb × resource the
// discovery documents list, in the namespaces in use and at cluster scope, probed by SubjectAccessReview
// through the gateway's own credential (deploy/base/rbac.yaml lets it create subjectaccessreviews and
// read no Roles, so probes are the one way that works everywhere; they also see webhook authorizers).
import type { Dispatcher } from 'undici';
import type { GrantedLookup, PermissionKey } from '../audit/least-privilege.js';
import type { ClusterConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { createAccessReviewer } from '../kube/access-review.js';
import type { AuthorizationAttributes, RbacAnswer } from '../kube/authorization.js';
import { createClusterClient } from '../kube/cluster-client.js';
import { createServiceAccountTokens } from '../kube/service-account-tokens.js';
import { createUpstream } from '../proxy/forward.js';

/** One resource (or subresource) of the discovery documents, at its group's preferred version. */
export interface DiscoveredPermissionTarget {
  apiGroup: string;
  version: string;
  resource: string;
  subresource: string;
  namespaced: boolean;
  verbs: readonly string[];
}

export interface GrantedPermissions {
  granted: PermissionKey[];
  /** How they were found, for the report to say so. */
  method: string;
  probes: number;
  namespaces: string[];
}

export interface GrantedPermissionsDeps {
  /** The gateway's SubjectAccessReview (src/kube/access-review.ts). */
  review(serviceAccount: string, attrs: AuthorizationAttributes): Promise<RbacAnswer>;
  discover(): Promise<DiscoveredPermissionTarget[]>;
  /** Probes in flight at once (default 16). */
  concurrency?: number;
}

/**
 * What every authenticated user holds by default (system:basic-user): never an over-grant of one
 * account, so never probed.
 */
const EVERYONE_HOLDS: ReadonlySet<string> = new Set([
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectrulesreviews',
  'authentication.k8s.io/selfsubjectreviews',
]);

interface ResourceList {
  groupVersion?: string;
  resources?: { name: string; namespaced: boolean; verbs?: string[] }[];
}

/** The (sub)resources of an APIResourceList, one target per resource or subresource. */
export function parseResourceList(document: unknown): DiscoveredPermissionTarget[] {
  const list = document as ResourceList;
  if (typeof list?.groupVersion !== 'string' || !Array.isArray(list.resources)) return [];
  const [apiGroup, version] = list.groupVersion.includes('/')
    ? (list.groupVersion.split('/') as [string, string])
    : ['', list.groupVersion];
  return list.resources.flatMap((r) => {
    if (typeof r?.name !== 'string' || !Array.isArray(r.verbs) || r.verbs.length === 0) return [];
    const [resource = '', subresource = ''] = r.name.split('/');
    if (EVERYONE_HOLDS.has(`${apiGroup}/${resource}`)) return [];
    return [
      {
        apiGroup,
        version,
        resource,
        subresource,
        namespaced: r.namespaced === true,
        verbs: r.verbs.filter((v) => typeof v === 'string'),
      },
    ];
  });
}

/** Reads /api/v1 and the preferred version of every group listed by /apis. */
export function createDiscoveryReader(deps: {
  dispatcher: Dispatcher;
  origin: string;
  basePath?: string;
  /** A bearer token any authenticated account has (discovery is open to system:authenticated). */
  token: () => Promise<string>;
  cluster?: string;
}): () => Promise<DiscoveredPermissionTarget[]> {
  const where = deps.cluster === undefined ? '' : `cluster "${deps.cluster}": `;
  async function getJson(path: string): Promise<unknown> {
    const token = await deps.token();
    let response;
    try {
      response = await deps.dispatcher.request({
        origin: deps.origin,
        path: `${deps.basePath ?? ''}${path}`,
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
    } catch (error) {
      throw new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `${where}cannot read the discovery document ${path} from ${deps.origin}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const text = await response.body.text();
    if (response.statusCode !== 200) {
      throw new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `${where}the API server answered ${response.statusCode} to the discovery request ${path}`,
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `${where}the discovery document ${path} is not JSON`, {
        cause: error,
      });
    }
  }
  return async () => {
    const groups = (await getJson('/apis')) as { groups?: { preferredVersion?: { groupVersion?: string } }[] };
    const versions = (groups.groups ?? [])
      .map((g) => g.preferredVersion?.groupVersion)
      .filter((gv): gv is string => typeof gv === 'string');
    const lists = await Promise.all([getJson('/api/v1'), ...versions.map((gv) => getJson(`/apis/${gv}`))]);
    return lists.flatMap(parseResourceList);
  };
}

/** The probes: cluster-scoped resources at cluster scope; namespaced ones at cluster scope (all namespaces) and in each namespace. */
export function candidatePermissions(
  targets: readonly DiscoveredPermissionTarget[],
  namespaces: readonly string[],
): (PermissionKey & { version: string })[] {
  const scopes = ['', ...[...new Set(namespaces)].filter((ns) => ns !== '').sort()];
  const seen = new Set<string>();
  const out: (PermissionKey & { version: string })[] = [];
  for (const t of targets) {
    for (const namespace of t.namespaced ? scopes : ['']) {
      for (const verb of t.verbs) {
        const id = JSON.stringify([t.apiGroup, t.resource, t.subresource, namespace, verb]);
        if (seen.has(id)) continue;
        seen.add(id);
        out.push({
          verb,
          apiGroup: t.apiGroup,
          version: t.version,
          resource: t.resource,
          subresource: t.subresource,
          namespace,
        });
      }
    }
  }
  return out;
}

/** Asks RBAC about every candidate; any failed review fails the whole answer (never a partial over-grant). */
export async function probeGrantedPermissions(
  deps: GrantedPermissionsDeps,
  serviceAccount: string,
  namespaces: readonly string[],
): Promise<GrantedPermissions> {
  const candidates = candidatePermissions(await deps.discover(), namespaces);
  const granted: PermissionKey[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const c = candidates[next++] as PermissionKey & { version: string };
      const answer = await deps.review(serviceAccount, {
        kind: 'resource',
        verb: c.verb,
        group: c.apiGroup,
        version: c.version,
        resource: c.resource,
        subresource: c.subresource,
        namespace: c.namespace,
        name: '',
      });
      if (answer.allowed)
        granted.push({
          verb: c.verb,
          apiGroup: c.apiGroup,
          resource: c.resource,
          subresource: c.subresource,
          namespace: c.namespace,
        });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, deps.concurrency ?? 16) }, worker));
  const scopes = [...new Set(namespaces)].filter((ns) => ns !== '').sort();
  return {
    granted,
    probes: candidates.length,
    namespaces: scopes,
    method: `${candidates.length} subjectaccessreview probes (discovery verbs × resources at cluster scope${scopes.length === 0 ? '' : ` and in ${scopes.join(', ')}`}); resourceNames-limited grants and verbs discovery does not list (bind, escalate, impersonate) are not seen`,
  };
}

export interface ClusterGrantedLookup {
  lookup: GrantedLookup;
  close(): Promise<void>;
}

/**
 * The over-grant port for one cluster, built from its config like the gateway builds its own: the
 * reviews go through the gateway's credential (uncached, so a report never evicts the live cache;
 * with `tokens: static` and no credential, each account reviews itself); discovery is read with the
 * probed account's own short-lived token, which any account may use for it.
 */
export async function createClusterGrantedLookup(
  cluster: ClusterConfig,
  options: { clock?: () => number; discoveryTtlMs?: number } = {},
): Promise<ClusterGrantedLookup> {
  const clock = options.clock ?? Date.now;
  // The cluster client keeps its connection alive: a report's thousand probes share one TLS session.
  const client = await createClusterClient(cluster);
  const reviewer = createAccessReviewer({ client, ttlMs: 0 });
  const upstream = createUpstream(cluster);
  const tokens = createServiceAccountTokens({ client, cluster, clock });
  const ttl = options.discoveryTtlMs ?? 10 * 60_000;
  let cached: { targets: Promise<DiscoveredPermissionTarget[]>; until: number } | undefined;
  return {
    lookup: (serviceAccount, namespaces) => {
      const discover = () => {
        if (cached === undefined || clock() >= cached.until) {
          const read = createDiscoveryReader({
            dispatcher: upstream.dispatcher,
            origin: upstream.origin,
            basePath: upstream.basePath,
            token: () => tokens.tokenFor(serviceAccount),
            cluster: cluster.name,
          });
          const targets = read();
          // A failed read is not kept: the next report asks again.
          targets.catch(() => {
            cached = undefined;
          });
          cached = { targets, until: clock() + ttl };
        }
        return cached.targets;
      };
      return probeGrantedPermissions(
        { review: (sa, attrs) => reviewer.review(sa, attrs), discover },
        serviceAccount,
        namespaces,
      );
    },
    async close() {
      await upstream.dispatcher.close();
      await client.close?.();
    },
  };
}
