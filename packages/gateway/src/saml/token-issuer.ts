// The gateway as a token issuer for SAML agents: one signing key (ES256 on P-256, or EdDSA on
// Ed25519) from `saml.signingKeyFile` or generated at start, its public JWKS, the discovery document,
// and the tokens minted from verified assertions. The OIDC verifier accepts these tokens through its
// local-issuer path (no network fetch), mapped back to the SAML principal.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import type { Principal } from '../authn/principal.js';
import { HoopError } from '../lib/errors.js';
import type { VerifiedAssertion } from './verify-assertion.js';

/** `aud` of every gateway-issued token (docs/saml.md). */
export const gatewayAudience = 'hoopgate';
export const issuedTokenType = 'urn:ietf:params:oauth:token-type:jwt';

export interface SigningKey {
  privateKey: KeyObject;
  alg: 'ES256' | 'EdDSA';
  jwk: JWK & { kid: string };
  generated: boolean;
}

export async function loadTokenSigningKey(file: string | undefined): Promise<SigningKey> {
  let privateKey: KeyObject;
  if (file === undefined) {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  } else {
    try {
      privateKey = createPrivateKey(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new HoopError(
        'ERR_CONFIG',
        `saml.signingKeyFile: cannot read a PEM private key from ${file}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  let alg: SigningKey['alg'];
  if (privateKey.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    alg = 'ES256';
  else {
    throw new HoopError(
      'ERR_CONFIG',
      `saml.signingKeyFile: the key must be EC P-256 (ES256) or Ed25519 (EdDSA), got ${privateKey.asymmetricKeyType ?? 'unknown'}; e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out hoopgate-issuer.pem`,
    );
  }
  const publicJwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(publicJwk);
  return { privateKey, alg, jwk: { ...publicJwk, kid, alg, use: 'sig' }, generated: file === undefined };
}

export interface GatewayTokenIssuer {
  /** `iss` of issued tokens: the configured `saml.issuer`, or the listener's URL + `/hoop`. */
  issuer(): string;
  alg: SigningKey['alg'];
  jwks(): JSONWebKeySet;
  discovery(): Record<string, unknown>;
  mint(assertion: VerifiedAssertion, now: number): Promise<{ token: string; expiresAt: number }>;
  /** Maps the verified claims of one of our tokens to the SAML principal (docs/saml.md, identity matching). */
  toPrincipal(claims: JWTPayload): Principal;
}

export interface TokenIssuerDeps {
  key: SigningKey;
  issuer: () => string;
  tokenTTLMs: number;
  /** Entity IDs still configured: a token from an IdP removed from the config is refused. */
  idps: ReadonlySet<string>;
}

export function createTokenIssuer(deps: TokenIssuerDeps): GatewayTokenIssuer {
  const { key } = deps;
  return {
    issuer: deps.issuer,
    alg: key.alg,
    jwks: () => ({ keys: [key.jwk] }),
    discovery: () => {
      const issuer = deps.issuer();
      return {
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        token_endpoint: `${issuer}/v1/token`,
        grant_types_supported: [
          'urn:ietf:params:oauth:grant-type:saml2-bearer',
          'urn:ietf:params:oauth:grant-type:token-exchange',
        ],
        token_endpoint_auth_methods_supported: ['none'],
        response_types_supported: [],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [key.alg],
        claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'idp', 'groups', 'attributes'],
      };
    },
    async mint(assertion, now) {
      const expiresAt = Math.min(assertion.notOnOrAfter, now + deps.tokenTTLMs);
      const exp = Math.floor(expiresAt / 1000);
      const iat = Math.floor(now / 1000);
      if (exp <= iat)
        throw new HoopError(
          'ERR_INVALID_GRANT',
          `the assertion expires at ${new Date(assertion.notOnOrAfter).toISOString()}, too soon to issue a token`,
        );
      const token = await new SignJWT({
        idp: assertion.issuer,
        groups: assertion.groups,
        attributes: assertion.attributes,
        assertion_id: assertion.id,
      })
        .setProtectedHeader({ alg: key.alg, kid: key.jwk.kid, typ: 'JWT' })
        .setIssuer(deps.issuer())
        .setAudience(gatewayAudience)
        .setSubject(assertion.nameId)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresAt: exp * 1000 };
    },
    toPrincipal(claims) {
      const invalid = (message: string) => new HoopError('ERR_TOKEN_INVALID', message);
      const { sub, idp, groups, attributes, exp } = claims;
      if (typeof sub !== 'string' || sub === '') throw invalid('token has no "sub" claim');
      if (typeof idp !== 'string' || !deps.idps.has(idp))
        throw invalid(
          `token names SAML IdP ${JSON.stringify(String(idp)).slice(0, 200)}, which is not configured (saml.idps)`,
        );
      if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string'))
        throw invalid('token claim "groups" must be a list of strings');
      if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes))
        throw invalid('token claim "attributes" must be an object');
      const byName: Record<string, readonly string[]> = {};
      for (const [name, values] of Object.entries(attributes as Record<string, unknown>)) {
        if (Array.isArray(values) && values.every((v): v is string => typeof v === 'string'))
          byName[name] = Object.freeze([...values]);
      }
      return {
        issuer: idp,
        subject: sub,
        username: sub,
        groups: Object.freeze([...groups]),
        claims: Object.freeze(byName),
        expiresAt: (typeof exp === 'number' ? exp : 0) * 1000,
      };
    },
  };
}
