// A signed Slack request is acted on by one replica only: the receiver claims its signature in the
// store's once-only keys (shared by every replica), so the same bytes replayed to another replica
// within Slack's 5-minute window are refused as a replay; a store that cannot be asked fails closed.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import type { ApprovalConfig } from '../../packages/gateway/src/config/types.js';
import { createSlackIntegration } from '../../packages/gateway/src/slack/app.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { Store } from '../../packages/gateway/src/store/types.js';
import { slackConfigFor, startSlackServer, type LocalSlackServer } from '../helpers/slack-server.js';
import { formType, signSlackBody, slashCommandBody } from '../helpers/slack-sign.js';

const secret = 'test-signing-secret';
const approval: ApprovalConfig = {
  timeoutMs: 20_000,
  minApprovals: 1,
  grantOptionsMs: [],
  approvers: { slackUsers: ['UAPPROVER'], slackUserGroups: [], oidcGroups: [], people: [] },
  maxPendingPerIdentity: 10,
};
const audit = { sessionTimeline: async () => [], listSessions: async () => [] };

describe('slack replay protection across replicas', () => {
  let slack: LocalSlackServer;
  let store: Store;
  const servers: Server[] = [];

  /** One replica's Slack route on its own port; `consumeOnce` as the composition root passes it. */
  async function replica(consumeOnce: (key: string, expiresAt: number) => Promise<boolean>): Promise<string> {
    const config = slackConfigFor(slack, secret, ['UAUDITOR']);
    const integration = createSlackIntegration({ slack: config, approval, audit, consumeOnce });
    const app = new Koa();
    app.use(integration.route);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hoop/slack/events`;
  }

  const post = (url: string, body: string, headers: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': formType, ...headers }, body });

  before(async () => {
    slack = await startSlackServer();
    store = await createStore('sqlite::memory:', { replicaId: 'r-a' });
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await store.close();
    await slack.close();
  });

  it('the same signed request sent to a second replica is refused 401 as a replay, and runs once', async () => {
    const shared = (key: string, expiresAt: number) => store.consumeOnce(key, expiresAt);
    const [a, b] = [await replica(shared), await replica(shared)];
    const command = slashCommandBody({ userId: 'UAUDITOR', text: 'help', responseUrl: slack.responseUrl('help') });
    const headers = signSlackBody(command, secret);
    const first = await post(a as string, command, headers);
    assert.equal(first.status, 200);
    await slack.waitFor('response_url');
    const replayed = await post(b as string, command, headers);
    assert.equal(replayed.status, 401);
    assert.equal(
      await replayed.text(),
      'hoopgate: slack request not authentic: replayed request (seen by another replica)\n',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(slack.callsTo('response_url').length, 1, 'the command ran once');
  });

  it('a replica that cannot reach the store to check a signature answers 503 and acts on nothing', async () => {
    const before = slack.callsTo('response_url').length;
    const url = await replica(async () => {
      throw new Error('store unreachable');
    });
    const command = slashCommandBody({ userId: 'UAUDITOR', text: 'help', responseUrl: slack.responseUrl('help') });
    const answer = await post(url, command, signSlackBody(command, secret));
    assert.equal(answer.status, 503);
    assert.match(
      await answer.text(),
      /^hoopgate: cannot check the slack request against replays: the store is unavailable/,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(slack.callsTo('response_url').length, before, 'nothing ran');
  });
});
