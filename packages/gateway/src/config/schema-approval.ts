// The approval section of the configuration schema: who may approve (Slack users, OIDC groups, people
// known on several channels), how long a request waits and for how long an approval may grant.
import type { ApproverGroup } from './types.js';
import { def, duration, from, int, list, node, obj, opt, pathOf, report, req, str } from './walker.js';
import type { Node } from './walker.js';
import { formatDuration } from './values.js';

export const slackUsers = () => def(list(str()), []);

/** An identity's `approval.mode` (issue #16): hold the call, or answer it at once with a ticket. */
export const approvalModes = ['wait', 'ticket'] as const;

/**
 * `{ issuer, group }`: a group name means something only within its issuer. A bare name is read with
 * issuer "" and resolved in completeConfig() when exactly one issuer is configured, refused otherwise.
 */
const approverGroup = node<ApproverGroup>((raw, at, cx) => {
  if (typeof raw === 'string') {
    const group = str().parse(raw, at, cx);
    return group === undefined ? undefined : { issuer: '', group };
  }
  return obj({ issuer: req(str()), group: req(str()) }).parse(raw, at, cx);
});

/** One approver known on several channels: votes from any of them count once (issue #12 item 5). */
const approverPerson = obj({
  slackUser: opt(str({ pattern: /^[UW][A-Z0-9]{2,}$/, expect: 'must be a Slack user id like "U0123ABCD"' })),
  oidcIssuer: opt(str()),
  oidcSubject: opt(str()),
  email: opt(str({ pattern: /^[^@\s]+@[^@\s]+$/, expect: 'must be an email address' })),
}).check((p, at, cx) => {
  const ids = [p.slackUser, p.oidcSubject, p.email].filter((v) => v !== undefined).length;
  if (ids < 2)
    report(cx, at, 'must name at least two of slackUser, oidcSubject, email (the identities that are one person)');
  if (p.oidcIssuer !== undefined && p.oidcSubject === undefined)
    report(cx, pathOf(at, 'oidcIssuer'), 'only with oidcSubject');
});

export const approval = obj({
  timeoutMs: from('timeout', def(duration({ min: 1000 }), '5m')),
  minApprovals: def(int({ min: 1 }), 1),
  // `grantOptions: 0` is the contract's spelling of "approve once only".
  grantOptionsMs: from('grantOptions', def(grantOptions(), [])),
  approvers: def(
    obj({
      slackUsers: slackUsers(),
      slackUserGroups: slackUsers(),
      oidcGroups: def(list(approverGroup), []),
      people: def(list(approverPerson), []),
    }),
    {},
  ),
  maxPendingPerIdentity: def(int({ min: 1 }), 10),
  // How long an approved ticket waits for the agent's retry (approvals/ticket.ts).
  ticketTtlMs: from('ticketTTL', def(duration({ min: 1000 }), '15m')),
});

function grantOptions(): Node<number[]> {
  const durations = list(duration({ min: 1000 }), {
    unique: { key: (ms) => formatDuration(ms), what: 'grant option' },
  });
  return node((raw, at, cx) => (raw === 0 ? [] : durations.parse(raw, at, cx)));
}
