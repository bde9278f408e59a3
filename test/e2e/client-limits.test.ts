// Issue #12 item 2, limits: per client address (before authentication) and per identity (after it),
// concurrent requests and rate. Beyond a limit: 429 with Retry-After, as a Status; an address over its
// limit costs no token check, no audit record and nothing upstream.
import type { IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Agent } from 'undici';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../packages/gateway/src/gateway.js';
import type { LimitsConfig } from '../../packages/gateway/src/config/types.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const roomy = { maxConcurrent: 1000, requestsPerSecond: 1000, burst: 1000 };

function assertTooMany(
  response: { status: number; headers: Record<string, unknown>; json: () => any },
  message: RegExp,
): void {
  assert.equal(response.status, 429);
  assert.match(String(response.headers['retry-after']), /^[1-9]\d*$/);
  const status = response.json();
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, 429);
  assert.equal(status.reason, 'TooManyRequests');
  assert.match(status.message, /^hoopgate: /);
  assert.match(status.message, message);
}

describe('per-client limits', () => {
  let world: TestWorld;
  const gateways: Gateway[] = [];
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    for (const gateway of gateways) await gateway.close().catch(() => undefined);
    // The extra gateways share the world's audit store, so their records are scanned too.
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  async function gatewayWith(limits: Partial<LimitsConfig>): Promise<Gateway> {
    const config = {
      ...world.config,
      listen: { ...world.config.listen, port: 0 },
      limits: { ...world.config.limits, ...limits },
    };
    const gateway = await startGateway({ config, logDestination: { write: () => true } as never });
    gateways.push(gateway);
    return gateway;
  }

  test('the defaults are on', () => {
    assert.deepEqual(world.config.limits, {
      perAddress: { maxConcurrent: 256, requestsPerSecond: 200, burst: 400 },
      perIdentity: { maxConcurrent: 128, requestsPerSecond: 100, burst: 200 },
      maxTrackedClients: 10_000,
    });
  });

  test('per address, before authentication: over the rate a caller without a token gets 429, unrecorded, nothing upstream', async () => {
    const gateway = await gatewayWith({ perAddress: { maxConcurrent: 100, requestsPerSecond: 1, burst: 3 } });
    const recordsBefore = (await world.gateway.store.audit.listRecords({ kinds: ['request'] })).length;
    const simBefore = world.sim.requests.length;
    const path = '/api/v1/namespaces/staging/configmaps/app-config';
    // The bucket holds 3 and refills 1 per second: however slow the machine, 10 calls in a row exceed it.
    let answered401 = 0;
    let refused: Awaited<ReturnType<typeof world.call>> | undefined;
    for (let i = 0; i < 10 && refused === undefined; i += 1) {
      const response = await world.call(path, {
        origin: gateway.url,
        headers: { authorization: 'Bearer not-even-a-jwt' },
      });
      if (response.status === 429) refused = response;
      else {
        assert.equal(response.status, 401);
        answered401 += 1;
      }
    }
    assert.ok(refused !== undefined, 'a caller over the rate is refused');
    assert.ok(answered401 >= 3, `the burst of 3 is let through first (${answered401})`);
    assertTooMany(
      refused,
      /too many requests from this address \(limits\.perAddress\.requestsPerSecond\); retry in 1s/,
    );
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    assert.equal(records.length - recordsBefore, answered401, 'every 401 is recorded, the 429 is not');
    assert.equal(world.sim.requests.length, simBefore);
  });

  test('per address: concurrent requests (open watches) beyond maxConcurrent get 429 until one ends', async () => {
    const gateway = await gatewayWith({ perAddress: { maxConcurrent: 2, requestsPerSecond: 1000, burst: 1000 } });
    const token = await world.token('ci-deployer');
    const agent = new Agent({ connect: { ca: world.gatewayTls.ca } });
    const controller = new AbortController();
    try {
      const watches = await Promise.all(
        [1, 2].map(() =>
          agent.request({
            origin: gateway.url,
            path: '/api/v1/namespaces/staging/configmaps?watch=true',
            method: 'GET',
            headers: { authorization: `Bearer ${token}` },
            signal: controller.signal,
          }),
        ),
      );
      assert.deepEqual(
        watches.map((w) => w.statusCode),
        [200, 200],
      );
      for (const w of watches) w.body.on('error', () => undefined).resume();
      assertTooMany(
        await world.call('/api/v1/namespaces/staging/configmaps', {
          origin: gateway.url,
          headers: { authorization: `Bearer ${token}` },
        }),
        /too many concurrent requests from this address \(limits\.perAddress\.maxConcurrent\)/,
      );
      // Upgrades count too, and are answered with the same Status.
      const ws = new WebSocket(
        `${gateway.url.replace('https', 'wss')}/api/v1/namespaces/staging/pods/web-0/exec?command=sh&stdin=true&stdout=true`,
        ['v5.channel.k8s.io'],
        { ca: world.gatewayTls.ca, headers: { authorization: `Bearer ${token}` } },
      );
      const [, response] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
      let body = '';
      for await (const chunk of response) body += String(chunk);
      assertTooMany(
        { status: response.statusCode ?? 0, headers: response.headers, json: () => JSON.parse(body) },
        /too many concurrent requests from this address/,
      );
      controller.abort();
      await waitFor(
        'the watches to be released',
        async () =>
          (
            await world.call('/api/v1/namespaces/staging/configmaps', {
              origin: gateway.url,
              headers: { authorization: `Bearer ${token}` },
            })
          ).status === 200,
      );
    } finally {
      controller.abort();
      await agent.close();
    }
  });

  test("per identity: an open watch holds its subject's slot until it ends (also through the approvals API); another subject is not held", async () => {
    const gateway = await gatewayWith({
      perAddress: roomy,
      perIdentity: { maxConcurrent: 1, requestsPerSecond: 1000, burst: 1000 },
    });
    const deployer = await world.token('ci-deployer');
    const reader = await world.token('readonly-bot');
    const agent = new Agent({ connect: { ca: world.gatewayTls.ca } });
    const controller = new AbortController();
    const call = (token: string, path = '/api/v1/namespaces/staging/configmaps/app-config') =>
      world.call(path, { origin: gateway.url, headers: { authorization: `Bearer ${token}` } });
    try {
      // Before: the slot is taken and given back by each call in turn.
      assert.equal((await call(deployer)).status, 200);
      assert.equal((await call(deployer)).status, 200);
      const watch = await agent.request({
        origin: gateway.url,
        path: '/api/v1/namespaces/staging/configmaps?watch=true',
        method: 'GET',
        headers: { authorization: `Bearer ${deployer}` },
        signal: controller.signal,
      });
      assert.equal(watch.statusCode, 200);
      watch.body.on('error', () => undefined).resume();
      // The watch's handler returned long ago; its slot is held by the response, not by the middleware.
      assertTooMany(
        await call(deployer),
        /too many concurrent requests from subject "ci-deployer" \(limits\.perIdentity\.maxConcurrent\)/,
      );
      assertTooMany(await call(deployer, '/hoop/v1/approvals'), /limits\.perIdentity\.maxConcurrent/);
      assert.equal((await call(reader)).status, 200, 'another subject is not held by it');
      controller.abort();
      await waitFor('the watch to release its slot', async () => (await call(deployer)).status === 200);
    } finally {
      controller.abort();
      await agent.close();
    }
  });

  test('per identity, after authentication: one subject over its rate gets 429; another subject from the same address does not', async () => {
    const gateway = await gatewayWith({
      perAddress: roomy,
      perIdentity: { maxConcurrent: 100, requestsPerSecond: 1, burst: 2 },
    });
    const deployer = await world.token('ci-deployer');
    const reader = await world.token('readonly-bot');
    const path = '/api/v1/namespaces/staging/configmaps/app-config?limit-test=1';
    // The bucket holds 2 and refills 1 per second: however slow the machine, 10 calls in a row exceed it.
    const upstreamCalls = () => world.sim.requests.filter((r) => r.rawPath.includes('limit-test')).length;
    let allowed = 0;
    let refused: Awaited<ReturnType<typeof world.call>> | undefined;
    let upstreamDuringRefusal = -1;
    for (let i = 0; i < 10 && refused === undefined; i += 1) {
      const before = upstreamCalls();
      const response = await world.call(path, {
        origin: gateway.url,
        headers: { authorization: `Bearer ${deployer}` },
      });
      if (response.status === 429) {
        refused = response;
        upstreamDuringRefusal = upstreamCalls() - before;
      } else {
        assert.equal(response.status, 200);
        allowed += 1;
      }
    }
    assert.ok(refused !== undefined, 'a subject over its rate is refused');
    assert.ok(allowed >= 2, `the burst of 2 is let through first (${allowed})`);
    assertTooMany(refused, /too many requests from subject "ci-deployer" \(limits\.perIdentity\.requestsPerSecond\)/);
    assert.equal(upstreamDuringRefusal, 0, 'nothing upstream');
    // Refused after authentication: the record names who was refused (issuer, subject, identity).
    const auditId = String(refused.headers['audit-id']);
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const record = records.find((r) => r.data['requestId'] === auditId);
    assert.ok(record !== undefined, `the 429 is recorded (Audit-Id ${auditId})`);
    assert.equal(record.identity, 'ci-deployer');
    const principal = record.data['principal'] as { issuer: string; subject: string };
    assert.equal(principal.subject, 'ci-deployer');
    assert.equal(principal.issuer, world.config.oidc.issuers[0]?.issuer);
    assert.equal((record.data['decision'] as { reason: string }).reason, 'ERR_TOO_MANY_REQUESTS');
    assert.equal(
      (await world.call(path, { origin: gateway.url, headers: { authorization: `Bearer ${reader}` } })).status,
      200,
    );
  });
});
