// The bench's child processes, so the load generator, the gateway and the upstream never share an
// event loop: `upstream` (simulated API server + local IdP), `gateway` (one replica from the demo
// config), `mask` and `audit` (isolated micro-benches). Spoken to over the fork IPC channel (children.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Agent, request } from 'undici';
import type * as ConfigLoad from '../packages/gateway/src/config/load.js';
import type * as Gateway from '../packages/gateway/src/gateway.js';

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
type Message = { type: 'call'; id: number; op: string; args?: unknown };

function send(message: unknown): void {
  process.send?.(message);
}

/** A process's own view of its memory (heap vs RSS), for reports. */
const memoryHandler: Handler = async () => {
  const m = process.memoryUsage();
  const mb = (v: number) => Math.round(v / 1024 / 1024);
  return {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
    arrayBuffersMb: mb(m.arrayBuffers),
  };
};

function serve(info: unknown, ownHandlers: Record<string, Handler>): void {
  const handlers: Record<string, Handler> = {
    memory: memoryHandler,
    stop: async () => {
      setImmediate(() => process.exit(0));
    },
    ...ownHandlers,
  };
  process.on('message', (raw) => {
    const message = raw as Message;
    if (message?.type !== 'call') return;
    const handler = handlers[message.op];
    if (handler === undefined) {
      send({ type: 'reply', id: message.id, ok: false, error: `unknown op ${message.op}` });
      return;
    }
    handler(message.args).then(
      (result) => send({ type: 'reply', id: message.id, ok: true, result }),
      (error: unknown) =>
        send({
          type: 'reply',
          id: message.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  // The parent going away ends the child: nothing is left running after a crashed bench.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', info });
}

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

async function gateway(input: {
  configPath: string;
  replicaId: string;
  logFile: string;
  /** Run the compiled gateway (dist/, what `hoopgate serve` runs) instead of the sources through tsx. */
  compiled?: boolean;
}): Promise<void> {
  const { destination } = await import('pino');
  const from = input.compiled === true ? 'hoopgate' : '../packages/gateway/src';
  const { loadConfig } = (await import(`${from}/config/load.js`)) as typeof ConfigLoad;
  const { startGateway } = (await import(`${from}/gateway.js`)) as typeof Gateway;
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params ?? {}, (error, result) => (error === null ? resolve(result) : reject(error))),
    );
  const config = await loadConfig(input.configPath, {});
  const logDestination = destination({ dest: input.logFile, sync: false, mkdir: true });
  const gw = await startGateway({ config, replicaId: input.replicaId, logDestination });
  const info: GatewayInfo = { url: gw.url, replicaId: gw.replicaId };
  let loopDelay: IntervalHistogram | undefined;
  serve(info, {
    /** Event-loop delay (ms) from 'loop-delay-start' on: a click's tail spent with the loop blocked shows here. */
    'loop-delay-start': async () => {
      loopDelay = monitorEventLoopDelay({ resolution: 5 });
      loopDelay.enable();
    },
    'loop-delay-stop': async () => {
      loopDelay?.disable();
      const ms = (ns: number) => Math.round(ns / 1e5) / 10;
      return {
        p50Ms: ms(loopDelay?.percentile(50) ?? 0),
        p99Ms: ms(loopDelay?.percentile(99) ?? 0),
        maxMs: ms(loopDelay?.max ?? 0),
      };
    },
    /** Requests this replica holds for approval right now (the pending-approvals gauge). */
    held: async () => (await gw.metrics.pendingApprovals.get()).values.reduce((sum, v) => sum + v.value, 0),
    /** Two full GCs (as the held-h2 floor measures after one): what holding costs once the garbage of taking them is gone. */
    gc: async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      gc();
    },
    /** A heap snapshot to `file` (to see what held requests keep alive). */
    'heap-snapshot': async (file) => writeHeapSnapshot(String(file)),
    /** Durable audit writes and records so far (group commit: records per write). */
    'audit-stats': async () => gw.store.audit.stats(),
    /** CPU profile of this process for a window only (startup excluded), like `--cpu-prof`. */
    'profile-start': async () => {
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 500 });
      await post('Profiler.start');
    },
    'profile-stop': async (file) => {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(String(file), JSON.stringify(profile));
      return String(file);
    },
    stop: async () => {
      await gw.close();
      logDestination.flushSync();
      setImmediate(() => process.exit(0));
    },
  });
}

async function main(role: string | undefined, input: Record<string, unknown>): Promise<void> {
  switch (role) {
    case 'upstream':
      return upstream(input as Parameters<typeof upstream>[0]);
    case 'gateway':
      return gateway(input as Parameters<typeof gateway>[0]);
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
