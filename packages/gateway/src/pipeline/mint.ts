// Stage 10, mint: the ServiceAccount's short-lived TokenRequest token (cached and shared by
// kube/service-account-tokens.ts), the only credential the API server sees. When the gateway cannot
// get one, the fix is the operator's (credentials, RBAC, a missing account): the agent reads that, and
// the operator's detail (which config key) goes to the log line (issue #16).
import { HoopError } from '../lib/errors.js';
import { refused, type ClusterRuntime, type Step } from './types.js';

export async function mintToken(
  cluster: ClusterRuntime,
  serviceAccount: string,
  auditId?: string,
): Promise<Step<{ token: string }>> {
  try {
    return { ok: true, token: await cluster.tokens.tokenFor(serviceAccount) };
  } catch (error) {
    if (!(error instanceof HoopError)) throw error;
    if (error.code !== 'ERR_UPSTREAM_TOKEN') return refused(error);
    const quote = auditId === undefined ? '' : `, quoting Audit-Id ${auditId}`;
    return refused(
      new HoopError(
        'ERR_UPSTREAM_TOKEN',
        `the gateway could not get a token for serviceaccount ${serviceAccount} on cluster "${cluster.config.name}": its own setup needs fixing, not your call; run it again later or ask the gateway's operators${quote}`,
        { cause: error, details: error.details, operatorDetail: error.operatorDetail ?? error.message },
      ),
    );
  }
}
