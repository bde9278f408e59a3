// Who a vote comes from, as a person rather than a channel account (issue #12 item 5): a Slack user,
// an OIDC subject and a CLI uid are one person when their verified emails match or an
// `approval.approvers.people` entry links them. Each vote carries the keys of its person; two votes
// sharing a key are one person's, and the store refuses the second atomically.
import type { ApproverPerson } from '../config/types.js';

export interface VoterFacts {
  slackUser?: string;
  oidc?: { issuer: string; subject: string };
  cliUid?: number;
  /** Only a verified email (Slack profile; OIDC `email` unless `email_verified` is false) links channels. */
  verifiedEmail?: string;
}

const emailKey = (email: string) => `email:${email.trim().toLowerCase()}`;
const oidcKey = (issuer: string, subject: string) => `oidc:${issuer}#${subject}`;

/** Every key of one person: its channel accounts, its verified email, and all identities of a matching `people` entry. */
export function personKeys(facts: VoterFacts, people: readonly ApproverPerson[] = []): string[] {
  const keys = new Set<string>();
  if (facts.slackUser !== undefined) keys.add(`slack:${facts.slackUser}`);
  if (facts.oidc !== undefined) keys.add(oidcKey(facts.oidc.issuer, facts.oidc.subject));
  if (facts.cliUid !== undefined) keys.add(`cli:uid:${facts.cliUid}`);
  if (facts.verifiedEmail !== undefined && facts.verifiedEmail.trim() !== '') keys.add(emailKey(facts.verifiedEmail));
  for (const person of people) {
    const own = [
      ...(person.slackUser === undefined ? [] : [`slack:${person.slackUser}`]),
      ...(person.oidcSubject === undefined || person.oidcIssuer === undefined
        ? []
        : [oidcKey(person.oidcIssuer, person.oidcSubject)]),
      ...(person.email === undefined ? [] : [emailKey(person.email)]),
    ];
    if (own.some((key) => keys.has(key))) for (const key of own) keys.add(key);
  }
  return [...keys].sort();
}

/** Whether two votes are one person's. */
export function samePerson(
  a: { user: string; keys?: readonly string[] },
  b: { user: string; keys?: readonly string[] },
): boolean {
  if (a.user === b.user) return true;
  return (a.keys ?? []).some((key) => (b.keys ?? []).includes(key));
}
