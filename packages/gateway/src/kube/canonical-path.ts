// Refuses request targets the gateway and the API server could read differently. A path is
// classified and forwarded byte for byte, so anything that a decoder or a path cleaner might change
// (`//`, dot segments, encoded separators, control characters) is refused, never normalised.

export type CanonicalPathResult = { ok: true } | { ok: false; problem: string };

// RFC 3986 `pchar` minus `%` (checked separately) plus `/`: unreserved, sub-delims, `:` and `@`.
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
const HEX = /^[0-9A-Fa-f]{2}$/;
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

function describeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f || code > 0x7e
    ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
    : `"${char}"`;
}

function isControl(code: number): boolean {
  return code < 0x20 || code === 0x7f;
}

function checkPath(path: string): CanonicalPathResult {
  if (!path.startsWith('/')) return { ok: false, problem: `the path must start with "/"` };
  // Fast path: only allowed characters and no "%": the per-character scan has nothing to find.
  const plain = PLAIN_PATH.test(path);
  for (let i = 0; !plain && i < path.length; i++) {
    const char = path[i] as string;
    if (char === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { ok: false, problem: `invalid percent-encoding at offset ${i}` };
      const code = Number.parseInt(hex, 16);
      if (code === 0x2f) return { ok: false, problem: `an encoded "/" (%${hex}) in the path` };
      if (code === 0x5c) return { ok: false, problem: `an encoded "\\" (%${hex}) in the path` };
      if (code === 0x2e) return { ok: false, problem: `an encoded "." (%${hex}) in the path` };
      // A literal "%" after one decode invites double-decoding confusion; no Kubernetes name has one.
      if (code === 0x25) return { ok: false, problem: `an encoded "%" (%${hex}) in the path` };
      if (isControl(code)) return { ok: false, problem: `an encoded control character (%${hex}) in the path` };
      i += 2;
      continue;
    }
    if (char === '\\') return { ok: false, problem: `a backslash in the path` };
    const code = char.charCodeAt(0);
    if (isControl(code)) return { ok: false, problem: `a control character (${describeChar(char)}) in the path` };
    if (!PATH_CHAR.test(char))
      return { ok: false, problem: `the character ${describeChar(char)} must be percent-encoded in the path` };
  }
  if (path.includes('//')) return { ok: false, problem: `an empty path segment ("//")` };
  // Segments between slashes; a trailing slash leaves an empty last segment, which is allowed.
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..') return { ok: false, problem: `a "${segment}" path segment` };
  }
  return { ok: true };
}

function checkQuery(query: string): CanonicalPathResult {
  for (const char of query) {
    const code = char.codePointAt(0) ?? 0;
    if (isControl(code))
      return { ok: false, problem: `a control character (${describeChar(char)}) in the query string` };
    if (code > 0x7e)
      return { ok: false, problem: `the character ${describeChar(char)} must be percent-encoded in the query string` };
    if (char === '#') return { ok: false, problem: `a "#" in the request target` };
  }
  return { ok: true };
}

/**
 * Checks a request target (path and optional query, as received). The query may carry any
 * percent-encoded bytes (an exec `command=` may hold an encoded newline) but no raw control characters.
 */
export function checkCanonicalPath(rawPath: string): CanonicalPathResult {
  const queryAt = rawPath.indexOf('?');
  const path = queryAt === -1 ? rawPath : rawPath.slice(0, queryAt);
  const pathResult = checkPath(path);
  if (!pathResult.ok) return pathResult;
  return queryAt === -1 ? pathResult : checkQuery(rawPath.slice(queryAt + 1));
}
