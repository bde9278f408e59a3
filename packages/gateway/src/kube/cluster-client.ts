// The gateway's OWN connection to one API server, used only for TokenRequest and
// SubjectAccessReview (never to forward agent calls); with `tokens: static` and no credentials, each
// account reviews itself. API server errors are translated here, once, into HoopErrors.
import { Agent } from 'undici';
import type { ClusterConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { buildKubeConfig, tokenFileConnection, type ClusterConnection } from '../config/kubeconfig-file.js';
import type { ResourceAttributesSpec } from './authorization.js';

export { buildKubeConfig, readKubeConfigFile, type ClusterConnection } from '../config/kubeconfig-file.js';

export interface ServiceAccountToken {
  token: string;
  /** ms since epoch, as the API server set it (it may shorten or lengthen the requested TTL). */
  expiresAt: number;
}

export interface SubjectAccessReviewSpec {
  user: string;
  groups: readonly string[];
  resourceAttributes?: Required<ResourceAttributesSpec>;
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
  /** Closes the kept-alive connections. */
  close?(): Promise<void>;
}

/** A non-2xx answer of the API server: its HTTP status and body (a Status, usually). */
export class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code}`);
  }
}

/**
 * One kept-alive HTTPS connection pool to the API server with the gateway's TLS settings: a POST of a
 * JSON object, answered with the parsed JSON (or ApiStatusError). undici, not client-node, so no TLS
 * handshake per call (issue #13).
 */
function createApiPoster(connection: ClusterConnection): {
  post<T>(path: string, body: object, headers: Record<string, string>): Promise<T>;
  close(): Promise<void>;
} {
  const url = new URL(connection.server);
  const basePath = url.pathname.replace(/\/$/, '');
  const { ca, cert, key, rejectUnauthorized, servername } = connection.tls;
  const dispatcher = new Agent({
    connect: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(servername === undefined ? {} : { servername }),
      rejectUnauthorized,
    },
    keepAliveTimeout: 30_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  return {
    async post<T>(path: string, body: object, headers: Record<string, string>): Promise<T> {
      const response = await dispatcher.request({
        origin: url.origin,
        path: basePath + path,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.body.text();
      if (response.statusCode < 200 || response.statusCode >= 300) throw new ApiStatusError(response.statusCode, text);
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ApiStatusError(response.statusCode, `not JSON: ${text.slice(0, 200)}`);
      }
    },
    close: () => dispatcher.close(),
  };
}

/** The `message` of a Kubernetes Status body (or the text itself). */
function statusMessage(body: unknown): string | undefined {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : body.trim().slice(0, 300);
    }
  }
  if (value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string')
    return (value as { message: string }).message;
  return undefined;
}

type Operation =
  { kind: 'token'; serviceAccount: string } | { kind: 'review' } | { kind: 'self-review'; serviceAccount: string };

/** Translates a failure once: HTTP status from the API server, or a network error. */
export function translateClusterError(error: unknown, cluster: string, server: string, op: Operation): HoopError {
  if (error instanceof HoopError) return error;
  const what =
    op.kind === 'token'
      ? `create a token for serviceaccount ${op.serviceAccount}`
      : op.kind === 'review'
        ? 'create a subjectaccessreview'
        : `create a selfsubjectaccessreview as serviceaccount ${op.serviceAccount}`;
  if (error instanceof ApiStatusError) {
    const code = error.code;
    const detail = statusMessage(error.body);
    const suffix = detail === undefined ? '' : ` (${detail})`;
    if (op.kind === 'self-review' && (code === 401 || code === 403)) {
      const fix =
        code === 401
          ? `replace the token file of staticTokens["${op.serviceAccount}"]`
          : 'it needs the system:basic-user ClusterRole';
      return new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `cluster "${cluster}": the API server answered ${code} when the gateway tried to ${what}${suffix}: ${fix}`,
        { cause: error },
      );
    }
    if (code === 401) {
      return new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `cluster "${cluster}": the API server did not accept the gateway's own credential when trying to ${what}${suffix}: check clusters[].credentials`,
        { cause: error },
      );
    }
    if (code === 403) {
      const resource = op.kind === 'token' ? `serviceaccounts/token for ${op.serviceAccount}` : 'subjectaccessreviews';
      return new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `cluster "${cluster}": the gateway's credential may not create ${resource}${suffix}: grant it with deploy/rbac`,
        { cause: error },
      );
    }
    if (code === 404 && op.kind === 'token') {
      const [ns, name] = op.serviceAccount.split('/');
      return new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `cluster "${cluster}": serviceaccount ${op.serviceAccount} does not exist: create it (kubectl -n ${ns} create serviceaccount ${name})`,
        { cause: error },
      );
    }
    const code5xx = code >= 500;
    return new HoopError(
      code5xx ? 'ERR_UPSTREAM_UNREACHABLE' : 'ERR_UPSTREAM_TOKEN',
      `cluster "${cluster}": the API server answered ${code} when the gateway tried to ${what}${suffix}`,
      { cause: error },
    );
  }
  const err = error as { code?: unknown; message?: unknown };
  const reason =
    typeof err.code === 'string'
      ? `${err.code}${typeof err.message === 'string' ? `: ${err.message}` : ''}`
      : String(err.message ?? error);
  return new HoopError(
    'ERR_UPSTREAM_UNREACHABLE',
    `cluster "${cluster}": cannot reach the API server at ${server} to ${what}: ${reason}`,
    { cause: error },
  );
}

function toReviewResult(cluster: string, status: ReviewStatus | undefined): SubjectAccessReviewResult {
  if (status === undefined || typeof status.allowed !== 'boolean') {
    throw new HoopError(
      'ERR_UPSTREAM_UNREACHABLE',
      `cluster "${cluster}": the access review came back without a status`,
    );
  }
  return {
    allowed: status.allowed,
    denied: status.denied === true,
    ...(status.reason === undefined || status.reason === '' ? {} : { reason: status.reason }),
    ...(status.evaluationError === undefined || status.evaluationError === ''
      ? {}
      : { evaluationError: status.evaluationError }),
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
  const clients = new Map<string, { poster: ReturnType<typeof createApiPoster>; connection: ClusterConnection }>();
  const accountPattern = /^system:serviceaccount:([^:]+):([^:]+)$/;
  return {
    cluster: cluster.name,
    async requestServiceAccountToken(namespace, name) {
      throw new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `cluster "${cluster.name}" uses static tokens and has no credentials, so it cannot mint a token for ${namespace}/${name}: add staticTokens["${namespace}/${name}"]`,
      );
    },
    async subjectAccessReview(spec) {
      const match = accountPattern.exec(spec.user);
      const account = match === null ? spec.user : `${match[1]}/${match[2]}`;
      const entry =
        match !== null && Object.hasOwn(cluster.staticTokens, account) ? cluster.staticTokens[account] : undefined;
      if (entry === undefined) {
        throw new HoopError(
          'ERR_UPSTREAM_TOKEN',
          `cluster "${cluster.name}" uses static tokens but has none for serviceaccount ${account}: add staticTokens["${account}"].tokenFile to that cluster`,
        );
      }
      let client = clients.get(account);
      if (client === undefined) {
        const connection = tokenFileConnection(cluster, entry.tokenFile);
        client = { poster: createApiPoster(connection), connection };
        clients.set(account, client);
      }
      let response: { status?: ReviewStatus };
      try {
        const body = {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: reviewAttributes(spec),
        };
        response = await client.poster.post(
          '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
          body,
          await client.connection.headers(),
        );
      } catch (error) {
        throw translateClusterError(error, cluster.name, cluster.server, {
          kind: 'self-review',
          serviceAccount: account,
        });
      }
      return toReviewResult(cluster.name, response.status);
    },
    async close() {
      await Promise.all([...clients.values()].map((client) => client.poster.close()));
    },
  };
}

type ReviewStatus = { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };

export async function createClusterClient(cluster: ClusterConfig): Promise<ClusterClient> {
  const credentials = cluster.credentials;
  if (credentials === undefined) {
    if (cluster.tokens === 'static') return createStaticClusterClient(cluster);
    throw new HoopError(
      'ERR_CONFIG',
      `cluster "${cluster.name}" has no credentials: set clusters[].credentials (tokenFile or kubeconfig) so the gateway can mint serviceaccount tokens`,
    );
  }
  const connection = await buildKubeConfig(cluster, credentials);
  const server = connection.server;
  const api = createApiPoster(connection);

  return {
    cluster: cluster.name,

    async requestServiceAccountToken(namespace, name, ttlSeconds) {
      const op: Operation = { kind: 'token', serviceAccount: `${namespace}/${name}` };
      let response: { status?: { token?: unknown; expirationTimestamp?: unknown } };
      try {
        const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`;
        // No audiences: the token is for the API server itself (its default audience).
        const body = {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: [], expirationSeconds: ttlSeconds },
        };
        response = await api.post(path, body, await connection.headers());
      } catch (error) {
        throw translateClusterError(error, cluster.name, server, op);
      }
      const token = response.status?.token;
      const expiresAt = Date.parse(String(response.status?.expirationTimestamp));
      if (typeof token !== 'string' || token === '' || !Number.isFinite(expiresAt)) {
        throw new HoopError(
          'ERR_UPSTREAM_TOKEN',
          `cluster "${cluster.name}": the TokenRequest for ${op.serviceAccount} came back without a token or expiry`,
        );
      }
      return { token, expiresAt };
    },

    async subjectAccessReview(spec) {
      let response: { status?: ReviewStatus };
      try {
        const body = {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: spec.user, groups: [...spec.groups], ...reviewAttributes(spec) },
        };
        response = await api.post(
          '/apis/authorization.k8s.io/v1/subjectaccessreviews',
          body,
          await connection.headers(),
        );
      } catch (error) {
        throw translateClusterError(error, cluster.name, server, { kind: 'review' });
      }
      return toReviewResult(cluster.name, response.status);
    },

    close: () => api.close(),
  };
}
