// The gateway's OWN connection to one API server, used only for TokenRequest and
// SubjectAccessReview (never to forward agent calls); with `tokens: static` and no credentials, each
// account reviews itself. client-node errors are translated here, once, into HoopErrors.
import { readFile } from 'node:fs/promises';
import { ApiException, AuthorizationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { User } from '@kubernetes/client-node';
import { readKubeConfigFile } from '../config/kubeconfig-file.js';
import type { ClusterConfig, ClusterCredentials } from '../config/types.js';
import { HoopError } from '../lib/errors.js';

export interface ServiceAccountToken {
  token: string;
  /** ms since epoch, as the API server set it (it may shorten or lengthen the requested TTL). */
  expiresAt: number;
}

export interface SubjectAccessReviewSpec {
  user: string;
  groups: readonly string[];
  resourceAttributes?: { verb: string; group: string; version: string; resource: string; subresource: string; namespace: string; name: string };
  nonResourceAttributes?: { verb: string; path: string };
}

export interface SubjectAccessReviewResult {
  allowed: boolean;
  denied: boolean;
  reason?: string;
  evaluationError?: string;
}

export interface ClusterClient {
  readonly cluster: string;
  requestServiceAccountToken(namespace: string, name: string, ttlSeconds: number): Promise<ServiceAccountToken>;
  subjectAccessReview(spec: SubjectAccessReviewSpec): Promise<SubjectAccessReviewResult>;
}

const TOKEN_FILE_PROVIDER = 'hoopgate-token-file';

/** Reads the projected token on every call: kubelet rotates it in place. */
async function readTokenFile(path: string, cluster: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": cannot read the gateway's credential ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (token === '') throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the gateway's credential ${path} is empty`);
  return token;
}

/** A KubeConfig whose bearer token is read from `path` on every request. */
function tokenFileKubeConfig(cluster: ClusterConfig, path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: cluster.name, server: cluster.server, caFile: cluster.caFile, skipTLSVerify: cluster.insecureSkipTLSVerify }],
    users: [{ name: 'hoopgate', authProvider: { name: TOKEN_FILE_PROVIDER, config: { path } } }],
    contexts: [{ name: 'hoopgate', cluster: cluster.name, user: 'hoopgate' }],
    currentContext: 'hoopgate',
  });
  kc.addAuthenticator({
    isAuthProvider: (user: User) => user.authProvider?.name === TOKEN_FILE_PROVIDER,
    applyAuthentication: async (_user, opts) => {
      const token = await readTokenFile(path, cluster.name);
      opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
    },
  });
  return kc;
}

/** The gateway's own KubeConfig for a cluster (also read by probes/granted-permissions.ts for its keep-alive reviews). */
export async function buildKubeConfig(cluster: ClusterConfig, credentials: ClusterCredentials): Promise<KubeConfig> {
  if ('tokenFile' in credentials) {
    await readTokenFile(credentials.tokenFile, cluster.name); // fail at start, not at the first agent call
    return tokenFileKubeConfig(cluster, credentials.tokenFile);
  }
  const read = readKubeConfigFile(credentials.kubeconfig, credentials.context);
  if ('problem' in read) throw new HoopError('ERR_CONFIG', `cluster "${cluster.name}": ${read.problem}`);
  return read.kubeConfig;
}

/** The `message` of a Kubernetes Status body, whatever shape client-node handed it over in. */
function statusMessage(body: unknown): string | undefined {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : body.trim().slice(0, 300);
    }
  }
  if (value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string') return (value as { message: string }).message;
  return undefined;
}

type Operation = { kind: 'token'; serviceAccount: string } | { kind: 'review' } | { kind: 'self-review'; serviceAccount: string };

/** Translates a client-node failure once: HTTP status from the API server, or a network error. */
export function translateClusterError(error: unknown, cluster: string, server: string, op: Operation): HoopError {
  if (error instanceof HoopError) return error;
  const what =
    op.kind === 'token'
      ? `create a token for serviceaccount ${op.serviceAccount}`
      : op.kind === 'review'
        ? 'create a subjectaccessreview'
        : `create a selfsubjectaccessreview as serviceaccount ${op.serviceAccount}`;
  if (error instanceof ApiException) {
    const code = (error as ApiException<unknown>).code;
    const detail = statusMessage((error as ApiException<unknown>).body);
    const suffix = detail === undefined ? '' : ` (${detail})`;
    if (op.kind === 'self-review' && (code === 401 || code === 403)) {
      const fix = code === 401 ? `replace the token file of staticTokens["${op.serviceAccount}"]` : 'it needs the system:basic-user ClusterRole';
      return new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the API server answered ${code} when the gateway tried to ${what}${suffix}: ${fix}`, { cause: error });
    }
    if (code === 401) {
      return new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the API server did not accept the gateway's own credential when trying to ${what}${suffix}: check clusters[].credentials`, { cause: error });
    }
    if (code === 403) {
      const resource = op.kind === 'token' ? `serviceaccounts/token for ${op.serviceAccount}` : 'subjectaccessreviews';
      return new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the gateway's credential may not create ${resource}${suffix}: grant it with deploy/rbac`, { cause: error });
    }
    if (code === 404 && op.kind === 'token') {
      const [ns, name] = op.serviceAccount.split('/');
      return new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": serviceaccount ${op.serviceAccount} does not exist: create it (kubectl -n ${ns} create serviceaccount ${name})`, { cause: error });
    }
    const code5xx = code >= 500;
    return new HoopError(code5xx ? 'ERR_UPSTREAM_UNREACHABLE' : 'ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the API server answered ${code} when the gateway tried to ${what}${suffix}`, { cause: error });
  }
  const err = error as { code?: unknown; message?: unknown };
  const reason = typeof err.code === 'string' ? `${err.code}${typeof err.message === 'string' ? `: ${err.message}` : ''}` : String(err.message ?? error);
  return new HoopError('ERR_UPSTREAM_UNREACHABLE', `cluster "${cluster}": cannot reach the API server at ${server} to ${what}: ${reason}`, { cause: error });
}

function toReviewResult(cluster: string, status: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } | undefined): SubjectAccessReviewResult {
  if (status === undefined || typeof status.allowed !== 'boolean') {
    throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `cluster "${cluster}": the access review came back without a status`);
  }
  return {
    allowed: status.allowed,
    denied: status.denied === true,
    ...(status.reason === undefined || status.reason === '' ? {} : { reason: status.reason }),
    ...(status.evaluationError === undefined || status.evaluationError === '' ? {} : { evaluationError: status.evaluationError }),
  };
}

function reviewAttributes(spec: SubjectAccessReviewSpec) {
  return {
    ...(spec.resourceAttributes === undefined ? {} : { resourceAttributes: { ...spec.resourceAttributes } }),
    ...(spec.nonResourceAttributes === undefined ? {} : { nonResourceAttributes: { ...spec.nonResourceAttributes } }),
  };
}

/**
 * `tokens: static` without credentials: the gateway holds no credential of its own, so it cannot
 * mint tokens, and RBAC is asked by each ServiceAccount about itself (SelfSubjectAccessReview, which
 * every authenticated user may create) with that account's static token.
 */
function createStaticClusterClient(cluster: ClusterConfig): ClusterClient {
  const clients = new Map<string, AuthorizationV1Api>();
  const accountPattern = /^system:serviceaccount:([^:]+):([^:]+)$/;
  return {
    cluster: cluster.name,
    async requestServiceAccountToken(namespace, name) {
      throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster.name}" uses static tokens and has no credentials, so it cannot mint a token for ${namespace}/${name}: add staticTokens["${namespace}/${name}"]`);
    },
    async subjectAccessReview(spec) {
      const match = accountPattern.exec(spec.user);
      const account = match === null ? spec.user : `${match[1]}/${match[2]}`;
      const entry = match !== null && Object.hasOwn(cluster.staticTokens, account) ? cluster.staticTokens[account] : undefined;
      if (entry === undefined) {
        throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster.name}" uses static tokens but has none for serviceaccount ${account}: add staticTokens["${account}"].tokenFile to that cluster`);
      }
      let authz = clients.get(account);
      if (authz === undefined) {
        authz = tokenFileKubeConfig(cluster, entry.tokenFile).makeApiClient(AuthorizationV1Api);
        clients.set(account, authz);
      }
      let response;
      try {
        response = await authz.createSelfSubjectAccessReview({
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: reviewAttributes(spec) },
        });
      } catch (error) {
        throw translateClusterError(error, cluster.name, cluster.server, { kind: 'self-review', serviceAccount: account });
      }
      return toReviewResult(cluster.name, response.status);
    },
  };
}

export async function createClusterClient(cluster: ClusterConfig): Promise<ClusterClient> {
  const credentials = cluster.credentials;
  if (credentials === undefined) {
    if (cluster.tokens === 'static') return createStaticClusterClient(cluster);
    throw new HoopError('ERR_CONFIG', `cluster "${cluster.name}" has no credentials: set clusters[].credentials (tokenFile or kubeconfig) so the gateway can mint serviceaccount tokens`);
  }
  const kc = await buildKubeConfig(cluster, credentials);
  const server = kc.getCurrentCluster()?.server ?? cluster.server;
  const core = kc.makeApiClient(CoreV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);

  return {
    cluster: cluster.name,

    async requestServiceAccountToken(namespace, name, ttlSeconds) {
      const op: Operation = { kind: 'token', serviceAccount: `${namespace}/${name}` };
      let response;
      try {
        response = await core.createNamespacedServiceAccountToken({
          name,
          namespace,
          // No audiences: the token is for the API server itself (its default audience).
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: ttlSeconds } },
        });
      } catch (error) {
        throw translateClusterError(error, cluster.name, server, op);
      }
      const token = response.status?.token;
      const expiration = response.status?.expirationTimestamp;
      const expiresAt = expiration instanceof Date ? expiration.getTime() : Date.parse(String(expiration));
      if (typeof token !== 'string' || token === '' || !Number.isFinite(expiresAt)) {
        throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster.name}": the TokenRequest for ${op.serviceAccount} came back without a token or expiry`);
      }
      return { token, expiresAt };
    },

    async subjectAccessReview(spec) {
      let response;
      try {
        response = await authz.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: { user: spec.user, groups: [...spec.groups], ...reviewAttributes(spec) },
          },
        });
      } catch (error) {
        throw translateClusterError(error, cluster.name, server, { kind: 'review' });
      }
      return toReviewResult(cluster.name, response.status);
    },
  };
}
