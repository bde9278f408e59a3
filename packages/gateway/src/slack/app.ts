// Slack wiring: the Bolt app whose listeners ack() first and hand the click to the handlers
// (handlers.ts), and the integration the composition root binds the approval service to.
import { App, type BlockAction, type ButtonAction, type ViewSubmitAction } from '@slack/bolt';
import type Koa from 'koa';
import type { ApprovalService } from '../approvals/service.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { actionIds, grantActionPattern } from './blocks.js';
import { createSlackClient, createSlackNotifier, toBoltLogger, type SlackClient } from './client.js';
import { createSlackHandlers, type SlackAppDeps } from './handlers.js';
import { KoaReceiver, createSlackRoute } from './receiver.js';

export {
  createSlackClient,
  createSlackDirectory,
  createSlackNotifier,
  type SlackClient,
  type SlackDirectory,
} from './client.js';
export { createSlackHandlers, type SlackAppDeps } from './handlers.js';

export interface SlackApp {
  app: App;
  /** Koa middleware for POST /hoop/slack/events; absent in Socket Mode. */
  route?: Koa.Middleware;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSlackApp(deps: SlackAppDeps): SlackApp {
  const { slack } = deps;
  const logger = deps.logger ?? silentLogger;
  const handlers = createSlackHandlers(deps);
  const boltLogger = toBoltLogger(logger);
  // A fixed bot token; no auth.test round trip (nothing here depends on the bot's own user id).
  const authorize = async () => ({ botToken: slack.botToken });
  const clientOptions = { slackApiUrl: slack.apiUrl.endsWith('/') ? slack.apiUrl : `${slack.apiUrl}/` };
  const socketMode = slack.appToken !== undefined && slack.appToken !== '';
  const receiver = socketMode
    ? undefined
    : new KoaReceiver({
        signingSecret: slack.signingSecret,
        logger,
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        ...(deps.consumeOnce === undefined ? {} : { consumeOnce: deps.consumeOnce }),
      });
  const app = socketMode
    ? new App({
        socketMode: true,
        ...(slack.appToken === undefined ? {} : { appToken: slack.appToken }),
        authorize,
        clientOptions,
        logger: boltLogger,
        ignoreSelf: false,
      })
    : new App({
        ...(receiver === undefined ? {} : { receiver }),
        authorize,
        clientOptions,
        logger: boltLogger,
        ignoreSelf: false,
      });

  const guard = (what: string, run: () => Promise<void>) =>
    run().catch((error: unknown) =>
      logger.error({ err: error instanceof Error ? error.message : String(error), what }, 'slack handler failed'),
    );

  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: actionIds.approve },
    async ({ ack, body, action }) => {
      await ack();
      await guard('approve', () => handlers.approveClick(body, action));
    },
  );
  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: grantActionPattern },
    async ({ ack, body, action }) => {
      await ack();
      await guard('grant', () => handlers.approveClick(body, action));
    },
  );
  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: actionIds.deny },
    async ({ ack, body, action }) => {
      await ack();
      await guard('deny', () => handlers.denyClick(body, action));
    },
  );
  app.view<ViewSubmitAction>({ type: 'view_submission', callback_id: actionIds.denyModal }, async ({ ack, body }) => {
    await ack();
    await guard('deny-reason', () => handlers.denySubmit(body));
  });
  app.action<BlockAction<ButtonAction>>(
    { type: 'block_actions', action_id: actionIds.replayMore },
    async ({ ack, body, action }) => {
      await ack();
      await guard('replay-more', () => handlers.more(body, action));
    },
  );
  app.command(slack.command, async ({ ack, command }) => {
    await ack();
    await guard('command', () =>
      handlers.command(command.user_id, command.text, {
        user: command.user_id,
        responseUrl: command.response_url,
        channel: command.channel_id,
      }),
    );
  });
  app.error(async (error) => {
    logger.error({ err: error.message }, 'slack app error');
  });

  const slackApp: SlackApp = {
    app,
    async start() {
      if (socketMode) await app.start();
    },
    async stop() {
      if (socketMode) await app.stop();
    },
  };
  if (receiver !== undefined) slackApp.route = createSlackRoute({ receiver });
  return slackApp;
}

/**
 * Slack for the composition root: the notifier is needed to build the approval service, and the
 * listeners need the service, so it is bound afterwards with bindService().
 */
export function createSlackIntegration(deps: Omit<SlackAppDeps, 'service' | 'client'> & { client?: SlackClient }) {
  const logger = deps.logger ?? silentLogger;
  const client = deps.client ?? createSlackClient(deps.slack, logger);
  let bound: ApprovalService | undefined;
  const slackApp = createSlackApp({
    ...deps,
    client,
    service: () => {
      if (bound === undefined)
        throw new HoopError(
          'ERR_SHUTTING_DOWN',
          'slack: the approval service is not bound yet (the gateway is starting): try again in a moment',
        );
      return bound;
    },
  });
  const socketModeRoute: Koa.Middleware = async (ctx) => {
    ctx.status = 404;
    ctx.type = 'text/plain';
    ctx.body = 'hoopgate: slack uses Socket Mode (slack.appToken is set); this Request URL is off\n';
  };
  return {
    notifier: createSlackNotifier({
      client,
      channel: deps.slack.channel,
      grantOptionsMs: deps.approval.grantOptionsMs,
    }),
    route: slackApp.route ?? socketModeRoute,
    app: slackApp.app,
    bindService(service: ApprovalService): void {
      bound = service;
    },
    /** Connects Socket Mode when configured; nothing to do over HTTP. */
    start: () => slackApp.start(),
    close: () => slackApp.stop(),
  };
}
