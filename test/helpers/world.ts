// The end-to-end test world: simulated cluster + local IdP + gateway (startDemoWorld), real kubectl
// through the gateway, raw HTTPS calls with any token, and the canary scan: every byte the gateway
// wrote to a client, every log line and every audit record is searched for the Secret canaries.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { startDemoWorld, type DemoWorld, type DemoWorldOptions } from '../../packages/demo/src/world.js';
import { runKubectl, spawnKubectl, type KubectlResult, type KubectlVersion } from './kubectl.js';
import { observeClientBytes } from './observe-client-bytes.js';

export interface TestWorld extends DemoWorld {
  logLines: string[];
  clientBytes: () => string;
  kubectl(
    args: string[],
    options?: { context?: string; version?: KubectlVersion; stdin?: string; timeoutMs?: number },
  ): Promise<KubectlResult>;
  spawnKubectl(
    args: string[],
    options?: { context?: string; version?: KubectlVersion },
  ): ReturnType<typeof spawnKubectl>;
  /** An HTTPS call to the gateway with exactly these headers (no kubectl in between). */
  call(
    path: string,
    options?: {
      method?: string;
      headers?: Record<string, string | string[]>;
      body?: string;
      signal?: AbortSignal;
      origin?: string;
    },
  ): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: () => any }>;
  /** A fresh OIDC access token for a demo client (client credentials at the local IdP). */
  token(clientId: string): Promise<string>;
  /** Fails if any canary (seeded or added) appears in client bytes, logs or the audit store. */
  assertNoCanaryLeaked(extra?: readonly string[]): Promise<void>;
}

export async function startTestWorld(options: Partial<DemoWorldOptions> = {}): Promise<TestWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'hoopgate-e2e-'));
  const logLines: string[] = [];
  const client: Buffer[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  const world = await startDemoWorld({
    dir,
    port: 0,
    logDestination,
    ...options,
    // A test that holds a request by mistake fails in 30 s, not the demo's 5 minutes.
    editConfig: (document) => {
      (document['approval'] as Record<string, unknown>)['timeout'] = '30s';
      options.editConfig?.(document);
    },
    gateway: { approvalPollMs: 50, ...options.gateway },
  });
  observeClientBytes(world.gateway.server, (chunk) => client.push(Buffer.from(chunk)));
  // Outcomes and log lines are written in batches (issue #13): a test that reads them right after a
  // request sees them because every read flushes first (the recorder's queue, the log buffer).
  const audit = world.gateway.store.audit;
  const listRecords = audit.listRecords.bind(audit);
  audit.listRecords = async (query) => {
    await world.gateway.recorder.flush();
    return listRecords(query);
  };
  const agent = new Agent({ connect: { ca: world.gatewayTls.ca } });
  const contextArgs = (context?: string) => (context === undefined ? [] : ['--context', context]);

  return {
    ...world,
    get logLines() {
      world.gateway.logger.flush?.();
      return logLines;
    },
    clientBytes: () => Buffer.concat(client).toString('latin1'),
    kubectl: (args, opts = {}) =>
      runKubectl([...contextArgs(opts.context), ...args], {
        kubeconfig: world.kubeconfigPath,
        timeoutMs: opts.timeoutMs ?? 30_000,
        ...(opts.version === undefined ? {} : { version: opts.version }),
        ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
      }),
    spawnKubectl: (args, opts = {}) =>
      spawnKubectl([...contextArgs(opts.context), ...args], {
        kubeconfig: world.kubeconfigPath,
        ...(opts.version === undefined ? {} : { version: opts.version }),
      }),
    async call(path, opts = {}) {
      // dispatcher.request sends `path` byte for byte; a URL would be normalised by the client first.
      const response = await agent.request({
        origin: opts.origin ?? world.gateway.url,
        path,
        method: (opts.method ?? 'GET') as 'GET',
        headers: opts.headers ?? {},
        ...(opts.body === undefined ? {} : { body: opts.body }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
      const text = await response.body.text();
      return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
    },
    async token(clientId) {
      const secret = readFileSync(join(dir, `${clientId}.secret`), 'utf8');
      const response = await fetchToken(world, clientId, secret);
      return response;
    },
    async assertNoCanaryLeaked(extra = []) {
      const canaries = [...world.sim.canaries, ...extra];
      assert.ok(canaries.length > 0, 'the test world has canaries to look for');
      const records = await world.gateway.store.audit.listRecords({});
      const haystacks: [string, string][] = [
        ['bytes returned to clients', Buffer.concat(client).toString('utf8')],
        ['gateway logs', logLines.join('\n')],
        ['audit store', JSON.stringify(records)],
      ];
      for (const [where, text] of haystacks) {
        for (const canary of canaries) assert.ok(!text.includes(canary), `canary ${canary} leaked into ${where}`);
      }
    },
    async close() {
      await world.close();
      await agent.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function fetchToken(world: DemoWorld, clientId: string, secret: string): Promise<string> {
  const idpAgent = new Agent({ connect: { ca: readFileSync(join(world.dir, 'idp-ca.pem'), 'utf8') } });
  try {
    const discovery = await request(`${world.idp.issuer}/.well-known/openid-configuration`, { dispatcher: idpAgent });
    const { token_endpoint: tokenEndpoint } = (await discovery.body.json()) as { token_endpoint: string };
    const response = await request(tokenEndpoint, {
      dispatcher: idpAgent,
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: world.idp.resource }).toString(),
    });
    const body = (await response.body.json()) as { access_token?: string; error?: string };
    if (body.access_token === undefined)
      throw new Error(`token request for ${clientId} failed: ${JSON.stringify(body)}`);
    return body.access_token;
  } finally {
    await idpAgent.close();
  }
}
