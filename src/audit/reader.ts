// The read side of the audit store as the Slack `/hoop` command needs it (its AuditReader port):
// a session's timeline entries and recent sessions, from the joined events.
import type { AuditStore } from '../store/types.js';
import { sessionEvents } from './events.js';

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

export function createAuditReader(store: AuditStore | { audit: AuditStore }, options: { limit?: number } = {}): AuditReader {
  const audit = 'audit' in store ? store.audit : store;
  return {
    async sessionTimeline(sessionId) {
      const events = await sessionEvents(audit, sessionId);
      return events.map((event): TimelineEntryView => {
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
        };
      });
    },
    async listSessions(identity) {
      const sessions = await audit.listSessions({ ...(identity === undefined ? {} : { identity }), limit: options.limit ?? 20 });
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
