// Issue #15 (the request pipeline) and #12 item 2 end to end: upgrades are counted like every other
// request; an unrecordable refusal names no Audit-Id; nothing is buffered or stored unbounded for a
// caller who is not authenticated.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startGateway } from '../../packages/gateway/src/gateway.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

describe('the request pipeline end to end', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  /** hoopgate_requests_total samples matching every given label. */
  async function requestsTotal(labels: Record<string, string>): Promise<number> {
    const text = (await world.call('/hoop/metrics')).text;
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith('hoopgate_requests_total{')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        total += Number(line.split(' ').at(-1));
    }
    return total;
  }

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 200; i += 1) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** A WebSocket upgrade straight to the gateway; resolves with the status it answered. */
  async function upgrade(path: string, token: string, protocol: string): Promise<number> {
    const url = new URL(world.gateway.url);
    const request = httpsRequest({
      host: url.hostname,
      port: url.port,
      path,
      ca: world.gatewayTls.ca,
      headers: {
        authorization: `Bearer ${token}`,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-version': '13',
        'sec-websocket-protocol': protocol,
      },
    });
    request.end();
    const [event, args] = await Promise.race([
      once(request, 'upgrade').then((a) => ['upgrade', a] as const),
      once(request, 'response').then((a) => ['response', a] as const),
    ]);
    if (event === 'upgrade') {
      const [response, socket] = args as unknown as [IncomingMessage, Socket];
      socket.destroy();
      return response.statusCode ?? 0;
    }
    const [response] = args as unknown as [IncomingMessage];
    response.resume();
    return response.statusCode ?? 0;
  }

  test('exec, port-forward and refused exec are counted in hoopgate_requests_total', async () => {
    const token = await world.token('ci-deployer');
    const upgraded = { cluster: 'demo', effect: 'allow', verb: 'get', resource: 'pods', code: '101' };
    const before = await requestsTotal(upgraded);
    assert.equal(
      await upgrade('/api/v1/namespaces/staging/pods/web-0/exec?command=true&stdout=true', token, 'v5.channel.k8s.io'),
      101,
    );
    await waitFor('the exec to be counted', async () =>
      (await requestsTotal(upgraded)) === before + 1 ? true : undefined,
    );
    assert.equal(
      await upgrade('/api/v1/namespaces/staging/pods/web-0/portforward?ports=8080', token, 'v4.channel.k8s.io'),
      101,
    );
    await waitFor('the port-forward to be counted', async () =>
      (await requestsTotal(upgraded)) === before + 2 ? true : undefined,
    );

    const readonly = await world.token('readonly-bot');
    const denied = { cluster: 'demo', effect: 'deny', code: '403' };
    const deniedBefore = await requestsTotal(denied);
    assert.equal(
      await upgrade(
        '/api/v1/namespaces/staging/pods/web-0/exec?command=true&stdout=true',
        readonly,
        'v5.channel.k8s.io',
      ),
      403,
    );
    await waitFor('the refused exec to be counted', async () =>
      (await requestsTotal(denied)) === deniedBefore + 1 ? true : undefined,
    );
  });

  test('the 401 comes without the request body being sent: nothing is buffered before authentication', async () => {
    const url = new URL(world.gateway.url);
    const socket = connectTls({
      host: url.hostname,
      port: Number(url.port),
      ca: world.gatewayTls.ca,
      servername: 'localhost',
    });
    await once(socket, 'secureConnect');
    socket.write(
      'POST /api/v1/namespaces/staging/configmaps HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n{"kind":',
    );
    const answer = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 5 s: the gateway waited for the body')), 5000);
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n') && text.includes('"kind":"Status"')) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    socket.destroy();
    assert.match(answer, /^HTTP\/1\.1 401 /);
    const status = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 401);
    assert.equal(status['reason'], 'Unauthorized');
    assert.match(String(status['message']), /^hoopgate: /);
  });

  test('a refusal before authentication with a 20 KB path is recorded and logged in bounded size', async () => {
    const name = `r${randomBytes(10 * 1024).toString('hex')}`;
    const response = await world.call(`/api/v1/namespaces/staging/${name}/${name.slice(0, 100)}`, {
      headers: { 'user-agent': `ua-${'u'.repeat(5_000)}` },
    });
    assert.equal(response.status, 401);
    assert.equal(response.json().kind, 'Status');
    const id = String(response.headers['audit-id']);
    const records = await waitFor('the refusal to be recorded', async () => {
      const all = await world.gateway.store.audit.listRecords({ kinds: ['request', 'outcome'] });
      const request = all.find((r) => r.data['requestId'] === id);
      const outcome =
        request === undefined ? undefined : all.find((r) => r.kind === 'outcome' && r.eventId === request.eventId);
      return request === undefined || outcome === undefined ? undefined : [request, outcome];
    });
    const size = records.reduce((sum, r) => sum + JSON.stringify(r).length, 0);
    assert.ok(size < 4096, `the record is ${size} bytes`);
    const path = String(records[0]?.data['path']);
    assert.match(path, /^\/api\/v1\/namespaces\/staging\/r[0-9a-f]+…\[\d+ chars, sha256:[0-9a-f]{64}\]$/);
    const line = world.logLines.find((l) => l.includes(id));
    assert.ok(line !== undefined, 'the refusal is logged');
    assert.ok(line.length < 2048, `the log line is ${line.length} bytes`);
  });

  test('a refusal the audit store cannot take names no Audit-Id', async () => {
    const config = {
      ...world.config,
      listen: { ...world.config.listen, port: 0 },
      audit: { ...world.config.audit, store: `sqlite:${world.dir}/pipeline-down.db` },
    };
    const logs: string[] = [];
    const gateway = await startGateway({
      config,
      logDestination: { write: (line: string) => logs.push(line) > 0 } as never,
    });
    try {
      const recorded = await world.call('/api/v1/namespaces/staging/pods', { origin: gateway.url });
      assert.equal(recorded.status, 401);
      assert.equal(typeof recorded.headers['audit-id'], 'string', 'a recorded refusal names its record');
      await gateway.store.close();
      const response = await world.call('/api/v1/namespaces/staging/pods', { origin: gateway.url });
      assert.equal(response.status, 401);
      const status = response.json();
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 401);
      assert.equal(status.reason, 'Unauthorized');
      assert.match(status.message, /^hoopgate: /);
      assert.equal(response.headers['audit-id'], undefined, 'no Audit-Id that names no record');
      gateway.logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
      assert.ok(
        logs.some((line) => line.includes('audit: could not record a refusal')),
        'the failure is in the log',
      );
      assert.ok(
        logs.some((line) => line.includes('"recorded":false')),
        'the request line says it was not recorded',
      );
    } finally {
      await gateway.close();
    }
  });
});
