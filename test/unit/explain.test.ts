import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../packages/gateway/src/cli/args.js';
import { createExplainCommand, run } from '../../packages/gateway/src/cli/explain.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import type { Config, IdentityConfig, SafeDefaults } from '../../packages/gateway/src/config/types.js';
import type { AccessReviewer } from '../../packages/gateway/src/kube/access-review.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import type { AuthorizationAttributes, RbacAnswer } from '../../packages/gateway/src/policy/index.js';
import { startSimCluster } from '../../packages/sim/src/index.js';

const safeDefaults: SafeDefaults = {
  nodesProxy: true,
  impersonate: true,
  escalateBind: true,
  serviceAccountTokens: true,
  gatewayNamespace: true,
};

const ciDeployer: IdentityConfig = {
  name: 'ci-deployer',
  match: { groups: ['ci-deployers'] },
  serviceAccount: 'agents/ci-deployer',
  deny: [{ verbs: ['list', 'watch'], resources: ['secrets'] }],
  approval: {
    serviceAccount: 'agents/ci-deployer-elevated',
    require: [{ verbs: ['delete', 'deletecollection'], resources: ['namespaces'] }],
    escalate: true,
  },
  safeDefaults,
};

const reader: IdentityConfig = {
  name: 'reader',
  match: { groups: ['readers'] },
  serviceAccount: 'agents/reader',
  clusters: ['prod'],
  deny: [],
  approval: { require: [], escalate: false },
  safeDefaults,
};

const config: Config = {
  listen: { host: '127.0.0.1', port: 0, http2: true },
  clusters: [
    {
      name: 'prod',
      server: 'https://127.0.0.1:6443',
      insecureSkipTLSVerify: false,
      credentials: { tokenFile: '/var/run/token' },
      tokens: 'tokenRequest',
      tokenTTLMs: 600_000,
      staticTokens: {},
    },
    {
      name: 'staging',
      server: 'https://127.0.0.1:7443',
      insecureSkipTLSVerify: false,
      credentials: { tokenFile: '/var/run/token' },
      tokens: 'tokenRequest',
      tokenTTLMs: 600_000,
      staticTokens: {},
    },
  ],
  oidc: {
    issuers: [{ issuer: 'https://idp.example.com', audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' }],
  },
  identities: [ciDeployer, reader],
  approval: {
    timeoutMs: 300_000,
    minApprovals: 1,
    grantOptionsMs: [],
    approvers: {
      slackUsers: ['U0123'],
      slackUserGroups: [],
      oidcGroups: [{ issuer: 'https://idp.example.com', group: 'platform-oncall' }],
      people: [],
    },
    maxPendingPerIdentity: 10,
  },
  masking: { secrets: true, rules: [], maxObjectBytes: 1 << 20 },
  audit: { store: 'sqlite::memory:', bodies: true, maxBodyBytes: 65536, retentionMs: 1, sessionIdleMs: 300_000 },
  exec: { spdy: 'deny', maxRecordBytes: 1 << 20 },
  limits: {
    perAddress: { maxConcurrent: 256, requestsPerSecond: 200, burst: 400 },
    perIdentity: { maxConcurrent: 128, requestsPerSecond: 100, burst: 200 },
    maxTrackedClients: 10_000,
  },
  gateway: { namespace: 'hoopgate', maxBodyBytes: 1 << 20, drainTimeoutMs: 1000 },
};

function io(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: {},
    cwd: '/',
    stopSignal: new AbortController().signal,
  };
}

/** An injected RBAC oracle: records what it was asked, answers from a table. */
function fakeReviewer(answer: RbacAnswer | Error) {
  const asked: Array<{ cluster: string; serviceAccount: string; attrs: AuthorizationAttributes }> = [];
  const reviewerFor = async (cluster: { name: string }): Promise<AccessReviewer> => ({
    async review(serviceAccount, attrs) {
      asked.push({ cluster: cluster.name, serviceAccount, attrs });
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  return { asked, reviewerFor };
}

async function explain(argv: string[], answer: RbacAnswer | Error = { allowed: true }) {
  const reviewer = fakeReviewer(answer);
  const command = createExplainCommand({ loadConfig: async () => config, reviewerFor: reviewer.reviewerFor });
  const cli = io();
  const code = await command(['--config', 'hoopgate.yaml', ...argv], cli);
  return { code, out: cli.out.join(''), err: cli.err.join(''), asked: reviewer.asked };
}

test('deny rule: decided without RBAC', async () => {
  const r = await explain(['--identity', 'ci-deployer', 'GET /api/v1/namespaces/default/secrets']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^request: +GET \/api\/v1\/namespaces\/default\/secrets \(cluster prod\)$/m);
  assert.match(r.out, /^identity: +ci-deployer \(identities\[0\]\), baseline serviceaccount agents\/ci-deployer$/m);
  assert.match(
    r.out,
    /^classified: +resource request: verb=list apiGroup="" apiVersion=v1 namespace=default resource=secrets subresource="" name=""$/m,
  );
  assert.match(r.out, /^rbac: +not asked: the decision does not depend on RBAC$/m);
  assert.match(r.out, /^decision: +deny \(deny-rule\)$/m);
  assert.match(r.out, /rule: identities\[0\]\.deny\[0\]/);
  // the operator's detail and what the agent reads, side by side (#16)
  assert.match(r.out, /^ +operator: denied by identities\[0\]\.deny\[0\]; narrow or remove that rule to allow it$/m);
  const agent = /^ +agent reads: (.*)$/m.exec(r.out)?.[1] ?? '';
  assert.match(
    agent,
    /^identity "ci-deployer" may not list secrets -n default: a deny rule of the gateway covers list, watch on secrets/,
  );
  assert.match(agent, /Who may help: ask an approver \(Slack user U0123, group platform-oncall\)\.$/);
  assert.doesNotMatch(agent, /identities\[/);
  assert.equal(r.asked.length, 0);
});

test('approval.require: the elevated account and the approvers', async () => {
  const r = await explain(['--identity', 'ci-deployer', 'DELETE', '/api/v1/namespaces/prod']);
  assert.match(r.out, /^decision: +approve \(approval-required\)$/m);
  assert.match(r.out, /rule: identities\[0\]\.approval\.require\[0\]/);
  assert.match(r.out, /once approved, runs as serviceaccount agents\/ci-deployer-elevated/);
  assert.match(
    r.out,
    /agent reads: .*needs approval.*Who may help: ask an approver \(Slack user U0123, group platform-oncall\)/,
  );
  assert.match(r.out, /operator: held by identities\[0\]\.approval\.require\[0\]/);
  assert.equal(r.asked.length, 0);
});

test('offline: RBAC not asked, both outcomes shown', async () => {
  const r = await explain(['--identity', 'ci-deployer', '--offline', 'GET /api/v1/namespaces/default/pods']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^rbac: +not asked \(offline\)$/m);
  assert.match(r.out, /^if rbac allows: allow \(rbac-allowed\)$/m);
  assert.match(r.out, /runs as serviceaccount agents\/ci-deployer$/m);
  assert.match(r.out, /^if rbac denies: approve \(escalation\)$/m);
  assert.match(r.out, /rule: identities\[0\]\.approval\.escalate/);
  assert.equal(r.asked.length, 0);
});

test('online: RBAC asked of the API server (injected answer: allowed)', async () => {
  const r = await explain(['--identity', 'reader', 'GET /api/v1/namespaces/default/pods'], {
    allowed: true,
    reason: 'RBAC: allowed by RoleBinding "view"',
  });
  assert.match(
    r.out,
    /^rbac: +asked the API server \(SubjectAccessReview for system:serviceaccount:agents:reader\): allowed \(RBAC: allowed by RoleBinding "view"\)$/m,
  );
  assert.match(r.out, /^decision: +allow \(rbac-allowed\)$/m);
  assert.deepEqual(r.asked, [
    {
      cluster: 'prod',
      serviceAccount: 'agents/reader',
      attrs: {
        kind: 'resource',
        verb: 'list',
        group: '',
        version: 'v1',
        resource: 'pods',
        subresource: '',
        namespace: 'default',
        name: '',
      },
    },
  ]);
});

test('online: RBAC denied and no escalate is a 403 with what to do', async () => {
  const r = await explain(['--identity', 'reader', 'DELETE /apis/apps/v1/namespaces/default/deployments/web'], {
    allowed: false,
  });
  assert.match(
    r.out,
    /^rbac: +asked the API server \(SubjectAccessReview for system:serviceaccount:agents:reader\): not allowed$/m,
  );
  assert.match(r.out, /^decision: +deny \(rbac-denied\)$/m);
  assert.match(r.out, /grant it to that serviceaccount with a Role\/RoleBinding/);
});

test('online: RBAC denied with escalate is held for approval', async () => {
  const r = await explain(
    ['--identity', 'ci-deployer', 'PATCH /apis/apps/v1/namespaces/default/deployments/web?dryRun=All'],
    { allowed: false },
  );
  assert.match(r.out, /^decision: +approve \(escalation\)$/m);
  assert.equal(r.asked[0]?.attrs.verb, 'patch');
});

test('exec over a websocket GET is authorised as create', async () => {
  const r = await explain(
    ['--identity', 'ci-deployer', 'GET /api/v1/namespaces/default/pods/web-0/exec?command=sh&tty=true'],
    { allowed: true },
  );
  assert.match(r.out, /^authorised as: +create pods\/web-0\/exec -n default \(verb create: exec opens a stream\)$/m);
  assert.equal(r.asked[0]?.attrs.verb, 'create');
});

test('safe defaults: nodes/proxy and the gateway namespace', async () => {
  const nodes = await explain(['--identity', 'ci-deployer', 'GET /api/v1/nodes/n1/proxy/metrics']);
  assert.match(nodes.out, /^decision: +deny \(safe-default\)$/m);
  assert.match(nodes.out, /rule: safeDefaults\.nodesProxy/);
  assert.match(
    nodes.out,
    /operator: safeDefaults\.nodesProxy; to allow it for this identity, add nodesProxy to identities\[0\]\.allowUnsafe/,
  );
  assert.doesNotMatch(/agent reads: (.*)/.exec(nodes.out)?.[1] ?? '', /allowUnsafe|safeDefaults/);
  const gw = await explain(['--identity', 'reader', 'GET /api/v1/namespaces/hoopgate/secrets/signing-key']);
  assert.match(gw.out, /rule: safeDefaults\.gatewayNamespace/);
  assert.equal(nodes.asked.length + gw.asked.length, 0);
});

test('discovery is allowed for any mapped identity', async () => {
  const r = await explain(['--identity', 'reader', 'GET /apis']);
  assert.match(r.out, /^classified: +non-resource request: verb=get path=\/apis$/m);
  assert.match(r.out, /^decision: +allow \(non-resource\)$/m);
});

test('a non-canonical path is refused before any decision', async () => {
  const r = await explain(['--identity', 'ci-deployer', 'GET /api/v1//namespaces']);
  assert.equal(r.code, 0);
  assert.match(
    r.out,
    /^decision: +refused before any decision: 400 BadRequest: refusing non-canonical path: an empty path segment \("\/\/"\)$/m,
  );
  const watch = await explain(['--identity', 'ci-deployer', 'GET /api/v1/watch']);
  assert.match(watch.out, /refused before any decision: 400 BadRequest: unable to determine kind and namespace/);
});

test('clusters: --cluster, /k8s/NAME/ and an identity limited to other clusters', async () => {
  const staging = await explain(['--identity', 'reader', '--cluster', 'staging', 'GET /api/v1/pods']);
  assert.match(staging.out, /\(cluster staging\)/);
  assert.match(staging.out, /^decision: +deny \(cluster-not-allowed\)$/m);
  const prefixed = await explain(['--identity', 'ci-deployer', 'GET /k8s/staging/api/v1/namespaces/a/pods'], {
    allowed: true,
  });
  assert.match(prefixed.out, /\(cluster staging\)/);
  assert.equal(prefixed.asked[0]?.cluster, 'staging');
  const unknown = await explain(['--identity', 'ci-deployer', '--cluster', 'nope', 'GET /api']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no cluster named "nope" \(clusters: prod, staging\)/);
});

test('refusals of the command itself', async () => {
  await assert.rejects(
    explain(['--identity', 'ci-deployer', 'LIST /api/v1/pods']),
    (e: unknown) => e instanceof UsageError && /VERB must be an HTTP method/.test(e.message),
  );
  await assert.rejects(
    explain(['GET /api']),
    (e: unknown) => e instanceof UsageError && /option --identity is required/.test(e.message),
  );
  await assert.rejects(
    explain(['--identity', 'x', 'GET']),
    (e: unknown) => e instanceof UsageError && /expected one request 'VERB PATH'/.test(e.message),
  );
  const unknown = await explain(['--identity', 'nobody', 'GET /api']);
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.err,
    'hoopgate explain: no identity named "nobody" in hoopgate.yaml (identities: ci-deployer, reader)\n',
  );
  const unreachable = await explain(
    ['--identity', 'reader', 'GET /api/v1/namespaces/default/pods'],
    new HoopError(
      'ERR_UPSTREAM_UNREACHABLE',
      'cluster "prod": cannot reach the API server at https://127.0.0.1:6443 to create a subjectaccessreview: ECONNREFUSED',
    ),
  );
  assert.equal(unreachable.code, 1);
  assert.match(
    unreachable.err,
    /cannot ask the API server of cluster "prod" for RBAC: .*ECONNREFUSED; use --offline to explain without it/,
  );
  const command = createExplainCommand({
    loadConfig: async () => {
      throw new HoopError(
        'ERR_CONFIG',
        'invalid configuration:\n  identities[0].serviceAccount: must be "namespace/name"',
      );
    },
  });
  const cli = io();
  assert.equal(await command(['-c', 'x.yaml', '-i', 'a', 'GET /api'], cli), 1);
  assert.equal(
    cli.err.join(''),
    'hoopgate explain: invalid configuration:\n  identities[0].serviceAccount: must be "namespace/name"\n',
  );
  const help = io();
  assert.equal(await run(['--help'], help), 0);
  assert.match(help.out.join(''), /^usage: hoopgate explain/);
});

test('end to end: a YAML config, loadConfig and a SubjectAccessReview on the simulated API server', async () => {
  const sim = await startSimCluster({ seed: false });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-explain-'));
  try {
    sim.createServiceAccount('agents', 'ci');
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'pod-reader' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
    });
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'ci-pod-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'ci', namespace: 'agents' }],
    });
    writeFileSync(join(dir, 'ca.crt'), sim.ca);
    writeFileSync(join(dir, 'token'), sim.adminToken);
    writeFileSync(
      join(dir, 'hoopgate.yaml'),
      [
        'clusters:',
        '  - name: prod',
        `    server: ${sim.url}`,
        '    caFile: ca.crt',
        '    credentials: { tokenFile: token }',
        'oidc:',
        '  issuers: [{ issuer: "https://idp.example.com", audience: hoopgate }]',
        'identities:',
        '  - name: ci',
        '    match: { groups: [ci] }',
        '    serviceAccount: agents/ci',
        'audit: { store: "sqlite::memory:" }',
        '',
      ].join('\n'),
    );
    const cli = { ...io(), cwd: dir };
    assert.equal(
      await run(['--config', 'hoopgate.yaml', '--identity', 'ci', 'GET /api/v1/namespaces/staging/pods'], cli),
      0,
      cli.err.join(''),
    );
    const out = cli.out.join('');
    assert.match(
      out,
      /^rbac: +asked the API server \(SubjectAccessReview for system:serviceaccount:agents:ci\): allowed/m,
    );
    assert.match(out, /^decision: +allow \(rbac-allowed\)$/m);
    const denied = { ...io(), cwd: dir };
    assert.equal(
      await run(
        ['--config', 'hoopgate.yaml', '--identity', 'ci', 'DELETE /api/v1/namespaces/staging/pods/web'],
        denied,
      ),
      0,
    );
    assert.match(denied.out.join(''), /^decision: +deny \(rbac-denied\)$/m);
    assert.equal(
      sim.requests.filter((r) => r.rawPath === '/apis/authorization.k8s.io/v1/subjectaccessreviews').length,
      2,
    );
    // nothing but the reviews reached the API server: explain never sends the request itself
    assert.ok(sim.requests.every((r) => r.rawPath === '/apis/authorization.k8s.io/v1/subjectaccessreviews'));
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
