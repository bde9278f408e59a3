// A local OpenID provider (oidc-provider) for `hoopgate demo` and tests: machine clients get JWT
// access tokens through the client-credentials grant, with `aud` = the gateway's audience and their
// groups/email/claims added. Loopback only, in memory, a fresh signing key per start, quiet.
import type * as OidcProviderModule from 'oidc-provider';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SignJWT, importJWK } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import type { TlsMaterial } from '@hoopgate/sim/tls.js';

export interface LocalIdpClient {
  clientId: string;
  clientSecret: string;
  groups: string[];
  email?: string;
  /** Extra claims in the access token (e.g. `repository`, or nested objects for dot paths). */
  claims?: Record<string, unknown>;
}

export interface LocalIdpOptions {
  clients: readonly LocalIdpClient[];
  /** The `aud` of every access token (the gateway's configured audience). */
  audience: string;
  /** Serve https with this material (issuer `https://127.0.0.1:PORT`); absent: plain http on loopback. */
  tls?: TlsMaterial;
  port?: number;
  accessTokenTtlSeconds?: number;
}

export interface LocalIdp {
  issuer: string;
  audience: string;
  /** The RFC 8707 resource indicator that yields tokens for `audience` (equal to it when it is a URI). */
  resource: string;
  /** PEM of the CA to trust, when serving https. */
  ca?: string;
  /** Requests seen, by endpoint: lets tests assert caching and the absence of fetch storms. */
  stats: { discovery: number; jwks: number; token: number };
  /** The public keys served at the JWKS endpoint. */
  publicJwks(): { keys: JWK[] };
  /** Signs any claims with the issuer's real key (test forgeries of expiry, audience …). */
  /** Claims over the defaults; a claim set to `undefined` is left out (a token without `exp`, say). */
  mintForTests(
    claims: { [K in keyof JWTPayload]?: JWTPayload[K] | undefined },
    header?: { kid?: string; typ?: string },
  ): Promise<string>;
  close(): Promise<void>;
}

const signingAlg = 'ES256';

/** oidc-provider 9 warns on import under Node 20 (it wants 22); the gateway supports 20, so that notice is noise. */
async function loadProvider(): Promise<typeof OidcProviderModule> {
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider WARNING: Unsupported runtime')) return;
    original.apply(console, args);
  };
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = original;
  }
}

/** Absolute-URI audiences are their own resource indicator; others (`hoopgate`) get a URN, since RFC 8707 wants a URI. */
export function resourceIndicatorFor(audience: string): string {
  return URL.canParse(audience) ? audience : `urn:hoopgate:audience:${encodeURIComponent(audience)}`;
}

/** Minimal in-memory storage: with JWT access tokens and static clients almost nothing is stored. */
class MemoryAdapter {
  private static readonly store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  constructor(private readonly model: string) {}
  private key(id: string): string {
    return `${this.model}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    MemoryAdapter.store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const entry = MemoryAdapter.store.get(this.key(id));
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      MemoryAdapter.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const entry = MemoryAdapter.store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    MemoryAdapter.store.delete(this.key(id));
  }
  async revokeByGrantId(): Promise<void> {}
}

/** Listens on 127.0.0.1 (HTTPS with options.tls); the issuer URL is known once the port is. */
async function listen(
  options: LocalIdpOptions,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; issuer: string }> {
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { server, issuer: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}` };
}

export async function startLocalIdp(options: LocalIdpOptions): Promise<LocalIdp> {
  const { default: Provider, errors } = await loadProvider();
  const ttl = options.accessTokenTtlSeconds ?? 3600;
  const resource = resourceIndicatorFor(options.audience);
  const clients = new Map(options.clients.map((c) => [c.clientId, c]));

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  const privateJwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg: signingAlg, use: 'sig' };
  const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: signingAlg, use: 'sig' };

  const stats = { discovery: 0, jwks: 0, token: 0 };
  // The provider's handler, once it exists: the server listens before the provider is built.
  const ready: { handler?: (req: IncomingMessage, res: ServerResponse) => unknown } = {};
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    else if (path === '/jwks') stats.jwks += 1;
    else if (path === '/token' && req.method === 'POST') stats.token += 1;
    if (ready.handler) ready.handler(req, res);
    else res.writeHead(503).end();
  };
  // The issuer URL needs the port, and the provider needs the issuer: listen first.
  const { server, issuer } = await listen(options, listener);

  const provider = new Provider(issuer, {
    adapter: MemoryAdapter as never,
    jwks: { keys: [privateJwk as never] },
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: signingAlg,
    })),
    clientDefaults: {
      id_token_signed_response_alg: signingAlg,
      grant_types: ['client_credentials'],
      response_types: [],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== resource)
            throw new errors.InvalidTarget(`unknown resource indicator; this IdP issues tokens for ${resource}`);
          return {
            scope: '',
            audience: options.audience,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const client = clients.get((token as { clientId?: string }).clientId ?? '');
      if (client === undefined) return undefined;
      return {
        ...client.claims,
        groups: [...client.groups],
        ...(client.email === undefined ? {} : { email: client.email }),
      };
    },
    ttl: { ClientCredentials: ttl, AccessToken: ttl },
    clientBasedCORS: () => false,
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  // Koa logs errors to stderr unless someone listens; the token endpoint's answer already says why.
  (provider as unknown as NodeJS.EventEmitter).on('error', () => {});
  provider.on('server_error', () => {});
  const callback = provider.callback();
  ready.handler = (req, res) => void callback(req, res);

  const signingKey = await importJWK(privateJwk, signingAlg);

  return {
    issuer,
    audience: options.audience,
    resource,
    ...(options.tls ? { ca: options.tls.ca } : {}),
    stats,
    publicJwks: () => ({ keys: [{ ...publicJwk }] }),
    mintForTests: async (claims, header = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: issuer,
        aud: options.audience,
        sub: 'test-subject',
        iat: now,
        exp: now + ttl,
        ...claims,
        // undefined claims are left out of the JSON payload.
      } as JWTPayload)
        .setProtectedHeader({ alg: signingAlg, kid: header.kid ?? kid, typ: header.typ ?? 'at+jwt' })
        .sign(signingKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
