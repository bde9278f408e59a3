// The simulated Kubernetes API server used by hoopgate's tests and `hoopgate demo`: a TLS server with
// discovery, RBAC, TokenRequest, SubjectAccessReview, watch, logs and the write verbs, faithful to
// kube-apiserver where kubectl depends on it. startSimCluster() wires it together.
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { defaultLogLines } from './bootstrap.js';
import { createSimUpgradeHandler } from './exec.js';
import { buildOpenApi } from './openapi.js';
import type { Obj } from './resources.js';
import { createSimHandler, type SimRequestRecord } from './server.js';
import { createSimWorld } from './sim-world.js';
import { SimStatusError } from './status.js';
import { generateTlsMaterial, type TlsMaterial } from './tls.js';

export type { SimRequestRecord } from './server.js';
export { SimStatusError } from './status.js';

export interface SimCluster {
  /** https://127.0.0.1:<port> */
  url: string;
  /** PEM of the CA to trust. */
  ca: string;
  /** cluster-admin bearer token (system:masters): what the gateway's own credential is in tests. */
  adminToken: string;
  /** Every request received, in order. */
  requests: SimRequestRecord[];
  /** Secret values of the seed world each contain one of these; scan responses for them to find leaks. */
  canaries: string[];
  /** Watch and follow-log streams currently open (to assert a client abort closed its upstream). */
  openWatches(): number;
  /** Exec, attach and port-forward WebSocket sessions currently open (src/sim/exec.ts). */
  openSessions(): number;
  /** Open TCP connections. */
  openConnections(): number;
  createServiceAccount(namespace: string, name: string): void;
  /** A valid ServiceAccount token, like TokenRequest (ttlSeconds defaults to 3600; no minimum here, to test expiry). */
  issueToken(namespace: string, name: string, ttlSeconds?: number): string;
  /** Creates or replaces any served object (Role, RoleBinding, Secret, …) as admin. */
  apply(obj: object): void;
  /** resource: `pods`, `deployments`, `deployments.apps`, `clusterroles.rbac.authorization.k8s.io`; namespace '' for cluster-scoped. */
  getObject(resource: string, namespace: string, name: string): any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read objects of every kind by free property access
  /** Deletes an object as admin (no-op when absent). */
  deleteObject(resource: string, namespace: string, name: string): void;
  close(): Promise<void>;
}

export interface SimClusterOptions {
  tls?: TlsMaterial;
  host?: string;
  port?: number;
  /** Namespaces default, kube-system, staging, prod, agents with pods, deployments, configmaps and canary secrets. */
  seed?: boolean;
  /** Lines every pod's log returns. */
  logLines?: string[];
  /** Directory holding kubernetes/discovery/*.json (default: this package's fixtures/, or HOOPGATE_FIXTURES_DIR). */
  fixturesDir?: string;
  /** Clock in ms (token expiry, timestamps). */
  now?: () => number;
  adminToken?: string;
  /** TokenRequest's minimum spec.expirationSeconds; the real server's is 600. */
  minTokenExpirationSeconds?: number;
  bookmarkIntervalMs?: number;
  logFollowIntervalMs?: number;
  /** Server version reported by /version (default 1.33). */
  minor?: number;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startSimCluster(options: SimClusterOptions = {}): Promise<SimCluster> {
  const now = options.now ?? Date.now;
  const tls = options.tls ?? generateTlsMaterial();
  const world = createSimWorld({ ...options, now, ca: tls.ca });
  const {
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
  } = world;

  const handler = createSimHandler({
    registry,
    store,
    ops,
    authn,
    rbac,
    discovery,
    openapi: buildOpenApi(registry.all(), version.gitVersion),
    version,
    now,
    logLines: options.logLines ?? defaultLogLines,
    requests,
    minTokenExpirationSeconds: options.minTokenExpirationSeconds ?? 600,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    logFollowIntervalMs: options.logFollowIntervalMs ?? 200,
  });

  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => handler.handle(req, res));
  const upgrades = createSimUpgradeHandler({ authn, rbac, store, requests, now });
  server.on('upgrade', (req, socket, head) => upgrades.handle(req, socket, head));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = options.host ?? '127.0.0.1';
  await listen(server, options.port ?? 0, host);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const rethrow = (e: unknown): never => {
    if (e instanceof SimStatusError) throw new Error(`simulated api server: ${e.status.message}`);
    throw e;
  };

  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: tls.ca,
    adminToken: authn.adminToken,
    requests,
    canaries,
    openWatches: () => handler.openStreams(),
    openSessions: () => upgrades.openSessions(),
    openConnections: () => sockets.size,
    createServiceAccount(namespace, name) {
      try {
        if (!store.get('/namespaces', '', namespace))
          upsert(byStoreKey('/namespaces'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
        upsert(byStoreKey('/serviceaccounts'), {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name, namespace },
        });
      } catch (e) {
        rethrow(e);
      }
    },
    issueToken(namespace, name, ttlSeconds = 3600) {
      const sa = store.get('/serviceaccounts', namespace, name);
      if (!sa)
        throw new Error(
          `simulated api server: serviceaccount ${namespace}/${name} does not exist; call createServiceAccount first`,
        );
      return authn.mint({ namespace, name, uid: sa['metadata']['uid'] }, ttlSeconds, [
        'https://kubernetes.default.svc.cluster.local',
      ]).token;
    },
    apply(obj) {
      try {
        upsert(kindDef(obj as Obj), obj as Obj);
      } catch (e) {
        rethrow(e);
      }
    },
    getObject(resource, namespace, name) {
      const d = def(resource);
      return store.get(d.storeKey, d.namespaced ? namespace : '', name);
    },
    deleteObject(resource, namespace, name) {
      const d = def(resource);
      if (!store.get(d.storeKey, d.namespaced ? namespace : '', name)) return;
      try {
        ops.remove(d, namespace, name, {}, false);
      } catch (e) {
        rethrow(e);
      }
    },
    async close() {
      handler.closeStreams();
      upgrades.closeAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
