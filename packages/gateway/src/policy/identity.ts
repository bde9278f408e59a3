// Maps a verified principal to the first configured identity whose `match` holds on this cluster
// (docs/reference.md §4.2: first match wins; no match is a 403).
import { readClaim } from '../authn/claims.js';
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig, IdentityMatch } from '../config/types.js';

// The same dot-path reading as the verifier's groupsClaim/usernameClaim (`kubernetes.io.namespace` works).
export { readClaim };

/** A string claim holds when it is one of the values; an array claim when any string in it is. */
function claimHolds(claim: unknown, accepted: readonly string[]): boolean {
  if (typeof claim === 'string') return accepted.includes(claim);
  if (Array.isArray(claim)) return claim.some((item) => typeof item === 'string' && accepted.includes(item));
  // Numbers, booleans, objects: never coerced, so `true` cannot pass for "true".
  return false;
}

/** Every present `match` field must hold; each list holds when any of its values matches. */
export function matchHolds(match: IdentityMatch, principal: Principal): boolean {
  if (match.issuer !== undefined && !match.issuer.includes(principal.issuer)) return false;
  if (match.subjects !== undefined && !match.subjects.includes(principal.subject)) return false;
  if (match.groups !== undefined && !principal.groups.some((group) => match.groups?.includes(group))) return false;
  if (match.claims !== undefined) {
    for (const [path, accepted] of Object.entries(match.claims)) {
      if (!claimHolds(readClaim(principal.claims, path), accepted)) return false;
    }
  }
  return true;
}

/** An empty `match` maps every authenticated principal: allowed, but `hoopgate check` should say so. */
export function matchesEveryone(match: IdentityMatch): boolean {
  return (
    match.issuer === undefined &&
    match.subjects === undefined &&
    match.groups === undefined &&
    match.claims === undefined
  );
}

export function identityAllowsCluster(identity: IdentityConfig, cluster: string): boolean {
  return identity.clusters === undefined || identity.clusters.includes(cluster);
}

export function mapIdentity(
  identities: readonly IdentityConfig[],
  principal: Principal,
  cluster: string,
): { identity: IdentityConfig; index: number } | null {
  for (const [index, identity] of identities.entries()) {
    if (!identityAllowsCluster(identity, cluster)) continue;
    if (matchHolds(identity.match, principal)) return { identity, index };
  }
  return null;
}
