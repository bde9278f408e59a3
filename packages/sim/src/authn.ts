// Bearer-token authentication of the sim: the admin token (system:masters) and ServiceAccount tokens
// minted like TokenRequest (JWT-shaped, bound to the account's uid, expiring).
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { UserInfo } from './rbac.js';

export interface Authenticated {
  user: UserInfo;
  /** What request records show: 'admin' or 'system:serviceaccount:<ns>:<name>'. */
  identity: string;
}

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface Authenticator {
  adminToken: string;
  /** undefined: no such token, expired, or its ServiceAccount is gone. */
  authenticate(token: string): Authenticated | undefined;
  mint(sa: ServiceAccountRef, expirationSeconds: number, audiences: string[]): { token: string; expiresAt: number };
}

export const defaultAudience = 'https://kubernetes.default.svc.cluster.local';

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

export function createAuthenticator(deps: {
  now: () => number;
  adminToken?: string;
  serviceAccountUid: (namespace: string, name: string) => string | undefined;
}): Authenticator {
  const adminToken = deps.adminToken ?? `sim-admin-${randomBytes(24).toString('hex')}`;
  const key = randomBytes(32);
  const tokens = new Map<string, { sa: ServiceAccountRef; expiresAt: number }>();
  const adminUser: UserInfo = { name: 'admin', groups: ['system:masters', 'system:authenticated'] };
  return {
    adminToken,
    authenticate(token) {
      if (token === adminToken) return { user: adminUser, identity: 'admin' };
      const t = tokens.get(token);
      if (!t) return undefined;
      if (deps.now() >= t.expiresAt) return undefined;
      if (deps.serviceAccountUid(t.sa.namespace, t.sa.name) !== t.sa.uid) return undefined;
      const name = `system:serviceaccount:${t.sa.namespace}:${t.sa.name}`;
      return {
        identity: name,
        user: {
          name,
          uid: t.sa.uid,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${t.sa.namespace}`, 'system:authenticated'],
        },
      };
    },
    mint(sa, expirationSeconds, audiences) {
      const iat = Math.floor(deps.now() / 1000);
      const expiresAt = deps.now() + expirationSeconds * 1000;
      const header = b64url(JSON.stringify({ alg: 'HS256', kid: 'sim' }));
      const payload = b64url(
        JSON.stringify({
          aud: audiences,
          exp: Math.floor(expiresAt / 1000),
          iat,
          nbf: iat,
          iss: defaultAudience,
          jti: randomUUID(),
          'kubernetes.io': { namespace: sa.namespace, serviceaccount: { name: sa.name, uid: sa.uid } },
          sub: `system:serviceaccount:${sa.namespace}:${sa.name}`,
        }),
      );
      const token = `${header}.${payload}.${createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url')}`;
      tokens.set(token, { sa, expiresAt });
      return { token, expiresAt };
    },
  };
}
