// Issue #16 item 3 end to end: `kubectl auth can-i` (1.32 posts protobuf, 1.27 JSON) answered by the
// gateway from the decision it enforces, never forwarded; each answer agrees with `hoopgate explain`
// for the same request; `can-i --list` shows only rules that pass; the review call is recorded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createExplainCommand } from '../../packages/gateway/src/cli/explain.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { forge } from '../helpers/idp.js';
import type { KubectlVersion } from '../helpers/kubectl.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

function assertStatus(
  response: { status: number; json: () => any },
  code: number,
  reason: string,
  message: RegExp,
): void {
  assert.equal(response.status, code);
  const body = response.json();
  assert.equal(body.kind, 'Status');
  assert.equal(body.code, code);
  assert.equal(body.reason, reason);
  assert.match(body.message, /^hoopgate: /);
  assert.match(body.message, message);
}

/** `hoopgate explain`'s decision line (`allow (rbac-allowed)`), asking the simulated cluster's RBAC. */
async function explain(world: TestWorld, identity: string, request: string): Promise<{ effect: string; text: string }> {
  const out: string[] = [];
  const io = {
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => out.push(t),
    env: {},
    cwd: '/',
    stopSignal: new AbortController().signal,
  } as unknown as CliIo;
  const code = await createExplainCommand()(['--config', world.configPath, '--identity', identity, request], io);
  const text = out.join('');
  assert.equal(code, 0, text);
  const effect = /^decision: +(\w+) \(/m.exec(text)?.[1];
  assert.ok(effect !== undefined, text);
  return { effect, text };
}

// [context, can-i arguments, explain request, expected answer, what the reason says]
const cases: Array<{
  name: string;
  context: string;
  args: string[];
  request: string;
  yes: boolean;
  effect: string;
  reason?: RegExp;
}> = [
  {
    name: 'an allowed get',
    context: 'readonly-bot',
    args: ['get', 'pods/web-0', '-n', 'staging'],
    request: 'GET /api/v1/namespaces/staging/pods/web-0',
    yes: true,
    effect: 'allow',
  },
  {
    name: "a list in the gateway's namespace (safe default)",
    context: 'readonly-bot',
    args: ['list', 'pods', '-n', 'hoopgate'],
    request: 'GET /api/v1/namespaces/hoopgate/pods',
    yes: false,
    effect: 'deny',
    reason: /gateway|hoopgate/,
  },
  {
    name: 'a deny rule',
    context: 'readonly-bot',
    args: ['get', 'secrets', '-n', 'staging'],
    request: 'GET /api/v1/namespaces/staging/secrets/x',
    yes: false,
    effect: 'deny',
    reason: /deny/,
  },
  {
    name: 'RBAC says no, no escalate',
    context: 'readonly-bot',
    args: ['delete', 'pods', '-n', 'staging'],
    request: 'DELETE /api/v1/namespaces/staging/pods/x',
    yes: false,
    effect: 'deny',
  },
  {
    name: 'held for approval (require)',
    context: 'ci-deployer',
    args: ['delete', 'namespaces/prod'],
    request: 'DELETE /api/v1/namespaces/prod',
    yes: false,
    effect: 'approve',
    reason: /approv.*platform-oncall/,
  },
  {
    name: 'held for approval (escalate)',
    context: 'ci-deployer',
    args: ['delete', 'pods', '-n', 'prod'],
    request: 'DELETE /api/v1/namespaces/prod/pods/x',
    yes: false,
    effect: 'approve',
    reason: /approv.*platform-oncall/,
  },
];

describe('kubectl auth can-i answered by the gateway', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld({
      extraClients: [{ clientId: 'stranger', clientSecret: 'stranger-secret', groups: ['nobody'] }],
    });
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  for (const version of [undefined, '1.27'] as Array<KubectlVersion | undefined>) {
    describe(`kubectl ${version ?? '/usr/bin (protobuf)'}`, () => {
      for (const c of cases) {
        test(`${c.name}: ${c.yes ? 'yes' : 'no'}, as explain decides`, async () => {
          const result = await world.kubectl(['auth', 'can-i', ...c.args, '-v=8'], {
            context: c.context,
            ...(version === undefined ? {} : { version }),
          });
          assert.match(
            result.stdout.trim().split('\n').at(-1) ?? '',
            c.yes ? /^yes$/ : /^no( - hoopgate: .*)?$/,
            result.stderr.slice(-2000),
          );
          assert.equal(result.code, c.yes ? 0 : 1);
          const explained = await explain(world, c.context, c.request);
          assert.equal(explained.effect, c.effect, explained.text);
          assert.equal(explained.effect === 'allow', c.yes);
          if (c.reason !== undefined) assert.match(result.stderr + result.stdout, c.reason);
        });
      }
    });
  }

  test('the answer object: 201, spec echoed, denied on a deny rule, reason names approval; the call is recorded', async () => {
    const token = await world.token('ci-deployer');
    const post = (spec: object) =>
      world.call('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec }),
      });
    const spec = { resourceAttributes: { verb: 'delete', resource: 'namespaces', name: 'prod' } };
    const held = await post(spec);
    assert.equal(held.status, 201);
    const body = held.json();
    assert.deepEqual(
      { apiVersion: body.apiVersion, kind: body.kind, metadata: body.metadata, spec: body.spec },
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        metadata: { creationTimestamp: null },
        spec,
      },
    );
    assert.equal(body.status.allowed, false);
    assert.equal(body.status.denied, undefined);
    assert.match(body.status.reason, /^hoopgate: .*approv/);
    const gatewayNs = (
      await post({ resourceAttributes: { verb: 'list', resource: 'pods', namespace: 'hoopgate' } })
    ).json();
    assert.deepEqual(
      { allowed: gatewayNs.status.allowed, denied: gatewayNs.status.denied },
      { allowed: false, denied: true },
    );

    const garbage = await world.call('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: 'not json',
    });
    assertStatus(garbage, 400, 'BadRequest', /review could not be read/);
    const invalid = await post({});
    assertStatus(invalid, 422, 'Invalid', /exactly one of nonResourceAttributes or resourceAttributes/);
    let reviews: Array<{ identity?: string; data: Record<string, unknown> }> = [];
    for (let tries = 0; tries < 50 && reviews.length < 4; tries += 1) {
      const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
      reviews = records.filter(
        (r) =>
          r.identity === 'ci-deployer' && r.data['path'] === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      );
      if (reviews.length < 4) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(reviews.length >= 4, `the review calls are recorded (${reviews.length})`);
    const reasons = reviews.map((r) => (r.data['decision'] as { effect: string; reason: string }).reason);
    assert.deepEqual(
      reasons.filter((r) => r !== 'self-review').sort(),
      ['ERR_BAD_REQUEST', 'ERR_INVALID'],
      reasons.join(','),
    );
  });

  test('an unauthenticated review is 401, an identity-less caller 403; neither is answered', async () => {
    const body = JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: 'get', resource: 'pods' } },
    });
    const path = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
    const anonymous = await world.call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assertStatus(anonymous, 401, 'Unauthorized', /token/i);
    const forged = await world.call(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${forge.algNone(world.idp)}`, 'content-type': 'application/json' },
      body,
    });
    assertStatus(forged, 401, 'Unauthorized', /./);
    const stranger = await world.token('stranger');
    const nobody = await world.call(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${stranger}`, 'content-type': 'application/json' },
      body,
    });
    assertStatus(nobody, 403, 'Forbidden', /identit/);
    const rules = JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectRulesReview',
      spec: { namespace: 'staging' },
    });
    const rulesPath = '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews';
    assertStatus(
      await world.call(rulesPath, { method: 'POST', headers: { 'content-type': 'application/json' }, body: rules }),
      401,
      'Unauthorized',
      /token/i,
    );
    assertStatus(
      await world.call(rulesPath, {
        method: 'POST',
        headers: { authorization: `Bearer ${stranger}`, 'content-type': 'application/json' },
        body: rules,
      }),
      403,
      'Forbidden',
      /identit/,
    );
  });

  test('can-i --list shows only the rules that pass', async () => {
    for (const version of [undefined, '1.27'] as Array<KubectlVersion | undefined>) {
      const list = await world.kubectl(['auth', 'can-i', '--list', '-n', 'staging'], {
        context: 'readonly-bot',
        ...(version === undefined ? {} : { version }),
      });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^pods\s+\[\]\s+\[\]\s+\[get list watch\]/m);
      // readonly-bot's RBAC grants nothing on secrets and its deny rule refuses reading them: not listed.
      assert.doesNotMatch(list.stdout, /^secrets/m);
      const ci = await world.kubectl(['auth', 'can-i', '--list', '-n', 'staging'], {
        context: 'ci-deployer',
        ...(version === undefined ? {} : { version }),
      });
      assert.equal(ci.code, 0, ci.stderr);
      // RBAC lets ci-deployer read and write secrets in staging; nothing of the gateway stops it there.
      assert.match(ci.stdout, /^secrets\s+\[\]\s+\[\]\s+\[get list watch create update patch delete\]/m);
    }
    const hidden = await world.kubectl(['auth', 'can-i', '--list', '-n', 'hoopgate'], { context: 'readonly-bot' });
    assert.equal(hidden.code, 0, hidden.stderr);
    // The cluster-wide read of pods is RBAC's, but the gateway's namespace is refused by a safe default.
    assert.doesNotMatch(hidden.stdout, /^pods\s/m);
  });
});
