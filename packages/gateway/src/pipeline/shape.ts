// Stages 1–3, the request's shape, refused before anything else reads it: route (which cluster),
// canonical check (never normalised), classify (the API server's RequestInfo).
import { checkCanonicalPath } from '../kube/canonical-path.js';
import { parseRequestInfo, type RequestInfo } from '../kube/request-info.js';
import { HoopError } from '../lib/errors.js';
import { refused, type RoutedPath, type Step } from './types.js';

/** `/k8s/<cluster>/…` addresses a named cluster; every other path is the default cluster's API. */
export function routeCluster(
  rawUrl: string,
  clusters: ReadonlyMap<string, unknown>,
  defaultCluster: string,
): RoutedPath {
  const routed = route(rawUrl, clusters, defaultCluster);
  if (!routed.ok) throw routed.refusal.error;
  return { cluster: routed.cluster, path: routed.path };
}

/** 1. route: the cluster a path names, and the path to send its API server. */
export function route(
  rawUrl: string,
  clusters: ReadonlyMap<string, unknown>,
  defaultCluster: string,
): Step<RoutedPath> {
  const match = /^\/k8s\/([^/?]+)(\/[^?]*)?(\?.*)?$/.exec(rawUrl);
  if (match === null) return { ok: true, cluster: defaultCluster, path: rawUrl };
  const name = match[1] ?? '';
  if (!clusters.has(name)) {
    return refused(
      new HoopError(
        'ERR_NOT_FOUND',
        `no cluster named "${name.slice(0, 256)}" is configured (clusters: ${[...clusters.keys()].join(', ')})`,
      ),
    );
  }
  return { ok: true, cluster: name, path: `${match[2] ?? '/'}${match[3] ?? ''}` };
}

/** 2. canonical check: `//`, dot segments, encoded separators, control characters are refused. */
export function checkCanonical(path: string): Step<object> {
  const canonical = checkCanonicalPath(path);
  if (canonical.ok) return { ok: true };
  return refused(
    new HoopError(
      'ERR_NON_CANONICAL_PATH',
      `refusing non-canonical path: ${canonical.problem}; send the path exactly as the API defines it`,
    ),
  );
}

/** 3. classify: verb, group, version, resource, subresource, namespace, name. */
export function classify(method: string, path: string): Step<{ info: RequestInfo }> {
  try {
    return { ok: true, info: parseRequestInfo(method, path) };
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
}
