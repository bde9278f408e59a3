// HTTP access to an OpenID issuer (discovery, JWKS, token endpoint): https with the system roots
// or a private CA, plain http only on loopback (the local IdP of the demo and tests).
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { HoopError } from '../lib/errors.js';

/** The fetch shape openid-client and the JWKS cache call; tests inject a counting one. */
export type IssuerFetch = (url: string, init?: RequestInit) => Promise<Response>;

export interface ClosableIssuerFetch extends IssuerFetch {
  /** Closes the private-CA connection pool, if any, so a CLI process can exit at once. */
  close(): Promise<void>;
}

export { isLoopbackUrl, parseIssuerUrl } from './issuer-url.js';

/**
 * A fetch that trusts `ca` (PEM) or the PEM in `caFile` in addition to nothing else — a private
 * IdP's CA replaces the system roots for that issuer, as kubectl's certificate-authority does.
 */
export function createIssuerFetch(options: { ca?: string; caFile?: string } = {}): ClosableIssuerFetch {
  let ca = options.ca;
  if (ca === undefined && options.caFile !== undefined) {
    try {
      ca = readFileSync(options.caFile, 'utf8');
    } catch (error) {
      throw new HoopError('ERR_CONFIG', `cannot read CA file "${options.caFile}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (ca === undefined)
    return Object.assign((url: string, init?: RequestInit) => fetch(url, init), { close: async () => {} });
  const dispatcher = new Agent({ connect: { ca } });
  // undici's own fetch: the global one may come from an older bundled undici than this Agent.
  const run = (url: string, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
  return Object.assign(run, { close: () => dispatcher.close() });
}
