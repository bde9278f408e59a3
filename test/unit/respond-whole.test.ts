// Issue #13: an upstream answer with a declared length up to WHOLE_BODY_BYTES is read whole, masked in
// one call and relayed as one buffer (no stream pipeline per request). Nothing has reached the client
// until then, so an answer that breaks off or cannot be masked becomes a recorded Status, and a client
// that went away is recorded as such; bigger answers still stream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { Agent } from 'undici';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { silentLogger } from '../../packages/gateway/src/lib/logger.js';
import type { Completion, Outcome } from '../../packages/gateway/src/pipeline/completion.js';
import { classify } from '../../packages/gateway/src/pipeline/shape.js';
import { createResponder, WHOLE_BODY_BYTES, type Answer } from '../../packages/gateway/src/pipeline/respond.js';
import type { Admission } from '../../packages/gateway/src/pipeline/types.js';
import type { Upstream } from '../../packages/gateway/src/proxy/forward.js';
import type { MaskedWriteKeeper } from '../../packages/gateway/src/proxy/masked-writes.js';
import { createGatewayMasker } from '../../packages/gateway/src/proxy/masking.js';

const pod = JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'web', namespace: 'default' } });
const secret = JSON.stringify({
  kind: 'Secret',
  apiVersion: 'v1',
  metadata: { name: 'db', namespace: 'default' },
  data: { password: Buffer.from('CANARY-password').toString('base64') },
});
const bigList = JSON.stringify({
  kind: 'PodList',
  apiVersion: 'v1',
  metadata: {},
  items: Array.from({ length: 2000 }, (_, i) => ({ metadata: { name: `pod-${i}`, namespace: 'default' } })),
});

describe('respond: small answers relayed whole', () => {
  let server: Server;
  let upstream: Upstream;
  before(async () => {
    server = createServer((req, res) => {
      const json = (body: string) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.url?.endsWith('/pods/web')) return json(pod);
      if (req.url?.endsWith('/secrets/db')) return json(secret);
      if (req.url?.endsWith('/pods')) return json(bigList);
      if (req.url?.endsWith('/pods/malformed')) return json('{"kind":"Pod","metadata":{"name":web}}');
      // Declares 1000 bytes, sends 10, then breaks off (broken) or waits (slow).
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"kind":"P');
      if (req.url?.endsWith('/pods/broken')) setTimeout(() => res.destroy(), 20);
      else setTimeout(() => res.destroy(), 2000).unref();
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
    await upstream.dispatcher.close();
    server.closeAllConnections();
    server.close();
  });

  async function call(
    path: string,
    signal = new AbortController().signal,
  ): Promise<{ answer: Answer; outcomes: Outcome[] }> {
    const outcomes: Outcome[] = [];
    const completion: Completion = { refused: () => undefined, finished: (_a, _l, outcome) => outcomes.push(outcome) };
    const responder = createResponder({
      masker: createGatewayMasker({ secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 }),
      writes: {} as MaskedWriteKeeper,
      completion,
      logger: silentLogger,
      auditBodies: true,
      maxAuditBodyBytes: 4096,
      clock: Date.now,
    });
    const classified = classify('GET', path);
    assert.ok(classified.ok);
    const admission = {
      requestId: 'req-1',
      startedAt: Date.now(),
      cluster: { config: { name: 'test' }, upstream },
      path,
      info: classified.info,
      token: 'sa-token',
    } as unknown as Admission;
    const answer = await responder.respond(admission, {
      transport: 'request',
      method: 'GET',
      rawUrl: path,
      rawHeaders: ['Accept', 'application/json'],
      headers: { accept: 'application/json' },
      signal,
    });
    return { answer, outcomes };
  }

  test('a small object is one buffer, recorded with its length before it is sent', async () => {
    const { answer, outcomes } = await call('/api/v1/namespaces/default/pods/web');
    assert.equal(answer.kind, 'relay');
    if (answer.kind !== 'relay') return;
    assert.ok(Buffer.isBuffer(answer.body), 'relayed whole, not as a stream');
    assert.equal(answer.body.toString(), pod);
    assert.equal(answer.flush, false);
    assert.equal(answer.headers['content-length'], undefined, 'the transport sets the length of the buffer');
    assert.deepEqual(outcomes, [{ status: 200, bytesOut: Buffer.byteLength(pod), responseBody: pod }]);
  });

  test('a small Secret is masked whole; the record keeps the masked body only', async () => {
    const { answer, outcomes } = await call('/api/v1/namespaces/default/secrets/db');
    assert.ok(answer.kind === 'relay' && Buffer.isBuffer(answer.body));
    const body = answer.body.toString();
    assert.ok(!body.includes(Buffer.from('CANARY-password').toString('base64')), body);
    assert.equal(JSON.parse(body).metadata.name, 'db');
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]?.bytesOut, answer.body.length);
    assert.equal(outcomes[0]?.responseBody, body);
  });

  test(`an answer over ${WHOLE_BODY_BYTES} bytes still streams`, async () => {
    assert.ok(Buffer.byteLength(bigList) > WHOLE_BODY_BYTES);
    const { answer, outcomes } = await call('/api/v1/namespaces/default/pods');
    assert.ok(answer.kind === 'relay' && answer.body instanceof Readable);
    assert.equal(JSON.parse(await text(answer.body)).items.length, 2000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcomes[0]?.bytesOut, Buffer.byteLength(bigList));
  });

  test('an answer that breaks off is a recorded 503 Status, nothing of it relayed', async () => {
    const { answer, outcomes } = await call('/api/v1/namespaces/default/pods/broken');
    assert.equal(answer.kind, 'refusal');
    if (answer.kind !== 'refusal') return;
    const status = statusFromError(answer.error);
    assert.equal(status.kind, 'Status');
    assert.equal(status.code, 503);
    assert.equal(status.reason, 'ServiceUnavailable');
    assert.match(
      status.message,
      /^hoopgate: the API server of cluster "test" broke off its answer .*run the call again/,
    );
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]?.status, 503);
    assert.equal(outcomes[0]?.bytesOut, 0);
    assert.match(String(outcomes[0]?.error), /broke off its answer/);
  });

  test('a small body that cannot be masked is a recorded 502 Status, not a cut stream', async () => {
    const { answer, outcomes } = await call('/api/v1/namespaces/default/pods/malformed');
    assert.equal(answer.kind, 'refusal');
    if (answer.kind !== 'refusal') return;
    assert.equal(answer.error.code, 'ERR_UNMASKABLE');
    const status = statusFromError(answer.error);
    assert.equal(status.code, 502);
    assert.equal(status.reason, 'InternalError');
    assert.match(status.message, /^hoopgate: .*malformed json/);
    assert.deepEqual(
      outcomes.map((o) => [o.status, o.bytesOut]),
      [[502, 0]],
    );
  });

  test('a client that goes away while the body arrives is recorded as gone', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const { answer, outcomes } = await call('/api/v1/namespaces/default/pods/slow', controller.signal);
    assert.equal(answer.kind, 'refusal');
    assert.deepEqual(outcomes, [
      { status: 200, bytesOut: 0, error: 'client went away', streamError: 'client went away' },
    ]);
  });
});
