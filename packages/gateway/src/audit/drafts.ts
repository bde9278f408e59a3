// The chain records the recorder writes, built from what the proxy knows: a request (its intent), its
// outcome, exec frames and approval decisions. Bodies are cut to maxBodyBytes when they are kept.
import { randomUUID } from 'node:crypto';
import type { ApprovalRecord } from '../approvals/types.js';
import type { AuditRecordDraft } from '../store/types.js';
import type { createSessionTracker } from './sessions.js';
import type { AuditOutcome, AuditStart, ExecFrame } from './types.js';

/** Cuts a body to `max` UTF-8 bytes without splitting a character. */
export function truncateBody(body: string, max: number): { text: string; bytes: number; truncated: boolean } {
  const bytes = Buffer.byteLength(body);
  if (bytes <= max) return { text: body, bytes, truncated: false };
  let text = Buffer.from(body).subarray(0, Math.max(0, max)).toString('utf8');
  if (text.endsWith('\ufffd')) text = text.slice(0, -1);
  return { text, bytes, truncated: true };
}

function identityOf(start: AuditStart): string {
  if (start.identity !== undefined) return start.identity;
  if (start.principal !== undefined) return `${start.principal.issuer}#${start.principal.subject}`;
  return 'anonymous';
}

export interface DraftBuilderDeps {
  clock: () => number;
  maxBodyBytes: number;
  bodies: boolean;
  sessions: ReturnType<typeof createSessionTracker>;
}

export function createDraftBuilder(deps: DraftBuilderDeps) {
  function body(prefix: 'request' | 'response', text: string | undefined): Record<string, unknown> {
    if (!deps.bodies || text === undefined) return {};
    const cut = truncateBody(text, deps.maxBodyBytes);
    return {
      [`${prefix}Body`]: cut.text,
      [`${prefix}BodyBytes`]: cut.bytes,
      ...(cut.truncated ? { [`${prefix}BodyTruncated`]: true } : {}),
    };
  }

  return {
    request(start: AuditStart): { draft: AuditRecordDraft; eventId: string; sessionId: string; identity: string } {
      const identity = identityOf(start);
      const sessionId = deps.sessions.sessionFor(identity, start.kubectlSession, start.time);
      const eventId = randomUUID();
      const { requestBody, time, identity: _identity, ...rest } = start;
      const draft: AuditRecordDraft = {
        kind: 'request',
        time,
        eventId,
        sessionId,
        identity,
        data: { ...rest, ...body('request', requestBody) },
      };
      return { draft, eventId, sessionId, identity };
    },
    outcome(eventId: string, sessionId: string, identity: string, outcome: AuditOutcome): AuditRecordDraft {
      const { responseBody, ...rest } = outcome;
      return {
        kind: 'outcome',
        time: deps.clock(),
        eventId,
        sessionId,
        identity,
        data: { ...rest, ...body('response', responseBody) },
      };
    },
    frames(
      eventId: string,
      frames: readonly ExecFrame[],
      known: { sessionId: string; identity: string } | undefined,
    ): AuditRecordDraft {
      return {
        kind: 'frames',
        time: deps.clock(),
        eventId,
        ...(known === undefined ? {} : { sessionId: known.sessionId, identity: known.identity }),
        data: { frames: frames.map((frame) => ({ ...frame })) },
      };
    },
    approval(record: ApprovalRecord): AuditRecordDraft {
      return {
        kind: 'approval',
        time: deps.clock(),
        sessionId: record.sessionId,
        identity: record.identity,
        data: {
          approvalId: record.id,
          state: record.state,
          cluster: record.request.cluster,
          verb: record.request.verb,
          path: record.request.path,
          votes: record.votes.map((vote) => ({ user: vote.user, label: vote.label, at: vote.at, via: vote.via })),
          decidedBy: record.decidedBy,
          decidedAt: record.decidedAt,
          decisionReason: record.decisionReason,
          grantMs: record.grantMs,
        },
      };
    },
  };
}
