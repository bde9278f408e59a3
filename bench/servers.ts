// The bench's child processes, so the load generator, the gateway and the upstream never share an
// event loop: `upstream` (simulated API server + local IdP), `gateway` (one replica from the demo
// config), `mask` and `audit` (isolated micro-benches). Spoken to over the fork IPC channel (children.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';

export const approverClient = {
  clientId: 'bench-approver',
  clientSecret: 'bench-approver-secret',
  groups: ['platform-oncall'],
  email: 'oncall@example.com',
};
/** Requests of ci-deployer for `get configmaps -n held` are held for approval (an added require rule). */
export const heldNamespace = 'held';

export interface UpstreamInfo {
  dir: string;
  simUrl: string;
  simCaFile: string;
  gatewayCaFile: string;
  gatewayCertFile: string;
  gatewayKeyFile: string;
  configPath: string;
  /** A ServiceAccount token of agents/ci-deployer minted by the sim (the direct baseline's credential). */
  saToken: string;
}

export interface GatewayInfo {
  url: string;
  replicaId: string;
}

type Handler = (args: unknown) => Promise<unknown>;

/** bench/child-ipc.mjs and bench/gateway-child.mjs: plain JavaScript, shared with children forked without tsx. */
interface ChildIpc {
  serve(info: unknown, ownHandlers: Record<string, Handler>): void;
}
interface GatewayChild {
  gateway(input: { configPath: string; replicaId: string; logFile: string; compiled?: boolean }): Promise<void>;
}
const ipcModule: string = './child-ipc.mjs';
const gatewayModule: string = './gateway-child.mjs';
const { serve } = (await import(ipcModule)) as ChildIpc;

/** Client-credentials token from the local IdP, as `hoopgate token` gets one. */
async function fetchToken(
  issuer: string,
  ca: string,
  resource: string,
  clientId: string,
  secret: string,
): Promise<string> {
  const agent = new Agent({ connect: { ca } });
  try {
    const discovery = await request(`${issuer}/.well-known/openid-configuration`, { dispatcher: agent });
    const { token_endpoint: tokenEndpoint } = (await discovery.body.json()) as { token_endpoint: string };
    const response = await request(tokenEndpoint, {
      dispatcher: agent,
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
    });
    const body = (await response.body.json()) as { access_token?: string };
    if (body.access_token === undefined)
      throw new Error(`token request for ${clientId} failed: ${JSON.stringify(body)}`);
    return body.access_token;
  } finally {
    await agent.close();
  }
}

// Each role imports only what it runs (dynamic imports), so a micro-bench's RSS is not the gateway's.
async function upstream(input: { dir: string; heldObjects: number }): Promise<void> {
  const { startDemoWorld } = await import('../packages/demo/src/world.js');
  const nullLog = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const world = await startDemoWorld({
    dir: input.dir,
    port: 0,
    logDestination: nullLog,
    extraClients: [approverClient],
    editConfig: (document) => {
      const identities = document['identities'] as { name: string; approval?: { require?: object[] } }[];
      const deployer = identities.find((identity) => identity.name === 'ci-deployer');
      if (deployer?.approval?.require === undefined)
        throw new Error('demo config changed: ci-deployer has no approval.require');
      deployer.approval.require.push({ verbs: ['get'], resources: ['configmaps'], namespaces: [heldNamespace] });
      // Every held request is ci-deployer's: the per-identity cap of pending approvals must admit them all.
      (document['approval'] as Record<string, unknown>)['maxPendingPerIdentity'] = input.heldObjects + 10;
      // …and none may expire before the clicks (taking 10,000 on a busy 2-core machine takes minutes).
      (document['approval'] as Record<string, unknown>)['timeout'] = '1h';
      // …and so must the per-client limits (issue #12): one address, one identity holds them all.
      const wide = { maxConcurrent: input.heldObjects + 256, requestsPerSecond: 1_000_000, burst: 1_000_000 };
      document['limits'] = { ...(document['limits'] as object | undefined), perAddress: wide, perIdentity: wide };
    },
  });
  // Only the simulated API server and the IdP stay here; gateways run in their own processes.
  await world.gateway.close();
  world.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: heldNamespace } });
  for (let i = 0; i < input.heldObjects; i++) {
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `cm-${i}`, namespace: heldNamespace },
      data: { index: String(i) },
    });
  }
  // The sim keeps every request for tests; a bench sends hundreds of thousands, so forget them.
  setInterval(() => {
    world.sim.requests.length = 0;
  }, 1000).unref();
  const idpCa = readFileSync(join(input.dir, 'idp-ca.pem'), 'utf8');
  const info: UpstreamInfo = {
    dir: input.dir,
    simUrl: world.sim.url,
    simCaFile: join(input.dir, 'cluster-ca.pem'),
    gatewayCaFile: join(input.dir, 'gateway-ca.pem'),
    gatewayCertFile: join(input.dir, 'gateway-cert.pem'),
    gatewayKeyFile: join(input.dir, 'gateway-key.pem'),
    configPath: world.configPath,
    saToken: world.sim.issueToken('agents', 'ci-deployer', 24 * 3600),
  };
  serve(info, {
    token: async (args) => {
      const clientId = String(args);
      const secret = readFileSync(join(input.dir, `${clientId}.secret`), 'utf8');
      return fetchToken(world.idp.issuer, idpCa, world.idp.resource, clientId, secret);
    },
    stop: async () => {
      await world.sim.close();
      await world.idp.close();
      setImmediate(() => process.exit(0));
    },
  });
}

async function main(role: string | undefined, input: Record<string, unknown>): Promise<void> {
  switch (role) {
    case 'upstream':
      return upstream(input as Parameters<typeof upstream>[0]);
    case 'gateway':
      return ((await import(gatewayModule)) as GatewayChild).gateway(input as Parameters<GatewayChild['gateway']>[0]);
    case 'mask': {
      const { runs, ...options } = input as { runs: number; totalBytes?: number; secrets?: number };
      const { benchMasking } = await import('./mask.js');
      return serve(await benchMasking(runs, options), {});
    }
    case 'fast-upstream': {
      const { startFastUpstream } = await import('./fast-upstream.js');
      const fast = await startFastUpstream(input as Parameters<typeof startFastUpstream>[0]);
      return serve({ url: fast.url }, {});
    }
    case 'node-floor': {
      const { startNodeFloor } = await import('./node-floor.js');
      const floor = await startNodeFloor(input as unknown as Parameters<typeof startNodeFloor>[0]);
      return serve({ url: floor.url }, {});
    }
    case 'audit': {
      const { benchAudit } = await import('./audit.js');
      return serve(await benchAudit(input as { concurrency: number; durationMs: number }), {});
    }
    default:
      console.error(
        'usage: node --import tsx bench/servers.ts upstream|fast-upstream|node-floor|gateway|mask|audit JSON',
      );
      process.exit(2);
  }
}

// Only as a child's entry point: run.ts imports the constants above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, json] = process.argv.slice(2);
  await main(role, JSON.parse(json ?? '{}') as Record<string, unknown>);
}
