// Issue #16, "messages for the one reading them": every refusal an agent receives says what happened,
// what would pass and who may help (the approvers, quoting the Audit-Id), never an operator's config
// path; the operator's detail (the config entry that decided) is in the request's log line instead.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

/** What an agent can neither see nor change: config paths and key names. */
const CONFIG_PATH =
  /identities\[|rules\[|allowUnsafe|safeDefaults|\.ya?ml|approval\.(require|escalate|approvers|maxPending|timeout)|exec\.spdy|gateway\.maxBodyBytes|masking\.|clusters\[/;
/** The demo's approvers (approval.approvers.oidcGroups), as the agent reads them. */
const HELP = 'Who may help: ask an approver (group platform-oncall)';

type Reply = { status: number; headers: Record<string, unknown>; json: () => any };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('refusal messages speak to the agent; config paths go to the log line (#16)', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld({
      extraClients: [{ clientId: 'stranger', clientSecret: 'stranger-secret', groups: ['nobody'] }],
      // Short enough to see a held call expire.
      editConfig: (document) => ((document['approval'] as Record<string, unknown>)['timeout'] = '2s'),
    });
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  /** The refusal's log line, found by the Audit-Id the answer carries. */
  async function logLineOf(auditId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 200; i += 1) {
      for (const line of world.logLines) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry['requestId'] === auditId && entry['status'] !== undefined) return entry;
      }
      await sleep(10);
    }
    assert.fail(`no log line for request ${auditId}`);
  }

  /** The Status an agent reads, checked as #16 asks; returns its message and the log line's detail. */
  async function assertAgentRefusal(
    reply: Reply,
    expected: { reason: RegExp; message: RegExp; detail?: RegExp },
  ): Promise<string> {
    assert.equal(reply.status, 403);
    const status = reply.json();
    assert.deepEqual(
      [status.kind, status.apiVersion, status.status, status.code, status.reason],
      ['Status', 'v1', 'Failure', 403, 'Forbidden'],
    );
    const message = String(status.message);
    assert.match(message, /^hoopgate: /);
    assert.doesNotMatch(message, CONFIG_PATH, message);
    assert.match(message, expected.message);
    const auditId = String(reply.headers['audit-id']);
    assert.ok(message.includes(`${HELP}, quoting Audit-Id ${auditId}.`), message);
    assert.ok(message.length < 600, `short: ${message.length} characters`);
    const line = await logLineOf(auditId);
    assert.match(String(line['reason']), expected.reason);
    assert.equal(`hoopgate: ${String(line['message'])}`, message, 'the log line has what the agent read');
    if (expected.detail !== undefined) assert.match(String(line['detail']), expected.detail);
    return message;
  }

  async function call(agent: string, path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
    const token = await world.token(agent);
    return world.call(path, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
  }

  test('deny rule', async () => {
    await assertAgentRefusal(await call('readonly-bot', '/api/v1/namespaces/staging/secrets'), {
      reason: /^deny-rule$/,
      message:
        /^hoopgate: identity "readonly-bot" may not list secrets -n staging: a deny rule of the gateway covers get, list, watch on secrets, whatever RBAC allows\. A call outside that/,
      detail: /^denied by identities\[0\]\.deny\[0\]; narrow or remove that rule to allow it$/,
    });
  });

  test("safe default: the gateway's namespace, and nodes/proxy", async () => {
    await assertAgentRefusal(await call('ci-deployer', '/api/v1/namespaces/hoopgate/secrets/anything'), {
      reason: /^safe-default$/,
      message:
        /refused by default, because the gateway's own namespace holds its credentials\. Instead, the same call in another namespace may pass\./,
      detail:
        /^safeDefaults\.gatewayNamespace; to allow it for this identity, add gatewayNamespace to identities\[1\]\.allowUnsafe$/,
    });
    await assertAgentRefusal(await call('ci-deployer', '/api/v1/nodes/node-1/proxy/metrics'), {
      reason: /^safe-default$/,
      message:
        /may not create nodes\/node-1\/proxy: refused by default.*Instead, pods\/log or pods\/exec on a named pod may pass\./,
      detail: /add nodesProxy to identities\[1\]\.allowUnsafe/,
    });
  });

  test('namespace not allowed: a list across all namespaces', async () => {
    await assertAgentRefusal(await call('ci-deployer', '/api/v1/configmaps'), {
      reason: /^safe-default$/,
      message: /may not list configmaps: .*Instead, the same list per namespace \(-n NAMESPACE\) may pass\./,
      detail: /safeDefaults\.gatewayNamespace/,
    });
  });

  test('the baseline account has no RBAC permission', async () => {
    await assertAgentRefusal(await call('readonly-bot', '/api/v1/namespaces/staging/configmaps', { method: 'POST' }), {
      reason: /^rbac-denied$/,
      message:
        /may not create configmaps -n staging: its serviceaccount agents\/readonly-bot has no RBAC permission for it\. `kubectl auth can-i --list -n staging` shows what may pass\./,
      detail: /identities\[0\]\.serviceAccount\) is not permitted by RBAC.*set identities\[0\]\.approval\.escalate/,
    });
  });

  test('no identity maps the caller', async () => {
    await assertAgentRefusal(await call('stranger', '/api/v1/namespaces/staging/pods'), {
      reason: /^no-identity$/,
      message:
        /^hoopgate: no identity of this gateway maps subject .*groups \[nobody\].*a token whose subject or groups an identity maps may pass\./,
      detail: /add a matching entry under identities in the gateway config/,
    });
  });

  test('Impersonate-* refused', async () => {
    await assertAgentRefusal(
      await call('ci-deployer', '/api/v1/namespaces/staging/pods', { headers: { 'Impersonate-User': 'system:admin' } }),
      {
        reason: /^ERR_IMPERSONATION$/,
        message:
          /impersonation is not allowed through the gateway \(header Impersonate-User\).*The same call without --as, --as-group or --as-uid may pass\./,
      },
    );
  });

  /** A call held for approval (ci-deployer may not list pods in prod: escalate), and its record. */
  async function held(path: string) {
    const answer = call('ci-deployer', path);
    for (let i = 0; i < 200; i += 1) {
      const [record] = (await world.gateway.approvals.pending()).filter((r) => r.request.path === path);
      if (record !== undefined) return { answer, record };
      await sleep(10);
    }
    assert.fail(`${path} was not held`);
  }

  test('approval denied', async () => {
    const { answer, record } = await held('/api/v1/namespaces/prod/pods');
    const decided = await world.gateway.approvals.decide(record.id, {
      approve: false,
      approver: true,
      reason: 'not during the freeze',
      actor: { user: 'UAPPROVER', label: 'alice', at: Date.now(), via: 'slack' },
    });
    assert.ok(decided.ok);
    await assertAgentRefusal(await answer, {
      reason: /^denied$/,
      message: new RegExp(`was denied by alice: not during the freeze \\(approval ${record.id}\\)\\. Who may help`),
    });
  });

  test('approval expired', async () => {
    const { answer, record } = await held('/api/v1/namespaces/prod/services');
    let reply: Reply | undefined;
    void answer.then((r) => (reply = r));
    for (let i = 0; reply === undefined && i < 400; i += 1) {
      await world.gateway.approvals.sweep();
      await sleep(25);
    }
    assert.ok(reply !== undefined, 'the held call ended');
    await assertAgentRefusal(reply, {
      reason: /^expired$/,
      message: new RegExp(
        `was not approved within 2s \\(approval ${record.id} timed out\\); run it again when an approver can answer\\. Who may help`,
      ),
    });
  });

  test('what real kubectl prints: the agent-facing message, no config path', async () => {
    const result = await world.kubectl(['get', 'secrets', '-n', 'staging'], { context: 'readonly-bot' });
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /^Error from server \(Forbidden\): hoopgate: identity "readonly-bot" may not list secrets -n staging: a deny rule of the gateway covers get, list, watch on secrets, whatever RBAC allows\. .* Who may help: ask an approver \(group platform-oncall\), quoting Audit-Id [0-9a-f-]{36}\.$/m,
    );
    assert.doesNotMatch(result.stderr, CONFIG_PATH);
  });
});
