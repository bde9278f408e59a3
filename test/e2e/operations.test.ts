// Issue #7, what an operator sees: Prometheus metrics (names and labels) after real kubectl traffic,
// the one-JSON-line-per-request log without tokens or bodies, two clusters behind one gateway
// (/k8s/<cluster>/… with its own credential and minted tokens), health and readiness, and the
// kubeconfig `hoopgate kubeconfig` prints, used by real kubectl.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { run as kubeconfigCommand } from '../../packages/gateway/src/cli/kubeconfig.js';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const binPath = fileURLToPath(new URL('../../packages/gateway/bin/hoopgate.js', import.meta.url));
const secondBot = { clientId: 'second-bot', clientSecret: 'second-bot-secret', groups: ['second-ops'] };

function assertStatus(
  response: { status: number; json: () => any },
  code: number,
  reason: string,
  message: RegExp,
): void {
  assert.equal(response.status, code);
  const body = response.json();
  assert.equal(body.apiVersion, 'v1');
  assert.equal(body.kind, 'Status');
  assert.equal(body.status, 'Failure');
  assert.equal(body.code, code);
  assert.equal(body.reason, reason);
  assert.match(body.message, /^hoopgate: /);
  assert.match(body.message, message);
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format → samples (enough of it for prom-client's output). */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] ?? '', type[2] ?? '');
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[label[1] ?? ''] = label[2] ?? '';
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return { samples, types };
}

function find(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** A second simulated cluster, provisioned like the demo's: agent account, its RBAC, the gateway's minter identity. */
function provisionSecondCluster(sim: SimCluster): void {
  const rbac = (kind: string, metadata: object, rest: object) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind,
    metadata,
    ...rest,
  });
  const subject = (namespace: string, name: string) => ({ subjects: [{ kind: 'ServiceAccount', namespace, name }] });
  sim.createServiceAccount('agents', 'second-bot');
  sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'hoopgate' } });
  sim.createServiceAccount('hoopgate', 'hoopgate');
  sim.apply(
    rbac(
      'ClusterRole',
      { name: 'second-pod-reader' },
      { rules: [{ apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['get', 'list', 'watch'] }] },
    ),
  );
  sim.apply(
    rbac(
      'ClusterRoleBinding',
      { name: 'second-bot-reader' },
      {
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'second-pod-reader' },
        ...subject('agents', 'second-bot'),
      },
    ),
  );
  sim.apply(
    rbac(
      'Role',
      { namespace: 'agents', name: 'hoopgate-token-minter' },
      {
        rules: [
          { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'], resourceNames: ['second-bot'] },
        ],
      },
    ),
  );
  sim.apply(
    rbac(
      'RoleBinding',
      { namespace: 'agents', name: 'hoopgate-token-minter' },
      {
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'hoopgate-token-minter' },
        ...subject('hoopgate', 'hoopgate'),
      },
    ),
  );
  sim.apply(
    rbac(
      'ClusterRole',
      { name: 'hoopgate-access-reviewer' },
      { rules: [{ apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] }] },
    ),
  );
  sim.apply(
    rbac(
      'ClusterRoleBinding',
      { name: 'hoopgate-access-reviewer' },
      {
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'hoopgate-access-reviewer' },
        ...subject('hoopgate', 'hoopgate'),
      },
    ),
  );
}

describe('operations: metrics, logs, two clusters, health, kubeconfig', () => {
  let world: TestWorld;
  let second: SimCluster;
  let secondClosed = false;
  let dir: string;

  /** `hoopgate kubeconfig …` in-process, written to a file for kubectl. */
  async function printKubeconfig(file: string, argv: string[]): Promise<string> {
    let stdout = '';
    let stderr = '';
    const code = await kubeconfigCommand(argv, {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: {},
      cwd: world.dir,
      stopSignal: new AbortController().signal,
    });
    assert.equal(code, 0, stderr);
    const path = join(dir, file);
    writeFileSync(path, stdout, { mode: 0o600 });
    return path;
  }

  const exec = (clientId: string) => [
    '--issuer',
    world.idp.issuer,
    '--client-id',
    clientId,
    '--audience',
    'hoopgate',
    '--client-secret-file',
    `${clientId}.secret`,
    '--idp-ca-file',
    'idp-ca.pem',
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-ops-'));
    second = await startSimCluster({ seed: true });
    provisionSecondCluster(second);
    const secondCa = join(dir, 'second-ca.pem');
    const secondToken = join(dir, 'second-gateway-token');
    writeFileSync(secondCa, second.ca);
    writeFileSync(secondToken, second.issueToken('hoopgate', 'hoopgate', 24 * 3600), { mode: 0o600 });
    world = await startTestWorld({
      extraClients: [secondBot],
      editConfig: (document) => {
        const clusters = document.clusters as Record<string, unknown>[];
        clusters.push({
          name: 'second',
          server: second.url,
          caFile: secondCa,
          credentials: { tokenFile: secondToken },
          tokens: 'tokenRequest',
          tokenTTL: '10m',
        });
        const identities = document.identities as Record<string, unknown>[];
        const readonly = identities.find((i) => i.name === 'readonly-bot');
        assert.ok(readonly);
        readonly.clusters = ['demo'];
        identities.push({
          name: 'second-bot',
          match: { groups: ['second-ops'] },
          serviceAccount: 'agents/second-bot',
          clusters: ['second'],
        });
      },
    });
  });

  after(async () => {
    try {
      await world?.assertNoCanaryLeaked();
    } finally {
      await world?.close();
      if (!secondClosed) await second?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('metrics: names and labels after real kubectl traffic (a get and a refused call)', async () => {
    const listed = await world.kubectl(['get', 'pods', '-n', 'staging'], { context: 'readonly-bot' });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^web-0\s/m);
    const refused = await world.kubectl(['get', 'secrets', '-n', 'staging'], { context: 'readonly-bot' });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Error from server \(Forbidden\): hoopgate: /);
    const secrets = await world.kubectl(['get', 'secrets', '-n', 'staging', '-o', 'json'], { context: 'ci-deployer' });
    assert.equal(secrets.code, 0, secrets.stderr);

    const response = await world.call('/hoop/metrics'); // no token: Prometheus scrapes without one
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseMetrics(response.text);
    const expectedTypes: Record<string, string> = {
      hoopgate_requests_total: 'counter',
      hoopgate_decisions_total: 'counter',
      hoopgate_gateway_overhead_seconds: 'histogram',
      hoopgate_upstream_response_seconds: 'histogram',
      hoopgate_pending_approvals: 'gauge',
      hoopgate_token_mints_total: 'counter',
      hoopgate_audit_write_failures_total: 'counter',
      hoopgate_masked_objects_total: 'counter',
    };
    for (const [name, type] of Object.entries(expectedTypes))
      assert.equal(types.get(name), type, `${name} is exposed as a ${type}`);

    const requests = find(samples, 'hoopgate_requests_total');
    for (const sample of requests)
      assert.deepEqual(Object.keys(sample.labels).sort(), ['cluster', 'code', 'effect', 'resource', 'verb']);
    const [allowed] = find(samples, 'hoopgate_requests_total', {
      cluster: 'demo',
      effect: 'allow',
      verb: 'list',
      resource: 'pods',
      code: '200',
    });
    assert.ok(allowed && allowed.value >= 1, 'the kubectl get is counted as allowed list pods 200');
    const [denied] = find(samples, 'hoopgate_requests_total', {
      cluster: 'demo',
      effect: 'deny',
      verb: 'list',
      resource: 'secrets',
      code: '403',
    });
    assert.ok(denied && denied.value >= 1, 'the refused kubectl get is counted as denied list secrets 403');

    assert.ok(
      (find(samples, 'hoopgate_decisions_total', { effect: 'allow', reason: 'rbac-allowed' })[0]?.value ?? 0) >= 1,
    );
    assert.ok((find(samples, 'hoopgate_decisions_total', { effect: 'deny', reason: 'deny-rule' })[0]?.value ?? 0) >= 1);
    for (const histogram of ['hoopgate_gateway_overhead_seconds', 'hoopgate_upstream_response_seconds']) {
      const [count] = find(samples, `${histogram}_count`, { cluster: 'demo' });
      assert.ok(count && count.value >= 1, `${histogram}{cluster="demo"} observed the forwarded calls`);
      const buckets = find(samples, `${histogram}_bucket`, { cluster: 'demo' });
      assert.ok(
        buckets.some((b) => b.labels.le === '+Inf' && b.value === count.value),
        `${histogram} has a +Inf bucket equal to its count`,
      );
      assert.ok(
        buckets.some((b) => b.labels.le === '0.005'),
        `${histogram} has millisecond buckets`,
      );
    }
    assert.equal(find(samples, 'hoopgate_pending_approvals')[0]?.value, 0);
    assert.ok(
      (find(samples, 'hoopgate_token_mints_total', { cluster: 'demo' })[0]?.value ?? 0) >= 1,
      'a ServiceAccount token was minted on demo',
    );
    assert.equal(find(samples, 'hoopgate_audit_write_failures_total')[0]?.value, 0);
    // The Secret list read by ci-deployer had every item masked.
    assert.ok((find(samples, 'hoopgate_masked_objects_total')[0]?.value ?? 0) >= 1, 'masked Secrets are counted');
  });

  test('log: one JSON line per request with identity, decision, status, duration and request id; no token, no body', async () => {
    const token = await world.token('readonly-bot');
    const deployer = await world.token('ci-deployer');
    const bodyCanary = `body-canary-${randomUUID()}`;
    const allowed = await world.call('/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(allowed.status, 200);
    const denied = await world.call('/api/v1/namespaces/staging/secrets', {
      headers: { authorization: `Bearer ${token}` },
    });
    assertStatus(denied, 403, 'Forbidden', /secrets/);
    const created = await world.call('/api/v1/namespaces/staging/configmaps', {
      method: 'POST',
      headers: { authorization: `Bearer ${deployer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `logged-${randomUUID().slice(0, 8)}` },
        data: { note: bodyCanary },
      }),
    });
    assert.equal(created.status, 201, created.text);
    const inQuery = await world.call(`/api/v1/namespaces/staging/pods?access_token=${token}`);
    assertStatus(inQuery, 401, 'Unauthorized', /tokens in the query string \("access_token"\) are refused/);

    const lines = world.logLines.map((line) => JSON.parse(line) as Record<string, any>);
    const requestLines = lines.filter((line) => line.msg === 'request');
    const lineOf = (response: { headers: Record<string, unknown> }) => {
      const id = response.headers['audit-id'];
      assert.equal(typeof id, 'string', 'every answer names its request id in Audit-Id');
      const matching = requestLines.filter((line) => line.requestId === id);
      assert.equal(matching.length, 1, `exactly one log line for request ${String(id)}`);
      return matching[0] ?? {};
    };

    const ok = lineOf(allowed);
    assert.equal(ok.level, 'info');
    assert.equal(ok.service, 'hoopgate');
    assert.match(ok.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal(ok.method, 'GET');
    assert.equal(ok.path, '/api/v1/namespaces/staging/pods');
    assert.equal(ok.status, 200);
    assert.equal(ok.cluster, 'demo');
    assert.equal(ok.identity, 'readonly-bot');
    assert.equal(ok.serviceAccount, 'agents/readonly-bot');
    assert.equal(ok.effect, 'allow');
    assert.equal(ok.reason, 'rbac-allowed');
    assert.equal(typeof ok.durationMs, 'number');
    assert.ok(ok.durationMs >= 0 && ok.durationMs < 30_000);

    const no = lineOf(denied);
    assert.equal(no.status, 403);
    assert.equal(no.effect, 'deny');
    assert.equal(no.reason, 'deny-rule');
    assert.equal(no.code, 'ERR_POLICY_DENIED');
    assert.equal(no.identity, 'readonly-bot', 'a refusal names who was refused');
    assert.equal(no.subject, 'readonly-bot');
    assert.match(no.message, /secrets/);
    assert.equal(typeof no.durationMs, 'number');

    assert.equal(lineOf(created).status, 201);
    const queried = lineOf(inQuery);
    assert.equal(queried.status, 401);
    assert.equal(queried.path, '/api/v1/namespaces/staging/pods?[query not logged]');

    const log = world.logLines.join('\n');
    for (const [what, secret] of [
      ['readonly-bot OIDC token', token],
      ['ci-deployer OIDC token', deployer],
      ['request body', bodyCanary],
    ] as const) {
      assert.ok(!log.includes(secret), `${what} is not in the logs`);
    }
    const upstreamTokens = new Set(
      [...world.sim.requests, ...second.requests].flatMap((r) => (r.token === null ? [] : [r.token])),
    );
    assert.ok(upstreamTokens.size >= 2, 'ServiceAccount tokens and the gateway credential were used upstream');
    for (const upstreamToken of upstreamTokens) {
      assert.ok(!log.includes(upstreamToken), 'no ServiceAccount token or gateway credential is in the logs');
      // JWT segments too: a truncated token is still a token.
      assert.ok(!log.includes(upstreamToken.split('.')[2] ?? upstreamToken), 'no token signature is in the logs');
    }
    assert.ok(
      !log.includes(readFileSync(join(world.dir, 'gateway-token'), 'utf8')),
      "the gateway's own credential is not in the logs",
    );
  });

  test('hoopgate kubeconfig: the printed kubeconfig (exec plugin: this node running bin/hoopgate.js token) works with kubectl', async () => {
    const kubeconfig = await printKubeconfig('readonly.kubeconfig', [
      '--server',
      world.gateway.url,
      '--ca-file',
      'gateway-ca.pem',
      '--namespace',
      'staging',
      '--name',
      'readonly',
      ...exec('readonly-bot'),
    ]);
    const result = await runKubectl(['get', 'pods', '-o', 'name'], { kubeconfig, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^pod\/web-0$/m);
    const refused = await runKubectl(['get', 'secrets'], { kubeconfig, timeoutMs: 60_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Error from server \(Forbidden\): hoopgate: /);
  });

  test('two clusters: /k8s/second reaches the second cluster with its own minted token; limits per cluster hold', async () => {
    const before = { first: world.sim.requests.length, second: second.requests.length };
    const kubeconfig = await printKubeconfig('second.kubeconfig', [
      '--server',
      world.gateway.url,
      '--ca-file',
      'gateway-ca.pem',
      '--cluster',
      'second',
      '--namespace',
      'staging',
      '--exec-command',
      binPath,
      ...exec('second-bot'),
    ]);
    const result = await runKubectl(['get', 'pods', '-o', 'name'], { kubeconfig, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^pod\/web-0$/m);

    const secondNew = second.requests.slice(before.second);
    const list = secondNew.filter((r) => r.method === 'GET' && r.rawPath.startsWith('/api/v1/namespaces/staging/pods'));
    assert.ok(list.length >= 1, 'the list reached the second cluster');
    for (const r of list) {
      assert.equal(
        r.identity,
        'system:serviceaccount:agents:second-bot',
        'as the agent account the second cluster itself authenticates',
      );
      assert.equal(r.status, 200);
    }
    const minted = secondNew.filter(
      (r) => r.method === 'POST' && r.rawPath.startsWith('/api/v1/namespaces/agents/serviceaccounts/second-bot/token'),
    );
    assert.equal(minted.length, 1, "the token was minted by the second cluster's TokenRequest");
    assert.equal(
      minted[0]?.identity,
      'system:serviceaccount:hoopgate:hoopgate',
      "with the gateway's credential for that cluster",
    );
    const firstTokens = new Set(world.sim.requests.map((r) => r.token));
    assert.ok(
      list.every((r) => !firstTokens.has(r.token)),
      'a token of the first cluster never went to the second',
    );
    assert.ok(
      world.sim.requests.slice(before.first).every((r) => r.identity !== 'system:serviceaccount:agents:second-bot'),
      'nothing of it reached the first cluster',
    );

    // The default path is the first cluster.
    const readonly = await world.token('readonly-bot');
    const firstBefore = world.sim.requests.length;
    const secondBefore = second.requests.length;
    const onDefault = await world.call('/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${readonly}` },
    });
    assert.equal(onDefault.status, 200, onDefault.text);
    assert.ok(
      world.sim.requests
        .slice(firstBefore)
        .some(
          (r) =>
            r.rawPath === '/api/v1/namespaces/staging/pods' &&
            r.identity === 'system:serviceaccount:agents:readonly-bot',
        ),
    );
    assert.equal(second.requests.length, secondBefore, 'the default path does not touch the second cluster');

    const unknown = await world.call('/k8s/unknown/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${readonly}` },
    });
    assertStatus(unknown, 404, 'NotFound', /no cluster named "unknown" is configured \(clusters: demo, second\)/);

    // Identities limited to one cluster are refused on the other, in both directions, before anything is sent.
    const secondToken = await world.token('second-bot');
    const sentBefore = { first: world.sim.requests.length, second: second.requests.length };
    const secondOnFirst = await world.call('/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${secondToken}` },
    });
    assertStatus(
      secondOnFirst,
      403,
      'Forbidden',
      /subject .* maps to identity "[^"]+", which may not use cluster "demo"\. The same call on cluster second may pass\. Who may help: /,
    );
    const readonlyOnSecond = await world.call('/k8s/second/api/v1/namespaces/staging/pods', {
      headers: { authorization: `Bearer ${readonly}` },
    });
    assertStatus(
      readonlyOnSecond,
      403,
      'Forbidden',
      /subject .* maps to identity "readonly-bot", which may not use cluster "second"\. The same call on cluster demo may pass\. Who may help: /,
    );
    assert.equal(world.sim.requests.length, sentBefore.first);
    assert.equal(second.requests.length, sentBefore.second);

    const metrics = parseMetrics((await world.call('/hoop/metrics')).text).samples;
    assert.ok(
      (find(metrics, 'hoopgate_requests_total', {
        cluster: 'second',
        effect: 'allow',
        verb: 'list',
        resource: 'pods',
        code: '200',
      })[0]?.value ?? 0) >= 1,
    );
    assert.equal(find(metrics, 'hoopgate_token_mints_total', { cluster: 'second' })[0]?.value, 1);
  });

  test('healthz, readyz (ready or not to anyone, the failing check in the log) and readyz 503 when a cluster went away', async () => {
    const health = await world.call('/hoop/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.text, 'ok');

    const ready = await world.call('/hoop/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.text, 'readyz check passed\n');

    await second.close();
    secondClosed = true;
    const logsBefore = world.logLines.length;
    const notReady = await world.call('/hoop/readyz');
    assert.equal(notReady.status, 503);
    // Nothing about the upstream, the IdP or the store reaches an unauthenticated caller.
    assert.equal(notReady.text, 'readyz check failed\n');
    const logged = world.logLines
      .slice(logsBefore)
      .map((line) => JSON.parse(line) as { msg: string; checks?: string[] });
    const report = logged.find((line) => line.msg.startsWith('readyz: not ready'));
    assert.ok(report !== undefined, 'the details are in the log');
    assert.match(report.msg, /\[-\]cluster second failed: .+/);
    for (const check of ['store', 'oidc', 'cluster demo']) assert.ok(report.checks?.includes(`[+]${check} ok`), check);
    assert.equal(
      (await world.call('/hoop/healthz')).status,
      200,
      'the process is still up: liveness does not follow the upstream',
    );
  });
});
