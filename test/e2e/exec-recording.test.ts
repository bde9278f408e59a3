// Issue #12 item 4 end to end: exec input cannot be hidden from the recording — a command sent as a
// fragmented WebSocket message (the channel byte alone in a FIN=0 frame, the command in a continuation),
// stdin sent as text frames of a base64 subprotocol, and frames written as the session runs, so a
// gateway killed with SIGKILL mid-exec leaves what was typed so far in the audit store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type { ExecFrame } from '../../packages/gateway/src/audit/types.js';
import { startGateway } from '../../packages/gateway/src/gateway.js';
import { runCli } from '../../packages/gateway/src/main.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const bin = fileURLToPath(new URL('../../packages/gateway/bin/hoopgate.js', import.meta.url));

interface Shell {
  ws: WebSocket;
  output: () => string;
  closed: Promise<unknown>;
}

/** A raw exec WebSocket to `sh` in staging/web-0 through the gateway at `origin`. */
async function openShell(
  world: TestWorld,
  origin: string,
  marker: string,
  protocol = 'v5.channel.k8s.io',
): Promise<Shell> {
  const token = await world.token('ci-deployer');
  const url = `${origin.replace(/^https/, 'wss')}/api/v1/namespaces/staging/pods/web-0/exec?command=sh&stdin=true&stdout=true&stderr=true&marker=${marker}`;
  const ws = new WebSocket(url, [protocol], { ca: world.gatewayTls.ca, headers: { authorization: `Bearer ${token}` } });
  let out = '';
  ws.on('message', (data: Buffer) => {
    const text = data.toString('latin1');
    out += protocol.includes('base64')
      ? Buffer.from(text.slice(1), 'base64').toString('utf8')
      : data.subarray(1).toString('utf8');
  });
  const closed = once(ws, 'close');
  ws.on('error', () => undefined);
  await once(ws, 'open');
  return { ws, output: () => out, closed };
}

async function framesOf(world: TestWorld, marker: string): Promise<ExecFrame[]> {
  const requests = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
  const exec = requests.find((r) => String(r.data['path']).includes(`marker=${marker}`));
  if (exec?.eventId === undefined) return [];
  const records = await world.gateway.store.audit.listRecords({ eventIds: [exec.eventId], kinds: ['frames'] });
  return records.flatMap((r) => r.data['frames'] as ExecFrame[]);
}

const stdinText = (frames: ExecFrame[]) =>
  frames
    .filter((f) => f.stream === 'stdin')
    .map((f) => (f.base64 === true ? Buffer.from(f.data, 'base64').toString() : f.data))
    .join('');

async function replay(world: TestWorld, marker: string): Promise<string> {
  const requests = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
  const sessionId = requests.find((r) => String(r.data['path']).includes(`marker=${marker}`))?.sessionId;
  assert.ok(sessionId !== undefined);
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

describe('exec recording cannot be dodged', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  test('a command sent as a fragmented message (channel byte alone, FIN=0) runs and is in the replay', async () => {
    const shell = await openShell(world, world.gateway.url, 'fragmented');
    shell.ws.send(Buffer.from([0]), { binary: true, fin: false });
    shell.ws.send(Buffer.from('echo fragmented-dodge-'), { binary: true, fin: false });
    shell.ws.send(Buffer.from('42\n'), { binary: true, fin: true });
    await waitFor('the command output', () => shell.output().includes('fragmented-dodge-42'));
    shell.ws.send(Buffer.from('\x00exit 0\n'));
    await shell.closed;
    await waitFor('the frames to be written', async () =>
      stdinText(await framesOf(world, 'fragmented')).includes('exit 0'),
    );
    assert.match(stdinText(await framesOf(world, 'fragmented')), /^echo fragmented-dodge-42\nexit 0\n$/);
    assert.match(await replay(world, 'fragmented'), /> echo fragmented-dodge-42/);
  });

  test('stdin in text frames of v4.base64.channel.k8s.io is decoded and recorded', async () => {
    const shell = await openShell(world, world.gateway.url, 'base64text', 'v4.base64.channel.k8s.io');
    shell.ws.send(`0${Buffer.from('echo text-frame-dodge\n').toString('base64')}`);
    await waitFor('the command output', () => shell.output().includes('text-frame-dodge'));
    shell.ws.send(`0${Buffer.from('exit 0\n').toString('base64')}`);
    await shell.closed;
    await waitFor('the frames to be written', async () =>
      stdinText(await framesOf(world, 'base64text')).includes('exit 0'),
    );
    const frames = await framesOf(world, 'base64text');
    assert.equal(stdinText(frames), 'echo text-frame-dodge\nexit 0\n');
    assert.ok(
      frames.some((f) => f.stream === 'stdout' && f.data.includes('text-frame-dodge')),
      'stdout decoded from base64 too',
    );
  });

  test('a subprotocol hoopgate cannot read is not relayed unrecorded: the session is ended', async () => {
    // The simulated API server speaks only the known subprotocols, so this is the recording module's own check.
    const { startExecRecording } = await import('../../packages/gateway/src/proxy/exec-recording.js');
    let ended = '';
    const recording = startExecRecording({
      recorder: { appendFrames: () => undefined },
      eventId: 'e',
      protocol: 'v9.zstd.channel.k8s.io',
      clock: Date.now,
      maxRecordBytes: 1024,
      onFailure: (reason) => (ended = reason),
    });
    assert.match(ended, /subprotocol "v9\.zstd\.channel\.k8s\.io", which hoopgate cannot record/);
    assert.equal(recording.failure, ended);
  });

  test('fail closed: when the audit store fails mid-session the session is ended', async () => {
    const config = {
      ...world.config,
      listen: { ...world.config.listen, port: 0 },
      audit: { ...world.config.audit, store: `sqlite:${world.dir}/exec-down.db` },
    };
    const logs: string[] = [];
    const gateway = await startGateway({
      config,
      logDestination: { write: (chunk: string) => logs.push(...chunk.split('\n').filter(Boolean)) > 0 } as never,
    });
    try {
      const shell = await openShell(world, gateway.url, 'storedown');
      shell.ws.send(Buffer.from('\x00echo recorded\n'));
      await waitFor('the command output', () => shell.output().includes('recorded'));
      await gateway.store.close();
      shell.ws.send(Buffer.from('\x00echo unrecorded-after-store-loss\n'));
      let terminated = false;
      const timer = setTimeout(() => {
        terminated = true;
        shell.ws.terminate();
      }, 10_000);
      const started = Date.now();
      await shell.closed;
      clearTimeout(timer);
      assert.equal(terminated, false, 'the gateway ended the session');
      console.log(`session ended ${Date.now() - started} ms after the store loss`);
      gateway.logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
      assert.ok(
        logs.some((line) => /audit outcome write failed/.test(line)),
        'the write failed',
      );
      // The gateway logs the upgrade once both of its sockets have closed, which can be a moment after the client saw its own close.
      const failedUpgrade = () =>
        logs
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find(
            (line) =>
              line['msg'] === 'upgrade' &&
              String(line['message'] ?? line['error'] ?? '').includes('could not be written'),
          );
      await waitFor('the upgrade log line', () => failedUpgrade() !== undefined).catch(() => undefined);
      const upgrade = failedUpgrade();
      assert.ok(
        upgrade !== undefined,
        `the session ended because recording failed: ${logs.filter((l) => l.includes('upgrade')).join('\n')}`,
      );
    } finally {
      await gateway.close().catch(() => undefined);
    }
  });

  test('frames are written as the session runs: SIGKILL mid-exec leaves what was typed', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--config', world.configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '' },
    });
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    try {
      const url = await waitFor('the gateway to listen', () => /listening on (https:\/\/\S+)/.exec(err)?.[1], 30_000);
      const shell = await openShell(world, url, 'sigkill');
      shell.ws.send(Buffer.from('\x00echo typed-before-kill\n'));
      await waitFor('the command output', () => shell.output().includes('typed-before-kill'));
      await sleep(600); // past the 250 ms batch interval
      child.kill('SIGKILL');
      await once(child, 'close');
      await shell.closed;
      const frames = await framesOf(world, 'sigkill');
      assert.match(stdinText(frames), /echo typed-before-kill/);
      assert.ok(frames.some((f) => f.stream === 'stdout' && f.data.includes('typed-before-kill')));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
