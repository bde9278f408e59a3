// What an issuer URL may be: https, or plain http on loopback only (the local IdP of the demo and
// tests). Kept apart from issuer-fetch so that validating an issuer loads no HTTP client.
import { HoopError } from '../lib/errors.js';

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isLoopbackUrl(url: URL): boolean {
  return loopbackHosts.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

/** Parses an issuer URL and refuses what must never be trusted: non-https off loopback, userinfo, query, fragment. */
export function parseIssuerUrl(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new HoopError('ERR_CONFIG', `issuer "${issuer}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackUrl(url))) {
    throw new HoopError('ERR_CONFIG', `issuer "${issuer}" must use https (plain http is accepted only on loopback)`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new HoopError('ERR_CONFIG', `issuer "${issuer}" must not contain credentials, a query or a fragment`);
  }
  return url;
}
