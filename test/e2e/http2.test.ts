// HTTP/2 by ALPN beside HTTP/1.1 (issue #13): real kubectl multiplexes over h2 (the gateway logs
// httpVersion 2.0), exec stays HTTP/1.1 through the upgrade handler, node's http2 client sees the
// bounds (streams, header list), a hostile client (rapid reset, ping flood) neither crashes the gateway
// nor grows its memory, HTTP/1.1 clients still work, and a stop sends GOAWAY.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, constants, type ClientHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startGateway } from '../../packages/gateway/src/gateway.js';
import { buildClientResponseHeaders } from '../../packages/gateway/src/proxy/headers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const podsPath = '/api/v1/namespaces/staging/pods';
const uncaught: unknown[] = [];
const collect = (error: unknown) => uncaught.push(error);

interface LogLine {
  msg: string;
  path?: string;
  httpVersion?: string;
  status?: number;
}

function requestLines(world: TestWorld, pathPart: string): LogLine[] {
  return world.logLines
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.msg === 'request' && line.path?.includes(pathPart) === true);
}

/** One GET as a stream of `session`: status, headers and body. */
async function h2Get(session: ClientHttp2Session, path: string, token: string) {
  const stream = session.request({ ':path': path, authorization: `Bearer ${token}`, accept: 'application/json' });
  const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
  let body = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
  await once(stream, 'end');
  return { status: Number(headers[':status']), headers, body };
}

function h2Connect(world: TestWorld, origin = world.gateway.url): Promise<ClientHttp2Session> {
  const session = connect(origin, { ca: world.gatewayTls.ca });
  session.on('error', () => undefined);
  return once(session, 'remoteSettings').then(() => session);
}

describe('HTTP/2 from clients', () => {
  let world: TestWorld;
  let reader: string;
  before(async () => {
    process.on('uncaughtException', collect);
    world = await startTestWorld();
    reader = await world.token('readonly-bot');
  });
  after(async () => {
    process.off('uncaughtException', collect);
    await world?.assertNoCanaryLeaked();
    await world?.close();
    assert.deepEqual(uncaught, [], 'no uncaught exception in the gateway');
  });

  for (const version of ['1.33', '1.27'] as const) {
    test(`kubectl ${version} get and a watch go over HTTP/2`, async () => {
      const path = `/api/v1/namespaces/staging/configmaps`;
      const got = await world.kubectl(['get', 'configmaps', '-n', 'staging', '-o', 'name'], { version });
      assert.equal(got.code, 0, got.stderr);
      const gets = await waitFor('the get to be logged', () => {
        const lines = requestLines(world, path).filter((l) => !l.path?.includes('watch'));
        return lines.length > 0 && lines;
      });
      assert.equal(gets.at(-1)?.httpVersion, '2.0');

      const before = requestLines(world, 'watch=true').length;
      const watch = world.spawnKubectl(['get', 'configmaps', '-n', 'staging', '-w', '-o', 'name'], { version });
      let output = '';
      watch.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      await waitFor('the watch to print', () => output.includes('configmap/'));
      watch.kill('SIGINT');
      await once(watch, 'close');
      const watches = await waitFor('the watch to be logged', () => {
        const lines = requestLines(world, 'watch=true').slice(before);
        return lines.length > 0 && lines;
      });
      assert.ok(
        watches.every((line) => line.httpVersion === '2.0'),
        JSON.stringify(watches),
      );
    });
  }

  test('kubectl 1.33 exec still works, as an HTTP/1.1 upgrade beside the HTTP/2 calls', async () => {
    const result = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'echo', 'over', 'h1'], {
      version: '1.33',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'over h1\n');
    // The pod lookup before the exec was a stream; the exec an upgrade (no httpVersion field).
    // The gateway logs the upgrade once both of its sockets have closed, a moment after kubectl's.
    await waitFor('the exec upgrade to be logged', () =>
      world.logLines.some((l) => l.includes('"msg":"upgrade"') && l.includes('command=h1')),
    );
  });

  test('kubectl 1.27 exec (SPDY) still reaches the upgrade handler and gets its refusal', async () => {
    const result = await world.kubectl(['exec', 'web-0', '-n', 'staging', '--', 'echo', 'old'], { version: '1.27' });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /SPDY.*kubectl 1\.30 or newer/);
  });

  test('many calls multiplex over one connection, in parallel', async () => {
    const session = await h2Connect(world);
    let sessions = 0;
    const count = () => (sessions += 1);
    world.gateway.server.on('session' as never, count);
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => h2Get(session, `${podsPath}?limit=1`, reader)),
      );
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
      assert.equal(answers[0]?.headers['content-type'], 'application/json');
      assert.equal(sessions, 0, 'no new connection was opened');
    } finally {
      world.gateway.server.off('session' as never, count);
      session.close();
    }
  });

  test('a whole answer is one HEADERS and one DATA frame with END_STREAM: no wait for trailers, no extra write (#13)', async () => {
    // Node's compatibility response asks every stream for trailers, so `res.end(body)` ended the stream
    // with a frame (a TLS record and a socket write) of its own; a stream asked for trailers emits
    // 'wantTrailers' on the server. A whole answer now goes out on the stream itself, in one write.
    const asked: number[] = [];
    const watch = (stream: ServerHttp2Stream) => stream.once('wantTrailers', () => asked.push(stream.id ?? 0));
    world.gateway.server.on('stream' as never, watch);
    const session = await h2Connect(world);
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await h2Get(session, `${podsPath}/web-0`, reader);
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['content-type'], 'application/json');
        assert.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.body)));
        assert.match(String(answer.headers['audit-id']), /^[0-9a-f-]{36}$/);
        assert.equal((JSON.parse(answer.body) as { metadata: { name: string } }).metadata.name, 'web-0');
      }
    } finally {
      world.gateway.server.off('stream' as never, watch);
      session.close();
    }
    assert.deepEqual(asked, [], 'no answer waited for trailers');
    // Still logged and counted as any answer (completion.ts runs before the write).
    await waitFor('three log lines of the HTTP/2 GETs', () =>
      requestLines(world, '/pods/web-0').filter((l) => l.httpVersion === '2.0' && l.status === 200).length >= 3
        ? true
        : undefined,
    );
  });

  test('the gateway announces its bounds: 250 streams, a 32 KiB header list, no push', async () => {
    const session = await h2Connect(world);
    try {
      assert.equal(session.remoteSettings.maxConcurrentStreams, 250);
      assert.equal(session.remoteSettings.maxHeaderListSize, 32 * 1024);
      assert.equal(session.remoteSettings.enablePush, false);
      // A header list over the bound is refused, and the session still serves the next call.
      const big = session.request({
        ':path': podsPath,
        authorization: `Bearer ${reader}`,
        'x-big': 'a'.repeat(40_000),
      });
      const refused = await new Promise<string>((resolve) => {
        big.on('response', (headers) => resolve(`status ${String(headers[':status'])}`));
        big.on('error', () => undefined);
        big.on('close', () => resolve(`reset ${big.rstCode}`));
      });
      // nghttp2 resets it (ENHANCE_YOUR_CALM) before the request reaches the gateway's code.
      assert.equal(refused, `reset ${constants.NGHTTP2_ENHANCE_YOUR_CALM}`);
      assert.equal((await h2Get(session, `${podsPath}?limit=1`, reader)).status, 200);
    } finally {
      session.close();
    }
  });

  test('an unauthenticated stream gets the same 401 Status as HTTP/1.1', async () => {
    const session = await h2Connect(world);
    try {
      const answer = await h2Get(session, podsPath, 'not-a-token');
      assert.equal(answer.status, 401);
      const status = JSON.parse(answer.body) as Record<string, unknown>;
      assert.equal(status['kind'], 'Status');
      assert.equal(status['code'], 401);
      assert.equal(status['reason'], 'Unauthorized');
      assert.match(String(status['message']), /^hoopgate: /);
    } finally {
      session.close();
    }
  });

  test('hop-by-hop headers of the upstream never reach an HTTP/2 response', async () => {
    // The simulator is a node HTTPS server: it sends Connection, Keep-Alive and chunked encoding.
    const session = await h2Connect(world);
    try {
      const answer = await h2Get(session, `${podsPath}?limit=1`, reader);
      assert.equal(answer.status, 200);
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])
        assert.equal(answer.headers[name], undefined, name);
    } finally {
      session.close();
    }
    const upstream = {
      connection: 'keep-alive, upgrade',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x',
      'content-type': 'application/json',
    };
    assert.deepEqual(buildClientResponseHeaders(upstream), { 'content-type': 'application/json' });
  });

  test('HTTP/1.1 clients still work on the same port (logged as 1.1)', async () => {
    const url = new URL(`${world.gateway.url}${podsPath}?limit=1&h1probe=1`);
    const status = await new Promise<number>((resolve, reject) => {
      httpsGet(url, { ca: world.gatewayTls.ca, headers: { authorization: `Bearer ${reader}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
    assert.equal(status, 200);
    const lines = await waitFor('the HTTP/1.1 call to be logged', () => {
      const found = requestLines(world, 'h1probe=1');
      return found.length > 0 && found;
    });
    assert.equal(lines[0]?.httpVersion, '1.1');
  });

  test('a rapid-reset flood and a ping flood neither crash the gateway nor grow its memory', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    // Rapid reset (CVE-2023-44487): open a stream and cancel it at once, thousands of times.
    for (let round = 0; round < 20; round += 1) {
      const session = await h2Connect(world).catch(() => undefined);
      if (session === undefined) continue;
      for (let i = 0; i < 500 && !session.destroyed && !session.closed; i += 1) {
        try {
          const stream = session.request({ ':path': podsPath, authorization: `Bearer ${reader}` });
          stream.on('error', () => undefined);
          stream.close(constants.NGHTTP2_CANCEL);
        } catch {
          break; // the gateway sent GOAWAY: this connection is done
        }
      }
      session.destroy();
    }
    // A ping flood in raw frames, never reading the answers.
    const socket = tlsConnect({
      host: new URL(world.gateway.url).hostname,
      port: world.gateway.port,
      ca: world.gatewayTls.ca,
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
      const head = Buffer.alloc(9);
      head.writeUIntBE(payload.length, 0, 3);
      head.writeUInt8(type, 3);
      head.writeUInt8(flags, 4);
      head.writeUInt32BE(stream, 5);
      return Buffer.concat([head, payload]);
    };
    socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    socket.write(frame(4, 0, 0, Buffer.alloc(0)));
    const pings = Buffer.concat(Array.from({ length: 1000 }, () => frame(6, 0, 0, Buffer.alloc(8))));
    for (let i = 0; i < 100 && !socket.destroyed; i += 1) socket.write(pings);
    socket.pause(); // answers pile up on the gateway's side unless it bounds them
    await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    socket.destroy();

    assert.deepEqual(uncaught, []);
    const session = await h2Connect(world);
    try {
      assert.equal((await h2Get(session, `${podsPath}?limit=1`, reader)).status, 200, 'the gateway still serves');
    } finally {
      session.close();
    }
    global.gc?.();
    const grewMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    assert.ok(grewMb < 64, `heap grew ${grewMb.toFixed(1)} MB`);
  });

  test('a stop sends GOAWAY to HTTP/2 sessions and answers a held call with its Status', async () => {
    const gateway = await startGateway({
      config: { ...world.config, listen: { ...world.config.listen, port: 0 } },
      logDestination: { write: () => true } as never,
      approvalPollMs: 50,
    });
    const session = await h2Connect(world, gateway.url);
    const deployer = await world.token('ci-deployer');
    // Deleting a namespace is held for approval (the demo policy); it becomes a waiting stream.
    const held = session.request({
      ':path': '/api/v1/namespaces/staging',
      ':method': 'DELETE',
      authorization: `Bearer ${deployer}`,
    });
    let body = '';
    held.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    const ended = once(held, 'end');
    await waitFor('the call to be held', async () => (await gateway.approvals.pending()).length > 0);
    const goaway = once(session, 'goaway');
    const responded = once(held, 'response');
    await gateway.close();
    await goaway;
    const [headers] = (await responded) as [Record<string, unknown>];
    await ended;
    assert.equal(headers[':status'], 503);
    const status = JSON.parse(body) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 503);
    assert.match(String(status['message']), /^hoopgate: approval \w+ cancelled: gateway restarting, run again$/);
    session.destroy();
  });
});
