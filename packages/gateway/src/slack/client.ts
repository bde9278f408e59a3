// The Slack Web API side: the client, the ApprovalNotifier (post, update in place, thread replies) and
// the directory of Slack facts (user groups, profile email) read at click time.
import { LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { LimitedNotifier } from '../approvals/post-limit.js';
import type { SlackConfig } from '../config/types.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { buildApprovalMessage, buildFinalMessage, escapeSlackText } from './blocks.js';

export type SlackClient = webApi.WebClient;

/** The Web API client; `slack.apiUrl` lets tests (and proxies) point it elsewhere. */
export function createSlackClient(
  slack: Pick<SlackConfig, 'botToken' | 'apiUrl'>,
  logger: Logger = silentLogger,
): SlackClient {
  return new webApi.WebClient(slack.botToken, {
    slackApiUrl: slack.apiUrl.endsWith('/') ? slack.apiUrl : `${slack.apiUrl}/`,
    logger: toBoltLogger(logger),
    // A held kubectl call must not wait half an hour on Slack's default retry policy.
    retryConfig: { retries: 2, factor: 2, minTimeout: 200, maxTimeout: 1_000 },
    timeout: 10_000,
  });
}

export function toBoltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const text = (msg: unknown[]): string =>
    msg.map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => logger.debug({ component: 'slack' }, text(msg)),
    info: (...msg: unknown[]) => logger.info({ component: 'slack' }, text(msg)),
    warn: (...msg: unknown[]) => logger.warn({ component: 'slack' }, text(msg)),
    error: (...msg: unknown[]) => logger.error({ component: 'slack' }, text(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

export function createSlackNotifier(deps: {
  client: SlackClient;
  channel: string;
  grantOptionsMs: readonly number[];
}): LimitedNotifier {
  const { client, channel, grantOptionsMs } = deps;
  return {
    async notice(text) {
      await client.chat.postMessage({ channel, text: escapeSlackText(text), unfurl_links: false, unfurl_media: false });
    },
    async posted(record) {
      const message = buildApprovalMessage(record, grantOptionsMs);
      const result = await client.chat.postMessage({
        channel,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
        unfurl_media: false,
      });
      if (typeof result.ts !== 'string' || typeof result.channel !== 'string') return undefined;
      // Slack's answer names the workspace and app that posted: a click must come from the same.
      const posted = result.message as
        { team?: unknown; app_id?: unknown; bot_profile?: { team_id?: unknown; app_id?: unknown } } | undefined;
      const team =
        typeof posted?.team === 'string'
          ? posted.team
          : typeof posted?.bot_profile?.team_id === 'string'
            ? posted.bot_profile.team_id
            : undefined;
      const appId =
        typeof posted?.app_id === 'string'
          ? posted.app_id
          : typeof posted?.bot_profile?.app_id === 'string'
            ? posted.bot_profile.app_id
            : undefined;
      return {
        channel: result.channel,
        ts: result.ts,
        ...(team === undefined ? {} : { team }),
        ...(appId === undefined ? {} : { appId }),
      };
    },
    async finalize(record) {
      if (record.slack === undefined) return;
      const message = buildFinalMessage(record);
      await client.chat.update({
        channel: record.slack.channel,
        ts: record.slack.ts,
        text: message.text,
        blocks: message.blocks,
      });
    },
    async threadReply(record, text) {
      if (record.slack === undefined) return;
      await client.chat.postMessage({
        channel: record.slack.channel,
        thread_ts: record.slack.ts,
        text: escapeSlackText(text),
      });
    },
  };
}

/** Slack facts needed at click time: user-group membership (cached) and profile email. */
export function createSlackDirectory(deps: { client: SlackClient; cacheMs?: number; clock?: () => number }) {
  const { client } = deps;
  const cacheMs = deps.cacheMs ?? 60_000;
  const clock = deps.clock ?? Date.now;
  const groups = new Map<string, { members: ReadonlySet<string>; until: number }>();

  async function members(group: string): Promise<ReadonlySet<string>> {
    const cached = groups.get(group);
    if (cached !== undefined && cached.until > clock()) return cached.members;
    const result = await client.usergroups.users.list({ usergroup: group });
    const set = new Set(result.users ?? []);
    groups.set(group, { members: set, until: clock() + cacheMs });
    return set;
  }

  return {
    /** Throws when Slack cannot answer: callers fail closed. */
    async inAnyGroup(userId: string, groupIds: readonly string[]): Promise<boolean> {
      for (const group of groupIds) if ((await members(group)).has(userId)) return true;
      return false;
    },
    async email(userId: string): Promise<string | undefined> {
      const result = await client.users.info({ user: userId });
      const email = result.user?.profile?.email;
      return typeof email === 'string' && email !== '' ? email : undefined;
    },
  };
}

export type SlackDirectory = ReturnType<typeof createSlackDirectory>;
