// Takes the agent's bearer token from the one place it may be: a single `Authorization: Bearer`
// header. Tokens in query strings (logged by every proxy) and duplicated headers are refused.
import type { IncomingHttpHeaders } from 'node:http';
import { HoopError } from '../lib/errors.js';

/** Query parameters some clients use to carry a token; hoopgate never reads a token from a URL. */
const queryTokenParameters = new Set(['access_token', 'id_token', 'token', 'bearer', 'authorization']);

/** RFC 6750 §2.1 b64token: a JWT (base64url segments and dots) always fits. */
const b64token = /^[A-Za-z0-9\-._~+/]+=*$/;

const howTo = 'send "Authorization: Bearer <OIDC token>"';

export function extractBearer(headers: IncomingHttpHeaders, rawHeaders: readonly string[], rawPath: string): string {
  refuseQueryTokens(rawPath);

  // Node joins repeated headers into one string; rawHeaders shows each one as sent.
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'authorization') count += 1;
  }
  if (count > 1) {
    throw new HoopError('ERR_TOKEN_INVALID', `request has ${count} Authorization headers: ${howTo} exactly once`);
  }

  const value = headers.authorization;
  if (value === undefined || value.trim() === '') {
    throw new HoopError('ERR_UNAUTHENTICATED', `no credentials: ${howTo}`);
  }
  const space = value.indexOf(' ');
  const scheme = space === -1 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') {
    // Only the scheme name is echoed: the rest of the header is a credential.
    const shown = /^[A-Za-z][A-Za-z0-9-]{0,20}$/.test(scheme) ? `"${scheme}" ` : '';
    throw new HoopError('ERR_UNAUTHENTICATED', `authorization scheme ${shown}is not accepted: ${howTo}`);
  }
  const token = value.slice(space + 1).trim();
  if (space === -1 || token === '') {
    throw new HoopError('ERR_UNAUTHENTICATED', `empty bearer token: ${howTo}`);
  }
  if (!b64token.test(token)) {
    throw new HoopError('ERR_TOKEN_INVALID', 'malformed bearer token: expected a single JWT after "Bearer "');
  }
  return token;
}

function refuseQueryTokens(rawPath: string): void {
  const q = rawPath.indexOf('?');
  if (q === -1) return;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(rawPath.slice(q + 1));
  } catch {
    return; // the path classifier refuses what cannot be parsed; nothing here to leak
  }
  for (const key of params.keys()) {
    const name = key.toLowerCase();
    if (queryTokenParameters.has(name)) {
      throw new HoopError('ERR_TOKEN_INVALID', `tokens in the query string ("${name}") are refused: ${howTo} instead`);
    }
  }
}
