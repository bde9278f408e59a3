// The listeners' work: each click or command is handed to the approval service or the /hoop command.
// Who may decide is established here from Slack facts (user lists, user groups, profile email) at click time.
import type { BlockAction, ButtonAction, ViewSubmitAction } from '@slack/bolt';
import type { ApprovalService, DecideRefusal } from '../approvals/service.js';
import { personKeys } from '../approvals/people.js';
import type { ApprovalRecord } from '../approvals/types.js';
import type { ApprovalConfig, SlackConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { actionIds, buildDenyModal, escapeSlackText, type Block } from './blocks.js';
import { createSlackDirectory, type SlackClient, type SlackDirectory } from './client.js';
import { createHoopCommand, type AuditReader, type CommandReply } from './commands.js';

const refusalText: Record<DecideRefusal, (record: ApprovalRecord | undefined) => string> = {
  'not-found': () => 'this approval no longer exists; nothing was changed',
  'not-pending': (r) =>
    `this request is already ${r?.state ?? 'decided'}${r?.decidedBy === undefined ? '' : ` (${escapeSlackText(r.decidedBy)})`}; nothing was changed`,
  'already-voted': () =>
    'you already approved this request (here or through the API/CLI as the same person); it needs another approver (approval.minApprovals)',
  'self-approval': () =>
    'you cannot approve a request made by your own agent (your Slack email matches its token); ask another approver',
  'not-approver': () =>
    'you are not an approver for hoopgate requests (approval.approvers in the gateway config); nothing was changed',
  'invalid-grant': () => 'that grant duration is not offered (approval.grantOptions); nothing was changed',
};

export interface SlackAppDeps {
  slack: SlackConfig;
  approval: ApprovalConfig;
  /** The service, or a getter when it is built after Slack (the gateway needs the notifier first). */
  service: ApprovalService | (() => ApprovalService);
  client: SlackClient;
  audit?: AuditReader;
  logger?: Logger;
  clock?: () => number;
  /** Posts to a `response_url`; injectable for tests. */
  fetch?: typeof fetch;
  /** The store's once-only keys: a signed request is acted on by one replica only (receiver.ts). */
  consumeOnce?: (key: string, expiresAt: number) => Promise<boolean>;
}

export interface Ephemeral {
  responseUrl?: string;
  channel?: string;
  user: string;
}

/** Who may approve (approval.approvers) and audit (slack.auditors, else the approvers), by Slack user and user group. */
function createMembership(deps: { slack: SlackConfig; approval: ApprovalConfig; directory: SlackDirectory }) {
  const { slack, approval, directory } = deps;

  async function isApprover(userId: string): Promise<boolean> {
    if (approval.approvers.slackUsers.includes(userId)) return true;
    return (
      approval.approvers.slackUserGroups.length > 0 && directory.inAnyGroup(userId, approval.approvers.slackUserGroups)
    );
  }

  async function isAuditor(userId: string): Promise<boolean> {
    const explicit = slack.auditors.slackUsers.length + slack.auditors.slackUserGroups.length > 0;
    const who = explicit ? slack.auditors : approval.approvers;
    if (who.slackUsers.includes(userId)) return true;
    return who.slackUserGroups.length > 0 && directory.inAnyGroup(userId, who.slackUserGroups);
  }

  /** Approver and self-approval facts, fail closed when Slack cannot tell. */
  async function facts(
    userId: string,
    needEmail: boolean,
  ): Promise<{ approver: boolean; email?: string } | { error: string }> {
    let approver: boolean;
    try {
      approver = await isApprover(userId);
    } catch {
      return { error: 'could not check your approver membership with Slack; nothing was changed, try again' };
    }
    if (!approver || !needEmail) return { approver };
    try {
      const email = await directory.email(userId);
      return email === undefined ? { approver } : { approver, email };
    } catch {
      return { error: 'could not read your Slack profile to rule out self-approval; nothing was changed, try again' };
    }
  }

  return { isApprover, isAuditor, facts };
}

/** Ephemeral replies: through the click's response_url when there is one, else postEphemeral; failures are logged. */
function createEphemeralReplier(deps: { client: SlackClient; logger: Logger; fetch: typeof fetch }) {
  const { client, logger } = deps;
  const doFetch = deps.fetch;
  return async function reply(to: Ephemeral, message: CommandReply): Promise<void> {
    const body: Record<string, unknown> = { response_type: 'ephemeral', replace_original: false, text: message.text };
    if (message.blocks !== undefined) body['blocks'] = message.blocks;
    try {
      if (to.responseUrl !== undefined) {
        const response = await doFetch(to.responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        if (!response.ok) throw new HoopError('ERR_UPSTREAM_UNREACHABLE', `response_url answered ${response.status}`);
        return;
      }
      if (to.channel !== undefined) {
        await client.chat.postEphemeral({
          channel: to.channel,
          user: to.user,
          text: message.text,
          ...(message.blocks === undefined ? {} : { blocks: message.blocks as Block[] }),
        });
      }
    } catch (error) {
      logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'could not send an ephemeral slack reply',
      );
    }
  };
}

/**
 * A click counts only when its workspace, app, channel and message are those of the stored approval
 * message (issue #12 item 5): a correctly signed click from another workspace, app or message is refused.
 */
function clickOriginProblem(record: ApprovalRecord | null, origin: ClickOrigin): string | undefined {
  if (record === null) return refusalText['not-found'](undefined);
  const posted = record.slack;
  const foreign =
    'this button does not belong to the approval message hoopgate posted (its workspace, app, channel or message differ); nothing was changed';
  if (posted === undefined || posted.team === undefined || posted.appId === undefined) {
    return 'hoopgate does not know where this approval was posted, so no click can count for it; decide with hoopgate approvals or the approvals API';
  }
  if (origin.team !== posted.team || origin.appId !== posted.appId) return foreign;
  if (origin.channel !== undefined && origin.channel !== posted.channel) return foreign;
  if (origin.ts !== undefined && origin.ts !== posted.ts) return foreign;
  if (origin.channel === undefined || origin.ts === undefined) return foreign;
  return undefined;
}

export function createSlackHandlers(deps: SlackAppDeps) {
  const { slack, approval, client } = deps;
  const service = (): ApprovalService => (typeof deps.service === 'function' ? deps.service() : deps.service);
  const logger = deps.logger ?? silentLogger;
  const doFetch = deps.fetch ?? fetch;
  const directory = createSlackDirectory({ client, ...(deps.clock === undefined ? {} : { clock: deps.clock }) });

  const { isApprover, isAuditor, facts } = createMembership({ slack, approval, directory });
  const reply = createEphemeralReplier({ client, logger, fetch: doFetch });
  const clock = deps.clock ?? Date.now;

  async function decide(
    to: Ephemeral,
    user: { id: string; label: string },
    input: { id: string; approve: boolean; grantMs?: number; reason?: string },
  ): Promise<void> {
    const known = await facts(user.id, input.approve);
    if ('error' in known) return reply(to, { text: known.error });
    const result = await service().decide(input.id, {
      approve: input.approve,
      actor: {
        user: user.id,
        label: user.label,
        at: clock(),
        via: 'slack',
        // Slack confirms profile emails, so the email links this user to the same person's OIDC votes.
        keys: personKeys(
          { slackUser: user.id, ...(known.email === undefined ? {} : { verifiedEmail: known.email }) },
          approval.approvers.people,
        ),
      },
      approver: known.approver,
      ...(known.email === undefined ? {} : { email: known.email }),
      ...(input.reason === undefined ? {} : { reason: input.reason }),
      ...(input.grantMs === undefined ? {} : { grantMs: input.grantMs }),
    });
    if (!result.ok) await reply(to, { text: refusalText[result.why](result.record) });
  }

  const hoop = createHoopCommand({
    pending: () => service().pending(),
    grants: () => service().grants(),
    revokeGrant: (id, by) => service().revokeGrant(id, by),
    isApprover,
    isAuditor,
    command: slack.command,
    ...(deps.audit === undefined ? {} : { audit: deps.audit }),
  });

  const originProblem = async (id: string, origin: ClickOrigin) => clickOriginProblem(await service().get(id), origin);

  return {
    isApprover,
    isAuditor,
    reply,
    async approveClick(body: BlockAction<ButtonAction>, action: ButtonAction): Promise<void> {
      const to = ephemeralOf(body);
      const value = action.value ?? '';
      let input: { id: string; approve: true; grantMs?: number };
      if (action.action_id === actionIds.approve) input = { id: value, approve: true };
      else {
        const match = /^([\w-]{1,64}):(\d{1,12})$/.exec(value);
        if (match === null) return reply(to, { text: 'bad grant button; nothing was changed' });
        input = { id: match[1] ?? '', approve: true, grantMs: Number(match[2]) };
      }
      const problem = await originProblem(input.id, originOf(body));
      if (problem !== undefined) return reply(to, { text: problem });
      return decide(to, userOf(body.user), input);
    },
    /** Deny asks for an optional reason first; only approvers get the modal. */
    async denyClick(body: BlockAction<ButtonAction>, action: ButtonAction): Promise<void> {
      const to = ephemeralOf(body);
      const origin = originOf(body);
      const problem = await originProblem(action.value ?? '', origin);
      if (problem !== undefined) return reply(to, { text: problem });
      const known = await facts(body.user.id, false);
      if ('error' in known) return reply(to, { text: known.error });
      if (!known.approver) return reply(to, { text: refusalText['not-approver'](undefined) });
      const metadata = JSON.stringify({
        id: action.value ?? '',
        responseUrl: body.response_url,
        channel: origin.channel,
        ts: origin.ts,
      });
      await client.views.open({ trigger_id: body.trigger_id, view: buildDenyModal(action.value ?? '', metadata) });
    },
    async denySubmit(body: ViewSubmitAction): Promise<void> {
      let meta: { id?: unknown; responseUrl?: unknown; channel?: unknown; ts?: unknown };
      try {
        meta = JSON.parse(body.view.private_metadata) as typeof meta;
      } catch {
        return;
      }
      const to: Ephemeral = { user: body.user.id };
      if (typeof meta.responseUrl === 'string') to.responseUrl = meta.responseUrl;
      if (typeof meta.channel === 'string') to.channel = meta.channel;
      const id = typeof meta.id === 'string' ? meta.id : '';
      // The modal's metadata is ours, but the submission is checked like a click: same workspace and app.
      const problem = await originProblem(id, {
        ...(body.team?.id === undefined ? {} : { team: body.team.id }),
        ...(body.api_app_id === undefined ? {} : { appId: body.api_app_id }),
        ...(typeof meta.channel === 'string' ? { channel: meta.channel } : {}),
        ...(typeof meta.ts === 'string' ? { ts: meta.ts } : {}),
      });
      if (problem !== undefined) return reply(to, { text: problem });
      const reason = body.view.state.values['reason']?.['value']?.value ?? undefined;
      await decide(to, userOf(body.user), {
        id,
        approve: false,
        ...(reason === undefined || reason === null ? {} : { reason }),
      });
    },
    async command(userId: string, text: string, to: Ephemeral): Promise<void> {
      await reply(to, await hoop.run(userId, text));
    },
    async more(body: BlockAction<ButtonAction>, action: ButtonAction): Promise<void> {
      await reply(ephemeralOf(body), await hoop.more(body.user.id, action.value ?? ''));
    },
  };
}

interface ClickOrigin {
  team?: string;
  appId?: string;
  channel?: string;
  ts?: string;
}

/** Where a block action says it comes from: workspace, app, channel and the message holding the button. */
function originOf(body: BlockAction): ClickOrigin {
  const container = body.container as { channel_id?: unknown; message_ts?: unknown } | undefined;
  // Both places must agree when both are given; a disagreement matches no stored message.
  const agree = (a: unknown, b: unknown): string | undefined =>
    typeof a === 'string' && typeof b === 'string'
      ? a === b
        ? a
        : '\u0000mismatch'
      : typeof a === 'string'
        ? a
        : typeof b === 'string'
          ? b
          : undefined;
  const channel = agree(body.channel?.id, container?.channel_id);
  const ts = agree(container?.message_ts, body.message?.ts);
  return {
    ...(body.team?.id === undefined ? {} : { team: body.team.id }),
    ...(typeof body.api_app_id === 'string' ? { appId: body.api_app_id } : {}),
    ...(channel === undefined ? {} : { channel }),
    ...(typeof ts === 'string' ? { ts } : {}),
  };
}

function userOf(user: { id: string; username?: string; name?: string }): { id: string; label: string } {
  return { id: user.id, label: user.username ?? user.name ?? user.id };
}

function ephemeralOf(body: BlockAction): Ephemeral {
  const to: Ephemeral = { user: body.user.id, responseUrl: body.response_url };
  if (body.channel?.id !== undefined) to.channel = body.channel.id;
  return to;
}
