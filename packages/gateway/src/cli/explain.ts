// `hoopgate explain --config FILE --identity NAME 'VERB PATH'`: the decision a request would get
// and the rule that gives it, without sending the request. RBAC is asked of the API server
// (SubjectAccessReview, the gateway's own credential) unless --offline.
import { isAbsolute, resolve } from 'node:path';
import { loadConfig as defaultLoadConfig } from '../config/load.js';
import type { ClusterConfig, Config } from '../config/types.js';
import { createAccessReviewer, serviceAccountUser, type AccessReviewer } from '../kube/access-review.js';
import { checkCanonicalPath } from '../kube/canonical-path.js';
import { createClusterClient } from '../kube/cluster-client.js';
import { parseRequestInfo, type RequestInfo } from '../kube/request-info.js';
import { HoopError, errorCodes } from '../lib/errors.js';
import { helpersFrom } from '../policy/help.js';
import {
  authorizationAttributes,
  evaluate,
  explainDecision,
  needsRbac,
  type EvaluateInput,
  type Explanation,
} from '../policy/index.js';
import { UsageError, parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';

export const usage = `usage: hoopgate explain --config FILE --identity NAME [--cluster NAME] [--offline] 'VERB PATH'

Shows how the gateway would classify and decide a request, the rule that decides it and the
ServiceAccount it would run as, without sending it. VERB is an HTTP method (GET, POST, PUT, PATCH,
DELETE, HEAD); PATH is the API path with its query, e.g. 'DELETE /api/v1/namespaces/prod'.

options:
  -c, --config FILE     the configuration file
  -i, --identity NAME   the identity (identities[].name) making the request
      --cluster NAME    the cluster (default: the first; a /k8s/NAME/ path prefix also selects it)
      --offline         do not ask the API server for the baseline account's RBAC; show both outcomes
`;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface ExplainDeps {
  loadConfig?: (
    path: string,
    env: Record<string, string | undefined>,
    options?: { source?: string; checkFiles?: boolean },
  ) => Promise<Config>;
  /** The RBAC oracle for a cluster; default: SubjectAccessReview with the cluster's own credential. */
  reviewerFor?: (cluster: ClusterConfig) => Promise<AccessReviewer>;
}

function parseRequestLine(positionals: readonly string[]): { method: string; path: string } {
  const words = positionals.flatMap((p) => p.trim().split(/\s+/)).filter((w) => w !== '');
  if (words.length !== 2)
    throw new UsageError('explain', `expected one request 'VERB PATH', e.g. 'DELETE /api/v1/namespaces/prod'`);
  const [verb, path] = words as [string, string];
  const method = verb.toUpperCase();
  if (!METHODS.has(method)) {
    throw new UsageError(
      'explain',
      `VERB must be an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE), not "${verb}": a list or watch is a GET, a create a POST`,
    );
  }
  return { method, path };
}

/** `/k8s/<cluster>/…` selects a named cluster, as on the gateway's HTTP surface. */
function routeCluster(
  config: Config,
  path: string,
  explicit: string | undefined,
): { cluster: ClusterConfig; path: string } {
  const prefixed = /^\/k8s\/([^/?]+)(\/[^?]*)?(\?.*)?$/.exec(path);
  const name = prefixed?.[1] ?? explicit;
  const rest = prefixed === null ? path : `${prefixed[2] ?? '/'}${prefixed[3] ?? ''}`;
  const cluster = name === undefined ? config.clusters[0] : config.clusters.find((c) => c.name === name);
  if (cluster === undefined) {
    throw new HoopError(
      'ERR_NOT_FOUND',
      `no cluster named "${name ?? ''}" (clusters: ${config.clusters.map((c) => c.name).join(', ')})`,
    );
  }
  if (prefixed !== null && explicit !== undefined && explicit !== cluster.name) {
    throw new HoopError('ERR_BAD_REQUEST', `--cluster ${explicit} contradicts the path prefix /k8s/${cluster.name}/`);
  }
  return { cluster, path: rest };
}

async function defaultReviewerFor(cluster: ClusterConfig): Promise<AccessReviewer> {
  return createAccessReviewer({ client: await createClusterClient(cluster), ttlMs: 0 });
}

/** The request as the gateway would parse it; undefined, with `explanation.refused` set, when it refuses it first. */
function classify(method: string, path: string, explanation: Explanation): RequestInfo | undefined {
  const canonical = checkCanonicalPath(path);
  if (!canonical.ok) {
    const { status, reason } = errorCodes.ERR_NON_CANONICAL_PATH;
    explanation.refused = { status, reason, message: `refusing non-canonical path: ${canonical.problem}` };
    return undefined;
  }
  try {
    return parseRequestInfo(method, path);
  } catch (error) {
    if (!(error instanceof HoopError)) throw error;
    explanation.refused = { status: error.status, reason: error.reason, message: error.message };
    return undefined;
  }
}

export function createExplainCommand(deps: ExplainDeps = {}): CliCommand {
  const loadConfig = deps.loadConfig ?? defaultLoadConfig;
  const reviewerFor = deps.reviewerFor ?? defaultReviewerFor;

  return async (argv, io) => {
    const args = parseCommandArgs(
      'explain',
      argv,
      {
        config: { type: 'string', short: 'c', required: true },
        identity: { type: 'string', short: 'i', required: true },
        cluster: { type: 'string' },
        offline: { type: 'boolean' },
      },
      { names: ['VERB PATH'], min: 1, max: 2 },
    );
    if (args.help) {
      io.stdout(usage);
      return 0;
    }
    const request = parseRequestLine(args.positionals);
    const file = args.values.config;
    const fail = (message: string): number => {
      io.stderr(`hoopgate explain: ${message}\n`);
      return 1;
    };

    let config: Config;
    try {
      // Offline, explain may run away from the gateway's machine: its CA and token files need not exist.
      config = await loadConfig(
        isAbsolute(file) ? file : resolve(io.cwd, file),
        { ...io.env },
        { source: file, checkFiles: !args.values.offline },
      );
    } catch (error) {
      if (error instanceof HoopError && error.code === 'ERR_CONFIG') return fail(error.message);
      throw error;
    }

    const identityIndex = config.identities.findIndex((identity) => identity.name === args.values.identity);
    const identity = config.identities[identityIndex];
    if (identity === undefined) {
      return fail(
        `no identity named "${args.values.identity}" in ${file} (identities: ${config.identities.map((i) => i.name).join(', ') || 'none'})`,
      );
    }

    let routed: { cluster: ClusterConfig; path: string };
    try {
      routed = routeCluster(config, request.path, args.values.cluster);
    } catch (error) {
      if (error instanceof HoopError) return fail(error.message);
      throw error;
    }

    const explanation: Explanation = {
      method: request.method,
      rawPath: request.path,
      cluster: routed.cluster.name,
      identity: { name: identity.name, index: identityIndex, serviceAccount: identity.serviceAccount },
      rbac: { state: 'not-needed' },
    };
    const info = classify(request.method, routed.path, explanation);
    if (info === undefined) {
      io.stdout(explainDecision(explanation));
      return 0;
    }
    explanation.info = info;

    const base: Omit<EvaluateInput, 'rbac'> = {
      identity,
      identityIndex,
      info,
      cluster: routed.cluster.name,
      helpers: helpersFrom(config),
      ...(config.gateway.namespace === undefined ? {} : { gatewayNamespace: config.gateway.namespace }),
    };

    if (!needsRbac(base)) {
      explanation.outcome = { decision: evaluate({ ...base, rbac: 'not-asked' }) };
    } else if (args.values.offline) {
      explanation.rbac = { state: 'offline' };
      explanation.outcome = {
        ifAllowed: evaluate({ ...base, rbac: { allowed: true } }),
        ifDenied: evaluate({ ...base, rbac: { allowed: false } }),
      };
    } else {
      let answer;
      try {
        const reviewer = await reviewerFor(routed.cluster);
        answer = await reviewer.review(identity.serviceAccount, authorizationAttributes(info));
      } catch (error) {
        if (error instanceof HoopError)
          return fail(
            `cannot ask the API server of cluster "${routed.cluster.name}" for RBAC: ${error.message}; use --offline to explain without it`,
          );
        throw error;
      }
      explanation.rbac = { state: 'asked', user: serviceAccountUser(identity.serviceAccount).user, answer };
      explanation.outcome = { decision: evaluate({ ...base, rbac: answer }) };
    }
    io.stdout(explainDecision(explanation));
    return 0;
  };
}

export const run: CliCommand = createExplainCommand();
