// The token exchange itself (docs/saml.md): an OAuth token request (RFC 7522 SAML bearer grant or
// RFC 8693 token exchange) → a verified, never-before-used assertion → a gateway-issued JWT. Every
// exchange, accepted or refused, is one audit event carrying the assertion's ID and issuer only.
import { createHash } from 'node:crypto';
import type { AuditRecorder } from '../audit/recorder.js';
import type { AuditExchange, AuditStart } from '../audit/types.js';
import { isHoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { issuedTokenType, type GatewayTokenIssuer } from './token-issuer.js';
import {
  AssertionRefused,
  clockSkewMs,
  verifyAssertion,
  type SamlIdp,
  type VerifiedAssertion,
} from './verify-assertion.js';

export const grantTypes = {
  samlBearer: 'urn:ietf:params:oauth:grant-type:saml2-bearer',
  tokenExchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
} as const;
export const samlTokenType = 'urn:ietf:params:oauth:token-type:saml2';
const acceptedRequestedTypes = [issuedTokenType, 'urn:ietf:params:oauth:token-type:access_token'];

export type OAuthError =
  'invalid_request' | 'invalid_grant' | 'unsupported_grant_type' | 'temporarily_unavailable' | 'server_error';

export type ExchangeResult =
  | { ok: true; body: { access_token: string; token_type: 'Bearer'; expires_in: number; issued_token_type: string } }
  | { ok: false; status: number; body: { error: OAuthError; error_description: string } };

export interface SamlExchangeDeps {
  idps: ReadonlyMap<string, SamlIdp>;
  audience: string;
  maxAssertionBytes: number;
  issuer: GatewayTokenIssuer;
  consumeOnce(key: string, expiresAt: number): Promise<boolean>;
  recorder: AuditRecorder;
  logger: Logger;
  clock: () => number;
}

export interface ExchangeRequest {
  requestId: string;
  form: URLSearchParams;
  userAgent?: string;
}

export interface SamlExchange {
  exchange(request: ExchangeRequest): Promise<ExchangeResult>;
}

class OAuthRefusal extends Error {
  constructor(
    readonly error: OAuthError,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** base64url (RFC 7522 §2.1) or standard base64, as UTF-8 text. */
export function decodeAssertion(encoded: string, maxBytes: number): string {
  // A `+` sent without percent-encoding arrives as a space in a form body.
  const compact = encoded.replace(/ /g, '+').replace(/[\r\n\t]/g, '');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact))
    throw new OAuthRefusal('invalid_grant', 'the assertion is not base64url-encoded');
  if ((compact.length * 3) / 4 > maxBytes + 4)
    throw new OAuthRefusal('invalid_grant', `the assertion is larger than ${maxBytes} bytes`);
  const bytes = Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new OAuthRefusal('invalid_grant', 'the assertion is not UTF-8 XML');
  }
}

function single(form: URLSearchParams, name: string): string | undefined {
  const values = form.getAll(name);
  // RFC 6749 §3.2: parameters must not be included more than once.
  if (values.length > 1) throw new OAuthRefusal('invalid_request', `the parameter ${name} is given more than once`);
  return values[0];
}

/** The assertion text of a token request, or an OAuth refusal naming what is wrong. */
function assertionOf(form: URLSearchParams): { grantType: string; encoded: string } {
  const grantType = single(form, 'grant_type');
  if (grantType === undefined || grantType === '') throw new OAuthRefusal('invalid_request', 'grant_type is required');
  if (grantType === grantTypes.samlBearer) {
    const encoded = single(form, 'assertion');
    if (encoded === undefined || encoded === '')
      throw new OAuthRefusal('invalid_request', 'the SAML bearer grant needs the assertion parameter');
    return { grantType, encoded };
  }
  if (grantType === grantTypes.tokenExchange) {
    const encoded = single(form, 'subject_token');
    const type = single(form, 'subject_token_type');
    if (encoded === undefined || encoded === '')
      throw new OAuthRefusal('invalid_request', 'token exchange needs subject_token');
    if (type !== samlTokenType)
      throw new OAuthRefusal('invalid_request', `subject_token_type must be ${samlTokenType}`);
    if (single(form, 'actor_token') !== undefined)
      throw new OAuthRefusal('invalid_request', 'actor_token (delegation) is not supported');
    const requested = single(form, 'requested_token_type');
    if (requested !== undefined && !acceptedRequestedTypes.includes(requested)) {
      throw new OAuthRefusal('invalid_request', `requested_token_type must be ${issuedTokenType}`);
    }
    return { grantType, encoded };
  }
  throw new OAuthRefusal(
    'unsupported_grant_type',
    `grant_type must be ${grantTypes.samlBearer} or ${grantTypes.tokenExchange}`,
  );
}

export function createSamlExchange(deps: SamlExchangeDeps): SamlExchange {
  async function audit(
    request: ExchangeRequest,
    start: number,
    exchange: AuditExchange,
    principal: AuditStart['principal'],
    status: number,
    message: string,
  ): Promise<void> {
    const refused = exchange.error !== undefined;
    await deps.recorder.record(
      {
        requestId: request.requestId,
        time: start,
        cluster: '',
        method: 'POST',
        path: '/hoop/v1/token',
        ...(principal === undefined ? {} : { principal }),
        ...(request.userAgent === undefined ? {} : { userAgent: request.userAgent }),
        decision: refused
          ? { effect: 'deny', reason: 'saml-exchange-refused', message }
          : { effect: 'allow', reason: 'saml-exchange', message },
        exchange,
      },
      { status, bytesOut: 0, durationMs: deps.clock() - start, ...(refused ? { error: message } : {}) },
    );
  }

  async function exchange(request: ExchangeRequest): Promise<ExchangeResult> {
    const start = deps.clock();
    const facts: AuditExchange = { grantType: request.form.get('grant_type')?.slice(0, 200) ?? '' };
    let principal: AuditStart['principal'];
    try {
      const { grantType, encoded } = assertionOf(request.form);
      facts.grantType = grantType;
      const xml = decodeAssertion(encoded, deps.maxAssertionBytes);
      const verified = await verifyAssertion(xml, {
        idps: deps.idps,
        audience: deps.audience,
        now: start,
        maxBytes: deps.maxAssertionBytes,
      });
      Object.assign(facts, { assertionId: verified.id, idp: verified.issuer, signed: verified.signedElement });
      principal = { issuer: verified.issuer, subject: verified.nameId, groups: verified.groups };

      await markAssertionUsed(deps, verified);

      const minted = await deps.issuer.mint(verified, start);
      facts.tokenExpiresAt = minted.expiresAt;
      const expiresIn = Math.max(1, Math.floor((minted.expiresAt - deps.clock()) / 1000));
      // Fail closed: a token leaves only once its issuance is on record.
      await audit(
        request,
        start,
        facts,
        principal,
        200,
        `token issued to ${verified.nameId} until ${new Date(minted.expiresAt).toISOString()}`,
      );
      deps.logger.info(
        {
          requestId: request.requestId,
          idp: verified.issuer,
          subject: verified.nameId,
          assertionId: verified.id,
          expiresAt: minted.expiresAt,
        },
        'saml: token issued',
      );
      return {
        ok: true,
        body: {
          access_token: minted.token,
          token_type: 'Bearer',
          expires_in: expiresIn,
          issued_token_type: issuedTokenType,
        },
      };
    } catch (error) {
      const refusal = toRefusal(error);
      facts.error = refusal.error;
      if (error instanceof AssertionRefused) {
        if (error.hints.id !== undefined) facts.assertionId = error.hints.id.slice(0, 200);
        if (error.hints.issuer !== undefined) facts.idp = error.hints.issuer.slice(0, 200);
      }
      deps.logger.warn(
        {
          requestId: request.requestId,
          error: refusal.error,
          reason: refusal.message,
          assertionId: facts.assertionId,
          idp: facts.idp,
        },
        'saml: exchange refused',
      );
      try {
        await audit(request, start, facts, principal, refusal.status, refusal.message);
      } catch (auditError) {
        deps.logger.error({ err: String(auditError) }, 'saml: audit write failed');
        return oauthError(
          new OAuthRefusal('temporarily_unavailable', 'the audit store is unavailable; try again shortly', 503),
        );
      }
      return oauthError(refusal);
    }
  }

  return { exchange };
}

/** One-time use on every replica: kept until the assertion could no longer be accepted anyway. */
async function markAssertionUsed(deps: SamlExchangeDeps, verified: VerifiedAssertion): Promise<void> {
  const key = createHash('sha256').update(`saml\n${verified.issuer}\n${verified.id}`).digest('hex');
  let fresh: boolean;
  try {
    fresh = await deps.consumeOnce(key, verified.notOnOrAfter + clockSkewMs);
  } catch (error) {
    deps.logger.error({ err: String(error) }, 'saml: the store cannot record assertion use; refusing the exchange');
    throw new OAuthRefusal(
      'temporarily_unavailable',
      'the gateway cannot record the assertion as used (store unavailable); try again shortly',
      503,
    );
  }
  if (!fresh)
    throw new OAuthRefusal(
      'invalid_grant',
      `the assertion ${verified.id.slice(0, 80)} was already exchanged: assertions are single-use, get a new one from the IdP`,
    );
}

function toRefusal(error: unknown): OAuthRefusal {
  if (error instanceof OAuthRefusal) return error;
  if (isHoopError(error)) {
    switch (error.code) {
      case 'ERR_INVALID_GRANT':
        return new OAuthRefusal('invalid_grant', error.message);
      case 'ERR_INVALID_REQUEST':
        return new OAuthRefusal('invalid_request', error.message);
      case 'ERR_UNSUPPORTED_GRANT_TYPE':
        return new OAuthRefusal('unsupported_grant_type', error.message);
      case 'ERR_AUDIT_UNAVAILABLE':
      case 'ERR_SHUTTING_DOWN':
        return new OAuthRefusal('temporarily_unavailable', error.message, 503);
      default:
        break;
    }
  }
  // Anything unexpected while reading an assertion is a refusal of that assertion, never a pass.
  return new OAuthRefusal('invalid_grant', 'the assertion cannot be verified');
}

function oauthError(refusal: OAuthRefusal): ExchangeResult {
  return { ok: false, status: refusal.status, body: { error: refusal.error, error_description: refusal.message } };
}
