// Issue #8 end to end: a scripted kubectl session through the gateway, then the least-privilege
// report. The suggested Role, applied for a FRESH ServiceAccount, replays the session straight against
// the simulated API server with zero RBAC refusals while calls outside it are refused; the over-grant
// of a scenario with known RBAC is exactly its granted-but-unused rules; the weekly digest and
// `/hoop privileges` reach the local Slack API.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { parseAllDocuments } from 'yaml';
import { exportEvents } from '../../packages/gateway/src/audit/events.js';
import type { IdentityPrivileges } from '../../packages/gateway/src/audit/least-privilege.js';
import type { AuditEvent } from '../../packages/gateway/src/audit/types.js';
import { run as leastPrivilege } from '../../packages/gateway/src/cli/audit-least-privilege.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { createSlackClient } from '../../packages/gateway/src/slack/app.js';
import { createClusterGrantedLookup } from '../../packages/gateway/src/probes/granted-permissions.js';
import { createGatewayPrivileges } from '../../packages/gateway/src/slack/digest.js';
import { runKubectl, writeKubeconfig } from '../helpers/kubectl.js';
import { startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import { signSlackBody, slashCommandBody } from '../helpers/slack-sign.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const signingSecret = 'lp-signing-secret';
const channel = 'C0PRIVILEGES';
const rbac = 'rbac.authorization.k8s.io';

/** The allowed session of readonly-bot: replayed later, call for call, as the fresh account. */
const session: string[][] = [
  ['get', 'pods', '-n', 'staging'],
  ['get', 'configmap', 'app-config', '-n', 'staging', '-o', 'yaml'],
  ['logs', 'web-0', '-n', 'staging'],
  ['get', 'deployments', '-n', 'staging'],
  ['get', 'namespaces'],
];

/**
 * The scenario's baseline RBAC for agents/readonly-bot (its demo bindings removed first). Granted and
 * never used by the session, exactly: list+watch configmaps, get+patch deployments (staging), get namespaces (cluster).
 */
const scenarioRbac = [
  {
    apiVersion: `${rbac}/v1`,
    kind: 'Role',
    metadata: { namespace: 'staging', name: 'lp-scenario' },
    rules: [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch'] },
    ],
  },
  {
    apiVersion: `${rbac}/v1`,
    kind: 'RoleBinding',
    metadata: { namespace: 'staging', name: 'lp-scenario' },
    roleRef: { apiGroup: rbac, kind: 'Role', name: 'lp-scenario' },
    subjects: [{ kind: 'ServiceAccount', namespace: 'agents', name: 'readonly-bot' }],
  },
  {
    apiVersion: `${rbac}/v1`,
    kind: 'ClusterRole',
    metadata: { name: 'lp-scenario-ns' },
    rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] }],
  },
  {
    apiVersion: `${rbac}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name: 'lp-scenario-ns' },
    roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: 'lp-scenario-ns' },
    subjects: [{ kind: 'ServiceAccount', namespace: 'agents', name: 'readonly-bot' }],
  },
];

function io(cwd: string): CliIo & { out: string; err: string } {
  const result = {
    out: '',
    err: '',
    stdout: (t: string) => void (result.out += t),
    stderr: (t: string) => void (result.err += t),
    env: {},
    cwd,
    stopSignal: new AbortController().signal,
  };
  return result;
}

describe('least privilege: report, suggested role, over-grant, digest', () => {
  let world: TestWorld;
  let slack: LocalSlackServer;
  let dir: string;
  let report: IdentityPrivileges[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-lp-e2e-'));
    slack = await startSlackServer();
    world = await startTestWorld({
      editConfig: (document) => {
        document['slack'] = {
          botToken: 'xoxb-lp',
          signingSecret,
          channel,
          apiUrl: slack.apiUrl,
          auditors: { slackUsers: ['UAUDITOR'] },
        };
        (document['approval'] as { approvers: Record<string, unknown> }).approvers['slackUsers'] = ['UAPPROVER'];
      },
    });
    for (const name of ['readonly-bot-reader', 'readonly-bot-ns'])
      world.sim.deleteObject(`clusterrolebindings.${rbac}`, '', name);
    for (const object of scenarioRbac) world.sim.apply(object);

    // The session, through the gateway, as readonly-bot.
    for (const args of session) {
      const result = await world.kubectl(args, { context: 'readonly-bot', version: '1.33' });
      assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
    }
    // A refusal (a deny rule) …
    const secrets = await world.kubectl(['get', 'secrets', '-n', 'staging'], {
      context: 'readonly-bot',
      version: '1.33',
    });
    assert.equal(secrets.code, 1);
    assert.match(secrets.stderr, /Forbidden.*hoopgate: .*a deny rule of the gateway covers/);
    // … and an approval: ci-deployer may not write in prod, so it is held and approved.
    const configMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'lp-approved', namespace: 'prod' },
      data: { k: 'v' },
    };
    const held = world.kubectl(['create', '-f', '-'], {
      context: 'ci-deployer',
      version: '1.33',
      stdin: JSON.stringify(configMap),
    });
    let pending = await world.gateway.approvals.pending();
    for (let i = 0; pending.length === 0 && i < 400; i += 1) {
      await sleep(25);
      pending = await world.gateway.approvals.pending();
    }
    const [record] = pending;
    assert.ok(record !== undefined, 'the create was held for approval');
    const decided = await world.gateway.approvals.decide(record.id, {
      approve: true,
      approver: true,
      actor: { user: 'UAPPROVER', label: 'alice', at: Date.now(), via: 'slack' },
    });
    assert.ok(decided.ok);
    const created = await held;
    assert.equal(created.code, 0, created.stderr);
    // Outcomes are written after the response: wait until every call has one.
    for (let i = 0; i < 200; i += 1) {
      const events: AuditEvent[] = [];
      for await (const event of exportEvents(world.gateway.store.audit, {})) events.push(event);
      if (events.every((e) => e.outcome !== undefined)) break;
      await sleep(25);
    }
  });

  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('json report: used, refused and approved as recorded; the over-grant is exactly the unused rules', async () => {
    const out = io(world.dir);
    assert.equal(
      await leastPrivilege(['--config', world.configPath, '--format', 'json', '--since', '1h'], out),
      0,
      out.err,
    );
    report = (JSON.parse(out.out) as { identities: IdentityPrivileges[] }).identities;
    // Every configured identity appears, with empty lists when it made no call (the demo's saml-bot).
    assert.deepEqual(
      report.map((i) => i.identity),
      ['readonly-bot', 'ci-deployer', 'saml-bot'],
    );
    assert.deepEqual(report[2]?.used, []);
    const bot = report[0] as IdentityPrivileges;
    assert.deepEqual(
      bot.used.map((u) => [u.verb, u.apiGroup, u.resource, u.subresource, u.namespace, u.name ?? '*', u.count]),
      [
        ['list', '', 'namespaces', '', '', '*', 1],
        ['get', '', 'configmaps', '', 'staging', 'app-config', 1],
        ['get', '', 'pods', '', 'staging', 'web-0', 1],
        ['list', '', 'pods', '', 'staging', '*', 1],
        ['get', '', 'pods', 'log', 'staging', 'web-0', 1],
        ['list', 'apps', 'deployments', '', 'staging', '*', 1],
      ],
    );
    assert.deepEqual(bot.refused, [
      {
        verb: 'list',
        apiGroup: '',
        resource: 'secrets',
        namespace: 'staging',
        count: 1,
        reason: 'deny-rule (identities[0].deny[0])',
      },
    ]);
    assert.deepEqual(bot.approved, []);
    assert.deepEqual(bot.overGrant, [
      { verb: 'get', apiGroup: '', resource: 'namespaces', namespace: '' },
      { verb: 'list', apiGroup: '', resource: 'configmaps', namespace: 'staging' },
      { verb: 'watch', apiGroup: '', resource: 'configmaps', namespace: 'staging' },
      { verb: 'get', apiGroup: 'apps', resource: 'deployments', namespace: 'staging' },
      { verb: 'patch', apiGroup: 'apps', resource: 'deployments', namespace: 'staging' },
    ]);
    assert.match(
      out.err,
      /note: identity readonly-bot: over-grant: 5 permission\(s\), found by \d+ subjectaccessreview probes \(discovery verbs × resources at cluster scope and in staging\)/,
    );
    // The gateway's own credential asked (SubjectAccessReview), never an agent's.
    const reviews = world.sim.requests.filter((r) =>
      r.rawPath.startsWith('/apis/authorization.k8s.io/v1/subjectaccessreviews'),
    );
    assert.ok(reviews.length > 100 && reviews.every((r) => r.identity === 'system:serviceaccount:hoopgate:hoopgate'));

    const deployer = report[1] as IdentityPrivileges;
    assert.deepEqual(deployer.approved, [
      { verb: 'create', apiGroup: '', resource: 'configmaps', namespace: 'prod', count: 1, approvers: ['alice'] },
    ]);
    assert.ok(
      !out.out.includes('KioqTUFTS0VEKioq') && !out.out.includes('"k"'),
      'objects are named, values never appear',
    );
  });

  test('the suggested Role, for a fresh account, replays the session with zero RBAC refusals; calls outside it are refused', async () => {
    const out = io(world.dir);
    assert.equal(
      await leastPrivilege(
        [
          '--config',
          world.configPath,
          '--identity',
          'readonly-bot',
          '--since',
          '1h',
          '--service-account',
          'lp-replay/fresh-bot',
        ],
        out,
      ),
      0,
      out.err,
    );
    const docs = parseAllDocuments(out.out)
      .map((d) => d.toJS())
      .filter((d) => d !== null);
    assert.deepEqual(
      docs.map((d) => `${d.kind} ${d.metadata.namespace ?? ''}`),
      ['ClusterRole ', 'ClusterRoleBinding ', 'Role staging', 'RoleBinding staging'],
    );
    assert.deepEqual(docs[0].rules, [{ apiGroups: [''], resources: ['namespaces'], verbs: ['list'] }]);
    assert.deepEqual(docs[2].rules, [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['app-config'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'pods/log'], resourceNames: ['web-0'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['list'] },
    ]);

    world.sim.createServiceAccount('lp-replay', 'fresh-bot');
    for (const doc of docs) world.sim.apply(doc);
    const kubeconfig = writeKubeconfig(dir, {
      server: world.sim.url,
      ca: world.sim.ca,
      token: world.sim.issueToken('lp-replay', 'fresh-bot'),
    });
    const fresh = 'system:serviceaccount:lp-replay:fresh-bot';
    const before = world.sim.requests.length;
    for (const args of session) {
      const result = await runKubectl(args, { kubeconfig, version: '1.33' });
      assert.equal(result.code, 0, `replay of kubectl ${args.join(' ')}: ${result.stderr}`);
    }
    const replayed = world.sim.requests.slice(before);
    assert.ok(
      replayed.some((r) => r.identity === fresh && r.rawPath.startsWith('/api/v1/namespaces/staging/pods/web-0/log')),
      'the replay ran as the fresh account',
    );
    assert.deepEqual(
      replayed.filter((r) => r.status === 403 || r.status === 401).map((r) => `${r.method} ${r.rawPath}`),
      [],
      'zero RBAC refusals',
    );

    // Outside the session: refused for the fresh account (the baseline could do the first two).
    const outside: [string[], RegExp][] = [
      [
        ['get', 'deployment', 'web', '-n', 'staging'],
        /cannot get resource "deployments" in API group "apps" in the namespace "staging"/,
      ],
      [
        ['get', 'configmaps', '-n', 'staging'],
        /cannot list resource "configmaps" in API group "" in the namespace "staging"/,
      ],
      [
        ['get', 'configmap', 'app-config', '-n', 'prod'],
        /cannot get resource "configmaps" in API group "" in the namespace "prod"/,
      ],
      [
        ['get', 'pod', 'web-1', '-n', 'staging'],
        /cannot get resource "pods" in API group "" in the namespace "staging"/,
      ],
      [['get', 'secrets', '-n', 'staging'], /cannot list resource "secrets"/],
    ];
    for (const [args, message] of outside) {
      const result = await runKubectl(args, { kubeconfig, version: '1.33' });
      assert.equal(result.code, 1, `kubectl ${args.join(' ')} must be refused`);
      assert.match(result.stderr, /Error from server \(Forbidden\)/);
      assert.match(result.stderr, new RegExp(`User "${fresh}" ${message.source}`));
    }
    // The baseline account, as granted, still may do the first: that is the over-grant the role removes.
    const baseline = writeKubeconfig(
      dir,
      { server: world.sim.url, ca: world.sim.ca, token: world.sim.issueToken('agents', 'readonly-bot') },
      'baseline-kubeconfig',
    );
    assert.equal(
      (await runKubectl(['get', 'deployment', 'web', '-n', 'staging'], { kubeconfig: baseline, version: '1.33' })).code,
      0,
    );
  });

  test('/hoop privileges through the gateway, and the weekly digest, in the Slack channel', async () => {
    const events: AuditEvent[] = [];
    for await (const event of exportEvents(world.gateway.store.audit, {})) events.push(event);
    const calls = (identity: string) => events.filter((e) => e.identity === identity).length;
    const botLine = `*readonly-bot* (\`agents/readonly-bot\`): ${calls('readonly-bot')} call(s), 1 refused, 0 approved · over-grant: 5 permission(s) granted and never used (get namespaces (cluster-wide), list configmaps -n staging, watch configmaps -n staging, …) · \`hoopgate audit least-privilege --config FILE --identity readonly-bot --since 7d --format table\``;

    const agent = new Agent({ connect: { ca: world.gatewayTls.ca } });
    try {
      const body = slashCommandBody({
        userId: 'UAUDITOR',
        text: 'privileges readonly-bot',
        responseUrl: slack.responseUrl('priv'),
      });
      const response = await agent.request({
        origin: world.gateway.url,
        path: '/hoop/slack/events',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackBody(body, signingSecret) },
        body,
      });
      assert.equal(response.statusCode, 200);
      await response.body.dump();
      const [reply] = await slack.waitFor('response_url', 1, 30_000);
      assert.equal(reply?.body['id'], 'priv');
      assert.equal(reply?.body['response_type'], 'ephemeral');
      assert.equal(reply?.body['text'], 'Privileges of readonly-bot, last 7d: 1 identity');
      const blocks = JSON.stringify(reply?.body['blocks']);
      assert.ok(blocks.includes(JSON.stringify(botLine).slice(1, -1)), blocks);
      assert.ok(!blocks.includes('ci-deployer'));

      const other = slashCommandBody({
        userId: 'UNOBODY',
        text: 'privileges',
        responseUrl: slack.responseUrl('nobody'),
      });
      const refused = await agent.request({
        origin: world.gateway.url,
        path: '/hoop/slack/events',
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...signSlackBody(other, signingSecret) },
        body: other,
      });
      await refused.body.dump();
      const replies = await slack.waitFor('response_url', 2, 10_000);
      assert.match(String(replies[1]?.body['text']), /not an auditor/);
    } finally {
      await agent.close();
    }

    // The digest job the gateway schedules weekly, built the same way and run now.
    const probes = await createClusterGrantedLookup(world.config.clusters[0]!);
    const privileges = createGatewayPrivileges({
      identities: world.config.identities,
      cluster: world.config.clusters[0]!.name,
      granted: probes.lookup,
      store: world.gateway.store.audit,
    });
    try {
      const digest = privileges.startDigest(createSlackClient({ botToken: 'xoxb-lp', apiUrl: slack.apiUrl }), channel);
      const posted = slack.callsTo('chat.postMessage').length;
      await digest.run();
      const post = slack.callsTo('chat.postMessage')[posted];
      assert.equal(post?.body['channel'], channel);
      assert.equal(post?.token, 'xoxb-lp');
      assert.match(
        String(post?.body['text']),
        /^Least-privilege digest, last 7d: 3 identities, \d+ over-granted permission\(s\)$/,
      );
      const blocks = JSON.stringify(post?.body['blocks']);
      assert.ok(blocks.includes(JSON.stringify(botLine).slice(1, -1)), blocks);
      assert.match(
        blocks,
        new RegExp(
          `\\*ci-deployer\\* \\(\`agents/ci-deployer\`\\): ${calls('ci-deployer')} call\\(s\\), 0 refused, 1 approved · over-grant: \\d+ permission`,
        ),
      );
    } finally {
      await privileges.close();
      await probes.close();
    }
  });
});
