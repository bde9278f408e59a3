// The least-privilege report (issue #8, docs/reference.md §9), pure: audit events → what each identity used,
// was refused and needed approval for, the minimal Roles that allow exactly the used calls, and the
// over-grant (granted permissions never used). Only names of objects appear, never values.
import { CONNECT_SUBRESOURCES } from '../policy/rules.js';
import {
  byText,
  computeOverGrant,
  keyOf,
  suggestRoles,
  type OverGrantPermission,
  type PermissionKey,
  type RbacObject,
  type UsedPermission,
} from './least-privilege-roles.js';
import type { AuditEvent } from './types.js';

export { compactRules, computeOverGrant, suggestedRoleName, suggestRoles } from './least-privilege-roles.js';
export type {
  OverGrantPermission,
  PermissionKey,
  PolicyRule,
  RbacObject,
  UsedPermission,
} from './least-privilege-roles.js';

export interface RefusedPermission {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  count: number;
  reason: string;
}

export interface ApprovedPermission {
  verb: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  count: number;
  approvers: string[];
}

/** One identity of the report: exactly the JSON shape of docs/reference.md §9. */
export interface IdentityPrivileges {
  identity: string;
  serviceAccount: string;
  since: string;
  until: string;
  used: UsedPermission[];
  refused: RefusedPermission[];
  approved: ApprovedPermission[];
  suggestedRoles: RbacObject[];
  overGrant: OverGrantPermission[];
}

export interface LeastPrivilegeReport {
  identities: IdentityPrivileges[];
}

/** Counts for the digest: every call of the window, including API discovery. */
export interface CallTotals {
  calls: number;
  refused: number;
  approved: number;
}

export interface SummarizeInput {
  identity: string;
  serviceAccount: string;
  since: number;
  until: number;
  /** Any events; only this identity's (and `cluster`'s, when given) are read. */
  events: Iterable<AuditEvent>;
  cluster?: string;
  /** Bind the suggested roles to this "namespace/name" instead of the baseline account. */
  bindTo?: string;
  /** "The same few objects": at most this many distinct names collapse to resourceNames (default 5). */
  maxResourceNames?: number;
  /** What the baseline account is granted (from the API server); absent: no over-grant computed. */
  granted?: readonly PermissionKey[];
}

export const DEFAULT_MAX_RESOURCE_NAMES = 5;

/** The permission a classified event needed: streams into pods are authorised as `create`, like RBAC. */
export function permissionOf(event: Pick<AuditEvent, 'info'>): (PermissionKey & { name: string }) | undefined {
  const info = event.info;
  if (info === undefined || !info.isResourceRequest || info.resource === '') return undefined;
  return {
    verb: CONNECT_SUBRESOURCES.has(info.subresource) ? 'create' : info.verb,
    apiGroup: info.apiGroup,
    resource: info.resource,
    subresource: info.subresource,
    namespace: info.namespace,
    name: info.name,
  };
}

type Bucket = 'used' | 'refused' | 'approved' | 'none';

/** Where one event belongs. Anything not clearly allowed by the baseline is not "used". */
function classify(event: AuditEvent): { bucket: Bucket; reason?: string; approvers?: string[] } {
  const decision = event.decision;
  const status = event.outcome?.status;
  switch (decision.effect) {
    case 'allow':
      if (decision.reason === 'non-resource') return { bucket: 'none' };
      // `kubectl auth can-i` for one request is answered by the gateway: the baseline's RBAC is not used.
      if (decision.reason === 'self-review' && event.info?.resource === 'selfsubjectaccessreviews')
        return { bucket: 'none' };
      if (decision.reason === 'grant') return { bucket: 'approved', approvers: [] };
      // The gateway said yes but the API server did not: not a use of the permission.
      if (status === 401 || status === 403) return { bucket: 'refused', reason: `api server answered ${status}` };
      return { bucket: 'used' };
    case 'deny':
      return {
        bucket: 'refused',
        reason: decision.rule === undefined ? decision.reason : `${decision.reason} (${decision.rule})`,
      };
    case 'approve': {
      const approval = event.outcome?.approval;
      if (approval?.state === 'approved') return { bucket: 'approved', approvers: approval.by };
      if (approval !== undefined)
        return {
          bucket: 'refused',
          reason: `approval ${approval.state}${approval.by.length > 0 ? ` by ${approval.by.join(', ')}` : ''}`,
        };
      return {
        bucket: 'refused',
        reason: event.outcome === undefined ? 'approval pending' : `${decision.reason}: not approved`,
      };
    }
    default:
      return { bucket: 'none' };
  }
}

/** What a report keeps of the calls that share one key: counts and the distinct reasons/approvers. */
interface Tally {
  count: number;
  lastUsed: string;
  reasons: Set<string>;
  approvers: Set<string>;
}

/**
 * One permission key (namespace × group × resource × subresource × verb) of one bucket. Names are
 * tallied only while they are "the same few objects" (at most `max`, none empty); past that they
 * collapse into `all`, so memory is bounded by distinct keys, never by calls.
 */
interface KeyTally {
  key: PermissionKey;
  all: Tally;
  names: Map<string, Tally> | undefined;
}

function newTally(): Tally {
  return { count: 0, lastUsed: '', reasons: new Set(), approvers: new Set() };
}

function addTo(tally: Tally, time: string, reason: string | undefined, approvers: readonly string[] | undefined): void {
  tally.count += 1;
  if (time > tally.lastUsed) tally.lastUsed = time;
  if (reason !== undefined && reason !== '') tally.reasons.add(reason);
  for (const approver of approvers ?? []) if (approver !== '') tally.approvers.add(approver);
}

/** The tallies of one bucket (used, refused or approved), keyed by permission. */
export class BucketTally {
  private readonly keys = new Map<string, KeyTally>();
  constructor(private readonly max: number) {}

  add(
    permission: PermissionKey & { name: string },
    time: string,
    reason?: string,
    approvers?: readonly string[],
  ): void {
    const { name, ...key } = permission;
    const id = keyOf(key);
    let entry = this.keys.get(id);
    if (entry === undefined) {
      entry = { key, all: newTally(), names: new Map() };
      this.keys.set(id, entry);
    }
    addTo(entry.all, time, reason, approvers);
    if (entry.names === undefined) return;
    if (name === '' || (!entry.names.has(name) && entry.names.size >= this.max)) {
      entry.names = undefined;
      return;
    }
    const named = entry.names.get(name) ?? newTally();
    addTo(named, time, reason, approvers);
    entry.names.set(name, named);
  }

  /** Distinct keys held (and names within them): what the memory of a report grows with. */
  size(): { keys: number; names: number } {
    let names = 0;
    for (const entry of this.keys.values()) names += entry.names?.size ?? 0;
    return { keys: this.keys.size, names };
  }

  /** Per key in key order: one part per stable name, or one part for the whole key. */
  parts(): { key: PermissionKey; name?: string; tally: Tally }[] {
    const out: { key: PermissionKey; name?: string; tally: Tally }[] = [];
    for (const [, entry] of [...this.keys].sort(([a], [b]) => byText(a, b))) {
      if (entry.names === undefined) out.push({ key: entry.key, tally: entry.all });
      else
        for (const name of [...entry.names.keys()].sort(byText))
          out.push({ key: entry.key, name, tally: entry.names.get(name) as Tally });
    }
    return out;
  }
}

function optional(
  key: PermissionKey,
  name: string | undefined,
): { subresource?: string; namespace?: string; name?: string } {
  return {
    ...(key.subresource === '' ? {} : { subresource: key.subresource }),
    ...(key.namespace === '' ? {} : { namespace: key.namespace }),
    ...(name === undefined ? {} : { name }),
  };
}

function distinct(values: Iterable<string>): string[] {
  return [...new Set(values)].filter((v) => v !== '').sort(byText);
}

/** One identity's events in the window (request time in [since, until)), of one cluster when given. */
export function eventsOf(
  events: Iterable<AuditEvent>,
  identity: string,
  window: { since: number; until: number; cluster?: string },
): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const event of events) if (inWindow(event, identity, window)) out.push(event);
  return out;
}

function inWindow(
  event: AuditEvent,
  identity: string,
  window: { since: number; until: number; cluster?: string },
): boolean {
  if (event.identity !== identity) return false;
  if (window.cluster !== undefined && event.cluster !== window.cluster) return false;
  const time = Date.parse(event.time);
  return time >= window.since && time < window.until;
}

export type AccumulatorInput = Omit<SummarizeInput, 'events' | 'granted'>;

/**
 * One identity's report built call by call (issue #17): events stream through `add` and only tallies
 * per permission key are kept, so a year of calls costs what its distinct permissions cost.
 */
export interface IdentityAccumulator {
  readonly identity: string;
  /** Ignores events of other identities, clusters or times. */
  add(event: AuditEvent): void;
  /** The namespaces the identity's calls named (used, refused or approved alike), sorted. */
  namespaces(): string[];
  size(): { keys: number; names: number; namespaces: number };
  finish(granted?: readonly PermissionKey[]): { privileges: IdentityPrivileges; totals: CallTotals };
}

export function createIdentityAccumulator(input: AccumulatorInput): IdentityAccumulator {
  const max = input.maxResourceNames ?? DEFAULT_MAX_RESOURCE_NAMES;
  const window = {
    since: input.since,
    until: input.until,
    ...(input.cluster === undefined ? {} : { cluster: input.cluster }),
  };
  const buckets = { used: new BucketTally(max), refused: new BucketTally(max), approved: new BucketTally(max) };
  const totals: CallTotals = { calls: 0, refused: 0, approved: 0 };
  const namespaces = new Set<string>();
  return {
    identity: input.identity,
    add(event) {
      if (!inWindow(event, input.identity, window)) return;
      totals.calls += 1;
      namespaces.add(event.info?.isResourceRequest === true ? event.info.namespace : '');
      const where = classify(event);
      if (where.bucket === 'refused') totals.refused += 1;
      if (where.bucket === 'approved') totals.approved += 1;
      const permission = permissionOf(event);
      if (permission === undefined || where.bucket === 'none') return;
      buckets[where.bucket].add(permission, event.time, where.reason, where.approvers);
    },
    namespaces: () => distinct(namespaces),
    size() {
      const sizes = Object.values(buckets).map((b) => b.size());
      return {
        keys: sizes.reduce((n, x) => n + x.keys, 0),
        names: sizes.reduce((n, x) => n + x.names, 0),
        namespaces: namespaces.size,
      };
    },
    finish(granted) {
      const used: UsedPermission[] = buckets.used.parts().map(({ key, name, tally }) => ({
        ...key,
        ...(name === undefined ? {} : { name }),
        count: tally.count,
        lastUsed: tally.lastUsed,
      }));
      const refused: RefusedPermission[] = buckets.refused.parts().map(({ key, name, tally }) => ({
        verb: key.verb,
        apiGroup: key.apiGroup,
        resource: key.resource,
        ...optional(key, name),
        count: tally.count,
        reason: distinct(tally.reasons).join('; '),
      }));
      const approved: ApprovedPermission[] = buckets.approved.parts().map(({ key, name, tally }) => ({
        verb: key.verb,
        apiGroup: key.apiGroup,
        resource: key.resource,
        ...optional(key, name),
        count: tally.count,
        approvers: distinct(tally.approvers),
      }));
      return {
        privileges: {
          identity: input.identity,
          serviceAccount: input.serviceAccount,
          since: new Date(input.since).toISOString(),
          until: new Date(input.until).toISOString(),
          used,
          refused,
          approved,
          suggestedRoles: suggestRoles(input.identity, input.bindTo ?? input.serviceAccount, used),
          overGrant: granted === undefined ? [] : computeOverGrant(granted, used),
        },
        totals: { ...totals },
      };
    },
  };
}

export function summarizeIdentity(input: SummarizeInput): { privileges: IdentityPrivileges; totals: CallTotals } {
  const { events, granted, ...rest } = input;
  const accumulator = createIdentityAccumulator(rest);
  for (const event of events) accumulator.add(event);
  return accumulator.finish(granted);
}

/** `get configmaps/app-config -n staging`, `list deployments.apps (all namespaces)`: for tables and Slack. */
export function describePermission(
  p: { verb: string; apiGroup: string; resource: string; subresource?: string; namespace?: string; name?: string },
  clusterScope = 'cluster scope',
): string {
  const resource = `${p.resource}${p.apiGroup === '' ? '' : `.${p.apiGroup}`}`;
  const target = `${resource}${p.name === undefined || p.name === '' ? '' : `/${p.name}`}${p.subresource === undefined || p.subresource === '' ? '' : `/${p.subresource}`}`;
  return `${p.verb} ${target} ${p.namespace === undefined || p.namespace === '' ? `(${clusterScope})` : `-n ${p.namespace}`}`;
}

export interface ReportIdentity {
  name: string;
  serviceAccount: string;
}

/** The port to the API server: what a baseline account is granted in these namespaces (and cluster-wide). */
export type GrantedLookup = (
  serviceAccount: string,
  namespaces: string[],
) => Promise<{ granted: readonly PermissionKey[]; method: string }>;

export interface BuildReportInput {
  identities: readonly ReportIdentity[];
  /** Read once, in order; may be a stream (exportEvents): nothing per event is kept. */
  events: Iterable<AuditEvent> | AsyncIterable<AuditEvent>;
  since: number;
  until: number;
  cluster?: string;
  bindTo?: string;
  maxResourceNames?: number;
  /** Absent: no over-grant is computed (offline). */
  granted?: GrantedLookup;
}

export interface IdentityReport {
  privileges: IdentityPrivileges;
  totals: CallTotals;
  /** How the over-grant was found, or why it could not be. */
  overGrant: { method: string } | { error: string } | { skipped: true };
}

/** The namespaces an identity's calls named (used, refused or approved alike), sorted. */
export function namespacesInUse(events: readonly AuditEvent[]): string[] {
  return distinct(events.map((e) => (e.info?.isResourceRequest === true ? e.info.namespace : '')));
}

/** Every identity, in config order; one that made no call appears with empty lists. One pass over the events. */
export async function buildLeastPrivilegeReport(input: BuildReportInput): Promise<IdentityReport[]> {
  const accumulators = input.identities.map((identity) =>
    createIdentityAccumulator({
      identity: identity.name,
      serviceAccount: identity.serviceAccount,
      since: input.since,
      until: input.until,
      ...(input.cluster === undefined ? {} : { cluster: input.cluster }),
      ...(input.bindTo === undefined ? {} : { bindTo: input.bindTo }),
      ...(input.maxResourceNames === undefined ? {} : { maxResourceNames: input.maxResourceNames }),
    }),
  );
  const byName = new Map<string, IdentityAccumulator[]>();
  for (const accumulator of accumulators)
    byName.set(accumulator.identity, [...(byName.get(accumulator.identity) ?? []), accumulator]);
  for await (const event of input.events) {
    if (event.identity === undefined) continue;
    for (const accumulator of byName.get(event.identity) ?? []) accumulator.add(event);
  }
  const out: IdentityReport[] = [];
  for (const [index, identity] of input.identities.entries()) {
    const accumulator = accumulators[index] as IdentityAccumulator;
    let granted: readonly PermissionKey[] | undefined;
    let overGrant: IdentityReport['overGrant'] = { skipped: true };
    if (input.granted !== undefined) {
      try {
        const answer = await input.granted(identity.serviceAccount, accumulator.namespaces());
        granted = answer.granted;
        overGrant = { method: answer.method };
      } catch (error) {
        overGrant = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    const { privileges, totals } = accumulator.finish(granted);
    out.push({ privileges, totals, overGrant });
  }
  return out;
}
