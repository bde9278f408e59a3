// The read side of the audit store as the Slack `/hoop` command needs it (its AuditReader port):
// a session's timeline entries and recent sessions, from the joined events.
import type { AuditStore } from '../store/types.js';
import { sessionEvents } from './events.js';
import type { ExecFrame } from './types.js';

export interface TimelineEntryView {
  at: number;
  verb: string;
  /** `resource` or `resource/subresource`; '' for a non-resource path. */
  resource: string;
  namespace?: string;
  name?: string;
  path?: string;
  /** `allow`, `deny`, `approve→approved` … */
  decision: string;
  status?: number;
  approver?: string;
  transcript?: { excerpt: string; frames: number; bytes: number };
}

export interface SessionSummaryView {
  sessionId: string;
  identity: string;
  startedAt: number;
  endedAt?: number;
  calls: number;
  refused?: number;
}

export interface AuditReader {
  sessionTimeline(sessionId: string): Promise<TimelineEntryView[]>;
  listSessions(identity?: string): Promise<SessionSummaryView[]>;
}

export function createAuditReader(
  store: AuditStore | { audit: AuditStore },
  options: { limit?: number } = {},
): AuditReader {
  const audit = 'audit' in store ? store.audit : store;
  return {
    async sessionTimeline(sessionId) {
      const events = await sessionEvents(audit, sessionId);
      const transcripts = new Map<string, TimelineEntryView['transcript']>();
      for (const event of events.filter((e) => (e.frames ?? 0) > 0))
        transcripts.set(event.eventId, await transcriptOf(audit, event.eventId));
      return events.map((event): TimelineEntryView => {
        const transcript = transcripts.get(event.eventId);
        const info = event.info;
        const approval = event.outcome?.approval;
        const resourceRequest = info !== undefined && info.isResourceRequest;
        return {
          at: Date.parse(event.time),
          verb: info?.verb ?? event.method.toLowerCase(),
          resource: resourceRequest ? `${info.resource}${info.subresource === '' ? '' : `/${info.subresource}`}` : '',
          ...(resourceRequest && info.namespace !== '' ? { namespace: info.namespace } : {}),
          ...(resourceRequest && info.name !== '' ? { name: info.name } : {}),
          ...(resourceRequest ? {} : { path: event.path }),
          decision: approval === undefined ? event.decision.effect : `${event.decision.effect}→${approval.state}`,
          ...(event.outcome === undefined ? {} : { status: event.outcome.status }),
          ...(approval !== undefined && approval.by.length > 0 ? { approver: approval.by.join(', ') } : {}),
          ...(transcript === undefined ? {} : { transcript }),
        };
      });
    },
    async listSessions(identity) {
      const sessions = await audit.listSessions({
        ...(identity === undefined ? {} : { identity }),
        limit: options.limit ?? 20,
      });
      return sessions.map((s) => ({
        sessionId: s.sessionId,
        identity: s.identity ?? 'unknown',
        startedAt: s.start,
        endedAt: s.end,
        calls: s.calls,
        refused: s.decisions.deny,
      }));
    },
  };
}

/** The first output of an exec/attach recording, and its size, for a Slack excerpt. */
async function transcriptOf(audit: AuditStore, eventId: string): Promise<TimelineEntryView['transcript']> {
  const records = await audit.listRecords({ eventIds: [eventId], kinds: ['frames'] });
  const frames = records.flatMap((r) => (Array.isArray(r.data['frames']) ? (r.data['frames'] as ExecFrame[]) : []));
  const output = frames
    .filter((f) => f.stream === 'stdout' || f.stream === 'stderr')
    .map((f) => (f.base64 === true ? Buffer.from(f.data, 'base64').toString('utf8') : f.data));
  const text = output.join('');
  return { excerpt: text.slice(0, 400), frames: frames.length, bytes: Buffer.byteLength(text) };
}
