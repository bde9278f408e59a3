import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import {
  createClusterClient,
  type ClusterClient,
  type ServiceAccountToken,
} from '../../packages/gateway/src/kube/cluster-client.js';
import { createServiceAccountTokens } from '../../packages/gateway/src/kube/service-account-tokens.js';
import { startSimCluster } from '../../packages/sim/src/index.js';

function clusterConfig(partial: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: 'prod',
    server: 'https://127.0.0.1:1',
    insecureSkipTLSVerify: false,
    tokens: 'tokenRequest',
    tokenTTLMs: 600_000,
    staticTokens: {},
    ...partial,
  };
}

/** A fake TokenRequest API: counts calls, lets the test release or fail them. */
function fakeClient(clock: () => number) {
  const calls: Array<{ namespace: string; name: string; ttlSeconds: number }> = [];
  let failNext: Error | undefined;
  let gate: Promise<void> | undefined;
  let serial = 0;
  const client: Pick<ClusterClient, 'requestServiceAccountToken'> = {
    async requestServiceAccountToken(namespace, name, ttlSeconds): Promise<ServiceAccountToken> {
      calls.push({ namespace, name, ttlSeconds });
      if (gate !== undefined) await gate;
      if (failNext !== undefined) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      serial += 1;
      return { token: `${namespace}:${name}:${serial}`, expiresAt: clock() + ttlSeconds * 1000 };
    },
  };
  return {
    client,
    calls,
    failOnce(error: Error) {
      failNext = error;
    },
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

test('tokenRequest: cached per account, refreshed at 80% of the lifetime', async () => {
  let now = 1_000_000;
  const clock = () => now;
  const fake = fakeClient(clock);
  const tokens = createServiceAccountTokens({
    client: fake.client,
    cluster: clusterConfig({ tokenTTLMs: 1_000_000 }),
    clock,
  });

  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  assert.deepEqual(fake.calls, [{ namespace: 'agents', name: 'ci', ttlSeconds: 1000 }]);
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  assert.equal(await tokens.tokenFor('agents/other'), 'agents:other:2');
  assert.equal(fake.calls.length, 2);

  now += 799_000; // just before 80% of 1000 s
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  assert.equal(fake.calls.length, 2);
  now += 1_000; // at 80%: the still-valid token answers at once, the refresh runs in the background
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  assert.equal(fake.calls.length, 3);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:3');
  assert.equal(fake.calls.length, 3);
  now += 1_000_000; // long expired, never refreshed since: the caller waits for a fresh mint
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:4');
});

test('tokenRequest: the TTL is at least 600 s, like the API server requires', async () => {
  const fake = fakeClient(Date.now);
  const tokens = createServiceAccountTokens({ client: fake.client, cluster: clusterConfig({ tokenTTLMs: 60_000 }) });
  await tokens.tokenFor('agents/ci');
  assert.equal(fake.calls[0]?.ttlSeconds, 600);
});

test('tokenRequest: one mint for many concurrent requests (single flight)', async () => {
  const fake = fakeClient(Date.now);
  const tokens = createServiceAccountTokens({ client: fake.client, cluster: clusterConfig() });
  const release = fake.hold();
  const waiting = Array.from({ length: 50 }, () => tokens.tokenFor('agents/ci'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fake.calls.length, 1);
  release();
  const results = await Promise.all(waiting);
  assert.deepEqual(new Set(results), new Set(['agents:ci:1']));
  assert.equal(fake.calls.length, 1);
});

test('tokenRequest: errors are not cached, and every waiter sees the error', async () => {
  const fake = fakeClient(Date.now);
  const tokens = createServiceAccountTokens({ client: fake.client, cluster: clusterConfig() });
  fake.failOnce(
    new HoopError(
      'ERR_UPSTREAM_TOKEN',
      'cluster "prod": the gateway\'s credential may not create serviceaccounts/token for agents/ci: grant it with deploy/rbac',
    ),
  );
  const release = fake.hold();
  const a = tokens.tokenFor('agents/ci');
  const b = tokens.tokenFor('agents/ci');
  release();
  for (const p of [a, b])
    await assert.rejects(
      p,
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        /grant it with deploy\/rbac/.test(error.message),
    );
  assert.equal(fake.calls.length, 1);
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  assert.equal(fake.calls.length, 2);
});

test('tokenRequest: a failed refresh keeps a still-valid token; an expired one is not handed out', async () => {
  let now = 0;
  const clock = () => now;
  const fake = fakeClient(clock);
  const tokens = createServiceAccountTokens({ client: fake.client, cluster: clusterConfig(), clock });
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  now = 500_000; // past 80% of 600 s, still valid
  fake.failOnce(new Error('boom'));
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:1');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fake.calls.length, 2);
  now = 595_000; // within 10 s of expiry
  fake.failOnce(new Error('boom'));
  await assert.rejects(tokens.tokenFor('agents/ci'), /boom/);
  assert.equal(await tokens.tokenFor('agents/ci'), 'agents:ci:2');
});

test('tokenRequest: an account that is not namespace/name is refused', async () => {
  const fake = fakeClient(Date.now);
  const tokens = createServiceAccountTokens({ client: fake.client, cluster: clusterConfig() });
  await assert.rejects(
    tokens.tokenFor('ci'),
    (error: unknown) => error instanceof HoopError && /must be "namespace\/name"/.test(error.message),
  );
  assert.equal(fake.calls.length, 0);
});

test('static tokens: read from the file on each use; a missing entry names the account', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-static-'));
  try {
    const file = join(dir, 'ci.token');
    writeFileSync(file, 'static-token-1\n');
    const tokens = createServiceAccountTokens({
      cluster: clusterConfig({ tokens: 'static', staticTokens: { 'agents/ci': { tokenFile: file } } }),
    });
    assert.equal(await tokens.tokenFor('agents/ci'), 'static-token-1');
    writeFileSync(file, 'static-token-2');
    assert.equal(await tokens.tokenFor('agents/ci'), 'static-token-2');
    await assert.rejects(
      tokens.tokenFor('agents/other'),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        error.message ===
          'cluster "prod" uses static tokens but has none for serviceaccount agents/other: add staticTokens["agents/other"].tokenFile to that cluster',
    );
    writeFileSync(file, '');
    await assert.rejects(tokens.tokenFor('agents/ci'), /is empty/);
    rmSync(file);
    await assert.rejects(tokens.tokenFor('agents/ci'), /cannot read the token of serviceaccount agents\/ci/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('against the simulated API server: TokenRequest through client-node with the gateway credential file', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-sim-'));
  try {
    sim.createServiceAccount('agents', 'ci');
    const caFile = join(dir, 'ca.crt');
    const tokenFile = join(dir, 'token');
    writeFileSync(caFile, sim.ca);
    writeFileSync(tokenFile, `${sim.adminToken}\n`);
    const cluster = clusterConfig({ server: sim.url, caFile, credentials: { tokenFile } });
    const client = await createClusterClient(cluster);
    const tokens = createServiceAccountTokens({ client, cluster });

    const [a, b] = await Promise.all([tokens.tokenFor('agents/ci'), tokens.tokenFor('agents/ci')]);
    assert.equal(a, b);
    const mints = sim.requests.filter(
      (r) => r.method === 'POST' && r.rawPath.startsWith('/api/v1/namespaces/agents/serviceaccounts/ci/token'),
    );
    assert.equal(mints.length, 1);
    assert.equal(mints[0]?.identity, 'admin');
    // The minted token authenticates as the ServiceAccount.
    await new Promise<void>((resolve, reject) => {
      https
        .get(
          `${sim.url}/api/v1/namespaces/agents/pods`,
          { ca: sim.ca, headers: { authorization: `Bearer ${a}` } },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        )
        .on('error', reject);
    });
    assert.equal(sim.requests.at(-1)?.identity, 'system:serviceaccount:agents:ci');
    const minted = await client.requestServiceAccountToken('agents', 'ci', 600);
    assert.ok(minted.expiresAt > Date.now() + 590_000 && minted.expiresAt <= Date.now() + 601_000);

    // The credential file is re-read on every use: a rotated (here: broken) token takes effect at once.
    writeFileSync(tokenFile, 'not-a-valid-token');
    await assert.rejects(
      client.requestServiceAccountToken('agents', 'ci', 600),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        /cluster "prod": the API server did not accept the gateway's own credential/.test(error.message),
    );
    writeFileSync(tokenFile, sim.adminToken);
    await assert.rejects(
      client.requestServiceAccountToken('agents', 'missing', 600),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        /serviceaccount agents\/missing does not exist: create it \(kubectl -n agents create serviceaccount missing\)/.test(
          error.message,
        ),
    );
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('against the simulated API server: a credential without RBAC for TokenRequest gets the deploy/rbac hint', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-sim-'));
  try {
    sim.createServiceAccount('agents', 'ci');
    sim.createServiceAccount('hoopgate', 'gateway');
    const caFile = join(dir, 'ca.crt');
    const tokenFile = join(dir, 'token');
    writeFileSync(caFile, sim.ca);
    writeFileSync(tokenFile, sim.issueToken('hoopgate', 'gateway'));
    const client = await createClusterClient(clusterConfig({ server: sim.url, caFile, credentials: { tokenFile } }));
    await assert.rejects(
      client.requestServiceAccountToken('agents', 'ci', 600),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_TOKEN' &&
        error.status === 503 &&
        /^cluster "prod": the gateway's credential may not create serviceaccounts\/token for agents\/ci .*: grant it with deploy\/rbac$/.test(
          error.message,
        ),
    );
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreachable API server is ERR_UPSTREAM_UNREACHABLE naming the cluster and server', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-sim-'));
  const url = sim.url;
  const ca = sim.ca;
  await sim.close();
  try {
    const caFile = join(dir, 'ca.crt');
    const tokenFile = join(dir, 'token');
    writeFileSync(caFile, ca);
    writeFileSync(tokenFile, 'x');
    const client = await createClusterClient(clusterConfig({ server: url, caFile, credentials: { tokenFile } }));
    await assert.rejects(
      client.requestServiceAccountToken('agents', 'ci', 600),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_UPSTREAM_UNREACHABLE' &&
        error.message.startsWith(
          `cluster "prod": cannot reach the API server at ${url} to create a token for serviceaccount agents/ci:`,
        ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createClusterClient refuses a missing or empty credential file at start', async () => {
  await assert.rejects(
    createClusterClient(clusterConfig({ credentials: { tokenFile: '/nonexistent/token' } })),
    (error: unknown) =>
      error instanceof HoopError &&
      error.code === 'ERR_UPSTREAM_TOKEN' &&
      /cluster "prod": cannot read the gateway's credential \/nonexistent\/token/.test(error.message),
  );
  await assert.rejects(
    createClusterClient(clusterConfig()),
    (error: unknown) =>
      error instanceof HoopError && error.code === 'ERR_CONFIG' && /has no credentials/.test(error.message),
  );
});
