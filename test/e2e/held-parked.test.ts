// Held calls answered outside Koa (issue #13): a call held for approval waits as a compact record,
// not a chain of suspended frames, and is answered when its hold ends — over HTTP/2 and HTTP/1.1:
// approved → forwarded, recorded with its approval and the Warning; denied → its Status; the client
// leaving while parked → the approval stays pending and the gateway goes on; and the per-identity cap
// (approval.maxPendingPerIdentity) refuses at the cap with 429 + Retry-After, and frees on a decision.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type ClientHttp2Session } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const uncaught: unknown[] = [];
const collect = (error: unknown) => uncaught.push(error);
const cap = 3;

describe('held calls answered outside Koa', () => {
  let world: TestWorld;
  let deployer: string;
  let session: ClientHttp2Session;

  before(async () => {
    process.on('uncaughtException', collect);
    world = await startTestWorld({
      editConfig: (document) => {
        (document['approval'] as Record<string, unknown>)['maxPendingPerIdentity'] = cap;
      },
    });
    deployer = await world.token('ci-deployer');
    session = connect(world.gateway.url, { ca: world.gatewayTls.ca });
    session.on('error', () => undefined);
    await once(session, 'remoteSettings');
  });
  after(async () => {
    process.off('uncaughtException', collect);
    session?.destroy();
    await world?.assertNoCanaryLeaked();
    await world?.close();
    assert.deepEqual(uncaught, [], 'no uncaught exception in the gateway');
  });

  function namespace(name: string): string {
    world.sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    return name;
  }

  /** DELETE of a namespace (held for approval by the demo policy) as an HTTP/2 stream. */
  function h2Delete(ns: string) {
    const stream = session.request({
      ':path': `/api/v1/namespaces/${ns}`,
      ':method': 'DELETE',
      authorization: `Bearer ${deployer}`,
    });
    stream.on('error', () => undefined);
    let body = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    const answered = once(stream, 'response').then(async ([headers]) => {
      await once(stream, 'end');
      return { headers: headers as Record<string, unknown>, body };
    });
    return { stream, answered };
  }

  async function heldFor(ns: string): Promise<ApprovalRecord> {
    return waitFor(`the delete of ${ns} to be held`, async () =>
      (await world.gateway.approvals.pending()).find((r) => r.request.name === ns),
    );
  }

  const oncall = { user: 'oncall', label: 'oncall', at: 0, via: 'api' as const };
  const decide = (id: string, approve: boolean) =>
    world.gateway.approvals.decide(id, { approve, actor: { ...oncall, at: Date.now() }, approver: true });

  /** The outcome record of the call held on approval `id` (it names the approval). */
  async function outcomeOf(id: string): Promise<Record<string, unknown> | undefined> {
    const records = await world.gateway.store.audit.listRecords({ kinds: ['outcome'] });
    return records.find((r) => JSON.stringify(r.data).includes(id))?.data;
  }

  test('HTTP/2: approved while parked → forwarded, the Warning names the approval, the outcome records it', async () => {
    const ns = namespace('parked-approved');
    const { answered } = h2Delete(ns);
    const record = await heldFor(ns);
    assert.ok(world.sim.getObject('namespaces', '', ns), 'nothing forwarded while held');
    assert.equal((await decide(record.id, true)).ok, true);
    const { headers } = await answered;
    assert.equal(headers[':status'], 200);
    assert.match(String(headers['warning']), new RegExp(`hoopgate: approved by oncall \\(${record.id}\\)`));
    assert.equal(world.sim.getObject('namespaces', '', ns), undefined, 'the delete was forwarded');
    const outcome = await waitFor('the outcome record', () => outcomeOf(record.id));
    assert.equal(outcome['status'], 200);
    assert.deepEqual((outcome['approval'] as { id: string; state: string }).id, record.id);
    assert.equal((outcome['approval'] as { id: string; state: string }).state, 'approved');
  });

  test('HTTP/1.1: denied while parked → its 403 Status with the Audit-Id; nothing forwarded', async () => {
    const ns = namespace('parked-denied');
    const call = world.call(`/api/v1/namespaces/${ns}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${deployer}` },
    });
    const record = await heldFor(ns);
    assert.equal((await decide(record.id, false)).ok, true);
    const response = await call;
    assert.equal(response.status, 403);
    const status = response.json();
    assert.equal(status.kind, 'Status');
    assert.equal(status.code, 403);
    assert.match(status.message, new RegExp(`^hoopgate: .*was denied by oncall \\(approval ${record.id}\\)`));
    assert.ok(typeof response.headers['audit-id'] === 'string');
    assert.ok(world.sim.getObject('namespaces', '', ns), 'nothing was deleted');
    const outcome = await waitFor('the outcome record', () => outcomeOf(record.id));
    assert.equal(outcome['status'], 403);
  });

  test('HTTP/2: the client cancels its stream while parked → the approval stays pending, nothing runs, the gateway goes on', async () => {
    const ns = namespace('parked-left');
    const { stream } = h2Delete(ns);
    const record = await heldFor(ns);
    stream.close();
    const holding = async () =>
      (await world.gateway.metrics.registry.getSingleMetric('hoopgate_pending_approvals')?.get())?.values[0]?.value;
    await waitFor('the held call to end', async () => (await holding()) === 0);
    assert.equal((await world.gateway.approvals.get(record.id))?.state, 'pending', 'left pending for a retry');
    const outcome = await waitFor('the outcome record', () => outcomeOf(record.id));
    assert.match(String(outcome['error']), /the requester disconnected/);
    // Approved afterwards: nothing runs for the call that left.
    assert.equal((await decide(record.id, true)).ok, true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(world.sim.getObject('namespaces', '', ns), 'nothing was deleted');
    const reader = await world.token('readonly-bot');
    const pods = session.request({ ':path': '/api/v1/namespaces/staging/pods', authorization: `Bearer ${reader}` });
    const [headers] = (await once(pods, 'response')) as [Record<string, unknown>];
    pods.resume();
    assert.equal(headers[':status'], 200, 'the session still serves');
  });

  test(`the per-identity cap (${cap}): at the cap a new hold gets 429 + Retry-After; a decision frees a place`, async () => {
    const calls = Array.from({ length: cap }, (_, i) => h2Delete(namespace(`parked-cap-${i}`)));
    const records = await Promise.all(Array.from({ length: cap }, (_, i) => heldFor(`parked-cap-${i}`)));
    const over = h2Delete(namespace('parked-cap-over'));
    const { headers, body } = await over.answered;
    assert.equal(headers[':status'], 429);
    const retryAfter = Number(headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, String(headers['retry-after']));
    const status = JSON.parse(body) as Record<string, unknown>;
    assert.equal(status['kind'], 'Status');
    assert.equal(status['code'], 429);
    assert.equal(status['reason'], 'TooManyRequests');
    assert.match(
      String(status['message']),
      new RegExp(
        `^hoopgate: identity "ci-deployer" already has ${cap} requests waiting for approval \\(the gateway's limit is ${cap}\\); wait for a decision or retry in ${retryAfter}s`,
      ),
    );
    // One decided: the next hold is admitted.
    assert.equal((await decide(records[0]?.id ?? '', false)).ok, true);
    assert.equal((await calls[0]?.answered)?.headers[':status'], 403);
    const again = h2Delete('parked-cap-over');
    const admitted = await heldFor('parked-cap-over');
    for (const record of [...records.slice(1), admitted]) await decide(record.id, false);
    await Promise.all([...calls.slice(1).map((c) => c.answered), again.answered]);
  });
});
