// The `/hoop` slash command for auditors: replay a session, list sessions, pending approvals, or each
// identity's used/refused/approved calls and over-grant (`privileges`, issue #8).
// Pure of Bolt: takes the caller's Slack id and the text, returns the (ephemeral) reply.
import type { AuditReader as StoreAuditReader } from '../audit/reader.js';
import type { ApprovalGrant, ApprovalRecord } from '../approvals/types.js';
import {
  buildGrantsBlocks,
  buildPendingBlocks,
  buildPrivilegesBlocks,
  buildSessionsBlocks,
  buildTimelineBlocks,
  escapeSlackText,
  type Block,
  type PrivilegesSummary,
} from './blocks.js';

export type { PrivilegesSummary, SessionSummary, TimelineEntry } from './blocks.js';

/** Each identity's privileges over a window (`sinceText`: `7d`), from the audit store and the API server. */
export interface PrivilegesView {
  sinceText: string;
  summaries: PrivilegesSummary[];
}

/** Read side of the audit store, as /hoop needs it: audit/reader.ts, plus least-privilege summaries. */
export interface AuditReader extends StoreAuditReader {
  /** Absent: this gateway has no least-privilege summaries. */
  privileges?(identity?: string): Promise<PrivilegesView>;
}

export interface CommandReply {
  text: string;
  blocks?: Block[];
}

export interface HoopCommandDeps {
  audit?: AuditReader;
  pending: () => Promise<ApprovalRecord[]>;
  /** Active grants (`/hoop grants`) and revocation (`/hoop revoke-grant ID`, approvers only). */
  grants?: () => Promise<ApprovalGrant[]>;
  revokeGrant?: (id: string, by: string) => Promise<ApprovalGrant | null>;
  isApprover?: (userId: string) => Promise<boolean>;
  /** Membership check (slack.auditors, default the approvers); throws when Slack cannot tell. */
  isAuditor: (userId: string) => Promise<boolean>;
  command?: string;
  pageSize?: number;
}

export interface HoopCommand {
  run(userId: string, text: string): Promise<CommandReply>;
  /** The "more" button of a long timeline: value is `{"s": sessionId, "o": offset}`. */
  more(userId: string, value: string): Promise<CommandReply>;
}

export function createHoopCommand(deps: HoopCommandDeps): HoopCommand {
  const command = deps.command ?? '/hoop';
  const pageSize = deps.pageSize ?? 20;

  const help: CommandReply = {
    text: [
      `*${command} replay SESSION_ID* — the calls of one session: time, verb, resource, decision, status, approver`,
      `*${command} sessions [IDENTITY]* — recent sessions`,
      `*${command} pending* — approvals waiting for a decision`,
      `*${command} grants* — active "Approve for …" grants: who may repeat what, until when`,
      `*${command} revoke-grant GRANT_ID* — end a grant now (approvers)`,
      `*${command} privileges [IDENTITY]* — calls, refusals, approvals and over-grant of each identity`,
      `*${command} help* — this text`,
    ].join('\n'),
  };

  async function allowed(userId: string): Promise<CommandReply | undefined> {
    try {
      if (await deps.isAuditor(userId)) return undefined;
      return {
        text: `you are not an auditor for hoopgate (slack.auditors in the gateway config); ${command} is refused`,
      };
    } catch {
      return { text: 'could not check your auditor membership with Slack; try again' };
    }
  }

  async function replay(sessionId: string, offset: number): Promise<CommandReply> {
    if (deps.audit === undefined) return { text: 'no audit store is connected to this gateway' };
    const entries = await deps.audit.sessionTimeline(sessionId);
    if (entries.length === 0) return { text: `no calls recorded for session \`${escapeSlackText(sessionId)}\`` };
    return {
      text: `session ${escapeSlackText(sessionId)}: ${entries.length} call(s)`,
      blocks: buildTimelineBlocks(sessionId, entries, offset, pageSize),
    };
  }

  return {
    async run(userId, text) {
      const refused = await allowed(userId);
      if (refused !== undefined) return refused;
      const [sub = 'help', ...args] = text
        .trim()
        .split(/\s+/)
        .filter((w) => w !== '');
      switch (sub) {
        case 'replay': {
          const [sessionId] = args;
          if (sessionId === undefined || !/^[\w.:-]{1,200}$/.test(sessionId))
            return { text: `usage: ${command} replay SESSION_ID` };
          return replay(sessionId, 0);
        }
        case 'sessions': {
          if (deps.audit === undefined) return { text: 'no audit store is connected to this gateway' };
          const [identity] = args;
          const sessions = await deps.audit.listSessions(identity);
          return { text: `${sessions.length} session(s)`, blocks: buildSessionsBlocks(identity, sessions) };
        }
        case 'pending': {
          const records = await deps.pending();
          return { text: `${records.length} pending approval(s)`, blocks: buildPendingBlocks(records) };
        }
        case 'grants': {
          if (deps.grants === undefined) return { text: 'grants are not available on this gateway' };
          const grants = await deps.grants();
          return { text: `${grants.length} active grant(s)`, blocks: buildGrantsBlocks(grants) };
        }
        case 'revoke-grant':
          return revokeGrantReply(deps, command, userId, args);
        case 'privileges':
          return privilegesReply(deps, command, args);
        case 'help':
          return help;
        default:
          return { text: `unknown subcommand "${escapeSlackText(sub)}"\n${help.text}` };
      }
    },
    async more(userId, value) {
      const refused = await allowed(userId);
      if (refused !== undefined) return refused;
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        return { text: 'bad "more" button value' };
      }
      const { s, o } = (parsed ?? {}) as { s?: unknown; o?: unknown };
      if (typeof s !== 'string' || typeof o !== 'number' || !Number.isInteger(o) || o < 0)
        return { text: 'bad "more" button value' };
      return replay(s, o);
    },
  };
}

/** `revoke-grant GRANT_ID`: approvers only; nothing changes when Slack cannot tell. */
async function revokeGrantReply(
  deps: HoopCommandDeps,
  command: string,
  userId: string,
  args: readonly string[],
): Promise<CommandReply> {
  const [id] = args;
  if (id === undefined || !/^[\w-]{1,80}$/.test(id))
    return { text: `usage: ${command} revoke-grant GRANT_ID (see ${command} grants)` };
  if (deps.revokeGrant === undefined || deps.isApprover === undefined)
    return { text: 'grants are not available on this gateway' };
  try {
    if (!(await deps.isApprover(userId)))
      return {
        text: 'only approvers may revoke a grant (approval.approvers in the gateway config); nothing was changed',
      };
  } catch {
    return { text: 'could not check your approver membership with Slack; nothing was changed, try again' };
  }
  const revoked = await deps.revokeGrant(id, `slack:${userId}`);
  return revoked === null
    ? {
        text: `no active grant \`${escapeSlackText(id)}\` (unknown, expired or already revoked); nothing was changed`,
      }
    : {
        text: `grant \`${escapeSlackText(revoked.id)}\` revoked: ${escapeSlackText(revoked.subject)} may no longer repeat it`,
      };
}

/** `privileges [IDENTITY]`: the least-privilege summaries of one or every identity. */
async function privilegesReply(deps: HoopCommandDeps, command: string, args: readonly string[]): Promise<CommandReply> {
  if (deps.audit?.privileges === undefined)
    return { text: 'no least-privilege summaries on this gateway (no audit store or cluster connected)' };
  const [identity] = args;
  if (identity !== undefined && !/^[\w.:@-]{1,200}$/.test(identity))
    return { text: `usage: ${command} privileges [IDENTITY]` };
  const view = await deps.audit.privileges(identity);
  if (identity !== undefined && view.summaries.length === 0)
    return { text: `no identity "${escapeSlackText(identity)}" in the gateway config` };
  const title =
    identity === undefined
      ? `Privileges of every identity, last ${view.sinceText}`
      : `Privileges of ${identity}, last ${view.sinceText}`;
  return {
    text: `${escapeSlackText(title)}: ${view.summaries.length} identit${view.summaries.length === 1 ? 'y' : 'ies'}`,
    blocks: buildPrivilegesBlocks(title, view.summaries, view.sinceText),
  };
}
