// Issue #16 item 2: a watch's status line and headers leave the gateway as soon as the API server
// answers, not with the first event; `kubectl wait` through the gateway is as quick as directly
// (before, it sat until the simulator's 60 s bookmark, whatever --timeout said).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent } from 'undici';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

describe('watches start at once', () => {
  let world: TestWorld;
  let agent: Agent;
  let dir: string;
  before(async () => {
    world = await startTestWorld();
    agent = new Agent({ connect: { ca: world.gatewayTls.ca } });
    dir = mkdtempSync(join(tmpdir(), 'hoopgate-watch-'));
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await agent?.close();
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Milliseconds until the response head of a watch arrives (undefined if not within 2 s): in all,
   * and since the API server answered (the simulator writes its head as it receives the request).
   */
  async function timeToHeaders(
    path: string,
    token: string,
  ): Promise<{ ms: number | undefined; sinceUpstream?: number; status?: number; early: string }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 2_000);
    const started = performance.now();
    const seen = world.sim.requests.length;
    try {
      const response = await agent.request({
        origin: world.gateway.url,
        path,
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      const ms = performance.now() - started;
      const upstream = world.sim.requests.slice(seen).find((r) => r.rawPath.includes('watch=true'));
      const sinceUpstream = upstream === undefined ? undefined : Date.now() - upstream.time;
      let early = '';
      response.body.on('data', (chunk: Buffer) => (early += chunk.toString('utf8')));
      response.body.on('error', () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      controller.abort();
      return { ms, ...(sinceUpstream === undefined ? {} : { sinceUpstream }), status: response.statusCode, early };
    } catch {
      return { ms: undefined, early: '' };
    } finally {
      clearTimeout(timer);
    }
  }

  test('a watch with no events gets its status line within 100 ms', async (t) => {
    const token = await world.token('ci-deployer');
    const list = await world.call('/api/v1/namespaces/staging/configmaps', {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(list.status, 200, list.text);
    const version = list.json().metadata.resourceVersion as string;
    // Nothing matches and nothing happens: the API server answers, then stays silent.
    const path = `/api/v1/namespaces/staging/configmaps?watch=true&resourceVersion=${version}&fieldSelector=metadata.name%3Dno-such-configmap`;
    await timeToHeaders(path, token); // warms the token and the access-review cache
    // The best of seven: the machine running the suite is shared, a run may lose its CPU.
    const runs: Awaited<ReturnType<typeof timeToHeaders>>[] = [];
    for (let i = 0; i < 7; i++) runs.push(await timeToHeaders(path, token));
    for (const run of runs) {
      assert.notEqual(run.ms, undefined, 'the response head arrived (before the fix it waited for the first event)');
      assert.equal(run.status, 200);
      assert.equal(run.early, '', 'no event was sent: the head did not ride on one');
      assert.ok((run.ms ?? Infinity) < 1_000, `status line after ${run.ms?.toFixed(1)} ms`);
    }
    // Admission (token check, audit write) shares the CPU with the rest of the suite; the head
    // itself must follow the API server's answer at once.
    const described = runs.map((r) => `${r.ms?.toFixed(1)} ms (${r.sinceUpstream} ms after upstream)`).join(', ');
    const bestSinceUpstream = Math.min(...runs.map((run) => run.sinceUpstream ?? Infinity));
    assert.ok(
      bestSinceUpstream < 100,
      `status line ${bestSinceUpstream} ms after the API server answered (runs: ${described})`,
    );
    t.diagnostic(`time to the status line: ${described}`);
  });

  test('kubectl wait --for=condition=Ready finishes within 2 s of the same command run directly', async (t) => {
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'wait-target', namespace: 'staging' },
      spec: { containers: [{ name: 'app', image: 'nginx' }] },
    });
    assert.equal(
      world.sim
        .getObject('pods', 'staging', 'wait-target')
        .status.conditions.find((c: { type: string }) => c.type === 'Ready')?.status,
      'True',
    );
    // Static tokens on both sides (the demo kubeconfig's exec plugin would add a Node start-up to
    // every run), one HOME with discovery cached first: the comparison is about the wait alone.
    const kubeconfigFor = (file: string, server: string, ca: string, token: string) => {
      writeFileSync(
        join(dir, file),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'c', cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } },
          ],
          users: [{ name: 'ci-deployer', user: { token } }],
          contexts: [{ name: 'c', context: { cluster: 'c', user: 'ci-deployer', namespace: 'staging' } }],
          'current-context': 'c',
        }),
      );
      return join(dir, file);
    };
    const direct = kubeconfigFor(
      'direct.kubeconfig',
      world.sim.url,
      world.sim.ca,
      world.sim.issueToken('agents', 'ci-deployer'),
    );
    const gateway = kubeconfigFor(
      'gateway.kubeconfig',
      world.gateway.url,
      world.gatewayTls.ca,
      await world.token('ci-deployer'),
    );
    const env = { HOME: join(dir, 'home') };
    for (const kubeconfig of [direct, gateway]) {
      const warm = await runKubectl(['get', 'pods', '-n', 'staging', '-o', 'name'], {
        kubeconfig,
        env,
        timeoutMs: 60_000,
      });
      assert.equal(warm.code, 0, warm.stderr);
    }
    const timed = async (kubeconfig: string) => {
      const started = performance.now();
      const result = await runKubectl(
        ['wait', '--for=condition=Ready', 'pod/wait-target', '-n', 'staging', '--timeout=10s'],
        { kubeconfig, env, timeoutMs: 20_000 },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /pod\/wait-target condition met/);
      return performance.now() - started;
    };
    const directMs = await timed(direct);
    const gatewayMs = await timed(gateway);
    t.diagnostic(`kubectl wait: through the gateway ${gatewayMs.toFixed(0)} ms, directly ${directMs.toFixed(0)} ms`);
    assert.ok(
      gatewayMs - directMs < 2_000,
      `through the gateway ${gatewayMs.toFixed(0)} ms, directly ${directMs.toFixed(0)} ms`,
    );
  });
});
