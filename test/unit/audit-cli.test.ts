// `hoopgate audit verify|export|least-privilege` and `hoopgate replay`, run in-process against a
// real configuration file and SQLite store.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Sqlite from 'better-sqlite3';
import { createCheckpointer, loadSigningKey } from '../../packages/gateway/src/audit/checkpoint.js';
import { createAuditRecorder } from '../../packages/gateway/src/audit/recorder.js';
import type { AuditStart } from '../../packages/gateway/src/audit/types.js';
import { parseTimeArg, run as auditRun } from '../../packages/gateway/src/cli/audit.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { run as replayRun } from '../../packages/gateway/src/cli/replay.js';
import { createAuditReader } from '../../packages/gateway/src/audit/reader.js';
import type { AuditReader } from '../../packages/gateway/src/slack/commands.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import { tamperData } from '../helpers/audit-rows.js';

const dir = mkdtempSync(join(tmpdir(), 'hoop-audit-cli-'));
const dbFile = join(dir, 'data', 'audit.db');
const keyFile = join(dir, 'checkpoint.pem');
const configFile = join(dir, 'hoopgate.yaml');
const T0 = Date.parse('2024-05-01T10:00:00Z');
let sessionId = '';

function io(): CliIo & { out: string; err: string } {
  const result = {
    out: '',
    err: '',
    stdout: (text: string) => void (result.out += text),
    stderr: (text: string) => void (result.err += text),
    env: {},
    cwd: dir,
    stopSignal: new AbortController().signal,
  };
  return result;
}

function start(time: number, overrides: Partial<AuditStart> = {}): AuditStart {
  return {
    requestId: `r${time}`,
    time,
    cluster: 'prod',
    identity: 'ci-deployer',
    method: 'GET',
    path: '/api/v1/namespaces/default/pods/web-1',
    info: {
      verb: 'get',
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'pods',
      subresource: '',
      namespace: 'default',
      name: 'web-1',
      isResourceRequest: true,
    },
    kubectlSession: 'ks-1',
    kubectlCommand: 'kubectl get pod web-1',
    decision: { effect: 'allow', reason: 'rbac' },
    ...overrides,
  };
}

before(async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa-token'), 'token\n');
  writeFileSync(
    configFile,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      'clusters:',
      '  - name: prod',
      '    server: "https://127.0.0.1:6443"',
      '    insecureSkipTLSVerify: true',
      '    tokens: static',
      '    staticTokens: { "agents/ci": { tokenFile: ./sa-token } }',
      'oidc: { issuers: [ { issuer: "https://idp.example", audience: hoopgate } ] }',
      'identities: [ { name: ci-deployer, match: { groups: [ci] }, serviceAccount: agents/ci } ]',
      'audit:',
      '  store: sqlite:./data/audit.db',
      '  checkpoint: { every: 1h, signingKeyFile: ./checkpoint.pem }',
      '',
    ].join('\n'),
  );
  const store = await createStore(`sqlite:${dbFile}`, { replicaId: 'r-1' });
  let now = T0;
  const recorder = createAuditRecorder({
    store,
    replicaId: 'r-1',
    clock: () => now,
    maxBodyBytes: 1024,
    bodies: true,
    sessionIdleMs: 60_000,
  });
  const get = await recorder.begin(start(T0));
  now = T0 + 40;
  get.complete({ status: 200, bytesOut: 512, durationMs: 40 });
  sessionId = get.sessionId;
  await recorder.record(
    start(T0 + 1000, {
      method: 'DELETE',
      path: '/api/v1/namespaces/prod',
      info: {
        verb: 'delete',
        apiGroup: '',
        apiVersion: 'v1',
        resource: 'namespaces',
        subresource: '',
        namespace: '',
        name: 'prod',
        isResourceRequest: true,
      },
      decision: { effect: 'approve', reason: 'approval-required' },
    }),
    { status: 403, bytesOut: 200, durationMs: 5, approval: { id: 'ap-1', state: 'denied', by: ['alice'] } },
  );
  await recorder.record(
    // A non-resource refusal: the start carries no `info`.
    (({ info: _none, ...rest }) => rest)(
      start(T0 + 2000, {
        method: 'GET',
        path: '/version',
        kubectlSession: 'ks-2',
        decision: { effect: 'deny', reason: 'no-identity' },
      }),
    ),
    {
      status: 403,
      bytesOut: 100,
      durationMs: 1,
    },
  );
  await recorder.close();
  const checkpointer = createCheckpointer({
    store: store.audit,
    key: await loadSigningKey(keyFile),
    replicaId: 'r-1',
    clock: () => T0 + 3000,
  });
  await checkpointer.checkpoint();
  await store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('audit verify: exit 0 with the count of records and chains', async () => {
  const out = io();
  assert.equal(await auditRun(['verify', '--config', 'hoopgate.yaml'], out), 0);
  assert.match(out.out, /^audit ok: 7 records in 1 chains \(--full, \d+\.\d\d s, [\d,]+ records\/s\)\n$/);
  assert.equal(out.err, '');
});

test('audit export: JSON lines with sessionId, filtered by --since/--until', async () => {
  const all = io();
  assert.equal(await auditRun(['export', '--config', configFile], all), 0);
  const events = all.out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, any>);
  assert.equal(events.length, 3);
  assert.deepEqual(
    events.map((e) => [e.sessionId === sessionId, e.decision.effect, e.outcome.status]),
    [
      [true, 'allow', 200],
      [true, 'approve', 403],
      [false, 'deny', 403],
    ],
  );
  assert.equal(events[0]?.time, '2024-05-01T10:00:00.000Z');
  assert.equal(events[0]?.kubectlCommand, 'kubectl get pod web-1');

  const window = io();
  assert.equal(
    await auditRun(
      ['export', '--config', configFile, '--since', '2024-05-01T10:00:01Z', '--until', '2024-05-01T10:00:02Z'],
      window,
    ),
    0,
  );
  assert.deepEqual(
    window.out
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { path: string }).path),
    ['/api/v1/namespaces/prod'],
  );

  const none = io();
  assert.equal(await auditRun(['export', '--config', configFile, '--since', '1h'], none), 0);
  assert.equal(none.out, '');
});

test('--since/--until read ISO times and durations back from now; anything else is a usage error', () => {
  const now = T0;
  assert.equal(parseTimeArg('audit export', 'since', '24h', now), now - 86_400_000);
  assert.equal(parseTimeArg('audit export', 'since', '2024-05-01T00:00:00Z', now), Date.parse('2024-05-01T00:00:00Z'));
  assert.throws(() => parseTimeArg('audit export', 'since', 'yesterday', now), {
    name: 'UsageError',
    message: 'hoopgate audit export: --since "yesterday": use an ISO time (2024-05-01T12:00:00Z) or a duration (24h)',
  });
});

test('replay: the timeline of one session; an unknown session exits 1', async () => {
  const out = io();
  assert.equal(await replayRun([sessionId, '--config', configFile], out), 0);
  const lines = out.out.trimEnd().split('\n');
  assert.match(
    lines[0] ?? '',
    new RegExp(`^session ${sessionId} · ci-deployer · cluster prod · 2024-05-01T10:00:00.000Z … .* · 2 calls$`),
  );
  assert.equal(lines[1], 'command: kubectl get pod web-1');
  assert.equal(lines[2], '2024-05-01T10:00:00.000Z  get pods/web-1 -n default  allow  200');
  assert.equal(lines[3], '2024-05-01T10:00:01.000Z  delete namespaces/prod  approve  403  denied by alice');

  const missing = io();
  assert.equal(await replayRun(['s-nope', '--config', configFile], missing), 1);
  assert.match(missing.err, /^hoopgate replay: no session "s-nope" in the audit store/);
  await assert.rejects(replayRun(['--config', configFile], io()), {
    name: 'UsageError',
    message: 'hoopgate replay: missing argument SESSION_ID',
  });
});

test('audit least-privilege runs the report module; an unknown subcommand is a usage error', async () => {
  const help = io();
  assert.equal(await auditRun(['least-privilege', '--help'], help), 0);
  assert.match(help.out, /^usage: hoopgate audit least-privilege --config FILE \[options\]\n/);
  await assert.rejects(auditRun(['frobnicate'], io()), {
    name: 'UsageError',
    message: 'hoopgate audit: unknown subcommand "frobnicate": use verify, export or least-privilege',
  });
});

test('the Slack /hoop reader: timeline entries and recent sessions of the store', async () => {
  const store = await createStore(`sqlite:${dbFile}`, { replicaId: 'reader' });
  const reader: AuditReader = createAuditReader(store);
  assert.deepEqual(await reader.sessionTimeline(sessionId), [
    { at: T0, verb: 'get', resource: 'pods', namespace: 'default', name: 'web-1', decision: 'allow', status: 200 },
    {
      at: T0 + 1000,
      verb: 'delete',
      resource: 'namespaces',
      name: 'prod',
      decision: 'approve→denied',
      status: 403,
      approver: 'alice',
    },
  ]);
  const sessions = await reader.listSessions('ci-deployer');
  assert.deepEqual(
    sessions.map((s) => [s.sessionId === sessionId, s.calls, s.refused]),
    [
      [false, 1, 1],
      [true, 2, 0],
    ],
  );
  await store.close();
});

test('audit verify: exit 1 naming the first bad record after tampering', async () => {
  const db = new Sqlite(dbFile);
  tamperData(db, 4, (data) => ({ ...data, status: 200 }));
  db.close();
  const out = io();
  assert.equal(await auditRun(['verify', '--config', configFile], out), 1);
  assert.equal(out.out, '');
  assert.equal(
    out.err,
    'audit verify failed: chain r-1 seq 4: record does not match its hash (changed, or moved from another position)\n',
  );
});
