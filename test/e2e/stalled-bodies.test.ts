// Issue #12 item 2, stalled bodies: 100 unauthenticated connections that declare a 3 MiB body and
// stall after its first 64 KiB. Authentication comes before the body, so each gets its 401 as soon as
// its headers are read, with `Connection: close`, and the gateway then closes the connection instead
// of draining (and holding) a body it has refused (http/unread-body.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const uncaught: unknown[] = [];
process.on('uncaughtException', (error) => uncaught.push(error));
process.on('unhandledRejection', (error) => uncaught.push(error));

interface Stalled {
  /** ms from the request's headers being written to the answer's first byte (undefined: no answer). */
  answeredAfterMs?: number;
  /** ms from the answer's first byte to the gateway closing the connection. */
  closedAfterMs?: number;
  response: string;
}

/** One connection: headers with a 3 MiB Content-Length, the first 64 KiB of the body, then nothing. */
function stall(
  origin: URL,
  ca: string | Buffer,
  path: string,
  headers = '',
  length = 3 * 1024 * 1024,
): Promise<Stalled> {
  return new Promise((resolve) => {
    const result: Stalled = { response: '' };
    let sentAt = 0;
    let answeredAt = 0;
    const socket: TLSSocket = connect({
      host: origin.hostname,
      port: Number(origin.port),
      ca,
      servername: 'localhost',
    });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => {
      sentAt = performance.now();
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: ${origin.host}\r\nContent-Type: application/json\r\n${headers}Content-Length: ${length}\r\n\r\n`,
      );
      socket.write(Buffer.alloc(64 * 1024, 0x20));
    });
    socket.on('data', (chunk: Buffer) => {
      if (answeredAt === 0) {
        answeredAt = performance.now();
        result.answeredAfterMs = answeredAt - sentAt;
      }
      result.response += chunk.toString('latin1');
    });
    socket.once('close', () => {
      if (answeredAt !== 0) result.closedAfterMs = performance.now() - answeredAt;
      resolve(result);
    });
    // The test's own bound: a connection the gateway never closes is reported, not waited on for ever.
    setTimeout(() => socket.destroy(), 15_000).unref();
  });
}

describe('stalled unauthenticated bodies', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  test('100 connections stalling a 3 MiB body each get a 401 at once, then the gateway closes them', async () => {
    const origin = new URL(world.gateway.url);
    const results = await Promise.all(
      Array.from({ length: 100 }, () => stall(origin, world.gatewayTls.ca, '/api/v1/namespaces/staging/configmaps')),
    );
    assert.deepEqual(uncaught, [], 'no error escaped the gateway');
    const unanswered = results.filter((r) => r.answeredAfterMs === undefined).length;
    assert.equal(unanswered, 0, `every connection is answered (${unanswered} of 100 were not)`);
    const slowest = Math.max(...results.map((r) => r.answeredAfterMs ?? Infinity));
    // The answer needs the headers only (the bench measures ~1.3 s for the slowest of 100 on a busy
    // machine); here client, gateway, IdP and API server share one process, so the bound is looser.
    assert.ok(slowest <= 5000, `answered within 5 s of the headers (slowest ${Math.round(slowest)} ms)`);
    for (const { response } of results) {
      const [head = '', body = ''] = response.split('\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 401 Unauthorized\r\n/);
      assert.match(head, /\r\nConnection: close\r\n/i, 'the answer says the connection ends');
      const status = JSON.parse(body);
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 401);
      assert.equal(status.reason, 'Unauthorized');
      assert.match(status.message, /^hoopgate: /);
    }
    // Closed by the gateway (after a short linger, so that a client still sending reads its answer),
    // not kept open waiting for the 3 MiB that never come.
    const longestOpen = Math.max(...results.map((r) => r.closedAfterMs ?? Infinity));
    assert.ok(
      longestOpen <= 5000,
      `the gateway closed every connection (longest open after its answer ${Math.round(longestOpen)} ms)`,
    );
  });

  test('an authenticated caller over gateway.maxBodyBytes is refused from its Content-Length, and the connection closed', async () => {
    const token = await world.token('ci-deployer');
    const origin = new URL(world.gateway.url);
    const limit = world.config.gateway.maxBodyBytes;
    const { response, closedAfterMs } = await stall(
      origin,
      world.gatewayTls.ca,
      '/api/v1/namespaces/staging/configmaps',
      `Authorization: Bearer ${token}\r\n`,
      limit + 1,
    );
    const [head = '', body = ''] = response.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(head, /\r\nConnection: close\r\n/i);
    const status = JSON.parse(body);
    assert.equal(status.kind, 'Status');
    assert.equal(status.code, 400);
    assert.match(
      status.message,
      new RegExp(`^hoopgate: request body of ${limit + 1} bytes exceeds the gateway's limit of ${limit} bytes`),
    );
    assert.ok((closedAfterMs ?? Infinity) <= 5000, 'the connection is closed');
  });
});
