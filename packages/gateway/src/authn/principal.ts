// Who is calling, as established from a verified OIDC token.

export interface Principal {
  issuer: string;
  subject: string;
  /** From `usernameClaim` (default `sub`). */
  username: string;
  email?: string;
  /** False when the token says `email_verified: false`; only a verified email links an approver across channels. */
  emailVerified?: boolean;
  groups: readonly string[];
  /** All verified claims, for `match.claims` dot paths. */
  claims: Readonly<Record<string, unknown>>;
  /** Token expiry (ms since epoch): a held call must not outlive its token's authority by much. */
  expiresAt: number;
}
