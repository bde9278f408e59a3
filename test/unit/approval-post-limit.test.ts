// Slack posts per identity through a token bucket (issue #12 item 5): a flood from one agent posts a
// few messages and one summary; other identities are not slowed; the bucket refills.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPostLimiter, type LimitedNotifier } from '../../packages/gateway/src/approvals/post-limit.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';

function record(id: string, identity = 'spammer'): ApprovalRecord {
  return {
    id,
    state: 'pending',
    createdAt: 0,
    expiresAt: 1,
    holder: 'r',
    sessionId: 's',
    identity,
    subject: 'x',
    groups: [],
    request: {
      cluster: 'prod',
      method: 'GET',
      path: '/',
      verb: 'get',
      apiGroup: '',
      resource: '',
      subresource: '',
      namespace: '',
      name: '',
    },
    heldBecause: 'escalation',
    serviceAccount: 'a/b',
    votes: [],
  };
}

test('one identity: burst posts, then one summary per refill interval; others unaffected; refills', async () => {
  const posted: string[] = [];
  const notices: string[] = [];
  const inner: LimitedNotifier = {
    posted: async (r) => {
      posted.push(r.id);
      return { channel: 'C', ts: r.id };
    },
    finalize: async () => undefined,
    notice: async (text) => void notices.push(text),
  };
  let now = 0;
  const limited = createPostLimiter(inner, { limit: { burst: 3, refillMs: 10_000 }, clock: () => now });
  const answers = [];
  for (let i = 0; i < 300; i += 1) answers.push(await limited.posted(record(`a${i}`)));
  assert.deepEqual(posted, ['a0', 'a1', 'a2'], 'only the burst is posted');
  assert.equal(answers.filter((a) => a === undefined).length, 297);
  assert.equal(notices.length, 1, 'one summary, not 297 messages');
  assert.match(
    notices[0] ?? '',
    /^1 more held request\(s\) of identity "spammer" were not posted one by one \(Slack posting limit: 3 at once, then one every 10s per identity\): a3\. See them with \/hoop pending/,
  );
  await limited.posted(record('b0', 'someone-else'));
  assert.equal(posted.at(-1), 'b0', 'another identity still posts');
  now += 10_000;
  await limited.posted(record('a300'));
  assert.equal(posted.at(-1), 'a300', 'one token back after refillMs');
  await limited.posted(record('a301'));
  assert.equal(notices.length, 2, 'the next summary after an interval');
  assert.match(notices[1] ?? '', /^297 more held request\(s\)/);
});
