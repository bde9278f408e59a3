// Issue #12 item 6 through the running gateway: an Impersonate-* refusal names who tried; cluster-wide
// lists under the gateway-namespace default are refused; a stray Upgrade on a non-exec path is refused
// before admission (no decision, hold or token). Item 5: one identity's held requests are capped (429).
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

function assertStatus(
  response: { status: number; json: () => any },
  code: number,
  reason: string,
  message: RegExp,
): void {
  assert.equal(response.status, code);
  const body = response.json();
  assert.deepEqual(
    [body.kind, body.apiVersion, body.status, body.code, body.reason],
    ['Status', 'v1', 'Failure', code, reason],
  );
  assert.match(body.message, /^hoopgate: /);
  assert.match(body.message, message);
}

/** One raw upgrade request over TLS; resolves with everything the gateway wrote before closing (or after `timeoutMs`). */
function rawUpgrade(world: TestWorld, path: string, token: string, timeoutMs = 8_000): Promise<string> {
  const url = new URL(world.gateway.url);
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: world.gatewayTls.ca,
      servername: 'localhost',
    });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`TIMEOUT ${Buffer.concat(chunks).toString('latin1')}`);
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n',
    );
  });
}

describe('identity and token checks through the gateway (issue #12 item 6)', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld({
      editConfig: (document) => ((document['approval'] as Record<string, unknown>)['maxPendingPerIdentity'] = 1),
    });
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  test('an Impersonate-* refusal is recorded with the caller it authenticated', async () => {
    const token = await world.token('ci-deployer');
    const before = world.sim.requests.length;
    const response = await world.call('/api/v1/namespaces/staging/pods?impersonation-probe=1', {
      headers: { authorization: `Bearer ${token}`, 'Impersonate-User': 'system:admin' },
    });
    assertStatus(
      response,
      403,
      'Forbidden',
      /impersonation is not allowed through the gateway \(header Impersonate-User\)/,
    );
    assert.equal(world.sim.requests.length, before, 'nothing reached the API server');
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const record = records.find((r) => String(r.data['path']).includes('impersonation-probe'));
    assert.ok(record !== undefined, 'the refusal is recorded');
    assert.equal(record.identity, 'ci-deployer');
    assert.equal((record.data['principal'] as { subject: string }).subject, 'ci-deployer');
    assert.equal((record.data['decision'] as { reason: string }).reason, 'ERR_IMPERSONATION');
    // Without a token the caller is unknown: 401 first, not a 403 that names nobody.
    const anonymous = await world.call('/api/v1/namespaces/staging/pods', {
      headers: { 'Impersonate-User': 'system:admin' },
    });
    assertStatus(anonymous, 401, 'Unauthorized', /bearer/i);
  });

  for (const resource of ['configmaps', 'secrets', 'events']) {
    test(`cluster-wide list and watch of ${resource} are refused under the gateway-namespace default`, async () => {
      const token = await world.token('readonly-bot');
      const before = world.sim.requests.length;
      for (const query of ['', '?watch=true']) {
        const response = await world.call(`/api/v1/${resource}${query}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        assertStatus(
          response,
          403,
          'Forbidden',
          /refused by default, because a list or watch across all namespaces includes the gateway's own namespace.*the same list per namespace \(-n NAMESPACE\) may pass/,
        );
      }
      assert.equal(world.sim.requests.length, before, 'nothing reached the API server');
    });
  }

  test('kubectl get configmaps -A is refused with the reason; -n staging works', async () => {
    const all = await world.kubectl(['get', 'configmaps', '-A'], { context: 'readonly-bot' });
    assert.notEqual(all.code, 0);
    assert.match(
      all.stderr,
      /Error from server \(Forbidden\): hoopgate: .*across all namespaces includes the gateway's own namespace/,
    );
    assert.doesNotMatch(all.stderr, /safeDefaults|allowUnsafe/);
    const one = await world.kubectl(['get', 'configmaps', '-n', 'staging'], { context: 'readonly-bot' });
    assert.equal(one.code, 0, one.stderr);
  });

  test('a stray Upgrade on a non-exec path is refused 400 before admission: no decision, no hold, no token', async () => {
    const token = await world.token('ci-deployer');
    const metric = async (name: string) =>
      (await world.gateway.metrics.registry.getSingleMetric(name)?.get())?.values.reduce(
        (sum, v) => sum + v.value,
        0,
      ) ?? 0;
    const decisions = await metric('hoopgate_decisions_total');
    const mints = await metric('hoopgate_token_mints_total');
    const sent = world.sim.requests.length;
    // ci-deployer may not list pods in prod: admitted, this would be held for approval (escalate).
    const answer = await rawUpgrade(world, '/api/v1/namespaces/prod/pods?stray-upgrade=1', token);
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      kind: string;
      code: number;
      reason: string;
      message: string;
    };
    assert.deepEqual([body.kind, body.code, body.reason], ['Status', 400, 'BadRequest']);
    assert.match(
      body.message,
      /^hoopgate: upgrades are only accepted for exec, attach, portforward and proxy subresources, not pods\/\(none\)/,
    );
    assert.equal(await metric('hoopgate_decisions_total'), decisions, 'no decision was taken');
    assert.equal(await metric('hoopgate_token_mints_total'), mints, 'no token was minted');
    assert.equal((await world.gateway.approvals.list()).length, 0, 'nothing was held');
    assert.equal(world.sim.requests.length, sent, 'nothing reached the API server');
    const non = await rawUpgrade(world, '/version', token);
    assert.match(non, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(non, /not a non-resource path/);
  });

  test('one identity over approval.maxPendingPerIdentity gets 429 with Retry-After; an identical request joins the pending one', async () => {
    const token = await world.token('ci-deployer');
    const headers = { authorization: `Bearer ${token}` };
    const controller = new AbortController();
    // ci-deployer may not list pods in prod: held for approval (escalate).
    const first = world
      .call('/api/v1/namespaces/prod/pods', { headers, signal: controller.signal })
      .catch((e: unknown) => e);
    for (let i = 0; (await world.gateway.approvals.pending()).length === 0; i += 1) {
      assert.ok(i < 200, 'the first request is held');
      await new Promise((r) => setTimeout(r, 25));
    }
    const same = world
      .call('/api/v1/namespaces/prod/pods', { headers, signal: controller.signal })
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      (await world.gateway.approvals.pending()).length,
      1,
      'the identical request joined the pending approval',
    );
    const over = await world.call('/api/v1/namespaces/prod/services', { headers });
    assertStatus(
      over,
      429,
      'TooManyRequests',
      /identity "ci-deployer" already has 1 requests waiting for approval \(the gateway's limit is 1\); wait for a decision or retry in \d+s/,
    );
    const retryAfter = Number(over.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, String(over.headers['retry-after']));
    assert.equal(over.json().details.retryAfterSeconds, retryAfter);
    assert.equal((await world.gateway.approvals.pending()).length, 1, 'nothing more was held');
    controller.abort();
    await Promise.all([first, same]);
  });

  test('the approvals API takes its token from exactly one Authorization header, never from the query (authn/bearer.ts)', async () => {
    const token = await world.token('ci-deployer');
    const once = await world.call('/hoop/v1/approvals', { headers: { authorization: `Bearer ${token}` } });
    assert.notEqual(once.status, 401, 'one header authenticates');
    const twice = await world.call('/hoop/v1/approvals', {
      headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] },
    });
    assertStatus(
      twice,
      401,
      'Unauthorized',
      /request has 2 Authorization headers: send "Authorization: Bearer <OIDC token>" exactly once/,
    );
    const query = await world.call(`/hoop/v1/approvals?access_token=${token}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertStatus(query, 401, 'Unauthorized', /tokens in the query string \("access_token"\) are refused/);
    const decide = await world.call('/hoop/v1/approvals/nope/approve?access_token=x', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assertStatus(decide, 401, 'Unauthorized', /tokens in the query string/);
  });
});
