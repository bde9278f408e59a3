// Who may help an agent whose call was refused or held, from config: the approvers and the Slack
// channel, or the gateway's operators with the request's Audit-Id (issue #16, "messages for the one
// reading them"). A refusal's message names people and a channel, never an operator's config path.
import type { ApprovalConfig, SlackConfig } from '../config/types.js';

/** The people and channel an agent can turn to; built once per config. */
export interface Helpers {
  /** Emails, Slack users and groups, in config order, without repeats. */
  approvers: readonly string[];
  /** The Slack channel where approvals are asked, when Slack is configured. */
  channel?: string;
}

/** At most this many approvers are named; the rest are counted. */
const NAMED_APPROVERS = 4;

export function helpersFrom(config: { approval: ApprovalConfig; slack?: SlackConfig }): Helpers {
  const { approvers } = config.approval;
  // A person's email reads better than their Slack member ID (U0…).
  const emailOf = new Map<string, string>();
  for (const person of approvers.people)
    if (person.slackUser !== undefined && person.email !== undefined) emailOf.set(person.slackUser, person.email);
  const names = [
    ...approvers.people.flatMap((person) => (person.email === undefined ? [] : [person.email])),
    ...approvers.slackUsers.map((user) => emailOf.get(user) ?? `Slack user ${user}`),
    ...approvers.slackUserGroups.map((group) => `Slack group ${group}`),
    ...approvers.oidcGroups.map((group) => `group ${group.group}`),
  ];
  const channel = config.slack?.channel;
  return {
    approvers: [...new Set(names)],
    ...(channel === undefined || channel === '' ? {} : { channel }),
  };
}

function approverList(approvers: readonly string[]): string {
  const named = approvers.slice(0, NAMED_APPROVERS).join(', ');
  const more = approvers.length - NAMED_APPROVERS;
  return more > 0 ? `${named} and ${more} more` : named;
}

/** The approvers, for "needs approval from …": `alice@example.com, group sre`, or null when none. */
export function approversText(helpers: Helpers | undefined): string | null {
  if (helpers === undefined || helpers.approvers.length === 0) return null;
  return approverList(helpers.approvers);
}

/**
 * One sentence: who to ask. `ask an approver (alice@example.com, group sre) in Slack channel #ops,
 * quoting Audit-Id 5f…`, or `ask the gateway's operators, quoting Audit-Id 5f…` when none is configured.
 */
export function whoMayHelp(helpers: Helpers | undefined, auditId?: string): string {
  const approvers = approversText(helpers);
  const channel = helpers?.channel;
  let who: string;
  if (approvers !== null && channel !== undefined) who = `ask an approver (${approvers}) in Slack channel ${channel}`;
  else if (approvers !== null) who = `ask an approver (${approvers})`;
  else if (channel !== undefined) who = `ask in Slack channel ${channel}`;
  else who = "ask the gateway's operators";
  return `Who may help: ${who}${auditId === undefined ? '' : `, quoting Audit-Id ${auditId}`}.`;
}
