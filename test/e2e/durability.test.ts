// Issues #4 and #7 end to end: fail closed when the audit store is gone (SQLite and MongoDB), a
// gateway process killed with SIGKILL under load leaves a chain that verifies and no forwarded
// request without its event, and a graceful stop answers held approvals 503.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { startGateway } from '../../packages/gateway/src/gateway.js';
import { runCli } from '../../packages/gateway/src/main.js';
import { startMongoServer } from '../helpers/mongo-server.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const bin = fileURLToPath(new URL('../../packages/gateway/bin/hoopgate.js', import.meta.url));

async function cli(world: TestWorld, args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(args, {
    stdout: (t) => (out += t),
    stderr: (t) => (out += t),
    env: {},
    cwd: world.dir,
    stopSignal: new AbortController().signal,
  });
  return { code, out };
}

function assertUnavailable(response: { status: number; json: () => any }): void {
  assert.equal(response.status, 503);
  const status = response.json();
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'ServiceUnavailable');
  assert.equal(status.code, 503);
  assert.match(status.message, /^hoopgate: the audit store is unavailable, so the request was not forwarded/);
}

describe('durability of the audit trail', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.close();
  });

  test('chain heads are signed on a schedule even when audit.checkpoint is not configured', () => {
    assert.equal(world.config.audit.checkpoint, undefined, 'the demo config sets no checkpoint section');
    const checkpoint = world.gateway.jobs.find((job) => job.name === `audit-checkpoint-${world.gateway.replicaId}`);
    assert.equal(checkpoint?.everyMs, 3_600_000, `scheduled: ${JSON.stringify(world.gateway.jobs)}`);
  });

  test('SQLite store gone: 503 and nothing reaches the API server', async () => {
    const config = {
      ...world.config,
      listen: { ...world.config.listen, port: 0 },
      audit: { ...world.config.audit, store: `sqlite:${world.dir}/down.db` },
    };
    const logs: string[] = [];
    const gateway = await startGateway({
      config,
      logDestination: { write: (line: string) => logs.push(line) > 0 } as never,
    });
    const token = await world.token('ci-deployer');
    try {
      const ok = await world.call('/api/v1/namespaces/staging/configmaps/app-config', {
        headers: { authorization: `Bearer ${token}` },
        origin: gateway.url,
      });
      assert.equal(ok.status, 200);
      await gateway.store.close();
      const before = world.sim.requests.length;
      const response = await world.call('/api/v1/namespaces/staging/configmaps/app-config', {
        headers: { authorization: `Bearer ${token}` },
        origin: gateway.url,
      });
      assertUnavailable(response);
      assert.equal(world.sim.requests.length, before, 'the API server saw nothing');
      const ready = await world.call('/hoop/readyz', { origin: gateway.url });
      assert.equal(ready.status, 503);
      assert.equal(ready.text, 'readyz check failed\n');
      gateway.logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
      assert.ok(
        logs.some((line) => /readyz: not ready: .*\[-\]store failed/.test(line)),
        'the failing check is in the log',
      );
    } finally {
      await gateway.close();
    }
  });

  test('MongoDB unreachable: 503 and nothing reaches the API server', async () => {
    const mongo = await startMongoServer();
    const config = {
      ...world.config,
      listen: { ...world.config.listen, port: 0 },
      audit: { ...world.config.audit, store: `${mongo.url}/hoopgate?serverSelectionTimeoutMS=1500` },
    };
    const gateway = await startGateway({ config, logDestination: { write: () => true } as never });
    const token = await world.token('ci-deployer');
    try {
      const ok = await world.call('/api/v1/namespaces/staging/configmaps/app-config', {
        headers: { authorization: `Bearer ${token}` },
        origin: gateway.url,
      });
      assert.equal(ok.status, 200);
      await mongo.stop();
      const before = world.sim.requests.length;
      const response = await world.call('/api/v1/namespaces/staging/configmaps/app-config', {
        headers: { authorization: `Bearer ${token}` },
        origin: gateway.url,
      });
      assertUnavailable(response);
      assert.equal(world.sim.requests.length, before, 'the API server saw nothing');
    } finally {
      await gateway.close().catch(() => undefined);
    }
  });

  test('a gateway killed with SIGKILL under load restarts cleanly: verify passes, no forwarded call lacks its event', async () => {
    const start = async (): Promise<{ child: ChildProcess; url: string }> => {
      const child = spawn(process.execPath, [bin, 'serve', '--config', world.configPath], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { PATH: process.env['PATH'] ?? '' },
      });
      let err = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
      const deadline = Date.now() + 30_000;
      for (;;) {
        const url = /listening on (https:\/\/\S+)/.exec(err)?.[1];
        if (url !== undefined) return { child, url };
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the gateway did not start: ${err}`);
        await sleep(50);
      }
    };
    const token = await world.token('ci-deployer');
    const agent = new Agent({ connect: { ca: world.gatewayTls.ca }, connections: 32 });
    const first = await start();
    const path = (i: number) => `/api/v1/namespaces/staging/configmaps/app-config?load=${i}`;
    let sent = 0;
    let answered = 0;
    const load = (async () => {
      const workers = Array.from({ length: 16 }, async () => {
        for (;;) {
          const i = sent++;
          try {
            const response = await agent.request({
              origin: first.url,
              path: path(i),
              method: 'GET',
              headers: { authorization: `Bearer ${token}` },
            });
            await response.body.dump();
            answered += 1;
          } catch {
            return; // the gateway is gone
          }
        }
      });
      await Promise.all(workers);
    })();
    while (answered < 200) await sleep(20);
    first.child.kill('SIGKILL');
    await once(first.child, 'close');
    await load;
    await agent.close();

    const second = await start();
    second.child.kill('SIGTERM');
    await once(second.child, 'close');

    const verified = await cli(world, ['audit', 'verify', '--config', world.configPath]);
    assert.equal(verified.code, 0, verified.out);
    assert.match(verified.out, /audit ok/);

    const forwarded = world.sim.requests.filter((r) => r.rawPath.includes('?load=')).map((r) => r.rawPath);
    assert.ok(forwarded.length >= 200, `load reached upstream (${forwarded.length})`);
    const recorded = new Set(
      (await world.gateway.store.audit.listRecords({ kinds: ['request'] })).map((r) => String(r.data['path'])),
    );
    const missing = forwarded.filter((p) => !recorded.has(p));
    assert.deepEqual(missing, [], 'every forwarded request was recorded before it was forwarded');
  });

  test('a graceful stop answers a held approval 503 "gateway restarting" and cancels it', async () => {
    const config = { ...world.config, listen: { ...world.config.listen, port: 0 } };
    const gateway = await startGateway({ config, logDestination: { write: () => true } as never, approvalPollMs: 50 });
    world.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'held-at-stop' } });
    const token = await world.token('ci-deployer');
    const held = world.call('/api/v1/namespaces/held-at-stop', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
      origin: gateway.url,
    });
    let id: string | undefined;
    const deadline = Date.now() + 10_000;
    while (id === undefined && Date.now() < deadline) {
      id = (await gateway.approvals.pending()).find((r) => r.request.name === 'held-at-stop')?.id;
      await sleep(20);
    }
    assert.ok(id, 'the delete is held');
    const closing = gateway.close();
    const response = await held;
    assert.equal(response.status, 503);
    const status = response.json();
    assert.equal(status.reason, 'ServiceUnavailable');
    assert.match(status.message, /gateway restarting, run again/);
    await closing;
    const record = await world.gateway.approvals.get(id);
    assert.equal(record?.state, 'cancelled');
    assert.ok(world.sim.getObject('namespaces', '', 'held-at-stop'), 'nothing was deleted');
  });
});
