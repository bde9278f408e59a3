// Issue #12 item 3: a token in the query string, a TokenReview body (another identity's bearer token)
// and a TokenRequest answer are never stored in the audit record, the log, the approvals API or Slack.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

describe('credentials stay out of records and logs', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  /** The audit store and the log lines, where a credential must never appear. */
  async function recordedText(): Promise<string> {
    const records = await world.gateway.store.audit.listRecords({});
    return `${JSON.stringify(records)}\n${world.logLines.join('\n')}`;
  }

  test('a refused ?access_token= is recorded and logged without its query', async () => {
    const canary = 'query-token-canary-3f9a';
    const response = await world.call(`/api/v1/namespaces/staging/pods?access_token=${canary}`);
    assert.equal(response.status, 401);
    assert.equal(response.json().kind, 'Status');
    const text = await recordedText();
    assert.ok(!text.includes(canary), 'the query token is not in the audit store or the log');
    assert.ok(
      text.includes('/api/v1/namespaces/staging/pods?[query not logged]'),
      'the refusal is recorded, with its path',
    );
  });

  test('an upgrade request with ?access_token= is refused and logged without its query', async () => {
    const canary = 'upgrade-token-canary-77c1';
    // Sent on a raw TLS socket: HTTP clients refuse to send an Upgrade through their request API.
    const url = new URL(world.gateway.url);
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      ca: world.gatewayTls.ca,
      servername: 'localhost',
    });
    await once(socket, 'secureConnect');
    socket.write(
      `GET /api/v1/namespaces/staging/pods/web-0/exec?command=sh&stdout=true&access_token=${canary} HTTP/1.1\r\n` +
        `Host: ${url.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n',
    );
    let head = '';
    for await (const chunk of socket) {
      head += (chunk as Buffer).toString('latin1');
      if (head.includes('\r\n\r\n')) break;
    }
    socket.destroy();
    assert.match(head, /^HTTP\/1\.1 401 /, 'refused: a token in the query string is never accepted');
    await new Promise((resolve) => setTimeout(resolve, 100)); // the log line is written after the answer
    const text = await recordedText();
    assert.ok(text.includes('/exec?[query not logged]'), 'the refusal is logged, with its path');
    assert.ok(!text.includes(canary), 'the query token is not in the audit store or the log');
  });

  test('a TokenReview body keeps no token in the record, whatever the decision', async () => {
    const canary = 'victim-bearer-canary-a41e';
    // readonly-bot: its RBAC refuses TokenReview at once (no approval path), the body is recorded all the same.
    const token = await world.token('readonly-bot');
    const response = await world.call('/apis/authentication.k8s.io/v1/tokenreviews', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: canary } }),
    });
    assert.equal(response.status, 403, response.text);
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const reviewed = records.find((r) => r.data['path'] === '/apis/authentication.k8s.io/v1/tokenreviews');
    assert.ok(reviewed, 'the call is recorded');
    assert.match(
      String(reviewed.data['requestBody'] ?? ''),
      /"token":"\*\*\*MASKED\*\*\*"/,
      'the recorded body shows the token masked',
    );
    assert.ok(!(await recordedText()).includes(canary), 'the reviewed token is not in the audit store or the log');
  });
});
