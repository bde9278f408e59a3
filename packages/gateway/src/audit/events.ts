// Reads the chain back as events: a request record joined with its outcome (and a count of its exec
// frames), for `audit export`, `replay` and the Slack timeline.
import type { AuditRecord, AuditStore } from '../store/types.js';
import type { AuditEvent } from './types.js';

const iso = (time: number): string => new Date(time).toISOString();

/** Joins request records with the outcome/frames records among `related` (by eventId). */
export function joinEvents(requests: readonly AuditRecord[], related: readonly AuditRecord[]): AuditEvent[] {
  const outcomes = new Map<string, AuditRecord>();
  const frames = new Map<string, number>();
  for (const record of related) {
    if (record.eventId === undefined) continue;
    if (record.kind === 'outcome' && !outcomes.has(record.eventId)) outcomes.set(record.eventId, record);
    if (record.kind === 'frames') {
      const count = Array.isArray(record.data.frames) ? record.data.frames.length : 0;
      frames.set(record.eventId, (frames.get(record.eventId) ?? 0) + count);
    }
  }
  return requests
    .filter((r) => r.kind === 'request' && r.eventId !== undefined)
    .map((request) => {
      const eventId = request.eventId as string;
      const outcome = outcomes.get(eventId);
      const event = {
        eventId,
        sessionId: request.sessionId ?? '',
        time: iso(request.time),
        chain: request.chain,
        seq: request.seq,
        hash: request.hash,
        ...(request.identity === undefined ? {} : { identity: request.identity }),
        ...request.data,
        ...(outcome === undefined ? {} : { outcome: { ...outcome.data, time: iso(outcome.time) } }),
        ...(frames.has(eventId) ? { frames: frames.get(eventId) } : {}),
      };
      return event as unknown as AuditEvent;
    });
}

/** The events of a time window (request time in [since, until)), oldest first, paged. */
export async function* exportEvents(
  store: AuditStore,
  window: { since?: number; until?: number; pageSize?: number } = {},
): AsyncGenerator<AuditEvent> {
  const pageSize = window.pageSize ?? 500;
  let after: { time: number; chain: string; seq: number } | undefined;
  for (;;) {
    const requests = await store.listRecords({
      kinds: ['request'],
      ...(window.since === undefined ? {} : { since: window.since }),
      ...(window.until === undefined ? {} : { until: window.until }),
      ...(after === undefined ? {} : { after }),
      limit: pageSize,
    });
    if (requests.length === 0) return;
    const eventIds = requests.map((r) => r.eventId).filter((id): id is string => id !== undefined);
    const related = await store.listRecords({ eventIds, kinds: ['outcome', 'frames'] });
    yield* joinEvents(requests, related);
    if (requests.length < pageSize) return;
    const last = requests[requests.length - 1] as AuditRecord;
    after = { time: last.time, chain: last.chain, seq: last.seq };
  }
}

/** One session's events in time order. */
export async function sessionEvents(store: AuditStore, sessionId: string): Promise<AuditEvent[]> {
  const records = await store.listRecords({ sessionId });
  const requests = records.filter((r) => r.kind === 'request');
  const known = new Set(requests.map((r) => r.eventId));
  // Outcomes carry the sessionId too, but frames of an event begun before a restart may not.
  const related = records.filter((r) => r.kind !== 'request' && known.has(r.eventId));
  return joinEvents(requests, related);
}

/** `get pods/web-1/log -n default`, or `get /version` for a non-resource request. */
export function describeRequest(event: Pick<AuditEvent, 'info' | 'method' | 'path'>): string {
  const info = event.info;
  if (info === undefined || !info.isResourceRequest) return `${info?.verb ?? event.method.toLowerCase()} ${event.path}`;
  let target = info.resource;
  if (info.name !== '') target += `/${info.name}`;
  if (info.subresource !== '') target += `/${info.subresource}`;
  return `${info.verb} ${target}${info.namespace === '' ? '' : ` -n ${info.namespace}`}`;
}

/** The timeline lines of `hoopgate replay` and `/hoop replay`: time, verb, resource, decision, status, approver. */
export function formatTimeline(events: readonly AuditEvent[]): string[] {
  return events.map((event) => {
    const status = event.outcome === undefined ? 'pending' : String(event.outcome.status);
    const approval = event.outcome?.approval;
    const approver = approval === undefined ? '' : `  ${approval.state}${approval.by.length > 0 ? ` by ${approval.by.join(', ')}` : ''}`;
    return `${event.time}  ${describeRequest(event)}  ${event.decision.effect}  ${status}${approver}`;
  });
}
