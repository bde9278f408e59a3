// Builds and signs Slack requests exactly as Slack does: v0 HMAC-SHA256 over `v0:{ts}:{raw body}`,
// sent as X-Slack-Signature / X-Slack-Request-Timestamp; plus interactivity and slash-command bodies.
import { createHmac } from 'node:crypto';

export function signSlackBody(
  body: string,
  signingSecret: string,
  timestampSec = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const signature = `v0=${createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
  return { 'x-slack-signature': signature, 'x-slack-request-timestamp': String(timestampSec) };
}

export const formType = 'application/x-www-form-urlencoded';

export function blockActionsBody(input: {
  userId: string;
  userName?: string;
  actionId: string;
  value: string;
  responseUrl: string;
  channel?: string;
  messageTs?: string;
  triggerId?: string;
  /** Another workspace or app than the one that posted (default T1, A1). */
  teamId?: string;
  appId?: string;
}): string {
  const channel = input.channel ?? 'C0APPROVALS';
  const team = input.teamId ?? 'T1';
  const payload = {
    type: 'block_actions',
    team: { id: team, domain: 'example' },
    user: {
      id: input.userId,
      username: input.userName ?? input.userId.toLowerCase(),
      name: input.userName ?? input.userId.toLowerCase(),
      team_id: team,
    },
    api_app_id: input.appId ?? 'A1',
    token: 'legacy-verification-token',
    container: { type: 'message', message_ts: input.messageTs ?? '1.000001', channel_id: channel, is_ephemeral: false },
    trigger_id: input.triggerId ?? '123.456.abc',
    channel: { id: channel, name: 'approvals' },
    message: { type: 'message', ts: input.messageTs ?? '1.000001', text: 'Approval needed' },
    response_url: input.responseUrl,
    actions: [
      {
        type: 'button',
        action_id: input.actionId,
        block_id: 'approval.actions',
        value: input.value,
        text: { type: 'plain_text', text: 'x' },
        action_ts: '1.2',
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export function viewSubmissionBody(input: {
  userId: string;
  callbackId: string;
  privateMetadata: string;
  values: Record<string, Record<string, { type: string; value: string | null }>>;
  teamId?: string;
  appId?: string;
}): string {
  const team = input.teamId ?? 'T1';
  const payload = {
    type: 'view_submission',
    team: { id: team, domain: 'example' },
    user: { id: input.userId, username: input.userId.toLowerCase(), name: input.userId.toLowerCase(), team_id: team },
    api_app_id: input.appId ?? 'A1',
    token: 'legacy-verification-token',
    trigger_id: '123.456.def',
    view: {
      id: 'V1',
      team_id: 'T1',
      type: 'modal',
      callback_id: input.callbackId,
      private_metadata: input.privateMetadata,
      state: { values: input.values },
      hash: 'h',
      blocks: [],
      title: { type: 'plain_text', text: 'Deny request' },
    },
    response_urls: [],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export function slashCommandBody(input: {
  userId: string;
  command?: string;
  text: string;
  responseUrl: string;
  channelId?: string;
}): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T1',
    team_domain: 'example',
    channel_id: input.channelId ?? 'C0APPROVALS',
    channel_name: 'approvals',
    user_id: input.userId,
    user_name: input.userId.toLowerCase(),
    command: input.command ?? '/hoop',
    text: input.text,
    api_app_id: 'A1',
    is_enterprise_install: 'false',
    response_url: input.responseUrl,
    trigger_id: '123.456.ghi',
  }).toString();
}

/** POSTs a body signed with `signingSecret` (override headers to forge). */
export async function postSigned(
  url: string,
  body: string,
  signingSecret: string,
  options: { timestampSec?: number; headers?: Record<string, string>; contentType?: string } = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': options.contentType ?? formType,
      ...signSlackBody(body, signingSecret, options.timestampSec),
      ...options.headers,
    },
    body,
  });
  return { status: response.status, text: await response.text() };
}
