// The least-privilege report (issue #8) as tables over audit events: names collapsed to resourceNames,
// Role vs ClusterRole, refused and approved lists, the over-grant, an empty window; the CLI in-process
// against a real SQLite store; the Slack lines.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  buildLeastPrivilegeReport,
  compactRules,
  createIdentityAccumulator,
  computeOverGrant,
  summarizeIdentity,
  type PermissionKey,
  type UsedPermission,
} from '../../packages/gateway/src/audit/least-privilege.js';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import type { AuditDecision, AuditEvent, AuditOutcome, AuditStart } from '../../packages/gateway/src/audit/types.js';
import { createLeastPrivilegeCommand } from '../../packages/gateway/src/cli/audit-least-privilege.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import {
  candidatePermissions,
  parseResourceList,
  probeGrantedPermissions,
} from '../../packages/gateway/src/probes/granted-permissions.js';
import { buildPrivilegesBlocks, type PrivilegesSummary } from '../../packages/gateway/src/slack/blocks.js';
import { createHoopCommand } from '../../packages/gateway/src/slack/commands.js';
import { createStore } from '../../packages/gateway/src/store/index.js';

const T0 = Date.parse('2025-03-03T10:00:00Z');
const window = { since: T0 - 3600_000, until: T0 + 3600_000 };
let seq = 0;

type Call = [verb: string, group: string, resource: string, subresource: string, namespace: string, name: string];

function event(
  call: Call,
  options: {
    decision?: Partial<AuditDecision>;
    outcome?: Partial<AuditOutcome> | null;
    identity?: string;
    at?: number;
    path?: string;
  } = {},
): AuditEvent {
  const [verb, apiGroup, resource, subresource, namespace, name] = call;
  seq += 1;
  return {
    eventId: `e${seq}`,
    sessionId: 's1',
    time: new Date(options.at ?? T0 + seq * 1000).toISOString(),
    chain: 'c',
    seq,
    hash: 'h',
    identity: options.identity ?? 'bot',
    cluster: 'prod',
    method: 'GET',
    path: options.path ?? '/x',
    info: {
      verb,
      apiGroup,
      apiVersion: 'v1',
      resource,
      subresource,
      namespace,
      name,
      isResourceRequest: resource !== '',
    },
    decision: { effect: 'allow', reason: 'rbac-allowed', ...options.decision },
    ...(options.outcome === null
      ? {}
      : {
          outcome: { status: 200, bytesOut: 10, durationMs: 1, time: new Date(T0).toISOString(), ...options.outcome },
        }),
  };
}

function summarize(events: AuditEvent[], extra: { granted?: PermissionKey[]; maxResourceNames?: number } = {}) {
  return summarizeIdentity({ identity: 'bot', serviceAccount: 'agents/bot', ...window, events, ...extra });
}

describe('used permissions and the suggested roles', () => {
  test('every use naming the same few objects collapses to resourceNames; any unnamed use does not', () => {
    const { privileges } = summarize([
      event(['get', '', 'configmaps', '', 'staging', 'app-config']),
      event(['get', '', 'configmaps', '', 'staging', 'app-config']),
      event(['get', '', 'configmaps', '', 'staging', 'feature-flags']),
      event(['list', '', 'configmaps', '', 'staging', '']),
      event(['patch', 'apps', 'deployments', '', 'staging', 'web']),
      event(['get', 'apps', 'deployments', '', 'staging', 'web']),
    ]);
    assert.deepEqual(
      privileges.used.map((u) => [u.verb, u.resource, u.name ?? '*', u.count]),
      [
        ['get', 'configmaps', 'app-config', 2],
        ['get', 'configmaps', 'feature-flags', 1],
        ['list', 'configmaps', '*', 1],
        ['get', 'deployments', 'web', 1],
        ['patch', 'deployments', 'web', 1],
      ],
    );
    const role = privileges.suggestedRoles.find((o) => o.kind === 'Role');
    assert.deepEqual(role?.rules, [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['app-config', 'feature-flags'], verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['web'], verbs: ['get', 'patch'] },
    ]);
  });

  test('more names than maxResourceNames: one entry without a name, a rule without resourceNames', () => {
    const events = ['a', 'b', 'c'].map((name) => event(['get', '', 'pods', '', 'staging', name]));
    const narrow = summarize(events, { maxResourceNames: 2 }).privileges;
    assert.deepEqual(
      narrow.used.map((u) => [u.verb, u.name, u.count]),
      [['get', undefined, 3]],
    );
    assert.deepEqual(narrow.suggestedRoles[0]?.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
    const wide = summarize(events).privileges;
    assert.deepEqual(wide.suggestedRoles[0]?.rules, [
      { apiGroups: [''], resources: ['pods'], resourceNames: ['a', 'b', 'c'], verbs: ['get'] },
    ]);
  });

  test('cluster scope → ClusterRole + ClusterRoleBinding; each namespace → Role + RoleBinding to the account', () => {
    const { privileges } = summarize([
      event(['list', '', 'namespaces', '', '', '']),
      event(['list', '', 'pods', '', 'staging', '']),
      event(['list', '', 'pods', '', 'prod', '']),
    ]);
    assert.deepEqual(
      privileges.suggestedRoles.map((o) => [o.kind, o.metadata.name, o.metadata.namespace ?? '']),
      [
        ['ClusterRole', 'bot-least-privilege', ''],
        ['ClusterRoleBinding', 'bot-least-privilege', ''],
        ['Role', 'bot-least-privilege', 'prod'],
        ['RoleBinding', 'bot-least-privilege', 'prod'],
        ['Role', 'bot-least-privilege', 'staging'],
        ['RoleBinding', 'bot-least-privilege', 'staging'],
      ],
    );
    const crb = privileges.suggestedRoles[1];
    assert.deepEqual(crb?.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'bot-least-privilege',
    });
    assert.deepEqual(crb?.subjects, [{ kind: 'ServiceAccount', namespace: 'agents', name: 'bot' }]);
    assert.deepEqual(privileges.suggestedRoles[0]?.rules, [
      { apiGroups: [''], resources: ['namespaces'], verbs: ['list'] },
    ]);
  });

  test('streams into pods are create (as RBAC authorises them); subresources join resources with the same verbs and names', () => {
    const { privileges } = summarize([
      event(['get', '', 'pods', 'exec', 'staging', 'web-0']),
      event(['get', '', 'pods', 'log', 'staging', 'web-0']),
      event(['get', '', 'pods', '', 'staging', 'web-0']),
    ]);
    assert.deepEqual(
      privileges.used.map((u) => [u.verb, u.resource, u.subresource]),
      [
        ['get', 'pods', ''],
        ['create', 'pods', 'exec'],
        ['get', 'pods', 'log'],
      ],
    );
    assert.deepEqual(privileges.suggestedRoles[0]?.rules, [
      { apiGroups: [''], resources: ['pods', 'pods/log'], resourceNames: ['web-0'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/exec'], resourceNames: ['web-0'], verbs: ['create'] },
    ]);
  });

  test('a bound account can be named (a fresh one, to try the role)', () => {
    const { privileges } = summarizeIdentity({
      identity: 'Bot_1',
      serviceAccount: 'agents/bot',
      bindTo: 'tryout/fresh',
      ...window,
      events: [event(['list', '', 'pods', '', 'x', ''], { identity: 'Bot_1' })],
    });
    assert.equal(privileges.suggestedRoles[0]?.metadata.name, 'bot-1-least-privilege');
    assert.deepEqual(privileges.suggestedRoles[1]?.subjects, [
      { kind: 'ServiceAccount', namespace: 'tryout', name: 'fresh' },
    ]);
  });

  test('the used entry has exactly the contract fields; lastUsed is the latest use', () => {
    const { privileges } = summarize([
      event(['list', '', 'pods', '', 'staging', ''], { at: T0 }),
      event(['list', '', 'pods', '', 'staging', ''], { at: T0 + 5000 }),
    ]);
    assert.deepEqual(privileges.used, [
      {
        verb: 'list',
        apiGroup: '',
        resource: 'pods',
        subresource: '',
        namespace: 'staging',
        count: 2,
        lastUsed: new Date(T0 + 5000).toISOString(),
      },
    ]);
  });

  test('compactRules never widens: merging keeps the exact cross product', () => {
    const used: UsedPermission[] = [
      {
        verb: 'get',
        apiGroup: '',
        resource: 'pods',
        subresource: '',
        namespace: 'a',
        name: 'x',
        count: 1,
        lastUsed: '',
      },
      { verb: 'list', apiGroup: '', resource: 'pods', subresource: '', namespace: 'a', count: 1, lastUsed: '' },
      {
        verb: 'get',
        apiGroup: '',
        resource: 'services',
        subresource: '',
        namespace: 'a',
        name: 'y',
        count: 1,
        lastUsed: '',
      },
    ];
    assert.deepEqual(compactRules(used), [
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: [''], resources: ['pods'], resourceNames: ['x'], verbs: ['get'] },
      { apiGroups: [''], resources: ['services'], resourceNames: ['y'], verbs: ['get'] },
    ]);
  });
});

describe('refused, approved, totals and the empty window', () => {
  test('refusals and approvals are listed apart, with reasons, approvers and counts', () => {
    const nsDelete: Call = ['delete', '', 'namespaces', '', 'prod', 'prod'];
    const { privileges, totals } = summarize([
      event(['list', '', 'secrets', '', 'staging', ''], {
        decision: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]' },
        outcome: { status: 403 },
      }),
      event(['list', '', 'secrets', '', 'staging', ''], {
        decision: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]' },
        outcome: { status: 403 },
      }),
      event(nsDelete, {
        decision: { effect: 'approve', reason: 'approval-required' },
        outcome: { approval: { id: 'a1', state: 'approved', by: ['alice'] } },
      }),
      event(nsDelete, {
        decision: { effect: 'approve', reason: 'approval-required' },
        outcome: { approval: { id: 'a2', state: 'approved', by: ['bob', 'alice'] } },
      }),
      event(nsDelete, { decision: { effect: 'allow', reason: 'grant', rule: 'grant g1' } }),
      event(['create', '', 'configmaps', '', 'prod', ''], {
        decision: { effect: 'approve', reason: 'escalation' },
        outcome: { status: 403, approval: { id: 'a3', state: 'denied', by: ['carol'] } },
      }),
      event(['create', '', 'configmaps', '', 'prod', ''], {
        decision: { effect: 'approve', reason: 'escalation' },
        outcome: null,
      }),
      event(['get', '', 'pods', '', 'staging', 'web-0'], { outcome: { status: 403 } }),
      event(['get', '', '', '', '', ''], { decision: { effect: 'allow', reason: 'non-resource' }, path: '/api' }),
    ]);
    assert.deepEqual(privileges.refused, [
      {
        verb: 'create',
        apiGroup: '',
        resource: 'configmaps',
        namespace: 'prod',
        count: 2,
        reason: 'approval denied by carol; approval pending',
      },
      {
        verb: 'get',
        apiGroup: '',
        resource: 'pods',
        namespace: 'staging',
        name: 'web-0',
        count: 1,
        reason: 'api server answered 403',
      },
      {
        verb: 'list',
        apiGroup: '',
        resource: 'secrets',
        namespace: 'staging',
        count: 2,
        reason: 'deny-rule (identities[0].deny[0])',
      },
    ]);
    assert.deepEqual(privileges.approved, [
      {
        verb: 'delete',
        apiGroup: '',
        resource: 'namespaces',
        namespace: 'prod',
        name: 'prod',
        count: 3,
        approvers: ['alice', 'bob'],
      },
    ]);
    assert.deepEqual(privileges.used, []);
    assert.deepEqual(privileges.suggestedRoles, [], 'nothing refused or approved is ever suggested');
    assert.deepEqual(totals, { calls: 9, refused: 5, approved: 3 });
  });

  test('`kubectl auth can-i` for one request is answered by the gateway: no use of the baseline RBAC; a rules review is', () => {
    const { privileges } = summarize([
      event(['create', 'authorization.k8s.io', 'selfsubjectaccessreviews', '', '', ''], {
        decision: { effect: 'allow', reason: 'self-review' },
        outcome: { status: 201 },
      }),
      event(['create', 'authorization.k8s.io', 'selfsubjectrulesreviews', '', '', ''], {
        decision: { effect: 'allow', reason: 'self-review' },
        outcome: { status: 201 },
      }),
    ]);
    assert.deepEqual(
      privileges.used.map((p) => p.resource),
      ['selfsubjectrulesreviews'],
    );
  });

  test('an empty window is not an error: the identity with empty lists', async () => {
    const reports = await buildLeastPrivilegeReport({
      identities: [
        { name: 'bot', serviceAccount: 'agents/bot' },
        { name: 'idle', serviceAccount: 'agents/idle' },
      ],
      events: [
        event(['list', '', 'pods', '', 'staging', ''], { at: window.since - 1 }),
        event(['list', '', 'pods', '', 'staging', ''], { identity: 'other' }),
      ],
      ...window,
    });
    assert.deepEqual(
      reports.map((r) => r.privileges),
      ['bot', 'idle'].map((name) => ({
        identity: name,
        serviceAccount: `agents/${name}`,
        since: new Date(window.since).toISOString(),
        until: new Date(window.until).toISOString(),
        used: [],
        refused: [],
        approved: [],
        suggestedRoles: [],
        overGrant: [],
      })),
    );
    assert.deepEqual(reports[0]?.totals, { calls: 0, refused: 0, approved: 0 });
    assert.deepEqual(reports[0]?.overGrant, { skipped: true });
  });

  test('only the chosen cluster is read', () => {
    const other = { ...event(['list', '', 'pods', '', 'staging', '']), cluster: 'dev' };
    const { privileges } = summarizeIdentity({
      identity: 'bot',
      serviceAccount: 'agents/bot',
      ...window,
      cluster: 'prod',
      events: [other],
    });
    assert.deepEqual(privileges.used, []);
  });
});

describe('over-grant', () => {
  const key = (verb: string, resource: string, namespace: string, apiGroup = '', subresource = ''): PermissionKey => ({
    verb,
    apiGroup,
    resource,
    subresource,
    namespace,
  });

  test('granted minus used; a cluster-wide use covers every namespace, a namespaced use does not cover a cluster-wide grant', () => {
    const granted = [
      key('list', 'pods', 'staging'),
      key('list', 'pods', ''),
      key('get', 'pods', 'staging'),
      key('watch', 'pods', 'staging'),
      key('get', 'pods', 'staging', '', 'log'),
      key('list', 'namespaces', ''),
      key('list', 'pods', 'staging'),
    ];
    const used = [key('list', 'pods', 'staging'), key('get', 'pods', 'staging'), key('list', 'namespaces', '')];
    assert.deepEqual(computeOverGrant(granted, used), [
      { verb: 'list', apiGroup: '', resource: 'pods', namespace: '' },
      { verb: 'watch', apiGroup: '', resource: 'pods', namespace: 'staging' },
      { verb: 'get', apiGroup: '', resource: 'pods', subresource: 'log', namespace: 'staging' },
    ]);
    assert.deepEqual(computeOverGrant([key('get', 'pods', 'staging')], [key('get', 'pods', '')]), []);
  });

  test('the lookup is asked with the namespaces in use; its failure is reported, not swallowed', async () => {
    const asked: [string, string[]][] = [];
    const events = [
      event(['list', '', 'pods', '', 'staging', '']),
      event(['list', '', 'secrets', '', 'prod', ''], { decision: { effect: 'deny', reason: 'rbac-denied' } }),
    ];
    const [ok] = await buildLeastPrivilegeReport({
      identities: [{ name: 'bot', serviceAccount: 'agents/bot' }],
      events,
      ...window,
      granted: async (sa, namespaces) => {
        asked.push([sa, namespaces]);
        return { granted: [key('list', 'pods', 'staging'), key('delete', 'pods', 'staging')], method: 'test' };
      },
    });
    assert.deepEqual(asked, [['agents/bot', ['prod', 'staging']]]);
    assert.deepEqual(ok?.privileges.overGrant, [
      { verb: 'delete', apiGroup: '', resource: 'pods', namespace: 'staging' },
    ]);
    assert.deepEqual(ok?.overGrant, { method: 'test' });
    const [failed] = await buildLeastPrivilegeReport({
      identities: [{ name: 'bot', serviceAccount: 'agents/bot' }],
      events,
      ...window,
      granted: async () => {
        throw new Error('api server down');
      },
    });
    assert.deepEqual(failed?.overGrant, { error: 'api server down' });
  });

  test('probes: discovery verbs × resources, cluster-scoped only at cluster scope, self-reviews skipped', async () => {
    const targets = [
      ...parseResourceList({
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: [
          { name: 'pods', namespaced: true, verbs: ['get', 'list'] },
          { name: 'pods/log', namespaced: true, verbs: ['get'] },
          { name: 'namespaces', namespaced: false, verbs: ['get'] },
        ],
      }),
      ...parseResourceList({
        groupVersion: 'authorization.k8s.io/v1',
        resources: [
          { name: 'selfsubjectaccessreviews', namespaced: false, verbs: ['create'] },
          { name: 'subjectaccessreviews', namespaced: false, verbs: ['create'] },
        ],
      }),
    ];
    const candidates = candidatePermissions(targets, ['staging']);
    assert.deepEqual(
      candidates.map(
        (c) =>
          `${c.verb} ${c.apiGroup}/${c.resource}${c.subresource === '' ? '' : `/${c.subresource}`} @${c.namespace}`,
      ),
      [
        'get /pods @',
        'list /pods @',
        'get /pods @staging',
        'list /pods @staging',
        'get /pods/log @',
        'get /pods/log @staging',
        'get /namespaces @',
        'create authorization.k8s.io/subjectaccessreviews @',
      ],
    );
    const result = await probeGrantedPermissions(
      {
        discover: async () => targets,
        review: async (_sa, attrs) => ({
          allowed: attrs.kind === 'resource' && attrs.namespace === 'staging' && attrs.verb === 'list',
        }),
      },
      'agents/bot',
      ['staging'],
    );
    assert.deepEqual(result.granted, [
      { verb: 'list', apiGroup: '', resource: 'pods', subresource: '', namespace: 'staging' },
    ]);
    assert.equal(result.probes, 8);
    assert.match(result.method, /^8 subjectaccessreview probes .* in staging/);
    await assert.rejects(
      probeGrantedPermissions(
        { discover: async () => targets, review: async () => Promise.reject(new Error('503')) },
        'agents/bot',
        [],
      ),
      /503/,
    );
  });
});

describe('Slack lines', () => {
  const summary = (over: Partial<PrivilegesSummary>): PrivilegesSummary => ({
    identity: 'bot',
    serviceAccount: 'agents/bot',
    calls: 12,
    refused: 2,
    approved: 1,
    overGrant: 4,
    overGrantSample: ['list configmaps -n staging'],
    since: T0,
    until: T0 + 7 * 86_400_000,
    ...over,
  });

  test('one line per identity: counts, over-grant, the command to see it; text is escaped', () => {
    const blocks = JSON.stringify(
      buildPrivilegesBlocks(
        'Digest',
        [
          summary({}),
          (({ overGrant: _none, ...rest }) => rest)(summary({ identity: 'x<!channel>', overGrantError: 'api <down>' })),
        ],
        '7d',
      ),
    );
    assert.ok(
      blocks.includes(
        '*bot* (`agents/bot`): 12 call(s), 2 refused, 1 approved · over-grant: 4 permission(s) granted and never used (list configmaps -n staging, …)',
      ),
    );
    assert.ok(blocks.includes('hoopgate audit least-privilege --config FILE --identity bot --since 7d --format table'));
    assert.ok(blocks.includes('over-grant unknown (api &lt;down&gt;)'));
    assert.ok(!blocks.includes('<!channel>'));
  });

  test('/hoop privileges: auditors only; unknown identity; no source', async () => {
    const views: (string | undefined)[] = [];
    const command = createHoopCommand({
      pending: async () => [],
      isAuditor: async (user) => user === 'UAUDIT',
      audit: {
        sessionTimeline: async () => [],
        listSessions: async () => [],
        privileges: async (identity) => {
          views.push(identity);
          return { sinceText: '7d', summaries: identity === 'ghost' ? [] : [summary({})] };
        },
      },
    });
    assert.match((await command.run('UOTHER', 'privileges')).text, /not an auditor/);
    const all = await command.run('UAUDIT', 'privileges');
    assert.equal(all.text, 'Privileges of every identity, last 7d: 1 identity');
    assert.ok(JSON.stringify(all.blocks).includes('12 call(s), 2 refused, 1 approved'));
    assert.equal((await command.run('UAUDIT', 'privileges ghost')).text, 'no identity "ghost" in the gateway config');
    assert.deepEqual(views, [undefined, 'ghost']);
    assert.match((await command.run('UAUDIT', 'help')).text, /privileges \[IDENTITY\]/);
    const none = createHoopCommand({ pending: async () => [], isAuditor: async () => true });
    assert.match((await none.run('U1', 'privileges')).text, /no least-privilege summaries/);
  });
});

describe('hoopgate audit least-privilege (in-process, SQLite store)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-lp-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'hoopgate.yaml');
  writeFileSync(join(dir, 'sa-token'), 'token\n');
  writeFileSync(
    configFile,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      'clusters:',
      '  - { name: prod, server: "https://127.0.0.1:6443", insecureSkipTLSVerify: true, tokens: static, staticTokens: { "agents/bot": { tokenFile: ./sa-token }, "agents/idle": { tokenFile: ./sa-token } } }',
      'oidc: { issuers: [ { issuer: "https://idp.example", audience: hoopgate } ] }',
      'identities:',
      '  - { name: bot, match: { groups: [bots] }, serviceAccount: agents/bot }',
      '  - { name: idle, match: { groups: [idle] }, serviceAccount: agents/idle }',
      'audit: { store: sqlite:./audit.db }',
      '',
    ].join('\n'),
  );

  function io(): CliIo & { out: string; err: string } {
    const result = {
      out: '',
      err: '',
      stdout: (t: string) => void (result.out += t),
      stderr: (t: string) => void (result.err += t),
      env: {},
      cwd: dir,
      stopSignal: new AbortController().signal,
    };
    return result;
  }

  const start = (
    time: number,
    info: Call,
    decision: AuditDecision = { effect: 'allow', reason: 'rbac-allowed' },
  ): AuditStart => {
    const [verb, apiGroup, resource, subresource, namespace, name] = info;
    return {
      requestId: `r${time}`,
      time,
      cluster: 'prod',
      identity: 'bot',
      method: 'GET',
      path: '/p',
      info: { verb, apiGroup, apiVersion: 'v1', resource, subresource, namespace, name, isResourceRequest: true },
      decision,
      // A masked Secret body: the report must never carry it.
      requestBody: '{"data":{"password":"KioqTUFTS0VEKioq"}}',
    };
  };

  let seeded = false;
  async function seed(): Promise<void> {
    if (seeded) return;
    seeded = true;
    const store = await createStore(`sqlite:${join(dir, 'audit.db')}`, { replicaId: 'r1' });
    const recorder = createAuditRecorder({
      store,
      replicaId: 'r1',
      clock: () => T0,
      maxBodyBytes: 1024,
      bodies: true,
      sessionIdleMs: 60_000,
    });
    await recorder.record(start(T0, ['get', '', 'secrets', '', 'staging', 'db-credentials']), {
      status: 200,
      bytesOut: 1,
      durationMs: 1,
    });
    await recorder.record(start(T0 + 1, ['list', '', 'pods', '', 'staging', '']), {
      status: 200,
      bytesOut: 1,
      durationMs: 1,
    });
    await recorder.record(
      start(T0 + 2, ['delete', '', 'pods', '', 'staging', 'web-0'], { effect: 'deny', reason: 'rbac-denied' }),
      { status: 403, bytesOut: 1, durationMs: 1 },
    );
    await recorder.close();
    await store.close();
  }

  const fakeCluster = (asked: string[]) => async () => ({
    lookup: async (sa: string, namespaces: string[]) => {
      asked.push(`${sa} ${namespaces.join(',')}`);
      if (sa !== 'agents/bot') return { granted: [], method: 'fake probes' };
      return {
        granted: [
          { verb: 'list', apiGroup: '', resource: 'pods', subresource: '', namespace: 'staging' },
          { verb: 'watch', apiGroup: '', resource: 'pods', subresource: '', namespace: 'staging' },
        ],
        method: 'fake probes',
      };
    },
    close: async () => undefined,
  });

  test('json: the contract shape, the over-grant, no values', async () => {
    await seed();
    const asked: string[] = [];
    const cmd = createLeastPrivilegeCommand({
      loadConfig: (await import('../../packages/gateway/src/config/load.js')).loadConfig,
      openStore: (url) => createStore(url, { replicaId: 'cli' }),
      now: () => T0 + 60_000,
      openCluster: fakeCluster(asked),
    });
    const out = io();
    assert.equal(await cmd(['--config', 'hoopgate.yaml', '--format', 'json', '--since', '1h'], out), 0, out.err);
    const report = JSON.parse(out.out) as { identities: Record<string, unknown>[] };
    assert.deepEqual(
      report.identities.map((i) => Object.keys(i)),
      [0, 1].map(() => [
        'identity',
        'serviceAccount',
        'since',
        'until',
        'used',
        'refused',
        'approved',
        'suggestedRoles',
        'overGrant',
      ]),
    );
    const bot = report.identities[0] as any;
    assert.deepEqual(
      bot.used.map((u: any) => [u.verb, u.resource, u.name]),
      [
        ['list', 'pods', undefined],
        ['get', 'secrets', 'db-credentials'],
      ],
    );
    assert.deepEqual(bot.overGrant, [{ verb: 'watch', apiGroup: '', resource: 'pods', namespace: 'staging' }]);
    assert.deepEqual(bot.refused, [
      {
        verb: 'delete',
        apiGroup: '',
        resource: 'pods',
        namespace: 'staging',
        name: 'web-0',
        count: 1,
        reason: 'rbac-denied',
      },
    ]);
    assert.deepEqual(report.identities[1], {
      identity: 'idle',
      serviceAccount: 'agents/idle',
      since: new Date(T0 - 3_540_000).toISOString(),
      until: new Date(T0 + 60_000).toISOString(),
      used: [],
      refused: [],
      approved: [],
      suggestedRoles: [],
      overGrant: [],
    });
    assert.deepEqual(asked, ['agents/bot staging', 'agents/idle ']);
    assert.ok(!out.out.includes('KioqTUFTS0VEKioq') && !out.out.includes('password'), 'names only, never values');
    assert.match(out.err, /note: identity bot: over-grant: 1 permission\(s\), found by fake probes/);
  });

  test('yaml: kubectl-ready objects, the rest as comments; --service-account rebinds', async () => {
    await seed();
    const cmd = createLeastPrivilegeCommand({
      loadConfig: (await import('../../packages/gateway/src/config/load.js')).loadConfig,
      openStore: (url) => createStore(url, { replicaId: 'cli' }),
      now: () => T0 + 60_000,
      openCluster: fakeCluster([]),
    });
    const out = io();
    assert.equal(
      await cmd(['-c', configFile, '--identity', 'bot', '--service-account', 'tryout/fresh'], out),
      0,
      out.err,
    );
    const docs = parseAllDocuments(out.out)
      .map((d) => d.toJS())
      .filter((d) => d !== null);
    assert.deepEqual(
      docs.map((d) => [d.kind, d.metadata.namespace]),
      [
        ['Role', 'staging'],
        ['RoleBinding', 'staging'],
      ],
    );
    assert.deepEqual(docs[0].rules, [
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['db-credentials'], verbs: ['get'] },
    ]);
    assert.deepEqual(docs[1].subjects, [{ kind: 'ServiceAccount', namespace: 'tryout', name: 'fresh' }]);
    assert.match(out.out, /^# {3}refused 1×: delete pods\/web-0 -n staging: rbac-denied$/m);
    assert.match(out.out, /^# {3}granted, never used: watch pods -n staging$/m);
  });

  test('table and --offline; usage errors; an unreachable API server fails closed', async () => {
    await seed();
    const base = {
      loadConfig: (await import('../../packages/gateway/src/config/load.js')).loadConfig,
      openStore: (url: string) => createStore(url, { replicaId: 'cli' }),
      now: () => T0 + 60_000,
    };
    const offline = createLeastPrivilegeCommand({
      ...base,
      openCluster: async () => assert.fail('offline must not connect'),
    });
    const out = io();
    assert.equal(
      await offline(['-c', configFile, '--identity', 'bot', '--format', 'table', '--offline', '--since', '1h'], out),
      0,
    );
    assert.match(out.out, /^identity bot \(serviceaccount agents\/bot\)/);
    assert.match(out.out, /^ {4}list\s+core\s+pods\s+staging\s+\*\s+1\s/m);
    assert.match(out.out, /over-grant: not computed \(--offline\)/);
    await assert.rejects(offline(['-c', configFile, '--format', 'xml'], io()), {
      name: 'UsageError',
      message: 'hoopgate audit least-privilege: --format "xml": use yaml, json or table',
    });
    await assert.rejects(offline(['-c', configFile, '--identity', 'nobody'], io()), {
      message: 'hoopgate audit least-privilege: no identity "nobody" in the config (identities: bot, idle)',
    });
    await assert.rejects(offline(['-c', configFile, '--service-account', 'a/b'], io()), {
      message:
        'hoopgate audit least-privilege: --service-account needs --identity: the roles of one identity are bound to one account',
    });
    await assert.rejects(offline(['-c', configFile, '--identity', 'bot', '--service-account', 'nope'], io()), {
      message: 'hoopgate audit least-privilege: --service-account "nope": use namespace/name',
    });
    const down = createLeastPrivilegeCommand({
      ...base,
      openCluster: async () => ({
        lookup: async () => Promise.reject(new Error('cluster "prod": cannot reach the API server')),
        close: async () => undefined,
      }),
    });
    const failed = io();
    assert.equal(await down(['-c', configFile, '--identity', 'bot'], failed), 1);
    assert.equal(failed.out, '');
    assert.match(
      failed.err,
      /identity bot: cannot ask the API server what serviceaccount agents\/bot is granted: cluster "prod": cannot reach the API server; fix the cluster connection or run with --offline/,
    );
  });
});

describe('streaming aggregation (issue #17)', () => {
  test('the accumulator keeps one tally per permission key, not per call; names collapse past the few', () => {
    const accumulator = createIdentityAccumulator({ identity: 'bot', serviceAccount: 'agents/bot', ...window });
    for (let i = 0; i < 10_000; i++) {
      accumulator.add(event(['get', '', 'configmaps', '', 'staging', `cm-${i}`], { at: T0 + i }));
      accumulator.add(event(['list', '', 'pods', '', `ns-${i % 3}`, ''], { at: T0 + i }));
      accumulator.add(
        event(['get', '', 'secrets', '', 'staging', 'db'], {
          at: T0 + i,
          decision: { effect: 'deny', reason: 'deny-rule', rule: 'identities[0].deny[0]' },
        }),
      );
    }
    accumulator.add(event(['get', '', 'pods', '', 'staging', 'x'], { identity: 'someone-else' }));
    // 1 key for 10,000 distinct configmap names (collapsed), 3 for the pods namespaces, 1 refused key with its one name.
    assert.deepEqual(accumulator.size(), { keys: 5, names: 1, namespaces: 4 });
    const { privileges, totals } = accumulator.finish();
    assert.deepEqual(totals, { calls: 30_000, refused: 10_000, approved: 0 });
    const configmaps = privileges.used.find((u) => u.resource === 'configmaps');
    assert.deepEqual(configmaps, {
      verb: 'get',
      apiGroup: '',
      resource: 'configmaps',
      subresource: '',
      namespace: 'staging',
      count: 10_000,
      lastUsed: new Date(T0 + 9_999).toISOString(),
    });
    assert.deepEqual(privileges.refused, [
      {
        verb: 'get',
        apiGroup: '',
        resource: 'secrets',
        namespace: 'staging',
        name: 'db',
        count: 10_000,
        reason: 'deny-rule (identities[0].deny[0])',
      },
    ]);
  });

  test('buildLeastPrivilegeReport reads an async stream once and matches the in-memory summary', async () => {
    const events = [
      event(['get', '', 'configmaps', '', 'staging', 'a']),
      event(['list', '', 'pods', '', '', '']),
      event(['get', '', 'configmaps', '', 'staging', 'b'], { identity: 'other' }),
    ];
    let reads = 0;
    async function* stream() {
      for (const e of events) {
        reads += 1;
        yield e;
      }
    }
    const [report] = await buildLeastPrivilegeReport({
      identities: [{ name: 'bot', serviceAccount: 'agents/bot' }],
      events: stream(),
      ...window,
    });
    assert.equal(reads, 3);
    assert.deepEqual(report?.privileges, summarize(events).privileges);
  });
});
