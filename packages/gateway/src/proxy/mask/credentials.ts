// Credentials that reach the gateway inside requests and responses and must never be recorded, logged
// or shown (docs/reference.md §6): a token in the query string, and the `token` fields of
// TokenReview (spec.token: another identity's bearer token) and TokenRequest (status.token).
import { MASKED_TEXT } from './mask-object.js';

/** Query parameter names that may carry a credential (the bearer extractor refuses them all). */
const credentialParameter = /^(access_token|id_token|token|bearer|authorization)$/i;

/** The path as received, unless its query names a credential parameter: then the query is dropped. */
export function withoutCredentialQuery(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  if (q === -1) return rawUrl;
  let keys: string[];
  try {
    keys = [...new URLSearchParams(rawUrl.slice(q + 1)).keys()];
  } catch {
    return `${rawUrl.slice(0, q)}?[query not logged]`;
  }
  return keys.some((key) => credentialParameter.test(key)) ? `${rawUrl.slice(0, q)}?[query not logged]` : rawUrl;
}

/**
 * Replaces the value of every JSON `"token": "…"` member in a (possibly truncated) JSON text: what
 * the audit store and approvers see of TokenReview and TokenRequest bodies. Text, not a parse,
 * because a recorded body may be cut at `audit.maxBodyBytes`; a cut inside a token value drops the
 * rest of it (the closing quote is missing, so the whole remainder is replaced).
 */
export function maskCredentialFields(json: string): string {
  return json.replace(
    /("token"\s*:\s*")(?:[^"\\]|\\.)*("|$)/g,
    (_match, open: string, close: string) => `${open}${MASKED_TEXT}${close}`,
  );
}
