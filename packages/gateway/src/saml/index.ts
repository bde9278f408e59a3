// SAML-issued identities (docs/saml.md), composed from the saml: config block: the IdPs' certificate
// sources, the gateway's token issuer, the exchange, and the three HTTP endpoints
// (/hoop/v1/token, /hoop/.well-known/openid-configuration, /hoop/.well-known/jwks.json).
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type Koa from 'koa';
import type { AuditRecorder } from '../audit/recorder.js';
import type { LocalIssuer } from '../authn/oidc-verifier.js';
import type { SamlConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { createSamlExchange, type ExchangeResult } from './exchange.js';
import { createIdpSource, type SamlIdpSource } from './idp-certificates.js';
import { createTokenIssuer, gatewayAudience, loadTokenSigningKey } from './token-issuer.js';

export interface SamlServiceDeps {
  recorder: AuditRecorder;
  consumeOnce(key: string, expiresAt: number): Promise<boolean>;
  logger: Logger;
  clock: () => number;
  /** The gateway's own URL once listening (the default `iss` is this + `/hoop`). */
  url: () => string;
}

export interface SamlService {
  route: Koa.Middleware;
  /** Hand to the OIDC verifier: the gateway's tokens are verified like any issuer's, locally. */
  localIssuer: LocalIssuer;
  /** For /hoop/readyz: every metadata URL fetched at least once. */
  check(): Promise<void>;
  close(): Promise<void>;
}

const tokenPath = '/hoop/v1/token';
const discoveryPath = '/hoop/.well-known/openid-configuration';
const jwksPath = '/hoop/.well-known/jwks.json';

export function isSamlRoute(route: string): boolean {
  return route === tokenPath || route === discoveryPath || route === jwksPath;
}

export async function createSamlService(config: SamlConfig, deps: SamlServiceDeps): Promise<SamlService> {
  const key = await loadTokenSigningKey(config.signingKeyFile);
  if (key.generated)
    deps.logger.warn(
      { kid: key.jwk.kid },
      'saml: no saml.signingKeyFile, the token signing key was generated at start: tokens are accepted by this replica only, until it restarts',
    );
  const sources = new Map<string, SamlIdpSource>(
    config.idps.map((idp) => [idp.entityId, createIdpSource(idp, { clock: deps.clock })]),
  );
  const issuerUrl = () => config.issuer ?? `${deps.url()}/hoop`;
  const issuer = createTokenIssuer({
    key,
    issuer: issuerUrl,
    tokenTTLMs: config.tokenTTLMs,
    idps: new Set(sources.keys()),
  });
  const exchange = createSamlExchange({
    idps: sources,
    audience: config.audience,
    maxAssertionBytes: config.maxAssertionBytes,
    issuer,
    consumeOnce: deps.consumeOnce,
    recorder: deps.recorder,
    logger: deps.logger,
    clock: deps.clock,
  });
  // Percent-encoding may triple the base64 text; anything larger is refused unread.
  const maxFormBytes = Math.ceil((config.maxAssertionBytes * 4) / 3) * 3 + 16 * 1024;

  const route: Koa.Middleware = async (ctx) => {
    const path = (ctx.req.url ?? '').split('?')[0];
    ctx.set('cache-control', 'no-store');
    if (path === jwksPath || path === discoveryPath) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return methodNotAllowed(ctx, 'GET');
      ctx.type = 'application/json';
      ctx.set('cache-control', 'public, max-age=300');
      ctx.body = JSON.stringify(path === jwksPath ? issuer.jwks() : issuer.discovery());
      return;
    }
    if (ctx.method !== 'POST') return methodNotAllowed(ctx, 'POST');
    ctx.set('pragma', 'no-cache');
    const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      return send(ctx, {
        ok: false,
        status: 400,
        body: {
          error: 'invalid_request',
          error_description: 'send the token request as application/x-www-form-urlencoded',
        },
      });
    }
    if (ctx.querystring !== '') {
      // Credentials in a URL end up in proxy logs: refuse rather than read them.
      return send(ctx, {
        ok: false,
        status: 400,
        body: { error: 'invalid_request', error_description: 'send the parameters in the body, not the query string' },
      });
    }
    let text: string;
    try {
      text = await readBody(ctx.req, maxFormBytes);
    } catch (error) {
      return send(ctx, {
        ok: false,
        status: 400,
        body: { error: 'invalid_request', error_description: (error as Error).message },
      });
    }
    const userAgent = ctx.get('user-agent');
    const result = await exchange.exchange({
      requestId: randomUUID(),
      form: new URLSearchParams(text),
      ...(userAgent === '' ? {} : { userAgent }),
    });
    return send(ctx, result);
  };

  return {
    route,
    localIssuer: {
      issuer: issuerUrl,
      audience: gatewayAudience,
      jwks: () => issuer.jwks(),
      toPrincipal: (claims) => issuer.toPrincipal(claims),
    },
    async check() {
      const failing = [...sources.values()].map((s) => ({ id: s.entityId, ...s.status() })).filter((s) => !s.ok);
      if (failing.length > 0) {
        // Trigger the first fetch of a metadata URL from readiness too, then report what still fails.
        await Promise.all([...sources.values()].map((s) => s.certificates().catch(() => undefined)));
        const still = [...sources.values()].map((s) => ({ id: s.entityId, ...s.status() })).filter((s) => !s.ok);
        if (still.length > 0)
          throw new HoopError(
            'ERR_UPSTREAM_UNREACHABLE',
            still.map((s) => `${s.id}: ${s.error ?? 'not ready'}`).join('; '),
          );
      }
    },
    async close() {
      await Promise.all([...sources.values()].map((s) => s.close()));
    },
  };
}

function methodNotAllowed(ctx: Koa.Context, allow: string): void {
  ctx.set('allow', allow);
  ctx.status = 405;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify({ error: 'invalid_request', error_description: `use ${allow}` });
}

function send(ctx: Koa.Context, result: ExchangeResult): void {
  ctx.status = result.ok ? 200 : result.status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(result.body);
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      req.resume();
      reject(new HoopError('ERR_BODY_TOO_LARGE', `the request body is larger than ${max} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HoopError('ERR_BODY_TOO_LARGE', `the request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
