// Verifies an agent's OIDC JWT against the configured issuers and turns it into a Principal:
// issuer picked by the token's unverified `iss`, then signature (issuer JWKS), audience, expiry,
// not-before checked for real. Every refusal is ERR_TOKEN_INVALID (401) naming the cause, never the token.
import { allowInsecureRequests, customFetch, discovery } from 'openid-client';
import { createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { readClaim, readStringList } from './claims.js';
import { createIssuerFetch, parseIssuerUrl } from './issuer-fetch.js';
import type { IssuerFetch } from './issuer-fetch.js';
import { createJwksCache, describeKid } from './jwks-cache.js';
import type { JwksCache } from './jwks-cache.js';
import type { Principal } from './principal.js';
import { createVerifiedTokenCache, tokenDigest } from './verified-tokens.js';

/** Asymmetric only: an HS* token could be "signed" with the issuer's public key (alg confusion). */
export const allowedAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** The most clock skew tolerated on exp/nbf, seconds. */
const clockToleranceSec = 60;

/**
 * An issuer whose keys are held in process — the gateway's own tokens from the SAML exchange
 * (src/saml/): the same header, signature, iss, aud, exp and nbf checks as every issuer, no fetch.
 */
export interface LocalIssuer {
  issuer(): string;
  audience: string;
  jwks(): JSONWebKeySet;
  /** Maps verified claims to the principal (for SAML: the IdP's entity ID, NameID, attributes). */
  toPrincipal(claims: JWTPayload): Principal;
}

export interface OidcVerifierDeps {
  localIssuers?: readonly LocalIssuer[];
  /** Used for every issuer instead of the per-issuer fetch (tests count requests with it). */
  fetch?: IssuerFetch;
  clock?: () => number;
  /** Minimum time between JWKS refetches caused by unknown kids; default 30 s. */
  jwksCooldownMs?: number;
  /** Signing keys are refreshed after this long; default 10 min. */
  jwksMaxAgeMs?: number;
  /** Minimum time between two discovery attempts of an unreachable issuer; default 10 s. */
  discoveryRetryMs?: number;
  /** Per-request timeout towards the IdP; default 5 s. */
  timeoutMs?: number;
  /** Verified tokens remembered (by SHA-256 digest, until exp); default 10,000, 0 turns the cache off. */
  verifiedTokenEntries?: number;
}

export interface IssuerStatus {
  issuer: string;
  ok: boolean;
  error?: string;
}

export interface OidcVerifier {
  verify(token: string): Promise<Principal>;
  /**
   * Resolves once every issuer's discovery and JWKS have been tried; never rejects — see status().
   * Safe to call often (a readiness probe): it fetches nothing that is cached, and retries are bounded.
   */
  ready(): Promise<void>;
  status(): IssuerStatus[];
  /** Releases connection pools to private-CA issuers. */
  close(): Promise<void>;
}

interface IssuerState {
  config: IssuerConfig;
  url: URL;
  fetch: IssuerFetch;
  close?: () => Promise<void>;
  jwks?: JwksCache;
  discoveryError?: string;
  attemptedAt: number;
  inflight?: Promise<JwksCache>;
}

export function createOidcVerifier(issuers: readonly IssuerConfig[], deps: OidcVerifierDeps = {}): OidcVerifier {
  const clock = deps.clock ?? Date.now;
  const cooldownMs = deps.jwksCooldownMs ?? 30_000;
  const maxAgeMs = deps.jwksMaxAgeMs ?? 600_000;
  const retryMs = deps.discoveryRetryMs ?? 10_000;
  const timeoutMs = deps.timeoutMs ?? 5_000;
  const verified = createVerifiedTokenCache(deps.verifiedTokenEntries);

  const states = new Map<string, IssuerState>();
  for (const config of issuers) {
    if (states.has(config.issuer)) throw new HoopError('ERR_CONFIG', `issuer "${config.issuer}" is configured twice`);
    const url = parseIssuerUrl(config.issuer);
    if (deps.fetch) {
      states.set(config.issuer, { config, url, fetch: deps.fetch, attemptedAt: Number.NEGATIVE_INFINITY });
    } else {
      const fetch = createIssuerFetch(config.caFile === undefined ? {} : { caFile: config.caFile });
      states.set(config.issuer, { config, url, fetch, close: fetch.close, attemptedAt: Number.NEGATIVE_INFINITY });
    }
  }

  /** Discovery is lazy and retried (bounded) while it fails: an IdP down at start recovers without a restart. */
  function jwksFor(state: IssuerState): Promise<JwksCache> {
    if (state.jwks) return Promise.resolve(state.jwks);
    if (state.inflight) return state.inflight;
    if (clock() - state.attemptedAt < retryMs && state.discoveryError !== undefined) {
      // Fail closed with 401 (docs/reference.md §3.2: a token we cannot verify is untrusted); the message names the cause.
      return Promise.reject(
        new HoopError(
          'ERR_TOKEN_INVALID',
          `${state.discoveryError}; tokens from it cannot be verified until it is reachable`,
        ),
      );
    }
    state.inflight = discover(state, { clock, cooldownMs, maxAgeMs, timeoutMs }).finally(() => {
      delete state.inflight;
    });
    return state.inflight;
  }

  /** A token verified before, still before its exp, against the issuer's current keys (refreshed when stale, as a full check would). */
  async function remembered(digest: string): Promise<Principal | undefined> {
    const entry = verified.get(digest);
    if (entry === undefined) return undefined;
    const jwks = states.get(entry.issuer)?.jwks;
    if (jwks !== undefined && clock() < entry.expiresAt) {
      if (!jwks.fresh()) await jwks.ensure().catch(() => undefined);
      if (jwks.generation() === entry.keyGeneration) return entry.principal;
    }
    verified.delete(digest);
    return undefined;
  }

  async function verify(token: string): Promise<Principal> {
    const digest = tokenDigest(token);
    const known = await remembered(digest);
    if (known !== undefined) return known;
    const { header, payload } = decodeUnverified(token);
    const iss = payload.iss;
    if (typeof iss !== 'string')
      throw new HoopError('ERR_TOKEN_INVALID', 'malformed token: it has no "iss" (issuer) claim');
    const local = deps.localIssuers?.find((candidate) => candidate.issuer() === iss);
    const state = states.get(iss);
    if (state === undefined && local === undefined)
      throw new HoopError('ERR_TOKEN_INVALID', `token issuer ${describeKid(iss)} is not trusted`);
    const alg = header.alg;
    if (typeof alg !== 'string') throw new HoopError('ERR_TOKEN_INVALID', 'malformed token: its header has no "alg"');
    if (!(allowedAlgorithms as readonly string[]).includes(alg)) {
      throw new HoopError(
        'ERR_TOKEN_INVALID',
        `token algorithm ${describeKid(alg).replace(/^"|"$/g, '')} is not allowed: only asymmetric signatures (${allowedAlgorithms.join(', ')}) are accepted`,
      );
    }

    // Local issuers (the SAML exchange's own keys) are not cached: their key set has no generation.
    if (local !== undefined)
      return local.toPrincipal(
        await checkJwt(token, createLocalJWKSet(local.jwks()), { issuer: iss, audience: local.audience }, clock),
      );
    const { config } = state as IssuerState;
    const jwks = await jwksFor(state as IssuerState);
    await jwks.ensure().catch(() => undefined); // loads or refreshes the keys now, so the generation is theirs (a failure is the check's to report)
    const keyGeneration = jwks.generation();
    const principal = toPrincipal(await checkJwt(token, jwks.getKey, config, clock), config);
    // Checked against a key set that changed meanwhile: not remembered (the next call checks again).
    if (jwks.generation() === keyGeneration)
      verified.set(digest, { principal, issuer: iss, keyGeneration, expiresAt: principal.expiresAt });
    return principal;
  }

  async function ready(): Promise<void> {
    await Promise.all(
      [...states.values()].map(async (state) => {
        try {
          const jwks = await jwksFor(state);
          await jwks.ensure();
        } catch {
          // recorded in the state; status() reports it and verify() retries lazily
        }
      }),
    );
  }

  function status(): IssuerStatus[] {
    return [...states.values()].map((state) => {
      if (state.jwks === undefined) {
        return { issuer: state.config.issuer, ok: false, error: state.discoveryError ?? 'discovery not attempted yet' };
      }
      const keys = state.jwks.status();
      if (keys.fetches === 0) return { issuer: state.config.issuer, ok: false, error: 'signing keys not fetched yet' };
      return { issuer: state.config.issuer, ok: keys.ok, ...(keys.error === undefined ? {} : { error: keys.error }) };
    });
  }

  async function close(): Promise<void> {
    await Promise.all([...states.values()].map(async (state) => state.close?.()));
  }

  return { verify, ready, status, close };
}

/** Discovery of one issuer, then its key cache; a failure is recorded in the state (status()) and thrown as 401. */
async function discover(
  state: IssuerState,
  options: { clock: () => number; cooldownMs: number; maxAgeMs: number; timeoutMs: number },
): Promise<JwksCache> {
  const { clock, cooldownMs, maxAgeMs, timeoutMs } = options;
  state.attemptedAt = clock();
  const { issuer } = state.config;
  try {
    const insecure = state.url.protocol === 'http:'; // parseIssuerUrl allowed it: loopback only
    const configuration = await discovery(state.url, 'hoopgate', undefined, undefined, {
      [customFetch]: state.fetch as never,
      timeout: Math.ceil(timeoutMs / 1000),
      ...(insecure ? { execute: [allowInsecureRequests] } : {}),
    });
    const metadata = configuration.serverMetadata();
    // openid-client compares normalised URLs; tokens carry the string, so demand it exactly.
    if (metadata.issuer !== issuer) {
      throw new Error(
        `its metadata names issuer "${metadata.issuer}", which is not exactly the configured "${issuer}"`,
      );
    }
    if (typeof metadata.jwks_uri !== 'string') throw new Error('its metadata has no jwks_uri');
    const jwksUrl = new URL(metadata.jwks_uri);
    if (
      jwksUrl.protocol !== 'https:' &&
      !(insecure && jwksUrl.protocol === 'http:' && jwksUrl.hostname === state.url.hostname)
    ) {
      throw new Error(`its jwks_uri ${metadata.jwks_uri} is not https`);
    }
    const jwks = createJwksCache({
      issuer,
      jwksUri: jwksUrl.href,
      fetch: state.fetch,
      clock,
      cooldownMs,
      maxAgeMs,
      timeoutMs,
    });
    state.jwks = jwks;
    delete state.discoveryError;
    return jwks;
  } catch (error) {
    state.discoveryError = `issuer "${issuer}" is unreachable or invalid: ${describeError(error)}`;
    throw new HoopError(
      'ERR_TOKEN_INVALID',
      `${state.discoveryError}; tokens from it cannot be verified until it is reachable`,
      { cause: error },
    );
  }
}

/** The one signature and claims check every token goes through, remote or local keys. */
async function checkJwt(
  token: string,
  getKey: Parameters<typeof jwtVerify>[1],
  expected: { issuer: string; audience: string; authorizedParties?: readonly string[] },
  clock: () => number,
): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, getKey as never, {
      issuer: expected.issuer,
      audience: expected.audience,
      algorithms: [...allowedAlgorithms],
      clockTolerance: clockToleranceSec,
      currentDate: new Date(clock()),
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (error) {
    throw translateJoseError(error, expected);
  }
  checkIssuedAtAndParty(payload, expected, clock());
  return payload;
}

function decodeUnverified(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const parts = token.split('.');
  if (parts.length === 5)
    throw new HoopError('ERR_TOKEN_INVALID', 'encrypted tokens (JWE) are not accepted: send a signed JWT');
  if (parts.length !== 3)
    throw new HoopError('ERR_TOKEN_INVALID', 'malformed token: a JWT has three dot-separated parts');
  const header = decodeSegment(parts[0] ?? '', 'header');
  const payload = decodeSegment(parts[1] ?? '', 'payload');
  return { header, payload };
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+$/.test(segment))
    throw new HoopError('ERR_TOKEN_INVALID', `malformed token: its ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new HoopError('ERR_TOKEN_INVALID', `malformed token: its ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HoopError('ERR_TOKEN_INVALID', `malformed token: its ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

const isoTime = (seconds: unknown) =>
  typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(seconds);

function translateJoseError(error: unknown, config: { audience: string }): HoopError {
  if (error instanceof HoopError) return error;
  const invalid = (message: string) => new HoopError('ERR_TOKEN_INVALID', message, { cause: error });
  if (error instanceof joseErrors.JWTExpired) {
    return invalid(`token expired at ${isoTime(error.payload.exp)}: get a new one`);
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const { claim, reason, payload } = error;
    if (reason === 'missing') return invalid(`token has no "${claim}" claim`);
    switch (claim) {
      case 'aud':
        return invalid(`token audience ${JSON.stringify(payload.aud ?? null)} does not include "${config.audience}"`);
      case 'nbf':
        return invalid(`token is not valid before ${isoTime(payload.nbf)}`);
      case 'iss':
        return invalid(`token issuer ${describeKid(payload.iss)} is not trusted`);
      default:
        return invalid(`token claim "${claim}" is invalid (${error.message})`);
    }
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return invalid('token signature is invalid');
  if (error instanceof joseErrors.JOSEAlgNotAllowed)
    return invalid(`token algorithm is not allowed: only asymmetric signatures are accepted`);
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid) {
    return invalid(`malformed token: ${error.message}`);
  }
  if (error instanceof joseErrors.JOSEError) return invalid(`token cannot be verified: ${error.message}`);
  return invalid(`token cannot be verified: ${describeError(error)}`);
}

/**
 * Checks jose leaves to the caller: `iat` no later than now + leeway (a token minted "in the future"
 * would outlive its issuer's intent), and, with several audiences, `azp` absent or ours — OpenID
 * Connect Core 1.0 §3.1.3.7 (4)-(5): https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
 * Access tokens of some IdPs (Keycloak client credentials: aud [hoopgate, account], azp the agent's
 * client) name the agent's client: those clients are listed in the issuer's `authorizedParties`.
 */
function checkIssuedAtAndParty(
  claims: JWTPayload,
  config: { audience: string; authorizedParties?: readonly string[] },
  nowMs: number,
): void {
  const iat = claims.iat;
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat))
      throw new HoopError('ERR_TOKEN_INVALID', 'token claim "iat" must be a number (seconds since the epoch)');
    if (iat > nowMs / 1000 + clockToleranceSec) {
      throw new HoopError(
        'ERR_TOKEN_INVALID',
        `token is issued in the future (iat ${isoTime(iat)}, more than ${clockToleranceSec}s ahead): check the IdP's clock and get a new token`,
      );
    }
  }
  const aud = claims.aud;
  const azp = claims.azp;
  const trusted =
    azp === undefined ||
    azp === config.audience ||
    (typeof azp === 'string' && (config.authorizedParties ?? []).includes(azp));
  if (Array.isArray(aud) && aud.length > 1 && !trusted) {
    throw new HoopError(
      'ERR_TOKEN_INVALID',
      `token has several audiences and its authorized party (azp) ${typeof azp === 'string' ? describeKid(azp) : '(not a string)'} is not "${config.audience}" ` +
        `nor in the issuer's authorizedParties: ask the IdP for a token issued to this gateway, or list that client in oidc.issuers[].authorizedParties`,
    );
  }
}

function toPrincipal(claims: JWTPayload, config: IssuerConfig): Principal {
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject === '')
    throw new HoopError('ERR_TOKEN_INVALID', 'token has no "sub" claim');
  const username = readClaim(claims, config.usernameClaim);
  if (typeof username !== 'string' || username === '') {
    throw new HoopError(
      'ERR_TOKEN_INVALID',
      `token has no string "${config.usernameClaim}" claim (the configured usernameClaim)`,
    );
  }
  const groups = readStringList(claims, config.groupsClaim);
  if (groups === undefined) {
    throw new HoopError(
      'ERR_TOKEN_INVALID',
      `token claim "${config.groupsClaim}" (the configured groupsClaim) must be a string or a list of strings`,
    );
  }
  const principal: Principal = {
    issuer: config.issuer,
    subject,
    username,
    groups: Object.freeze([...groups]),
    claims: Object.freeze({ ...claims }),
    expiresAt: (claims.exp ?? 0) * 1000,
  };
  if (typeof claims.email === 'string') {
    principal.email = claims.email;
    // OpenID Connect Core §5.1: absent means unknown; only an explicit false (some IdPs send "false") says unverified.
    const verified = claims['email_verified'];
    principal.emailVerified = !(verified === false || verified === 'false');
  }
  return principal;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  // undici hides the socket error ("ECONNREFUSED", a TLS failure) in `cause`.
  const detail = cause instanceof Error && cause.message !== error.message ? ` (${cause.message})` : '';
  return `${error.message}${detail}`;
}
