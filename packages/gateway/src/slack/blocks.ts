// Pure Block Kit builders for approval messages, their final state and /hoop replies. Every piece of
// user-controlled text goes through escapeSlackText(): no mentions, links or broadcasts can be injected.
// https://docs.slack.dev/messaging/formatting-message-text#escaping
import type { SessionSummaryView, TimelineEntryView } from '../audit/reader.js';
import type { types as SlackTypes } from '@slack/bolt';
import { grantIdOf, type ApprovalGrant, type ApprovalRecord, type ApprovalVote } from '../approvals/types.js';
import { formatDuration } from '../config/values.js';

export type Block = SlackTypes.KnownBlock;
export type ButtonElement = SlackTypes.Button;

export const actionIds = {
  approve: 'approval.approve',
  deny: 'approval.deny',
  /** One per grant option: `approval.grant` (and `approval.grant.N` for more, ids must be unique in a block). */
  grant: 'approval.grant',
  denyModal: 'approval.deny_reason',
  replayMore: 'audit.replay_more',
} as const;

export const grantActionPattern = /^approval\.grant(\.\d+)?$/;

const zeroWidth = '\u200b';

/** Slack's three control characters, plus broadcast words and backtick fences that could break out of code. */
export function escapeSlackText(text: string): string {
  return (
    text
      // Control characters (other than newline and tab) have no business in a message.
      .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '') // eslint-disable-line no-control-regex -- stripping control characters is the point
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      // `@here` etc. are only special with link_names/parse:full, but neutralise them anyway.
      .replace(/@(channel|here|everyone)\b/gi, `@${zeroWidth}$1`)
      .replace(/```/g, `\`${zeroWidth}\`${zeroWidth}\``)
  );
}

/**
 * Text an agent wrote (its Kubectl-Command, its X-Hoop-Reason): escaped like any text, then shown only
 * inside a code block, where Slack applies no formatting (`*` `_` `~`). Slack has no escape for
 * those characters, so backticks — the one way out of a code block — become a look-alike (ˋ), and
 * `://` gets a zero-width space so no link is made of it.
 */
export function escapeAgentText(text: string): string {
  return escapeSlackText(text).replace(/`/g, '\u02cb').replace(/:\/\//g, `:${zeroWidth}//`);
}

/** A code block of agent-supplied text: inert whatever it holds. */
function claimed(text: string, max: number): string {
  return `\`\`\`${escapeAgentText(truncate(text, max))}\`\`\``;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** Plain text fields are not parsed for mentions, but the length limits still apply. */
function plain(text: string, max = 150): SlackTypes.PlainTextElement {
  return { type: 'plain_text', text: truncate(text, max), emoji: true };
}

function mrkdwn(text: string): SlackTypes.MrkdwnElement {
  return { type: 'mrkdwn', text: truncate(text, 3000) };
}

function code(text: string, max: number): string {
  return `\`\`\`${escapeSlackText(truncate(text, max))}\`\`\``;
}

/** `<!date^…>` renders in the reader's time zone; the fallback is UTC. */
export function slackDate(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `<!date^${seconds}^{date_short_pretty} {time_secs}|${new Date(ms).toISOString()}>`;
}

export function describeTarget(request: ApprovalRecord['request']): string {
  const verb = request.authorizedVerb ?? request.verb;
  const resource = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`;
  const group = request.apiGroup === '' ? '' : `.${request.apiGroup}`;
  const name = request.name === '' ? '' : `/${request.name}`;
  const ns = request.namespace === '' ? '' : ` -n ${request.namespace}`;
  return request.resource === '' ? `${verb} ${request.path}` : `${verb} ${resource}${group}${name}${ns}`;
}

function isSlackUserId(user: string): boolean {
  return /^[UW][A-Z0-9]{2,}$/.test(user);
}

export function formatVoter(vote: ApprovalVote): string {
  return vote.via === 'slack' && isSlackUserId(vote.user) ? `<@${vote.user}>` : escapeSlackText(vote.label);
}

function detailBlocks(record: ApprovalRecord): Block[] {
  const target = `${describeTarget(record.request)} on ${record.request.cluster}`;
  const groups = record.groups.length === 0 ? '(none)' : record.groups.map(escapeSlackText).join(', ');
  const blocks: Block[] = [
    {
      type: 'section',
      fields: [
        mrkdwn(
          `*Who*\n${escapeSlackText(record.identity)} (subject \`${escapeSlackText(truncate(record.subject, 200))}\`)`,
        ),
        mrkdwn(`*Groups*\n${truncate(groups, 1000)}`),
        // Names come from the agent's path: inline code, with no backtick to break out of it.
        mrkdwn(`*What*\n\`${escapeAgentText(truncate(target, 500))}\``),
        mrkdwn(`*Runs as*\n\`${escapeSlackText(record.serviceAccount)}\``),
      ],
    },
  ];
  // The agent's own words: marked as its claim, never formatted, linked or mentioned.
  if (record.kubectlCommand !== undefined && record.kubectlCommand !== '') {
    blocks.push({
      type: 'section',
      text: mrkdwn(
        `*Command* _(claimed by the agent: its Kubectl-Command header, unverified)_\n${claimed(record.kubectlCommand, 1000)}`,
      ),
    });
  }
  const why =
    record.reason === undefined || record.reason.trim() === ''
      ? '_no reason given (X-Hoop-Reason)_'
      : `_claimed by the agent (X-Hoop-Reason):_\n${claimed(record.reason, 1000)}`;
  const rule =
    record.rule === undefined
      ? escapeSlackText(record.heldBecause)
      : `${escapeSlackText(record.heldBecause)} — \`${escapeSlackText(record.rule)}\``;
  blocks.push({ type: 'section', text: mrkdwn(`*Why*\n${why}\n*Held by* ${rule}`) });
  if (record.bodySummary !== undefined && record.bodySummary !== '') {
    blocks.push({ type: 'section', text: mrkdwn(`*Body* (masked)\n${code(record.bodySummary, 1500)}`) });
  }
  return blocks;
}

function fallbackText(record: ApprovalRecord, prefix: string): string {
  return escapeSlackText(
    truncate(
      `${prefix}: ${record.identity} wants to ${describeTarget(record.request)} on ${record.request.cluster}`,
      300,
    ),
  );
}

const context = (text: string): Block => ({ type: 'context', elements: [mrkdwn(text)] });

/** The interactive message posted when a request is held. */
export function buildApprovalMessage(
  record: ApprovalRecord,
  grantOptionsMs: readonly number[],
): { text: string; blocks: Block[] } {
  const grantOptions = grantOptionsMs.filter((ms) => ms > 0).slice(0, 3);
  const buttons: ButtonElement[] = [
    { type: 'button', action_id: actionIds.approve, text: plain('Approve'), style: 'primary', value: record.id },
    { type: 'button', action_id: actionIds.deny, text: plain('Deny'), style: 'danger', value: record.id },
    ...grantOptions.map((ms, i): ButtonElement => ({
      type: 'button',
      action_id: i === 0 ? actionIds.grant : `${actionIds.grant}.${i}`,
      // Button text holds 75 characters: the scope in short, the message says it in full.
      text: plain(`Approve for ${formatDuration(ms)}: ${record.subject} only, this call`, 75),
      value: `${record.id}:${ms}`,
    })),
  ];
  const scope: Block[] =
    grantOptions.length === 0
      ? []
      : [
          {
            type: 'context',
            elements: [
              mrkdwn(
                `*Approve for …* (grant \`${escapeSlackText(grantIdOf(record.id))}\`): ${scopeOf(record)}, until it expires or is revoked (\`/hoop revoke-grant\`)`,
              ),
            ],
          },
        ];
  return {
    text: fallbackText(record, 'Approval needed'),
    blocks: [
      { type: 'header', text: plain(`Approval needed: ${describeTarget(record.request)}`) },
      ...detailBlocks(record),
      context(`Expires ${slackDate(record.expiresAt)} · approval \`${escapeSlackText(record.id)}\``),
      // Ticket mode (issue #16): nobody is held; approving lets the agent's next identical call run once.
      ...(record.ticket === true
        ? [context('*Ticket:* the agent is not waiting; once approved, its next identical call runs (once).')]
        : []),
      ...scope,
      { type: 'actions', block_id: 'approval.actions', elements: buttons },
    ],
  };
}

const outcomeTitles: Record<Exclude<ApprovalRecord['state'], 'pending'>, string> = {
  approved: '✅ Approved',
  denied: '⛔ Denied',
  expired: '⌛ Expired',
  cancelled: '🚫 Cancelled',
};

/** The message after the decision: outcome, who, when; no buttons. */
export function buildFinalMessage(record: ApprovalRecord): { text: string; blocks: Block[] } {
  const title = record.state === 'pending' ? 'Approval needed' : outcomeTitles[record.state];
  const when = record.decidedAt === undefined ? '' : ` at ${slackDate(record.decidedAt)}`;
  let who: string;
  switch (record.state) {
    case 'approved':
      who = `approved by ${record.votes.length === 0 ? escapeSlackText(record.decidedBy ?? 'unknown') : record.votes.map(formatVoter).join(', ')}`;
      if (record.grantMs !== undefined)
        who += ` for ${formatDuration(record.grantMs)} — grant \`${escapeSlackText(grantIdOf(record.id))}\`: ${scopeOf(record)}`;
      break;
    case 'denied':
      who = `denied by ${escapeSlackText(record.decidedBy ?? 'unknown')}`;
      break;
    case 'expired':
      who = 'no decision in time';
      break;
    case 'cancelled':
      who = 'cancelled';
      break;
    case 'pending':
      who = 'pending';
      break;
  }
  const lines = [`*${title}* — ${who}${when}`];
  if (record.decisionReason !== undefined && record.decisionReason !== '')
    lines.push(`> ${escapeSlackText(truncate(record.decisionReason, 1000)).replace(/\n/g, '\n> ')}`);
  return {
    text: fallbackText(record, title.replace(/^\S+ /, '')),
    blocks: [
      { type: 'header', text: plain(`${title}: ${describeTarget(record.request)}`) },
      { type: 'section', text: mrkdwn(lines.join('\n')) },
      ...detailBlocks(record),
      {
        type: 'context',
        elements: [mrkdwn(`Requested ${slackDate(record.createdAt)} · approval \`${escapeSlackText(record.id)}\``)],
      },
    ],
  };
}

/** The modal a Deny click opens: an optional reason. */
export function buildDenyModal(approvalId: string, privateMetadata: string): SlackTypes.View {
  return {
    type: 'modal',
    callback_id: actionIds.denyModal,
    private_metadata: privateMetadata,
    title: plain('Deny request', 24),
    submit: plain('Deny', 24),
    close: plain('Cancel', 24),
    blocks: [
      { type: 'section', text: mrkdwn(`Deny approval \`${escapeSlackText(approvalId)}\`?`) },
      {
        type: 'input',
        block_id: 'reason',
        optional: true,
        label: plain('Reason (shown in the channel and to the agent)'),
        element: { type: 'plain_text_input', action_id: 'value', multiline: true, max_length: 500 },
      },
    ],
  };
}

/** One audited call as /hoop replay shows it: the audit store's own read model (audit/reader.ts). */
export type TimelineEntry = TimelineEntryView;

function describeEntry(e: TimelineEntry): string {
  if (e.resource === '') return e.path ?? '';
  return `${e.resource}${e.name === undefined || e.name === '' ? '' : `/${e.name}`}${e.namespace === undefined || e.namespace === '' ? '' : ` -n ${e.namespace}`}`;
}

export type SessionSummary = SessionSummaryView;

export function buildTimelineBlocks(
  sessionId: string,
  entries: readonly TimelineEntry[],
  offset: number,
  pageSize: number,
): Block[] {
  const page = entries.slice(offset, offset + pageSize);
  const blocks: Block[] = [
    {
      type: 'section',
      text: mrkdwn(
        `*Session* \`${escapeSlackText(sessionId)}\` — ${entries.length} call(s), ${offset + 1}–${offset + page.length}`,
      ),
    },
  ];
  if (page.length === 0)
    return [{ type: 'section', text: mrkdwn(`No calls recorded for session \`${escapeSlackText(sessionId)}\`.`) }];
  const lines = page.map((e) => {
    const status = e.status === undefined ? '–' : String(e.status);
    const by = e.approver === undefined ? '' : ` · approved by ${escapeSlackText(e.approver)}`;
    const line = `\`${new Date(e.at).toISOString()}\` *${escapeSlackText(e.verb)}* ${escapeSlackText(truncate(describeEntry(e), 200))} → ${escapeSlackText(e.decision)} (${status})${by}`;
    if (e.transcript === undefined) return line;
    // Backticks would end the code block early; the excerpt is escaped like any other text.
    const excerpt = escapeSlackText(truncate(e.transcript.excerpt, 400)).replace(/`/g, "'");
    return `${line}\n\`\`\`${excerpt}\`\`\`\n_terminal: ${e.transcript.frames} frames, ${e.transcript.bytes} bytes — play it all with \`hoopgate replay ${escapeSlackText(sessionId)}\`_`;
  });
  // Sections hold at most 3000 characters: split the page over several.
  let chunk: string[] = [];
  for (const line of lines) {
    if ([...chunk, line].join('\n').length > 2900) {
      blocks.push({ type: 'section', text: mrkdwn(chunk.join('\n')) });
      chunk = [];
    }
    chunk.push(line);
  }
  if (chunk.length > 0) blocks.push({ type: 'section', text: mrkdwn(chunk.join('\n')) });
  const next = offset + pageSize;
  if (next < entries.length) {
    blocks.push({
      type: 'actions',
      block_id: 'audit.replay',
      elements: [
        {
          type: 'button',
          action_id: actionIds.replayMore,
          text: plain(`More (${entries.length - next} left)`),
          value: JSON.stringify({ s: sessionId, o: next }),
        },
      ],
    });
  }
  return blocks;
}

export function buildSessionsBlocks(identity: string | undefined, sessions: readonly SessionSummary[]): Block[] {
  const title = identity === undefined ? '*Recent sessions*' : `*Recent sessions of* ${escapeSlackText(identity)}`;
  if (sessions.length === 0) return [{ type: 'section', text: mrkdwn(`${title}\nnone`) }];
  const lines = sessions.slice(0, 30).map((s) => {
    const refused = s.refused === undefined || s.refused === 0 ? '' : `, ${s.refused} refused`;
    return `\`${escapeSlackText(s.sessionId)}\` ${escapeSlackText(s.identity)} · ${new Date(s.startedAt).toISOString()} · ${s.calls} call(s)${refused}`;
  });
  return [{ type: 'section', text: mrkdwn(`${title}\n${lines.join('\n')}`) }];
}

export function buildPendingBlocks(records: readonly ApprovalRecord[]): Block[] {
  if (records.length === 0) return [{ type: 'section', text: mrkdwn('*Pending approvals*\nnone') }];
  const lines = records
    .slice(0, 30)
    .map(
      (r) =>
        `\`${escapeSlackText(r.id)}\` ${escapeSlackText(r.identity)}: \`${escapeSlackText(truncate(describeTarget(r.request), 200))}\` on ${escapeSlackText(r.request.cluster)} · expires ${slackDate(r.expiresAt)} · ${r.votes.length} vote(s)`,
    );
  return [{ type: 'section', text: mrkdwn(`*Pending approvals*\n${lines.join('\n')}`) }];
}

/** A grant's exact scope, in words: who may repeat what, where, as whom. */
export function grantScope(
  g: Pick<ApprovalGrant, 'subject' | 'issuer' | 'cluster' | 'serviceAccount'> & { request: ApprovalRecord['request'] },
): string {
  return `only subject \`${escapeAgentText(truncate(g.subject, 200))}\` (issuer ${escapeSlackText(g.issuer === '' ? 'unknown' : g.issuer)}) may repeat \`${escapeAgentText(truncate(describeTarget(g.request), 300))}\` on ${escapeSlackText(g.cluster)} (any body), as \`${escapeSlackText(g.serviceAccount)}\`, without asking`;
}

function scopeOf(record: ApprovalRecord): string {
  return grantScope({
    subject: record.subject,
    issuer: record.issuer ?? '',
    cluster: record.request.cluster,
    serviceAccount: record.serviceAccount,
    request: record.request,
  });
}

/** `/hoop grants`: each active grant with its scope and expiry. */
export function buildGrantsBlocks(grants: readonly ApprovalGrant[]): Block[] {
  if (grants.length === 0) return [{ type: 'section', text: mrkdwn('*Active grants*\nnone') }];
  const lines = grants.slice(0, 30).map((g) => {
    const request = {
      cluster: g.cluster,
      method: '',
      path: '',
      verb: g.verb,
      apiGroup: g.apiGroup,
      resource: g.resource,
      subresource: g.subresource,
      namespace: g.namespace,
      name: g.name,
    };
    return `\`${escapeSlackText(g.id)}\` ${escapeSlackText(g.identity)}: ${grantScope({ ...g, request })} · until ${slackDate(g.expiresAt)} · granted by ${escapeSlackText(g.grantedBy)}`;
  });
  return [
    {
      type: 'section',
      text: mrkdwn(truncate(`*Active grants* (revoke: \`/hoop revoke-grant ID\`)\n${lines.join('\n')}`, 3000)),
    },
  ];
}

/** One identity's line of the least-privilege digest and of `/hoop privileges` (issue #8). */
export interface PrivilegesSummary {
  identity: string;
  serviceAccount: string;
  calls: number;
  refused: number;
  approved: number;
  /** Granted and never used in the window; undefined when the API server could not be asked. */
  overGrant?: number;
  /** Up to a few over-granted permissions, described (`list configmaps -n staging`). */
  overGrantSample?: readonly string[];
  overGrantError?: string;
  since: number;
  until: number;
}

/** `hoopgate audit least-privilege --config FILE --identity NAME --since 7d --format table`. */
export function privilegesCommandLine(identity: string, sinceText: string, configPath = 'FILE'): string {
  return `hoopgate audit least-privilege --config ${configPath} --identity ${identity} --since ${sinceText} --format table`;
}

export function privilegesLine(s: PrivilegesSummary, sinceText: string, configPath?: string): string {
  const counts = `${s.calls} call(s), ${s.refused} refused, ${s.approved} approved`;
  let over: string;
  if (s.overGrant === undefined)
    over = `over-grant unknown (${escapeSlackText(truncate(s.overGrantError ?? 'the API server was not asked', 200))})`;
  else if (s.overGrant === 0) over = 'no over-grant';
  else {
    const sample = (s.overGrantSample ?? [])
      .slice(0, 3)
      .map((p) => escapeSlackText(p))
      .join(', ');
    over = `over-grant: ${s.overGrant} permission(s) granted and never used${sample === '' ? '' : ` (${sample}${s.overGrant > 3 ? ', …' : ''})`}`;
  }
  return `*${escapeSlackText(s.identity)}* (\`${escapeSlackText(s.serviceAccount)}\`): ${counts} · ${over} · \`${escapeSlackText(privilegesCommandLine(s.identity, sinceText, configPath))}\``;
}

/** The weekly digest and the `/hoop privileges` reply: one line per identity. */
export function buildPrivilegesBlocks(
  title: string,
  summaries: readonly PrivilegesSummary[],
  sinceText: string,
  configPath?: string,
): Block[] {
  const first = summaries[0];
  const window =
    first === undefined ? '' : ` — ${new Date(first.since).toISOString()} → ${new Date(first.until).toISOString()}`;
  const blocks: Block[] = [{ type: 'section', text: mrkdwn(`*${escapeSlackText(title)}*${window}`) }];
  if (summaries.length === 0) return [...blocks, { type: 'section', text: mrkdwn('no identities') }];
  // Sections hold at most 3000 characters: split the lines over several.
  let chunk: string[] = [];
  for (const line of summaries.slice(0, 45).map((s) => privilegesLine(s, sinceText, configPath))) {
    if (chunk.length > 0 && [...chunk, line].join('\n').length > 2900) {
      blocks.push({ type: 'section', text: mrkdwn(chunk.join('\n')) });
      chunk = [];
    }
    chunk.push(line);
  }
  if (chunk.length > 0) blocks.push({ type: 'section', text: mrkdwn(chunk.join('\n')) });
  return blocks;
}
