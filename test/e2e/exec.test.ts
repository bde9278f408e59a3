// Issue #6 end to end: kubectl exec / port-forward through the gateway's upgrade path — decided
// (and held) before the upgrade is answered, recorded frame by frame, replayable; SPDY refused by
// default; an upstream refusal of the upgrade relayed as it is.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createAuditReader } from '../../packages/gateway/src/audit/reader.js';
import { startGateway, type Gateway } from '../../packages/gateway/src/gateway.js';
import { buildTimelineBlocks } from '../../packages/gateway/src/slack/blocks.js';
import { runCli } from '../../packages/gateway/src/main.js';
import { writeKubeconfig } from '../helpers/kubectl.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const run = promisify(execFile);

async function replay(world: TestWorld, sessionId: string): Promise<string> {
  let out = '';
  const code = await runCli(['replay', sessionId, '--config', world.configPath, '--no-timing'], {
    stdout: (t) => (out += t),
    stderr: (t) => (out += t),
    env: {},
    cwd: world.dir,
    stopSignal: new AbortController().signal,
  });
  assert.equal(code, 0, out);
  return out;
}

async function sessionOf(world: TestWorld, pathPart: string): Promise<string> {
  return waitFor(`the exec of ${pathPart} to be recorded with its frames`, async () => {
    const requests = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const exec = requests.filter((r) => String(r.data['path']).includes(pathPart)).at(-1);
    if (exec?.eventId === undefined) return undefined;
    const frames = await world.gateway.store.audit.listRecords({ eventIds: [exec.eventId], kinds: ['frames'] });
    return frames.length > 0 ? exec.sessionId : undefined;
  });
}

describe('exec, attach and port-forward through the gateway', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  test('kubectl 1.33 exec -- echo hi prints hi, as the mapped ServiceAccount, and replays', async () => {
    const result = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'echo', 'hi', 'from', 'exec'], {
      version: '1.33',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'hi from exec\n');
    const upgraded = world.sim.requests.filter(
      (r) => r.rawPath.startsWith('/api/v1/namespaces/staging/pods/web-0/exec') && r.status === 101,
    );
    assert.equal(upgraded.length, 1);
    assert.equal(upgraded[0]?.identity, 'system:serviceaccount:agents:ci-deployer');
    const sessionId = await sessionOf(world, 'command=echo&command=hi');
    const transcript = await replay(world, sessionId);
    assert.match(transcript, /pods\/web-0\/exec -n staging\s+allow\s+101/);
    assert.match(transcript, /hi from exec/);
    // /hoop replay in Slack shows an excerpt of the terminal and its length.
    const timeline = await createAuditReader(world.gateway.store).sessionTimeline(sessionId);
    const blocks = JSON.stringify(buildTimelineBlocks(sessionId, timeline, timeline.length - 1, 20));
    assert.match(blocks, /```hi from exec\\n```/);
    assert.match(blocks, /terminal: \d+ frames, 13 bytes/);
  });

  test('exec -i with stdin, and the exit code reaches kubectl', async () => {
    const cat = await world.kubectl(['exec', '-i', 'web-0', '-n', 'staging', '--', 'cat'], {
      version: '1.33',
      stdin: 'line one\nline two\n',
    });
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, 'line one\nline two\n');
    const exit = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'sh', '-c', 'echo bye; exit 3'], {
      version: '1.33',
    });
    assert.equal(exit.code, 3, exit.stderr);
    assert.equal(exit.stdout, 'bye\n');
    assert.match(exit.stderr, /command terminated with exit code 3/);
  });

  test(
    'an interactive exec -it sh driven through tmux works, and its replay shows what was typed',
    { skip: spawnSync('tmux', ['-V']).status !== 0 ? 'tmux is not installed' : false },
    async () => {
      const session = `hoopgate-e2e-${process.pid}`;
      const kubectl = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33';
      const command = `env HOME=${world.dir} KUBECONFIG=${world.kubeconfigPath} ${kubectl} exec -it web-0 -n staging -- sh`;
      await run('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '30', command]);
      try {
        const screen = async () => (await run('tmux', ['capture-pane', '-p', '-t', session])).stdout;
        await waitFor('the shell prompt', async () => /^\$/m.test(await screen()), 45_000);
        await run('tmux', ['send-keys', '-t', session, 'echo typed-through-tmux', 'Enter']);
        await waitFor('the command output', async () =>
          /typed-through-tmux\s*\n\s*typed-through-tmux/.test(await screen()),
        );
        await run('tmux', ['send-keys', '-t', session, 'hostname', 'Enter']);
        await waitFor('hostname output', async () => /\nweb-0/.test(await screen()));
        await run('tmux', ['send-keys', '-t', session, 'exit 0', 'Enter']);
        await waitFor(
          'the session to end',
          async () =>
            await run('tmux', ['has-session', '-t', session]).then(
              () => false,
              () => true,
            ),
          15_000,
        );
      } finally {
        await run('tmux', ['kill-session', '-t', session]).catch(() => undefined);
      }
      const transcript = await replay(world, await sessionOf(world, 'tty=true'));
      assert.match(transcript, /tty/);
      assert.match(transcript, /echo typed-through-tmux/);
      assert.match(transcript, /web-0/);
    },
  );

  test('a denied exec is refused before any upgrade; the API server sees nothing', async () => {
    const before = world.sim.requests.length;
    const result = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'echo', 'nope'], {
      context: 'readonly-bot',
      version: '1.33',
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /hoopgate: .*readonly-bot.*may not create pods\/web-0\/exec -n staging/);
    assert.ok(!result.stdout.includes('nope'));
    const execCalls = world.sim.requests.slice(before).filter((r) => r.rawPath.includes('/exec'));
    assert.deepEqual(execCalls, []);
  });

  test('a held exec proceeds after approval, as approval.serviceAccount', async () => {
    // ci-deployer may not exec in prod; escalate holds it, and an approval runs it as the elevated account.
    // kubectl first reads the pod (held too: the baseline may not read prod), then upgrades.
    const pending = world.kubectl(['exec', 'api-0', '-n', 'prod', '--', 'echo', 'approved-exec'], {
      version: '1.33',
      timeoutMs: 60_000,
    });
    const approve = async (subresource: string) => {
      const record = await waitFor(`the held ${subresource || 'get'}`, async () =>
        (await world.gateway.approvals.pending()).find(
          (r) => r.request.namespace === 'prod' && r.request.subresource === subresource,
        ),
      );
      const decided = await world.gateway.approvals.decide(record.id, {
        approve: true,
        actor: { user: 'oidc:test#oncall', label: 'oncall', at: Date.now(), via: 'api' },
        approver: true,
      });
      assert.ok(decided.ok);
    };
    await approve('');
    await waitFor('the exec to be held', async () =>
      (await world.gateway.approvals.pending()).some((r) => r.request.subresource === 'exec'),
    );
    assert.equal(
      world.sim.requests.filter((r) => r.rawPath.startsWith('/api/v1/namespaces/prod/pods/api-0/exec')).length,
      0,
      'nothing upstream while held',
    );
    await approve('exec');
    const result = await pending;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'approved-exec\n');
    const upstream = world.sim.requests.filter((r) => r.rawPath.startsWith('/api/v1/namespaces/prod/pods/api-0/exec'));
    assert.deepEqual(
      upstream.map((r) => [r.identity, r.status]),
      [['system:serviceaccount:agents:ci-deployer-elevated', 101]],
    );
  });

  test('an upstream that answers the upgrade with 403 is relayed as it is, and nothing is piped', async () => {
    // The gateway's access review is cached for a few seconds; revoke the RoleBinding in between,
    // so the API server itself refuses the upgrade.
    const first = await world.kubectl(['exec', 'web-1', '-n', 'staging', '--', 'echo', 'first'], { version: '1.33' });
    assert.equal(first.code, 0, first.stderr);
    const binding = world.sim.getObject('rolebindings', 'staging', 'ci-deployer');
    world.sim.deleteObject('rolebindings', 'staging', 'ci-deployer');
    try {
      const before = world.sim.requests.length;
      const token = await world.token('ci-deployer');
      const url = new URL(world.gateway.url);
      const request = httpsRequest({
        host: url.hostname,
        port: url.port,
        path: '/api/v1/namespaces/staging/pods/web-1/exec?command=echo&command=second&stdout=true',
        ca: world.gatewayTls.ca,
        headers: {
          authorization: `Bearer ${token}`,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-protocol': 'v5.channel.k8s.io',
        },
      });
      request.on('upgrade', () => assert.fail('the gateway must not upgrade when the API server refused'));
      request.end();
      const [response] = (await once(request, 'response')) as [IncomingMessage];
      let text = '';
      for await (const chunk of response) text += String(chunk);
      assert.equal(response.statusCode, 403);
      assert.equal(response.headers['connection'], 'close');
      const status = JSON.parse(text);
      assert.equal(status.kind, 'Status');
      assert.match(status.message, /cannot create resource "pods\/exec"/, "the API server's own refusal, untouched");
      const upstream = world.sim.requests.slice(before).filter((r) => r.rawPath.includes('/web-1/exec'));
      assert.deepEqual(
        upstream.map((r) => r.status),
        [403],
      );
    } finally {
      world.sim.apply(binding);
    }
  });

  test('kubectl 1.27 (SPDY only) is refused with a message naming the fix', async () => {
    const before = world.sim.requests.length;
    const result = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'echo', 'old'], { version: '1.27' });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /SPDY.*kubectl 1\.30 or newer.*only its operators can allow them/);
    // the operator's setting is in the log line, not in what kubectl prints (#16)
    assert.doesNotMatch(result.stderr, /exec\.spdy/);
    assert.equal(world.sim.requests.slice(before).filter((r) => r.rawPath.includes('/exec')).length, 0);
  });

  test('kubectl 1.30 port-forward (SPDY: WebSocket port-forward came in 1.31) is refused naming kubectl 1.31', async () => {
    const before = world.sim.requests.length;
    const child = world.spawnKubectl(['port-forward', 'pod/web-0', '-n', 'staging', ':8080'], { version: '1.30' });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const [code] = (await once(child, 'close')) as [number];
    assert.notEqual(code, 0);
    assert.match(output, /SPDY.*kubectl 1\.31 or newer/);
    assert.doesNotMatch(output, /kubectl 1\.30 or newer/);
    assert.equal(world.sim.requests.slice(before).filter((r) => r.rawPath.includes('/portforward')).length, 0);
  });

  test('the SPDY refusal is a Status naming the kubectl version per subresource', async () => {
    const token = await world.token('ci-deployer');
    const url = new URL(world.gateway.url);
    const refusal = async (path: string) => {
      const request = httpsRequest({
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        ca: world.gatewayTls.ca,
        headers: {
          authorization: `Bearer ${token}`,
          connection: 'Upgrade',
          upgrade: 'SPDY/3.1',
          'x-stream-protocol-version': 'portforward.k8s.io',
        },
      });
      request.on('upgrade', () => assert.fail('a SPDY upgrade must not be answered with 101'));
      request.end();
      const [response] = (await once(request, 'response')) as [IncomingMessage];
      let text = '';
      for await (const chunk of response) text += String(chunk);
      return { code: response.statusCode, status: JSON.parse(text) };
    };
    const pf = await refusal('/api/v1/namespaces/staging/pods/web-0/portforward');
    assert.equal(pf.code, 403);
    assert.equal(pf.status.kind, 'Status');
    assert.equal(pf.status.code, 403);
    assert.equal(pf.status.reason, 'Forbidden');
    assert.match(pf.status.message, /^hoopgate: .*SPDY.*use kubectl 1\.31 or newer/);
    const exec = await refusal('/api/v1/namespaces/staging/pods/web-0/exec?command=true&stdout=true');
    assert.equal(exec.code, 403);
    assert.match(exec.status.message, /^hoopgate: .*SPDY.*use kubectl 1\.30 or newer/);
    const attach = await refusal('/api/v1/namespaces/staging/pods/web-0/attach?stdout=true');
    assert.equal(attach.code, 403);
    assert.equal(attach.status.reason, 'Forbidden');
    assert.match(attach.status.message, /^hoopgate: .*SPDY.*use kubectl 1\.30 or newer/);
    for (const refused of [pf, exec, attach]) assert.doesNotMatch(refused.status.message, /exec\.spdy/);
  });

  test('with exec.spdy: unrecorded the SPDY upgrade is forwarded (the simulated server itself speaks only WebSocket)', async () => {
    const config = {
      ...world.config,
      exec: { ...world.config.exec, spdy: 'unrecorded' as const },
      listen: { ...world.config.listen, port: 0 },
    };
    const gateway: Gateway = await startGateway({ config, logDestination: { write: () => true } as never });
    try {
      const kubeconfig = writeKubeconfig(
        world.dir,
        {
          server: gateway.url,
          ca: world.gatewayTls.ca,
          exec: { command: process.execPath, args: world.tokenCommand('ci-deployer') },
          namespace: 'staging',
        },
        'kubeconfig-unrecorded',
      );
      const before = world.sim.requests.length;
      const { runKubectl } = await import('../helpers/kubectl.js');
      const result = await runKubectl(['exec', 'web-0', '--', 'echo', 'old'], { kubeconfig, version: '1.27' });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /speaks only websocket/, 'the answer came from the API server, relayed');
      const spdy = world.sim.requests.slice(before).filter((r) => r.rawPath.includes('/exec'));
      assert.ok(spdy.length >= 1, 'the SPDY upgrade reached upstream');
      assert.match(String(spdy[0]?.headers['upgrade']), /SPDY/i);
      assert.equal(spdy[0]?.identity, 'system:serviceaccount:agents:ci-deployer');
    } finally {
      await gateway.close();
    }
  });

  test('kubectl port-forward through the gateway carries bytes both ways', async () => {
    const child = world.spawnKubectl(['port-forward', 'pod/web-0', '-n', 'staging', ':8080'], { version: '1.33' });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    try {
      const port = await waitFor(
        'the local port',
        () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1],
        30_000,
      );
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      const payload = Buffer.from('ping through hoopgate\n'.repeat(100));
      socket.write(payload);
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      await waitFor('the echo', () => received.length >= payload.length);
      assert.deepEqual(received, payload);
      socket.destroy();
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
    const forwarded = world.sim.requests.filter((r) => r.rawPath.includes('/portforward') && r.status === 101);
    assert.ok(forwarded.length >= 1);
    assert.equal(forwarded[0]?.identity, 'system:serviceaccount:agents:ci-deployer');
  });
});
