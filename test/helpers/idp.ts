// Test helpers around OIDC: a local IdP with the standard demo clients, client-credentials tokens,
// a hand-rolled issuer whose keys a test controls, and forged tokens for every refusal.
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactEncrypt, SignJWT } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { createIssuerFetch } from '../../packages/gateway/src/authn/issuer-fetch.js';
import type { ClosableIssuerFetch } from '../../packages/gateway/src/authn/issuer-fetch.js';
import type { IssuerConfig } from '../../packages/gateway/src/config/types.js';
import { startLocalIdp } from '../../packages/demo/src/local-idp.js';
import type { LocalIdp, LocalIdpClient } from '../../packages/demo/src/local-idp.js';
import { generateTlsMaterial } from '../../packages/sim/src/tls.js';

export const testAudience = 'hoopgate';

/** The demo's machine identities; each secret is `<clientId>-secret`. */
export const demoClients: readonly LocalIdpClient[] = [
  {
    clientId: 'ci-deployer',
    clientSecret: 'ci-deployer-secret',
    groups: ['ci-deployers'],
    email: 'ci-deployer@agents.example.test',
  },
  {
    clientId: 'readonly-bot',
    clientSecret: 'readonly-bot-secret',
    groups: ['readers'],
    email: 'readonly-bot@agents.example.test',
  },
  {
    clientId: 'ai-agent',
    clientSecret: 'ai-agent-secret',
    groups: ['ai-agents', 'readers'],
    email: 'ai-agent@agents.example.test',
  },
  { clientId: 'oncall', clientSecret: 'oncall-secret', groups: ['platform-oncall'], email: 'oncall@example.test' },
  // GitHub-Actions-like: no groups, mapped by claims.
  {
    clientId: 'gh-actions',
    clientSecret: 'gh-actions-secret',
    groups: [],
    claims: { repository: 'org/app', ref: 'refs/heads/main', environment: 'production' },
  },
  // Keycloak-like nested roles, for dot-path groupsClaim.
  {
    clientId: 'nested-roles',
    clientSecret: 'nested-roles-secret',
    groups: [],
    claims: { realm_access: { roles: ['ci-deployers', 'auditors'] } },
  },
];

export interface TestIdp extends LocalIdp {
  /** A fetch that trusts the IdP's CA (or plain fetch for http). */
  fetch: ClosableIssuerFetch;
  /** Path of a file holding the IdP's CA (https only). */
  caFile?: string;
  /** The verifier configuration for this IdP. */
  issuerConfig(overrides?: Partial<IssuerConfig>): IssuerConfig;
}

export async function startTestIdp(
  options: {
    tls?: boolean;
    audience?: string;
    clients?: readonly LocalIdpClient[];
    accessTokenTtlSeconds?: number;
  } = {},
): Promise<TestIdp> {
  const tls = options.tls === false ? undefined : generateTlsMaterial();
  const idp = await startLocalIdp({
    clients: options.clients ?? demoClients,
    audience: options.audience ?? testAudience,
    ...(tls ? { tls } : {}),
    ...(options.accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds: options.accessTokenTtlSeconds }),
  });
  const fetch = createIssuerFetch(idp.ca === undefined ? {} : { ca: idp.ca });
  let dir: string | undefined;
  let caFile: string | undefined;
  if (idp.ca !== undefined) {
    dir = mkdtempSync(join(tmpdir(), 'hoop-idp-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, idp.ca);
  }
  const close = idp.close;
  return Object.assign(idp, {
    fetch,
    ...(caFile === undefined ? {} : { caFile }),
    issuerConfig: (overrides: Partial<IssuerConfig> = {}): IssuerConfig => ({
      issuer: idp.issuer,
      audience: idp.audience,
      groupsClaim: 'groups',
      usernameClaim: 'sub',
      ...(caFile === undefined ? {} : { caFile }),
      ...overrides,
    }),
    close: async () => {
      await fetch.close();
      await close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** A real access token for `clientId` (client credentials, secret `<clientId>-secret` unless given). */
export async function getToken(idp: TestIdp, clientId: string, clientSecret = `${clientId}-secret`): Promise<string> {
  const config = await oidc.discovery(new URL(idp.issuer), clientId, undefined, oidc.ClientSecretBasic(clientSecret), {
    [oidc.customFetch]: idp.fetch as never,
    ...(idp.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {}),
  });
  const response = await oidc.clientCredentialsGrant(config, { resource: idp.resource });
  return response.access_token;
}

const now = () => Math.floor(Date.now() / 1000);

function newEcKey(): { privateKey: KeyObject; publicJwk: JWK } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicJwk: publicKey.export({ format: 'jwk' }) as JWK };
}

function baseClaims(idp: LocalIdp, claims: JWTPayload = {}): JWTPayload {
  return {
    iss: idp.issuer,
    aud: idp.audience,
    sub: 'forger',
    groups: ['system:masters'],
    iat: now(),
    exp: now() + 600,
    ...claims,
  };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Forged or otherwise unacceptable tokens; each targets one check of the verifier. */
export const forge = {
  /** Signed by a key the issuer never had, claiming the issuer's own kid. */
  async foreignKey(idp: LocalIdp, claims?: JWTPayload): Promise<string> {
    const kid = idp.publicJwks().keys[0]?.kid;
    return new SignJWT(baseClaims(idp, claims))
      .setProtectedHeader({ alg: 'ES256', ...(kid === undefined ? {} : { kid }) })
      .sign(newEcKey().privateKey);
  },
  /** A kid the issuer's JWKS does not contain (signed by an unrelated key). */
  async unknownKid(idp: LocalIdp, kid = `unknown-${randomUUID()}`): Promise<string> {
    return new SignJWT(baseClaims(idp)).setProtectedHeader({ alg: 'ES256', kid }).sign(newEcKey().privateKey);
  },
  /** Algorithm confusion: HMAC keyed with the issuer's public key (PEM), as if it were a secret. */
  async hs256WithPublicKey(idp: LocalIdp): Promise<string> {
    const jwk = idp.publicJwks().keys[0] as JWK;
    const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    return new SignJWT(baseClaims(idp))
      .setProtectedHeader({ alg: 'HS256', ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) })
      .sign(Buffer.from(pem));
  },
  /** An unsecured JWT. */
  algNone(idp: LocalIdp): string {
    return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(baseClaims(idp))}.`;
  },
  /** A real token whose signature was altered. */
  tamperedSignature(token: string): string {
    const [h, p, s = ''] = token.split('.');
    const bytes = Buffer.from(s, 'base64url');
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    return `${h}.${p}.${bytes.toString('base64url')}`;
  },
  /** A real token whose payload was changed (more groups), signature kept. */
  tamperedPayload(token: string): string {
    const [h, p = '', s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as JWTPayload;
    return `${h}.${b64({ ...claims, groups: ['system:masters'] })}.${s}`;
  },
  /** Issuer key, expired an hour ago (beyond any clock tolerance). */
  expired(idp: LocalIdp): Promise<string> {
    return idp.mintForTests({ sub: 'ci-deployer', iat: now() - 7200, exp: now() - 3600 });
  },
  /** Issuer key, not valid for another hour. */
  notYetValid(idp: LocalIdp): Promise<string> {
    return idp.mintForTests({ sub: 'ci-deployer', nbf: now() + 3600 });
  },
  /** Issuer key, for another audience. */
  wrongAudience(idp: LocalIdp, aud: string | string[] = 'another-service'): Promise<string> {
    return idp.mintForTests({ sub: 'ci-deployer', aud });
  },
  /** Issuer key, but claiming an issuer nobody configured. */
  wrongIssuer(idp: LocalIdp, iss = 'https://evil.example.test'): Promise<string> {
    return idp.mintForTests({ sub: 'ci-deployer', iss });
  },
  /** Issuer key, no exp at all. */
  noExpiry(idp: LocalIdp): Promise<string> {
    return idp.mintForTests({ sub: 'ci-deployer', exp: undefined });
  },
  /** An encrypted token (JWE compact, 5 segments). */
  async jwe(idp: LocalIdp): Promise<string> {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new CompactEncrypt(Buffer.from(JSON.stringify(baseClaims(idp))))
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(publicKey);
  },
};

/**
 * A bare-bones issuer (discovery + JWKS over loopback http) whose key set the test changes at will,
 * with a request counter: for key rotation and fetch-storm tests.
 */
export interface StaticIssuer {
  issuer: string;
  jwksRequests: number;
  discoveryRequests: number;
  /** Adds a fresh ES256 key to the served JWKS (or keeps it unpublished) and returns a signer. */
  addKey(options?: { publish?: boolean; kid?: string }): {
    kid: string;
    publish(): void;
    unpublish(): void;
    sign(claims?: JWTPayload): Promise<string>;
  };
  close(): Promise<void>;
}

export async function startStaticIssuer(audience = testAudience): Promise<StaticIssuer> {
  const published: JWK[] = [];
  let issuer = '';
  const state = { jwksRequests: 0, discoveryRequests: 0 };
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      state.discoveryRequests += 1;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` }));
    } else if (req.url === '/jwks') {
      state.jwksRequests += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    get jwksRequests() {
      return state.jwksRequests;
    },
    get discoveryRequests() {
      return state.discoveryRequests;
    },
    addKey(options = {}) {
      const kid = options.kid ?? randomUUID();
      const { privateKey, publicJwk } = newEcKey();
      const jwk = { ...publicJwk, kid, alg: 'ES256', use: 'sig' };
      const publish = () => {
        if (!published.some((k) => k.kid === kid)) published.push(jwk);
      };
      if (options.publish !== false) publish();
      const unpublish = () => {
        const at = published.findIndex((k) => k.kid === kid);
        if (at >= 0) published.splice(at, 1);
      };
      return {
        kid,
        publish,
        unpublish,
        sign: (claims = {}) =>
          new SignJWT({ iss: issuer, aud: audience, sub: 'static-subject', iat: now(), exp: now() + 600, ...claims })
            .setProtectedHeader({ alg: 'ES256', kid })
            .sign(privateKey),
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
