// A dropped upstream body (HEAD, a response the masker refuses, a client gone) must never raise an
// unhandled 'error': undici's RequestAbortedError would otherwise end the gateway process.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { discardUpstreamBody, forwardToUpstream, type Upstream } from '../../packages/gateway/src/proxy/forward.js';

describe('forwardToUpstream: dropped bodies', () => {
  let server: Server;
  let upstream: Upstream;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  before(async () => {
    process.on('uncaughtException', onUncaught);
    // HEAD answers have no body; /small ends at once; anything else streams slowly. undici raises
    // RequestAbortedError when a body that has fully arrived is destroyed before it was read.
    server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.method === 'HEAD') return void res.end();
      if (req.url === '/small') return void res.end('{"kind":"Secret"}');
      res.write(`{"kind":"SecretList","items":[${'{},'.repeat(100_000)}`);
      setTimeout(() => res.end('{}]}'), 200);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    upstream = {
      cluster: 'test',
      origin: `http://127.0.0.1:${port}`,
      basePath: '',
      dispatcher: new Agent(),
      tls: { rejectUnauthorized: true },
    };
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await upstream.dispatcher.close();
    server.close();
  });

  const call = (signal = new AbortController().signal, method = 'GET', path = '/') =>
    forwardToUpstream(upstream, { method, path, headers: {}, signal });

  for (const [name, method, path] of [
    ['a HEAD answer', 'HEAD', '/'],
    ['a complete small body', 'GET', '/small'],
    ['a body still streaming', 'GET', '/'],
  ] as const) {
    test(`${name} destroyed unread raises no uncaught error`, async () => {
      const response = await call(undefined, method, path);
      await sleep(20);
      response.body.destroy();
      await sleep(50);
      assert.deepEqual(uncaught, []);
    });
  }

  test('discardUpstreamBody closes the body', async () => {
    const response = await call();
    discardUpstreamBody(response.body);
    await sleep(50);
    assert.equal(response.body.destroyed, true);
    assert.deepEqual(uncaught, []);
  });

  test('a client abort after the headers raises no uncaught error', async () => {
    const controller = new AbortController();
    const response = await call(controller.signal);
    controller.abort();
    await sleep(50);
    assert.equal(response.body.destroyed, true);
    assert.deepEqual(uncaught, []);
  });

  test('a reader still sees the error of a body that fails', async () => {
    const controller = new AbortController();
    const response = await call(controller.signal);
    const reading = (async () => {
      for await (const _chunk of response.body) controller.abort();
    })();
    await assert.rejects(reading);
  });
});
