// One issuer's signing keys, fetched from its `jwks_uri` and kept in memory. An unknown `kid`
// (key rotation) triggers at most one refetch per cooldown however many tokens carry it, so forged
// tokens cannot turn the gateway into a request amplifier against the IdP.
import { createLocalJWKSet, errors as joseErrors } from 'jose';
import type { FlattenedJWSInput, JWSHeaderParameters, JSONWebKeySet } from 'jose';
import { HoopError } from '../lib/errors.js';
import type { IssuerFetch } from './issuer-fetch.js';

type KeyLike = Awaited<ReturnType<ReturnType<typeof createLocalJWKSet>>>;

export interface JwksCache {
  /** The jose key resolver for jwtVerify: cached key, or one bounded refetch for an unknown kid. */
  getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<KeyLike>;
  /** Fetches now (shared with any fetch in flight); throws a HoopError when the JWKS is unreachable. */
  load(): Promise<void>;
  /** Makes sure keys are loaded, fetching only if none are or they are stale, within the cooldown. */
  ensure(): Promise<void>;
  status(): { ok: boolean; error?: string; fetches: number };
  /** Goes up each time a fetch brings a key set different from the last one (rotation, revocation). */
  generation(): number;
  /** True when keys are loaded and not due for a refresh: ensure() would do nothing (a cheap, synchronous check). */
  fresh(): boolean;
}

export interface JwksCacheOptions {
  issuer: string;
  jwksUri: string;
  fetch: IssuerFetch;
  clock: () => number;
  /** Minimum time between two fetches caused by unknown kids or failures. */
  cooldownMs: number;
  /** Keys older than this are refreshed on next use (removed keys stop verifying). */
  maxAgeMs: number;
  timeoutMs: number;
}

const maxJwksBytes = 512 * 1024;

export function describeKid(kid: unknown): string {
  if (typeof kid !== 'string') return '(no kid)';
  const safe = kid.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(safe.length > 64 ? `${safe.slice(0, 64)}…` : safe);
}

export function createJwksCache(options: JwksCacheOptions): JwksCache {
  const { issuer, jwksUri, clock, cooldownMs, maxAgeMs } = options;
  let keys: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let lastError: string | undefined;
  let inflight: Promise<void> | undefined;
  let fetches = 0;
  let generation = 0;
  let lastText: string | undefined;

  async function fetchJwks(): Promise<void> {
    attemptedAt = clock();
    fetches += 1;
    try {
      const response = await options.fetch(jwksUri, {
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'error',
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (text.length > maxJwksBytes) throw new Error(`larger than ${maxJwksBytes} bytes`);
      const jwks = JSON.parse(text) as JSONWebKeySet;
      keys = createLocalJWKSet(jwks);
      if (text !== lastText) generation += 1;
      lastText = text;
      fetchedAt = clock();
      lastError = undefined;
    } catch (error) {
      lastError = `cannot fetch signing keys of issuer "${issuer}" from ${jwksUri}: ${(error as Error).message}`;
      throw new HoopError('ERR_TOKEN_INVALID', lastError, { cause: error });
    }
  }

  function load(): Promise<void> {
    inflight ??= fetchJwks().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  const cooledDown = () => clock() - attemptedAt >= cooldownMs;

  async function ensureKeys(): Promise<ReturnType<typeof createLocalJWKSet>> {
    if (inflight) await inflight.catch(() => undefined);
    if (keys === undefined) {
      if (!cooledDown() && lastError !== undefined) throw new HoopError('ERR_TOKEN_INVALID', lastError);
      await load();
    } else if (clock() - fetchedAt >= maxAgeMs && cooledDown()) {
      // Stale keys stay usable if the refresh fails: an IdP blip must not log every agent out.
      await load().catch(() => undefined);
    }
    if (keys === undefined)
      throw new HoopError('ERR_TOKEN_INVALID', lastError ?? `no signing keys for issuer "${issuer}"`);
    return keys;
  }

  async function getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<KeyLike> {
    const current = await ensureKeys();
    try {
      return await current(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw translateSelection(error, header);
    }
    // Unknown kid: join a fetch already in flight, or start one if the cooldown allows; else refuse.
    if (inflight) {
      await inflight.catch(() => undefined);
    } else if (cooledDown()) {
      await load().catch(() => undefined);
    }
    const refreshed = keys;
    if (refreshed !== undefined && refreshed !== current) {
      try {
        return await refreshed(header, token);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw translateSelection(error, header);
      }
    }
    throw new HoopError(
      'ERR_TOKEN_INVALID',
      `token signing key ${describeKid(header.kid)} is unknown to issuer "${issuer}"`,
    );
  }

  function translateSelection(error: unknown, header: JWSHeaderParameters): unknown {
    if (error instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return new HoopError(
        'ERR_TOKEN_INVALID',
        `token signing key ${describeKid(header.kid)} matches several keys of issuer "${issuer}": the token must name its key (kid)`,
      );
    }
    if (error instanceof joseErrors.JOSEError) {
      return new HoopError(
        'ERR_TOKEN_INVALID',
        `token signing key ${describeKid(header.kid)} of issuer "${issuer}" cannot be used: ${error.message}`,
      );
    }
    return error;
  }

  return {
    getKey,
    load,
    ensure: async () => {
      await ensureKeys();
    },
    generation: () => generation,
    fresh: () => keys !== undefined && inflight === undefined && clock() - fetchedAt < maxAgeMs,
    status: () => ({
      ok: keys !== undefined && lastError === undefined,
      ...(lastError === undefined ? {} : { error: lastError }),
      fetches,
    }),
  };
}
