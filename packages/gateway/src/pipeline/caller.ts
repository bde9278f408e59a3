// Stages 4–5, who is calling: authenticate (one bearer token, verified) and map the identity (the
// first matching identities[] entry); Impersonate-* is refused only then, so the record names who
// tried (#12 item 6).
import type { Principal } from '../authn/principal.js';
import { extractBearer } from '../authn/bearer.js';
import { refusedCallerOf } from '../authn/refused-caller.js';
import type { IdentityConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { mapIdentity, noIdentityDecision, type Helpers } from '../policy/index.js';
import { refuseImpersonation, singleHeader } from '../proxy/headers.js';
import { refused, type IncomingRequest, type Step } from './types.js';

type Verifier = { verify(token: string, scope?: object): Promise<Principal> };

/** 4. authenticate: the bearer token (exactly one, never in the query) verified into a Principal. */
export async function authenticate(
  request: IncomingRequest,
  verifier: Verifier,
): Promise<Step<{ principal: Principal }>> {
  try {
    singleHeader(request.rawHeaders, 'x-hoop-reason');
    const token = extractBearer(
      request.headers as Record<string, string | string[] | undefined>,
      [...request.rawHeaders],
      request.rawUrl,
    );
    return { ok: true, principal: await verifier.verify(token, request.scope) };
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
}

/**
 * What a refusal at authentication knows of the caller: nothing, unless the token verified and the
 * caller was refused after (the per-identity limit); then the principal and the identity it maps to.
 */
export function refusedCaller(
  identities: readonly IdentityConfig[],
  refusal: { error: HoopError },
  cluster: string,
): { principal: Principal; identity?: IdentityConfig } | undefined {
  const principal = refusedCallerOf(refusal.error);
  if (principal === undefined) return undefined;
  const mapped = mapIdentity(identities, principal, cluster);
  return mapped === null ? { principal } : { principal, identity: mapped.identity };
}

/** 5. map identity: the identity this principal acts as on this cluster, or a recorded 403. */
export function mapCaller(
  identities: readonly IdentityConfig[],
  principal: Principal,
  cluster: string,
  helping: { helpers?: Helpers; auditId?: string } = {},
): Step<{ identity: IdentityConfig; identityIndex: number }> {
  const mapped = mapIdentity(identities, principal, cluster);
  if (mapped === null) {
    // Names the cluster when the caller would map to an identity limited to other clusters.
    const refusal = noIdentityDecision(identities, principal, cluster, helping);
    return refused(new HoopError('ERR_NO_IDENTITY', refusal.message, { operatorDetail: refusal.detail }), {
      effect: 'deny',
      reason: refusal.reason,
      message: refusal.message,
      ...(refusal.rule === undefined ? {} : { rule: refusal.rule }),
    });
  }
  return { ok: true, identity: mapped.identity, identityIndex: mapped.index };
}

/** 5b. no impersonation: an agent acts only as its mapped ServiceAccount. */
export function checkNoImpersonation(rawHeaders: readonly string[]): Step<object> {
  try {
    refuseImpersonation(rawHeaders);
    return { ok: true };
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
}
