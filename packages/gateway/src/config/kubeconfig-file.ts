// The gateway's own credential for one API server, read as kubectl and client-node read it; in config/
// because `hoopgate check` refuses the same files `serve` would (config/library-checks.ts) (issue
// #13/#11: without @kubernetes/client-node, which cost ~78 MB RSS and a TLS handshake per call): the
// in-cluster token file (rotated in place by the kubelet, so read on every call) with the cluster's
// CA, or a kubeconfig file — server, certificate-authority(-data), insecure-skip-tls-verify,
// tls-server-name; user token, token-file, client-certificate(-data) / client-key(-data),
// username/password, `as` (impersonation), and exec credential plugins. Relative paths are relative
// to the kubeconfig's folder. auth-provider plugins (gcp, azure, oidc) are refused with what to use.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import type { ClusterConfig, ClusterCredentials } from './types.js';
import { HoopError } from '../lib/errors.js';

export interface ClusterConnection {
  /** The API server URL, without a trailing slash. */
  server: string;
  tls: {
    ca?: string | Buffer;
    cert?: string | Buffer;
    key?: string | Buffer;
    rejectUnauthorized: boolean;
    servername?: string;
  };
  /** Request headers that authenticate the gateway (Authorization, Impersonate-User), asked per call. */
  headers(): Promise<Record<string, string>>;
}

type Named<T> = { name?: unknown } & T;
type KubeCluster = {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
};
type ExecConfig = {
  command?: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
};
type KubeUser = {
  token?: string;
  'token-file'?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  as?: string;
  exec?: ExecConfig;
  'auth-provider'?: { name?: string };
};
type KubeFile = {
  clusters?: Named<{ cluster?: KubeCluster }>[];
  users?: Named<{ user?: KubeUser }>[];
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  'current-context'?: string;
};

/** Reads the token file on every call: kubelet rotates it in place. */
export async function readTokenFile(path: string, cluster: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    throw new HoopError(
      'ERR_UPSTREAM_TOKEN',
      `cluster "${cluster}": cannot read the gateway's credential ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (token === '')
    throw new HoopError('ERR_UPSTREAM_TOKEN', `cluster "${cluster}": the gateway's credential ${path} is empty`);
  return token;
}

export function tokenFileConnection(cluster: ClusterConfig, path: string): ClusterConnection {
  const ca = cluster.caFile === undefined ? undefined : readFileSync(cluster.caFile, 'utf8');
  return {
    server: cluster.server.replace(/\/$/, ''),
    tls: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: !cluster.insecureSkipTLSVerify },
    headers: async () => ({ authorization: `Bearer ${await readTokenFile(path, cluster.name)}` }),
  };
}

/** The gateway's own connection settings for a cluster (also read by kube/granted-permissions.ts). */
export async function buildKubeConfig(
  cluster: ClusterConfig,
  credentials: ClusterCredentials,
): Promise<ClusterConnection> {
  if ('tokenFile' in credentials) {
    await readTokenFile(credentials.tokenFile, cluster.name); // fail at start, not at the first agent call
    return tokenFileConnection(cluster, credentials.tokenFile);
  }
  const read = readKubeConfigFile(credentials.kubeconfig, credentials.context);
  if ('problem' in read) throw new HoopError('ERR_CONFIG', `cluster "${cluster.name}": ${read.problem}`);
  return read.kubeConfig;
}

function validated(document: KubeFile): void {
  const check = (list: unknown, what: string, inner: string, needs?: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((entry: Record<string, unknown> | null, i) => {
      if (!entry?.['name']) throw new Error(`${what}[${i}].name is missing`);
      if (inner !== '' && !entry[inner]) throw new Error(`${what}[${i}].${inner} is missing`);
      if (needs !== undefined && !(entry[inner] as Record<string, unknown>)[needs])
        throw new Error(`${what}[${i}].${inner}.${needs} is missing`);
    });
  };
  check(document.clusters, 'clusters', 'cluster', 'server');
  check(document.users, 'users', '');
  check(document.contexts, 'contexts', 'context');
}

/**
 * The gateway's kubeconfig credentials, read as buildKubeConfig reads them at start; `hoopgate check`
 * calls it too, so both refuse the same files. A problem names the field to fix.
 */
export function readKubeConfigFile(
  file: string,
  context: string | undefined,
): { kubeConfig: ClusterConnection } | { field: 'kubeconfig' | 'context'; problem: string } {
  let document: KubeFile;
  const at = (path: string | undefined) =>
    path === undefined || isAbsolute(path) ? path : resolve(dirname(file), path);
  try {
    const parsed = parse(readFileSync(file, 'utf8')) as unknown;
    document = parsed !== null && typeof parsed === 'object' ? (parsed as KubeFile) : {};
    validated(document);
  } catch (error) {
    return { field: 'kubeconfig', problem: `cannot use kubeconfig ${file}: ${(error as Error).message}` };
  }
  const contexts = Array.isArray(document.contexts) ? document.contexts : [];
  if (context !== undefined && !contexts.some((c) => c.name === context)) {
    const names = contexts.map((c) => JSON.stringify(c.name));
    return {
      field: 'context',
      problem: `kubeconfig ${file} has no context "${context}" (it has ${names.length === 0 ? 'none' : names.join(', ')})`,
    };
  }
  const chosen = contexts.find((c) => c.name === (context ?? document['current-context']))?.context;
  const cluster = document.clusters?.find((c) => c.name === chosen?.cluster)?.cluster;
  if (chosen === undefined || cluster?.server === undefined) {
    return {
      field: 'context',
      problem: `kubeconfig ${file} has no current context with a cluster; set clusters[].credentials.context`,
    };
  }
  const user = document.users?.find((u) => u.name === chosen.user)?.user ?? {};
  try {
    return { kubeConfig: connectionOf(String(chosen.cluster), cluster as KubeCluster & { server: string }, user, at) };
  } catch (error) {
    return { field: 'kubeconfig', problem: `cannot use kubeconfig ${file}: ${(error as Error).message}` };
  }
}

function pem(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (data !== undefined && data !== '') return Buffer.from(data, 'base64');
  if (file !== undefined && file !== '') return readFileSync(file);
  return undefined;
}

function connectionOf(
  name: string,
  cluster: KubeCluster & { server: string },
  user: KubeUser,
  at: (path: string | undefined) => string | undefined,
): ClusterConnection {
  const provider = user['auth-provider']?.name;
  if (provider !== undefined)
    throw new Error(
      `its user's auth-provider "${provider}" is not supported: give the gateway a token, token-file, client certificate or exec plugin`,
    );
  const ca = pem(at(cluster['certificate-authority']), cluster['certificate-authority-data']);
  const cert = pem(at(user['client-certificate']), user['client-certificate-data']);
  const key = pem(at(user['client-key']), user['client-key-data']);
  const servername = cluster['tls-server-name'];
  const tokenFile = at(user['token-file']);
  const exec = user.exec === undefined ? undefined : execCredential(user.exec);
  const basic =
    user.username !== undefined && user.password !== undefined
      ? `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`
      : undefined;
  return {
    server: cluster.server.replace(/\/$/, ''),
    tls: {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
      ...(servername === undefined ? {} : { servername }),
    },
    async headers() {
      const headers: Record<string, string> = {};
      if (user.as !== undefined) headers['impersonate-user'] = user.as;
      const token =
        user.token ??
        (tokenFile === undefined ? undefined : await readTokenFile(tokenFile, name)) ??
        (exec === undefined ? undefined : await exec());
      if (token !== undefined && token !== '') headers['authorization'] = `Bearer ${token}`;
      else if (basic !== undefined) headers['authorization'] = basic;
      return headers;
    },
  };
}

/** An exec credential plugin (client.authentication.k8s.io): its token, cached until its expirationTimestamp. */
function execCredential(config: ExecConfig): () => Promise<string | undefined> {
  if (config.command === undefined) throw new Error("its user's exec plugin has no command");
  const command = config.command;
  let cached: { token: string; until: number } | undefined;
  let running: Promise<string | undefined> | undefined;
  const run = () =>
    new Promise<string | undefined>((resolvePromise, reject) => {
      const env = { ...process.env, ...Object.fromEntries((config.env ?? []).map((e) => [e.name, e.value])) };
      env['KUBERNETES_EXEC_INFO'] = JSON.stringify({
        apiVersion: config.apiVersion ?? 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        spec: { interactive: false },
      });
      execFile(command, config.args ?? [], { env, timeout: 30_000, maxBuffer: 1024 * 1024 }, (error, stdout) => {
        if (error !== null)
          return reject(
            new HoopError(
              'ERR_UPSTREAM_TOKEN',
              `the gateway's kubeconfig exec plugin ${command} failed: ${error.message}`,
              { cause: error },
            ),
          );
        try {
          const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string } }).status;
          const until =
            status?.expirationTimestamp === undefined
              ? Number.POSITIVE_INFINITY
              : Date.parse(status.expirationTimestamp);
          if (status?.token !== undefined) cached = { token: status.token, until };
          resolvePromise(status?.token);
        } catch (parseError) {
          reject(
            new HoopError(
              'ERR_UPSTREAM_TOKEN',
              `the gateway's kubeconfig exec plugin ${command} printed no ExecCredential JSON`,
              { cause: parseError },
            ),
          );
        }
      });
    });
  return async () => {
    if (cached !== undefined && Date.now() < cached.until - 10_000) return cached.token;
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  };
}
