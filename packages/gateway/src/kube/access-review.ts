// Asks the API server whether a baseline ServiceAccount may do a request (SubjectAccessReview),
// cached briefly per account + attributes, one review in flight per key, bounded in size. Failures
// are never cached and surface as HoopErrors, so the caller fails closed.
import { HoopError } from '../lib/errors.js';
import type { AuthorizationAttributes, RbacAnswer } from './authorization.js';
import type { ClusterClient, SubjectAccessReviewSpec } from './cluster-client.js';

export interface AccessReviewer {
  /** `serviceAccount` is "namespace/name". */
  review(serviceAccount: string, attrs: AuthorizationAttributes): Promise<RbacAnswer>;
}

export interface AccessReviewerDeps {
  client: Pick<ClusterClient, 'subjectAccessReview'> & { readonly cluster?: string };
  ttlMs?: number;
  clock?: () => number;
  maxEntries?: number;
}

/** The user and groups the API server authenticates a ServiceAccount token as. */
export function serviceAccountUser(serviceAccount: string): { user: string; groups: string[] } {
  const [namespace, name, extra] = serviceAccount.split('/');
  if (namespace === undefined || name === undefined || extra !== undefined || namespace === '' || name === '') {
    throw new HoopError('ERR_CONFIG', `serviceaccount "${serviceAccount}" must be "namespace/name"`);
  }
  return {
    user: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

export function reviewSpec(serviceAccount: string, attrs: AuthorizationAttributes): SubjectAccessReviewSpec {
  const { user, groups } = serviceAccountUser(serviceAccount);
  if (attrs.kind === 'non-resource')
    return { user, groups, nonResourceAttributes: { verb: attrs.verb, path: attrs.path } };
  const { verb, group, version, resource, subresource, namespace, name } = attrs;
  return { user, groups, resourceAttributes: { verb, group, version, resource, subresource, namespace, name } };
}

export function createAccessReviewer(deps: AccessReviewerDeps): AccessReviewer {
  const ttlMs = deps.ttlMs ?? 5000;
  const clock = deps.clock ?? Date.now;
  const maxEntries = deps.maxEntries ?? 10_000;
  const cache = new Map<string, { answer: RbacAnswer; expiresAt: number }>();
  const inFlight = new Map<string, Promise<RbacAnswer>>();

  function remember(key: string, answer: RbacAnswer): void {
    if (ttlMs <= 0 || maxEntries <= 0) return;
    cache.delete(key);
    cache.set(key, { answer, expiresAt: clock() + ttlMs });
    // Map iteration is insertion order: the first key is the oldest entry.
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
    }
  }

  async function ask(spec: SubjectAccessReviewSpec): Promise<RbacAnswer> {
    let result;
    try {
      result = await deps.client.subjectAccessReview(spec);
    } catch (error) {
      if (error instanceof HoopError) throw error;
      const cluster = deps.client.cluster === undefined ? '' : `cluster "${deps.client.cluster}": `;
      throw new HoopError(
        'ERR_UPSTREAM_UNREACHABLE',
        `${cluster}the subjectaccessreview for ${spec.user} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (result.allowed)
      return result.reason === undefined ? { allowed: true } : { allowed: true, reason: result.reason };
    const reason = [result.reason, result.evaluationError]
      .filter((part) => part !== undefined && part !== '')
      .join('; ');
    return reason === '' ? { allowed: false } : { allowed: false, reason };
  }

  return {
    review(serviceAccount, attrs) {
      let spec: SubjectAccessReviewSpec;
      try {
        spec = reviewSpec(serviceAccount, attrs);
      } catch (error) {
        return Promise.reject(error);
      }
      const key = JSON.stringify([spec.user, spec.resourceAttributes ?? null, spec.nonResourceAttributes ?? null]);
      const cached = cache.get(key);
      if (cached !== undefined) {
        if (clock() < cached.expiresAt) return Promise.resolve(cached.answer);
        cache.delete(key);
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      const asked = ask(spec)
        .then((answer) => {
          remember(key, answer);
          return answer;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, asked);
      return asked;
    },
  };
}
