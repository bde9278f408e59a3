// A call held for approval leaves Koa's chain (issue #13, http/parked.ts): the route answers `{ parked }`
// by returning at once (ctx.respond = false), and answers the call outside Koa when its hold ends —
// a refusal as its Status, an admission relayed and recorded, a client that left while parked with
// nothing written, and a throw with the app's generic 500 Status. The admitter is a stand-in here; the
// whole path with a real hold is test/e2e/held-parked.test.ts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import { createKubeRoute } from '../../packages/gateway/src/http/kube-route.js';
import { statusOnError } from '../../packages/gateway/src/http/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { silentLogger } from '../../packages/gateway/src/lib/logger.js';
import type { Admission, AdmitResult, Admitter, IncomingRequest } from '../../packages/gateway/src/pipeline/index.js';
import { parseRequestInfo } from '../../packages/gateway/src/kube/request-info.js';

interface Parking {
  request: IncomingRequest;
  settle: (result: AdmitResult) => void;
  fail: (error: unknown) => void;
}

const uncaught: unknown[] = [];
const collect = (error: unknown) => uncaught.push(error);

describe('a held call is answered outside Koa', () => {
  const parkings: Parking[] = [];
  /** Requests whose middleware chain has returned (the outermost `await next()` came back). */
  const returned: string[] = [];
  const outcomes: Record<string, unknown>[] = [];
  let server: Server;
  let origin: string;

  before(async () => {
    process.on('uncaughtException', collect);
    process.on('unhandledRejection', collect);
    const admitter = {
      admitOrPark: async (request: IncomingRequest) => ({
        parked: new Promise<AdmitResult>((settle, fail) => parkings.push({ request, settle, fail })),
      }),
    } as unknown as Admitter;
    const app = new Koa();
    app.silent = true;
    app.use(statusOnError(silentLogger));
    app.use(async (ctx, next) => {
      await next();
      returned.push(ctx.url);
    });
    app.use(
      createKubeRoute({
        admitter,
        masker: {} as never,
        writes: {} as never,
        logger: silentLogger,
        maxBodyBytes: 1024,
        auditBodies: false,
        maxAuditBodyBytes: 0,
        clock: Date.now,
      }),
    );
    const callback = app.callback();
    server = createServer((req, res) => void callback(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    process.off('uncaughtException', collect);
    process.off('unhandledRejection', collect);
    server.closeAllConnections();
    server.close();
    assert.deepEqual(uncaught, [], 'no uncaught exception');
  });

  /** Sends GET `path`; resolves with the answer, or the error when the client itself cancels it. */
  function get(path: string, signal?: AbortSignal) {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = httpRequest(`${origin}${path}`, { signal }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  async function parkedFor(path: string): Promise<Parking> {
    for (let i = 0; i < 200; i++) {
      const found = parkings.find((p) => p.request.rawUrl === path);
      if (found !== undefined && returned.includes(path)) return found;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`${path} was not parked with its chain returned`);
  }

  function admission(requestId: string): Admission {
    return {
      requestId,
      startedAt: Date.now(),
      cluster: { config: { name: 'demo' } },
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      info: parseRequestInfo('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews'),
      principal: { issuer: 'https://idp', subject: 'agent-7', groups: [] },
      identity: { name: 'ci-deployer' },
      decision: { effect: 'approve', reason: 'approval-required', serviceAccount: 'agents/deployer', message: 'held' },
      serviceAccount: 'agents/deployer',
      token: 'sa-token',
      audit: { sessionId: 's', eventId: 'e', complete: (outcome: Record<string, unknown>) => outcomes.push(outcome) },
      approval: { id: 'ap1', state: 'approved', by: ['alice'] },
      answer: { status: 201, body: { kind: 'SelfSubjectAccessReview', status: { allowed: true } } },
    } as unknown as Admission;
  }

  test('approved after the chain returned: the answer goes out and is recorded with its approval', async () => {
    const answered = get('/approved');
    const parked = await parkedFor('/approved');
    let early = false;
    void answered.then(() => (early = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(early, false, 'nothing is answered while the call is held');
    parked.settle({ ok: true, admission: admission('r-approved') });
    const response = await answered;
    assert.equal(response.status, 201);
    assert.equal(response.headers['audit-id'], 'r-approved');
    assert.deepEqual(JSON.parse(response.body), { kind: 'SelfSubjectAccessReview', status: { allowed: true } });
    const outcome = outcomes.find((o) => o['status'] === 201);
    assert.deepEqual(outcome?.['approval'], { id: 'ap1', state: 'approved', by: ['alice'] });
  });

  test('denied after the chain returned: its Status, with the Audit-Id of its record', async () => {
    const answered = get('/denied');
    const parked = await parkedFor('/denied');
    const error = new HoopError('ERR_APPROVAL_DENIED', 'delete namespaces/prod was denied by alice (approval ap2)');
    parked.settle({
      ok: false,
      refusal: {
        error,
        requestId: 'r-denied',
        recorded: true,
        cluster: 'demo',
        verb: 'delete',
        resource: 'namespaces',
        identity: 'ci-deployer',
        subject: 'agent-7',
        reason: 'denied',
      },
    });
    const response = await answered;
    assert.equal(response.status, 403);
    assert.equal(response.headers['audit-id'], 'r-denied');
    assert.equal(response.headers['content-type'], 'application/json');
    const status = JSON.parse(response.body) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 403);
    assert.equal(status['reason'], 'Forbidden');
    assert.match(String(status['message']), /^hoopgate: delete namespaces\/prod was denied by alice \(approval ap2\)$/);
  });

  test('the client leaves while parked: the hold is told, then the AbortSignal; nothing is written after', async () => {
    const controller = new AbortController();
    const answered = get('/left', controller.signal).catch((error: unknown) => error);
    const parked = await parkedFor('/left');
    const { leaving } = parked.request;
    assert.ok(leaving !== undefined);
    const told: string[] = [];
    leaving.addEventListener('abort', { handleEvent: () => told.push('hold') }, { once: true });
    assert.equal(leaving.aborted, false);
    controller.abort();
    assert.equal(((await answered) as Error).name, 'AbortError');
    for (let i = 0; i < 100 && !leaving.aborted; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(told, ['hold']);
    assert.equal(parked.request.signal.aborted, true, 'the signal of the upstream request is aborted too');
    const error = new HoopError('ERR_APPROVAL_CANCELLED', 'approval ap3: the requester disconnected');
    parked.settle({
      ok: false,
      refusal: {
        error,
        requestId: 'r-left',
        recorded: true,
        cluster: 'demo',
        verb: 'get',
        resource: 'pods',
        identity: 'ci-deployer',
        subject: 'agent-7',
        reason: 'cancelled',
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    // The server goes on serving.
    const next = get('/after-left');
    (await parkedFor('/after-left')).settle({ ok: true, admission: admission('r-after') });
    assert.equal((await next).status, 201);
  });

  /** The app's generic answer to a throw: a 500 Status whose message is hoopgate's. */
  function assertGeneric500(response: { status: number; body: string }): void {
    assert.equal(response.status, 500);
    const status = JSON.parse(response.body) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 500);
    assert.match(String(status['message']), /^hoopgate: /);
  }

  test('a throw while answering outside Koa gets the generic 500 Status, as inside Koa', async () => {
    const answered = get('/broken');
    const parked = await parkedFor('/broken');
    // An admission the responder cannot use (no audit handle): it throws.
    parked.settle({ ok: true, admission: { ...admission('r-broken'), audit: undefined } as unknown as Admission });
    const response = await answered;
    assertGeneric500(response);
  });

  test('a hold whose end rejects is answered with the generic 500 Status, and the process goes on', async () => {
    const answered = get('/rejected');
    (await parkedFor('/rejected')).fail(new Error('the store went away while the call was held'));
    const response = await answered;
    assertGeneric500(response);
    assert.doesNotMatch(response.body, /store went away/, 'the internal detail stays in the log');
  });
});
