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

/**
 * Joins a stream of request records (others are ignored) with their outcomes and frames, one page at a
 * time: each page's related records are fetched by eventId, so memory is bounded by `pageSize`.
 */
async function* joinStream(
  store: AuditStore,
  requests: AsyncIterable<AuditRecord>,
  pageSize: number,
): AsyncGenerator<AuditEvent> {
  let page: AuditRecord[] = [];
  const flush = async function* (): AsyncGenerator<AuditEvent> {
    const eventIds = page.map((r) => r.eventId).filter((id): id is string => id !== undefined);
    const related = await store.listRecords({ eventIds, kinds: ['outcome', 'frames'] });
    const done = page;
    page = [];
    yield* joinEvents(done, related);
  };
  for await (const record of requests) {
    if (record.kind !== 'request' || record.eventId === undefined) continue;
    page.push(record);
    if (page.length >= pageSize) yield* flush();
  }
  if (page.length > 0) yield* flush();
}

/** The events of a time window (request time in [since, until)), oldest first, streamed from a store cursor. */
export async function* exportEvents(
  store: AuditStore,
  window: { since?: number; until?: number; pageSize?: number } = {},
): AsyncGenerator<AuditEvent> {
  const pageSize = window.pageSize ?? 200;
  const requests = store.scanRecords(
    {
      kinds: ['request'],
      ...(window.since === undefined ? {} : { since: window.since }),
      ...(window.until === undefined ? {} : { until: window.until }),
    },
    { batchSize: pageSize },
  );
  yield* joinStream(store, requests, pageSize);
}

/** One session's events in time order, streamed. */
export async function* streamSessionEvents(
  store: AuditStore,
  sessionId: string,
  pageSize = 500,
): AsyncGenerator<AuditEvent> {
  // Outcomes carry the sessionId too, but frames of an event begun before a restart may not: joined by eventId.
  yield* joinStream(store, store.scanRecords({ sessionId, kinds: ['request'] }, { batchSize: pageSize }), pageSize);
}

/** One session's events in time order (callers that need them all at once: the Slack timeline). */
export async function sessionEvents(store: AuditStore, sessionId: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for await (const event of streamSessionEvents(store, sessionId)) events.push(event);
  return events;
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
    const approver =
      approval === undefined
        ? ''
        : `  ${approval.state}${approval.by.length > 0 ? ` by ${approval.by.join(', ')}` : ''}`;
    return `${event.time}  ${describeRequest(event)}  ${event.decision.effect}  ${status}${approver}`;
  });
}
