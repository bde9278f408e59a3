// Reads the gateway's own kubeconfig file (clusters[].credentials.kubeconfig) as client-node reads it:
// `hoopgate check` (through library-checks.ts) and kube/cluster-client.ts at start refuse the same files.
import { KubeConfig } from '@kubernetes/client-node';

/**
 * The gateway's kubeconfig credentials, read as buildKubeConfig reads them at start; `hoopgate check`
 * calls it too, so both refuse the same files. A problem names the field to fix.
 */
export function readKubeConfigFile(file: string, context: string | undefined): { kubeConfig: KubeConfig } | { field: 'kubeconfig' | 'context'; problem: string } {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (error) {
    return { field: 'kubeconfig', problem: `cannot use kubeconfig ${file}: ${(error as Error).message}` };
  }
  if (context !== undefined) {
    if (kc.getContextObject(context) === null) {
      const names = kc.getContexts().map((c) => JSON.stringify(c.name));
      return { field: 'context', problem: `kubeconfig ${file} has no context "${context}" (it has ${names.length === 0 ? 'none' : names.join(', ')})` };
    }
    kc.setCurrentContext(context);
  }
  if (kc.getCurrentCluster() === null) {
    return { field: 'context', problem: `kubeconfig ${file} has no current context with a cluster; set clusters[].credentials.context` };
  }
  return { kubeConfig: kc };
}
