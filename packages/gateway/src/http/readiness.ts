// The checks behind /hoop/readyz, one per dependency a request needs: the audit store, the OIDC
// issuers (and SAML), and each cluster's API server (its own /readyz; a 5xx means not ready).
import type { Dispatcher } from 'undici';
import { HoopError } from '../lib/errors.js';
import type { ReadinessCheck } from './server.js';

export function storeReadiness(store: { ping(): Promise<void> }): ReadinessCheck {
  return { name: 'store', check: () => store.ping() };
}

export function oidcReadiness(verifier: {
  status(): readonly { issuer: string; ok: boolean; error?: string | undefined }[];
}): ReadinessCheck {
  return {
    name: 'oidc',
    check: async () => {
      const failing = verifier.status().filter((s) => !s.ok);
      if (failing.length > 0)
        throw new HoopError(
          'ERR_UPSTREAM_UNREACHABLE',
          failing.map((s) => `${s.issuer}: ${s.error ?? 'not discovered'}`).join('; '),
        );
    },
  };
}

export function clusterReadiness(
  name: string,
  upstream: { dispatcher: Dispatcher; origin: string; basePath: string },
): ReadinessCheck {
  return {
    name: `cluster ${name}`,
    check: async () => {
      const response = await upstream.dispatcher.request({
        origin: upstream.origin,
        path: `${upstream.basePath}/readyz`,
        method: 'GET',
      });
      await response.body.dump();
      if (response.statusCode >= 500)
        throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `API server answered ${response.statusCode}`);
    },
  };
}
