// Checks that need a library `serve` loads anyway: kube/kubeconfig.ts reads the gateway's kubeconfig, the
// MongoDB driver parses the connection string. Each is imported only when the config uses it, and
// runs the very function `serve` runs at start. loadConfig (serve and check) calls this after the
// schema walk, so its problems are reported together with the others.
import type { ParsedConfig } from './schema.js';
import { pathOf, report } from './walker.js';
import type { DeepPartial, WalkContext } from './walker.js';

export async function checkWithLibraries(config: DeepPartial<ParsedConfig>, cx: WalkContext): Promise<void> {
  const clusters = config.clusters ?? [];
  for (const [i, cluster] of clusters.entries()) {
    const credentials = cluster?.credentials as { kubeconfig?: string; context?: string } | undefined;
    if (!cx.checkFiles || credentials?.kubeconfig === undefined) continue;
    const { readKubeConfigFile } = await import('./kubeconfig-file.js');
    const read = readKubeConfigFile(credentials.kubeconfig, credentials.context);
    if ('problem' in read) report(cx, pathOf(pathOf(pathOf('clusters', i), 'credentials'), read.field), read.problem);
  }

  const store = config.audit?.store;
  if (store !== undefined && /^mongodb(\+srv)?:/.test(store)) {
    const { MongoClient } = await import('mongodb');
    try {
      // The constructor parses and validates; it connects only when asked to.
      new MongoClient(store);
    } catch (error) {
      report(cx, 'audit.store', `not a usable MongoDB connection string: ${(error as Error).message}`);
    }
  }
}
