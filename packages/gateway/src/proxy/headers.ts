// Header hygiene for both directions. Upstream headers are built from an allow-list, so the
// client's Authorization, Impersonate-*, X-Remote-*, forwarding and hop-by-hop headers can never
// reach the API server; the ServiceAccount token is *set*, never appended.
import { HoopError } from '../lib/errors.js';

/** Request headers a Kubernetes client legitimately sends that the API server may use. */
const forwardedRequestHeaders = new Set([
  'accept',
  'accept-encoding',
  'content-type',
  'user-agent',
  'kubectl-command',
  'kubectl-session',
  'if-match',
  'if-none-match',
  'x-request-id',
]);

/** Response headers passed back to the client; length and encoding are recomputed by the masker. */
const forwardedResponseHeaders = new Set([
  'content-type',
  'cache-control',
  'audit-id',
  'warning',
  'x-kubernetes-pf-flowschema-uid',
  'x-kubernetes-pf-prioritylevel-uid',
  'etag',
  'last-modified',
  'retry-after',
  'location',
]);

/** Headers that identify an end user to the API server's front-proxy/impersonation machinery. */
export function findImpersonationHeaders(rawHeaders: readonly string[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    if (name.startsWith('impersonate-')) found.push(rawHeaders[i] ?? name);
  }
  return found;
}

/** The refused header names for a message, bounded: an agent chooses them (`Impersonate-Extra-…`). */
function namedHeaders(found: readonly string[]): string {
  const shown = found.slice(0, 3).map((name) => (name.length > 64 ? `${name.slice(0, 64)}…` : name));
  return found.length > shown.length ? `${shown.join(', ')} and ${found.length - shown.length} more` : shown.join(', ');
}

export function refuseImpersonation(rawHeaders: readonly string[]): void {
  const found = findImpersonationHeaders(rawHeaders);
  if (found.length > 0) {
    throw new HoopError(
      'ERR_IMPERSONATION',
      `impersonation is not allowed through the gateway (header ${namedHeaders(found)}): each agent acts only as its mapped ServiceAccount. The same call without --as, --as-group or --as-uid may pass`,
    );
  }
}

export interface UpstreamHeaderInput {
  rawHeaders: readonly string[];
  token: string;
  /** Replaces the client's Accept (the masker decides what may be asked for). */
  accept: string;
  contentLength?: number;
}

/** Builds upstream request headers from the allow-list; names listed in `Connection:` are dropped too. */
export function buildUpstreamHeaders(input: UpstreamHeaderInput): Record<string, string> {
  const connectionListed = new Set<string>();
  for (let i = 0; i < input.rawHeaders.length; i += 2) {
    if ((input.rawHeaders[i] ?? '').toLowerCase() === 'connection') {
      for (const token of (input.rawHeaders[i + 1] ?? '').split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  const headers: Record<string, string> = {};
  for (let i = 0; i < input.rawHeaders.length; i += 2) {
    const name = (input.rawHeaders[i] ?? '').toLowerCase();
    const value = input.rawHeaders[i + 1] ?? '';
    if (!forwardedRequestHeaders.has(name) || connectionListed.has(name)) continue;
    // A repeated allowed header is joined as HTTP allows for list-valued headers.
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  headers['accept'] = input.accept;
  headers['accept-encoding'] = 'gzip';
  headers['authorization'] = `Bearer ${input.token}`;
  if (input.contentLength !== undefined) headers['content-length'] = String(input.contentLength);
  return headers;
}

/** Filters upstream response headers for the client (undici gives lower-case names). */
export function buildClientResponseHeaders(
  upstream: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || !forwardedResponseHeaders.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}

/** The single value of a header, refusing duplicates where a duplicate would be ambiguous. */
export function singleHeader(rawHeaders: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() !== name) continue;
    if (value !== undefined) throw new HoopError('ERR_BAD_REQUEST', `header ${name} appears more than once`);
    value = rawHeaders[i + 1] ?? '';
  }
  return value;
}
