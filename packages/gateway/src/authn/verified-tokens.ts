// Verified tokens remembered by their SHA-256 digest until `exp` (issue #13, "do each thing once"): a
// kubectl session sends the same JWT on every call, and verifying its signature each time was the
// per-request cost. Bounded LRU; an entry is only good while its issuer's key set is the one it was
// verified against (a JWKS change — rotation, a revoked key — sends every token of that issuer
// through the full check again), and never past `exp` (the full check then refuses it with the
// reason). The token itself is not kept: only its digest, as a map key.
import { createHash } from 'node:crypto';
import type { Principal } from './principal.js';

export interface VerifiedEntry {
  principal: Principal;
  issuer: string;
  /** The issuer's key-set generation the signature was checked against. */
  keyGeneration: number;
  /** ms since epoch: the token's `exp`. */
  expiresAt: number;
}

export interface VerifiedTokenCache {
  get(digest: string): VerifiedEntry | undefined;
  set(digest: string, entry: VerifiedEntry): void;
  delete(digest: string): void;
  readonly size: number;
}

export const defaultVerifiedTokenEntries = 10_000;

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function createVerifiedTokenCache(maxEntries = defaultVerifiedTokenEntries): VerifiedTokenCache {
  const entries = new Map<string, VerifiedEntry>();
  return {
    get(digest) {
      const entry = entries.get(digest);
      if (entry !== undefined) {
        // Map order is insertion order: re-inserting makes it the most recently used.
        entries.delete(digest);
        entries.set(digest, entry);
      }
      return entry;
    },
    set(digest, entry) {
      if (maxEntries <= 0) return;
      entries.delete(digest);
      entries.set(digest, entry);
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
    delete(digest) {
      entries.delete(digest);
    },
    get size() {
      return entries.size;
    },
  };
}
