// `hoopgate approvals`, in process against a SQLite file shared with a "gateway" replica holding a
// request: list, approve (with a grant), deny, refusals and usage errors.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  createApprovalService,
  type ApprovalService,
  type HoldRequest,
} from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { UsageError } from '../../packages/gateway/src/cli/args.js';
import { createApprovalsCommand } from '../../packages/gateway/src/cli/approvals.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { createStore, type Store } from '../../packages/gateway/src/store/index.js';

let dir = '';
let store: Store;
let gateway: ApprovalService;
const finalized: ApprovalRecord[] = [];
const run = createApprovalsCommand({
  notifier: async () => ({ posted: async () => undefined, finalize: async (r) => void finalized.push(r) }),
});

/** The OS account running the tests, as the CLI names it. */
const me = `cli:${userInfo().username} (uid ${userInfo().uid})`;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    env: { USER: 'mallory', USERNAME: 'mallory' },
    cwd: dir,
    stopSignal: new AbortController().signal,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

function holdRequest(name: string): HoldRequest {
  return {
    sessionId: 's',
    identity: 'ci-deployer',
    issuer: 'https://idp.test',
    subject: 'agent-7',
    groups: [],
    request: {
      cluster: 'prod',
      method: 'DELETE',
      path: `/api/v1/namespaces/${name}`,
      verb: 'delete',
      apiGroup: '',
      resource: 'namespaces',
      subresource: '',
      namespace: '',
      name,
    },
    reason: 'cleanup',
    heldBecause: 'approval-required',
    serviceAccount: 'agents/ci-deployer',
  };
}

async function pendingFor(name: string): Promise<string> {
  for (;;) {
    const found = (await store.approvals.list({ state: 'pending' })).find((r) => r.request.name === name);
    if (found !== undefined) return found.id;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('hoopgate approvals', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hoopgate-approvals-'));
    writeFileSync(
      join(dir, 'hoopgate.yaml'),
      stringify({
        clusters: [{ name: 'prod', server: 'https://k8s.example', credentials: { tokenFile: 'token' } }],
        oidc: { issuers: [{ issuer: 'https://idp.example', audience: 'hoopgate' }] },
        identities: [{ name: 'ci-deployer', match: { groups: ['ci'] }, serviceAccount: 'agents/ci-deployer' }],
        approval: { timeout: '5m', grantOptions: ['15m'] },
        audit: { store: 'sqlite:./hoopgate.db' },
      }),
    );
    store = await createStore(`sqlite:${join(dir, 'hoopgate.db')}`, { replicaId: 'gw-1' });
    gateway = createApprovalService({
      repo: store.approvals,
      config: {
        timeoutMs: 300_000,
        minApprovals: 1,
        grantOptionsMs: [900_000],
        approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [] },
        maxPendingPerIdentity: 10,
      },
      replicaId: 'gw-1',
      pollIntervalMs: 50,
    });
  });

  after(async () => {
    await gateway.shutdown('test over');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists pending approvals, approves one with a grant; the gateway replica sees it', async () => {
    const held = gateway.hold(holdRequest('prod'), new AbortController().signal);
    const id = await pendingFor('prod');
    const list = capture();
    assert.equal(await run(['list', '--config', 'hoopgate.yaml'], list.io), 0);
    assert.match(
      list.stdout(),
      new RegExp(
        `^${id}  ci-deployer  delete namespaces/prod on prod  expires in \\d+[ms]+  votes 0  reason: "cleanup"\\n$`,
      ),
    );
    const approve = capture();
    assert.equal(
      await run(['approve', id, '--config', 'hoopgate.yaml', '--grant', '15m', '--reason', 'ok'], approve.io),
      0,
    );
    assert.equal(approve.stdout(), `${id}: approved by ${me}, granted for 15m\n`);
    const outcome = await held;
    assert.equal(outcome.state, 'approved');
    // The voter comes from the system ($USER says mallory: ignored).
    assert.deepEqual(
      outcome.record.votes.map((v) => [v.user, v.label, v.via]),
      [[`cli:uid:${userInfo().uid}`, me, 'cli']],
    );
    assert.ok(
      await gateway.findGrant(
        { identity: 'ci-deployer', issuer: 'https://idp.test', subject: 'agent-7' },
        'prod',
        holdRequest('prod').request,
      ),
    );
    assert.deepEqual(
      finalized.map((r) => [r.id, r.state]),
      [[id, 'approved']],
    );
    const json = capture();
    assert.equal(await run(['list', '--config', 'hoopgate.yaml', '--state', 'approved', '--json'], json.io), 0);
    assert.equal((JSON.parse(json.stdout().trim()) as ApprovalRecord).id, id);
  });

  it('denies with a reason; a second decision exits 1 and changes nothing', async () => {
    const held = gateway.hold(holdRequest('staging'), new AbortController().signal);
    const id = await pendingFor('staging');
    const deny = capture();
    assert.equal(await run(['deny', id, '--config', 'hoopgate.yaml', '--reason', 'freeze'], deny.io), 0);
    assert.equal(deny.stdout(), `${id}: denied by ${me}\n`);
    const outcome = await held;
    assert.equal(outcome.state, 'denied');
    assert.equal(outcome.record.decisionReason, 'freeze');
    const again = capture();
    assert.equal(await run(['approve', id, '--config', 'hoopgate.yaml'], again.io), 1);
    assert.equal(again.stderr(), `hoopgate approvals: ${id}: already decided; nothing was changed (state denied)\n`);
    const missing = capture();
    assert.equal(await run(['deny', 'nope', '--config', 'hoopgate.yaml'], missing.io), 1);
    assert.equal(missing.stderr(), 'hoopgate approvals: nope: no such approval\n');
    const none = capture();
    assert.equal(await run(['list', '--config', 'hoopgate.yaml'], none.io), 0);
    assert.equal(none.stdout(), 'no pending approvals\n');
  });

  it('grants lists the grant bound to its subject; revoke-grant ends it once, as the OS account', async () => {
    const listed = capture();
    assert.equal(await run(['grants', '--config', 'hoopgate.yaml'], listed.io), 0);
    const line = listed
      .stdout()
      .split('\n')
      .find((l) => l.includes('subject agent-7 (https://idp.test)'));
    assert.ok(line !== undefined, listed.stdout());
    assert.match(
      line,
      /^g-\w+ {2}ci-deployer {2}subject agent-7 \(https:\/\/idp.test\) {2}delete namespaces\/prod on prod {2}as agents\/ci-deployer {2}granted by cli:.* expires in \d+/,
    );
    const id = line.split(' ')[0] ?? '';
    const revoke = capture();
    assert.equal(await run(['revoke-grant', id, '--config', 'hoopgate.yaml'], revoke.io), 0);
    assert.equal(revoke.stdout(), `${id}: revoked by ${me}\n`);
    const again = capture();
    assert.equal(await run(['revoke-grant', id, '--config', 'hoopgate.yaml'], again.io), 1);
    assert.match(
      again.stderr(),
      /no active grant with this ID \(unknown, expired or already revoked\); nothing was changed/,
    );
    assert.equal(
      await gateway.findGrant(
        { identity: 'ci-deployer', issuer: 'https://idp.test', subject: 'agent-7' },
        'prod',
        holdRequest('prod').request,
      ),
      undefined,
    );
    const all = capture();
    assert.equal(await run(['grants', '--config', 'hoopgate.yaml', '--all'], all.io), 0);
    assert.match(all.stdout(), new RegExp(`^${id} .* revoked by cli:`, 'm'));
    const none = capture();
    assert.equal(await run(['grants', '--config', 'hoopgate.yaml'], none.io), 0);
    assert.equal(none.stdout(), 'no active grants\n');
  });

  it('refuses bad command lines with a UsageError and a bad config with exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--config', 'hoopgate.yaml'], /missing subcommand/],
      [['approve', '--config', 'hoopgate.yaml'], /approve needs the approval ID/],
      [['list', 'x', '--config', 'hoopgate.yaml'], /list takes no ID/],
      [['frob', '--config', 'hoopgate.yaml'], /unknown subcommand "frob"/],
      [['approve', 'x', '--config', 'hoopgate.yaml', '--grant', 'soon'], /--grant "soon" is not a duration/],
      [['deny', 'x', '--config', 'hoopgate.yaml', '--grant', '15m'], /--grant applies to approve only/],
      [['list', '--config', 'hoopgate.yaml', '--state', 'weird'], /--state must be one of/],
      [['list'], /option --config is required/],
      [['revoke-grant', '--config', 'hoopgate.yaml'], /revoke-grant needs the grant ID/],
      [['grants', 'x', '--config', 'hoopgate.yaml'], /grants takes no ID/],
      [['list', '--all', '--config', 'hoopgate.yaml'], /--all applies to grants only/],
    ];
    for (const [argv, message] of cases) {
      await assert.rejects(
        run(argv, capture().io),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
        argv.join(' '),
      );
    }
    const bad = capture();
    assert.equal(await run(['list', '--config', 'missing.yaml'], bad.io), 1);
    assert.match(bad.stderr(), /cannot read configuration .*missing.yaml: no such file/);
    const help = capture();
    assert.equal(await run(['--help'], help.io), 0);
    assert.match(help.stdout(), /^usage: hoopgate approvals list/);
  });
});
