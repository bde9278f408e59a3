// Reads claims by "dot path" (`groupsClaim`, `usernameClaim`, `match.claims`), the way operators
// name nested claims such as `realm_access.roles`.

/**
 * A key that itself contains dots (Auth0-style `https://example.com/groups`) is tried whole first,
 * then the path is walked segment by segment through plain objects.
 */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Groups may be one string or a list of strings; anything else is `undefined` (a malformed claim). */
export function readStringList(claims: Readonly<Record<string, unknown>>, path: string): readonly string[] | undefined {
  const value = readClaim(claims, path);
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return value;
  return undefined;
}
