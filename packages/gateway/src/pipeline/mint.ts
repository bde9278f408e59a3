// Stage 10, mint: the ServiceAccount's short-lived TokenRequest token (cached and shared by
// kube/service-account-tokens.ts), the only credential the API server sees.
import { HoopError } from '../lib/errors.js';
import { refused, type ClusterRuntime, type Step } from './types.js';

export async function mintToken(cluster: ClusterRuntime, serviceAccount: string): Promise<Step<{ token: string }>> {
  try {
    return { ok: true, token: await cluster.tokens.tokenFor(serviceAccount) };
  } catch (error) {
    if (error instanceof HoopError) return refused(error);
    throw error;
  }
}
