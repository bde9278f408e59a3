// The short-lived token of each scoped ServiceAccount the gateway calls the API server with:
// minted by TokenRequest, cached per account, refreshed at 80% of its lifetime, one mint in flight
// per account however many requests wait for it; or, with `tokens: static`, read from a file.
import { readFile as fsReadFile } from 'node:fs/promises';
import type { ClusterConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import type { ClusterClient } from './cluster-client.js';

export interface ServiceAccountTokens {
  /** `serviceAccount` is "namespace/name". */
  tokenFor(serviceAccount: string): Promise<string>;
}

export interface ServiceAccountTokensDeps {
  /** Needed for `tokens: tokenRequest`. */
  client?: Pick<ClusterClient, 'requestServiceAccountToken'>;
  cluster: ClusterConfig;
  clock?: () => number;
  readFile?: (path: string) => Promise<string>;
  /** Called after each successful TokenRequest (a metric), never for a cache hit. */
  onMint?: (serviceAccount: string) => void;
}

/** The API server refuses a TokenRequest shorter than 10 minutes. */
export const MIN_TOKEN_TTL_SECONDS = 600;
const REFRESH_AT = 0.8;
/** A token this close to expiry is not handed out after a failed refresh. */
const STILL_VALID_MARGIN_MS = 10_000;

interface CachedToken {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

function splitAccount(serviceAccount: string): [string, string] {
  const [namespace, name, extra] = serviceAccount.split('/');
  if (namespace === undefined || name === undefined || extra !== undefined || namespace === '' || name === '') {
    throw new HoopError('ERR_CONFIG', `serviceaccount "${serviceAccount}" must be "namespace/name"`);
  }
  return [namespace, name];
}

export function createServiceAccountTokens(deps: ServiceAccountTokensDeps): ServiceAccountTokens {
  const { cluster } = deps;
  const clock = deps.clock ?? Date.now;
  const readFile = deps.readFile ?? ((path: string) => fsReadFile(path, 'utf8'));

  if (cluster.tokens === 'static') {
    return {
      async tokenFor(serviceAccount) {
        splitAccount(serviceAccount);
        const entry = Object.hasOwn(cluster.staticTokens, serviceAccount)
          ? cluster.staticTokens[serviceAccount]
          : undefined;
        if (entry === undefined) {
          throw new HoopError(
            'ERR_UPSTREAM_TOKEN',
            `cluster "${cluster.name}" uses static tokens but has none for serviceaccount ${serviceAccount}: add staticTokens["${serviceAccount}"].tokenFile to that cluster`,
          );
        }
        let token: string;
        try {
          // Read on every call: whoever provisions the file may rotate it.
          token = (await readFile(entry.tokenFile)).trim();
        } catch (error) {
          throw new HoopError(
            'ERR_UPSTREAM_TOKEN',
            `cluster "${cluster.name}": cannot read the token of serviceaccount ${serviceAccount} from ${entry.tokenFile}: ${(error as Error).message}`,
            { cause: error },
          );
        }
        if (token === '')
          throw new HoopError(
            'ERR_UPSTREAM_TOKEN',
            `cluster "${cluster.name}": the token file ${entry.tokenFile} of serviceaccount ${serviceAccount} is empty`,
          );
        return token;
      },
    };
  }

  const client = deps.client;
  if (client === undefined)
    throw new HoopError(
      'ERR_CONFIG',
      `cluster "${cluster.name}" mints tokens with TokenRequest but has no client (credentials)`,
    );
  const requestToken = client.requestServiceAccountToken.bind(client);
  const ttlSeconds = Math.max(MIN_TOKEN_TTL_SECONDS, Math.ceil(cluster.tokenTTLMs / 1000));
  const cache = new Map<string, CachedToken>();
  const inFlight = new Map<string, Promise<string>>();

  async function mint(serviceAccount: string): Promise<string> {
    const [namespace, name] = splitAccount(serviceAccount);
    const issuedAt = clock();
    const { token, expiresAt } = await requestToken(namespace, name, ttlSeconds);
    deps.onMint?.(serviceAccount);
    const lifetime = expiresAt - issuedAt;
    // A token already (or nearly) expired by our clock is used for this call only, never cached.
    if (lifetime > 0) cache.set(serviceAccount, { token, expiresAt, refreshAt: issuedAt + lifetime * REFRESH_AT });
    else cache.delete(serviceAccount);
    return token;
  }

  function startMint(serviceAccount: string): Promise<string> {
    const minted = mint(serviceAccount)
      .catch((error: unknown) => {
        // Errors are not cached: the next call mints again. A still-valid token stays usable.
        const still = cache.get(serviceAccount);
        if (still !== undefined && clock() >= still.expiresAt - STILL_VALID_MARGIN_MS) cache.delete(serviceAccount);
        throw error;
      })
      .finally(() => inFlight.delete(serviceAccount));
    inFlight.set(serviceAccount, minted);
    return minted;
  }

  return {
    tokenFor(serviceAccount) {
      const cached = cache.get(serviceAccount);
      const now = clock();
      if (cached !== undefined && now < cached.refreshAt) return Promise.resolve(cached.token);
      const pending = inFlight.get(serviceAccount) ?? startMint(serviceAccount);
      if (cached !== undefined && now < cached.expiresAt - STILL_VALID_MARGIN_MS) {
        // Past 80% but still valid: answer now, refresh in the background (its failure shows on a later call).
        pending.catch(() => undefined);
        return Promise.resolve(cached.token);
      }
      return pending;
    },
  };
}
