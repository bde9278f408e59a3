// Slack request verification: the v0 signature, the ±5 minute window and the replay cache.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReplayCache, verifySlackSignature } from '../../packages/gateway/src/slack/receiver.js';
import { signSlackBody } from '../helpers/slack-sign.js';

const secret = '8f742231b10e8888abcd99yyyzzz85a5';
const body = 'token=xyz&team_id=T1&command=%2Fhoop&text=help';

function check(
  overrides: {
    body?: string;
    timestamp?: string | undefined;
    signature?: string | undefined;
    nowMs?: number;
    signingSecret?: string;
  } = {},
) {
  const now = 1_700_000_000_000;
  const headers = signSlackBody(body, secret, Math.floor(now / 1000));
  return verifySlackSignature({
    signingSecret: overrides.signingSecret ?? secret,
    body: overrides.body ?? body,
    timestamp: 'timestamp' in overrides ? overrides.timestamp : headers['x-slack-request-timestamp'],
    signature: 'signature' in overrides ? overrides.signature : headers['x-slack-signature'],
    nowMs: overrides.nowMs ?? now,
  });
}

describe('slack signature verification', () => {
  it('accepts a request signed as Slack signs it (also as a Buffer)', () => {
    assert.deepEqual(check(), { ok: true });
    assert.deepEqual(check({ nowMs: 1_700_000_000_000 + 299_000 }), { ok: true });
    assert.deepEqual(check({ body: Buffer.from(body) as unknown as string }), { ok: true });
  });

  it('refuses every deviation with a reason', () => {
    const cases: Array<[Parameters<typeof check>[0], RegExp]> = [
      [{ body: `${body}&x=1` }, /signature mismatch/],
      [{ signingSecret: 'other' }, /signature mismatch/],
      [{ signature: undefined }, /missing or malformed X-Slack-Signature/],
      [{ signature: 'v1=abc' }, /malformed X-Slack-Signature/],
      [{ signature: `v0=${'0'.repeat(64)}` }, /signature mismatch/],
      [{ timestamp: undefined }, /X-Slack-Request-Timestamp/],
      [{ timestamp: 'abc' }, /malformed X-Slack-Request-Timestamp/],
      [{ nowMs: 1_700_000_000_000 + 301_000 }, /more than 5 minutes/],
      [{ nowMs: 1_700_000_000_000 - 301_000 }, /more than 5 minutes/],
      [{ signingSecret: '' }, /no signing secret/],
    ];
    for (const [overrides, why] of cases) {
      const result = check(overrides);
      assert.equal(result.ok, false, JSON.stringify(overrides));
      assert.match(result.ok ? '' : result.why, why);
    }
  });

  it('the replay cache refuses a signature seen within the window and forgets it after', () => {
    const cache = createReplayCache(600_000);
    assert.equal(cache.check('v0=a', 0), false);
    assert.equal(cache.check('v0=a', 1_000), true);
    assert.equal(cache.check('v0=b', 1_000), false);
    assert.equal(cache.check('v0=a', 600_001), false, 'expired entries are forgotten');
    const small = createReplayCache(600_000, 2);
    small.check('1', 0);
    small.check('2', 0);
    small.check('3', 0);
    assert.equal(small.size, 2, 'bounded');
  });
});
