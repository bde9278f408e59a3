// The pipeline's stages as separate functions (issue #15): each returns a result, never throws for
// a refusal; an internal fault reaches the client only as a generic message.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApprovalGrant } from '../../packages/gateway/src/approvals/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createLogger } from '../../packages/gateway/src/lib/logger.js';
import { applyGrant } from '../../packages/gateway/src/pipeline/decide.js';
import { INTERNAL_MESSAGE, boundPath, boundText, publicError } from '../../packages/gateway/src/pipeline/errors.js';
import { createAdmitter } from '../../packages/gateway/src/pipeline/index.js';
import { auditStart } from '../../packages/gateway/src/pipeline/record.js';
import { checkCanonical, classify, route } from '../../packages/gateway/src/pipeline/shape.js';
import type { Decision } from '../../packages/gateway/src/policy/index.js';

const clusters = new Map([
  ['demo', {}],
  ['second', {}],
]);

describe('pipeline stages', () => {
  test('route: the default cluster, a named one, an unknown one refused with 404', () => {
    assert.deepEqual(route('/api/v1/pods', clusters, 'demo'), { ok: true, cluster: 'demo', path: '/api/v1/pods' });
    assert.deepEqual(route('/k8s/second/api/v1/pods?watch=1', clusters, 'demo'), {
      ok: true,
      cluster: 'second',
      path: '/api/v1/pods?watch=1',
    });
    const unknown = route('/k8s/nope/api', clusters, 'demo');
    assert.equal(unknown.ok, false);
    if (!unknown.ok) {
      assert.equal(unknown.refusal.error.code, 'ERR_NOT_FOUND');
      assert.match(unknown.refusal.error.message, /no cluster named "nope" is configured \(clusters: demo, second\)/);
    }
  });

  test('canonical check and classify refuse with results, not exceptions', () => {
    assert.deepEqual(checkCanonical('/api/v1/namespaces/a/pods'), { ok: true });
    const dotted = checkCanonical('/api/v1/namespaces/a/../b/pods');
    assert.equal(dotted.ok, false);
    if (!dotted.ok) assert.equal(dotted.refusal.error.code, 'ERR_NON_CANONICAL_PATH');
    const classified = classify('GET', '/api/v1/namespaces/a/pods/p');
    assert.equal(classified.ok && classified.info.verb, 'get');
  });

  test('decide: a grant turns approve into allow; it changes nothing else', () => {
    const approve: Decision = {
      effect: 'approve',
      reason: 'escalation',
      serviceAccount: 'ns/elevated',
      message: 'held',
    };
    const deny: Decision = { effect: 'deny', reason: 'deny-rule', message: 'no' };
    const grant = {
      id: 'g1',
      serviceAccount: 'ns/elevated',
      grantedBy: 'alice',
      expiresAt: Date.UTC(2030, 0, 1),
    } as ApprovalGrant;
    assert.equal(applyGrant(approve, undefined), approve);
    assert.equal(applyGrant(deny, grant), deny);
    assert.deepEqual(applyGrant(approve, grant), {
      effect: 'allow',
      reason: 'grant',
      serviceAccount: 'ns/elevated',
      rule: 'grant g1',
      message: 'allowed by a grant from alice until 2030-01-01T00:00:00.000Z',
    });
  });

  test('bounded text keeps the head, the length and the SHA-256', () => {
    assert.equal(boundText('short', 10), 'short');
    const long = `/api/${'x'.repeat(20_000)}`;
    const bounded = boundPath(long);
    assert.ok(bounded.length < 400, `${bounded.length}`);
    assert.match(bounded, /^\/api\/x+…\[20005 chars, sha256:[0-9a-f]{64}\]$/);
  });

  test('a record before authentication is bounded; after it, kept as sent', () => {
    const long = `/api/v1/namespaces/a/${'r'.repeat(20_000)}`;
    const request = {
      method: 'GET',
      rawUrl: long,
      rawHeaders: [],
      headers: { 'user-agent': 'u'.repeat(10_000) },
      signal: new AbortController().signal,
    };
    const known = {
      requestId: 'id',
      startedAt: 0,
      routed: { cluster: 'demo', path: long },
      info: { ...classifyOk(long) },
    };
    const decision = { effect: 'deny' as const, reason: 'ERR_UNAUTHENTICATED', message: long };
    const before = auditStart({ audit: { bodies: true, maxBodyBytes: 1024 } }, request, known, decision);
    assert.ok(JSON.stringify(before).length < 4096, `${JSON.stringify(before).length} bytes`);
    const principal = { issuer: 'https://idp', subject: 's', groups: [], username: 's' } as never;
    const after = auditStart(
      { audit: { bodies: true, maxBodyBytes: 1024 } },
      request,
      { ...known, principal },
      decision,
    );
    assert.equal(after.path, long);
  });

  test('publicError: a HoopError as it is; anything else generic, the detail only in the log', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(line) > 0 } as never });
    const hoop = new HoopError('ERR_FORBIDDEN', 'no');
    assert.equal(publicError(hoop, logger), hoop);
    const error = publicError(new Error('db password hunter2 rejected'), logger, { requestId: 'r1' });
    assert.equal(error.code, 'ERR_INTERNAL');
    assert.equal(error.status, 500);
    assert.equal(error.message, INTERNAL_MESSAGE);
    assert.ok(!error.message.includes('hunter2'));
    logger.flush?.(); // lines are written in batches (lib/log-buffer.ts)
    assert.ok(
      lines.some((line) => line.includes('hunter2') && line.includes('r1')),
      'the detail is logged',
    );
  });

  test('admit: a verifier that throws an unexpected error refuses with a generic 500, recorded, detail logged', async () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => lines.push(line) > 0 } as never });
    const recorded: { error?: string }[] = [];
    const admitter = createAdmitter({
      config: { audit: { bodies: false, maxBodyBytes: 0 }, identities: [] } as never,
      clusters: new Map([['demo', {} as never]]),
      defaultCluster: 'demo',
      verifier: { verify: async () => Promise.reject(new Error('jwks cache corrupted at 0xdeadbeef')) },
      recorder: {
        record: async (_start: unknown, outcome: { error?: string }) => void recorded.push(outcome),
      } as never,
      masker: { maskRequestBody: () => '' },
      logger,
      clock: () => 0,
    });
    const result = await admitter.admit({
      method: 'GET',
      rawUrl: '/api/v1/namespaces/a/pods',
      rawHeaders: ['Authorization', 'Bearer x'],
      headers: { authorization: 'Bearer x' },
      signal: new AbortController().signal,
    });
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.refusal.error.code, 'ERR_INTERNAL');
    assert.equal(result.refusal.error.message, INTERNAL_MESSAGE);
    assert.equal(result.refusal.recorded, true);
    assert.equal(recorded[0]?.error, INTERNAL_MESSAGE);
    logger.flush?.();
    assert.ok(
      lines.some((line) => line.includes('0xdeadbeef')),
      'the detail is logged',
    );
  });
});

function classifyOk(path: string) {
  const result = classify('GET', path);
  assert.ok(result.ok);
  return result.info;
}
