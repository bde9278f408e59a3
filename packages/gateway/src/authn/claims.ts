// Reads claims by "dot path" (`groupsClaim`, `usernameClaim`, `match.claims`), the way operators
// name nested claims such as `realm_access.roles`.

/**
 * Keys may contain dots themselves (Auth0-style `https://example.com/groups`, the `kubernetes.io`
 * claim of ServiceAccount tokens): at each level the longest key that is a prefix of the remaining
 * path wins, then the rest is read inside it. Only own properties of plain objects are followed.
 */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  const segments = path.split('.');
  for (let cut = segments.length - 1; cut >= 1; cut -= 1) {
    const head = segments.slice(0, cut).join('.');
    if (!Object.hasOwn(claims, head)) continue;
    const inner = claims[head];
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return undefined;
    return readClaim(inner as Record<string, unknown>, segments.slice(cut).join('.'));
  }
  return undefined;
}

/** Groups may be one string or a list of strings; anything else is `undefined` (a malformed claim). */
export function readStringList(claims: Readonly<Record<string, unknown>>, path: string): readonly string[] | undefined {
  const value = readClaim(claims, path);
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v): v is string => typeof v === 'string')) return value;
  return undefined;
}
