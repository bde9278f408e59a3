// Signed checkpoints posted to Slack as an outside witness (audit.checkpoint.postToSlack): the
// message names the chain head exactly as stored, and its signature verifies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createCheckpointer,
  loadSigningKey,
  verifyCheckpointSignature,
} from '../../packages/gateway/src/audit/checkpoint.js';
import { createSlackClient } from '../../packages/gateway/src/slack/app.js';
import { createCheckpointWitness } from '../../packages/gateway/src/slack/witness.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import { startSlackServer } from '../helpers/slack-server.js';

test('a checkpoint is posted to the Slack channel with its chain head and a verifiable signature', async () => {
  const slack = await startSlackServer();
  const store = await createStore('sqlite::memory:', { replicaId: 'replica-a' });
  try {
    await store.audit.append([
      { kind: 'request', time: Date.now(), eventId: 'e1', sessionId: 's1', data: { path: '/api' } },
    ]);
    const key = await loadSigningKey();
    const checkpointer = createCheckpointer({
      store: store.audit,
      key,
      replicaId: 'replica-a',
      clock: Date.now,
      witness: createCheckpointWitness(createSlackClient({ botToken: 'xoxb-witness', apiUrl: slack.apiUrl }), {
        channel: 'C0AUDIT',
      }),
    });
    const [signed] = await checkpointer.checkpoint();
    assert.ok(signed, 'a checkpoint was signed');
    assert.ok(verifyCheckpointSignature(signed, key.publicKeyPem));
    const [post] = await slack.waitFor('chat.postMessage');
    assert.equal(post?.body['channel'], 'C0AUDIT');
    assert.equal(post?.token, 'xoxb-witness');
    const text = String(post?.body['text']);
    assert.match(text, new RegExp(`chain \`replica-a\` seq ${signed.statement.seq}`));
    assert.ok(text.includes(signed.statement.hash), 'the posted hash is the stored chain head');
    assert.ok(text.includes(signed.signature), 'the posted signature is the stored one');
    assert.match(text, /generated key: configure audit\.checkpoint\.signingKeyFile/);
  } finally {
    await store.close();
    await slack.close();
  }
});
