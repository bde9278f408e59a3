// Prometheus metrics (prom-client) on a registry per gateway, so several gateways in one process
// (tests, two replicas) do not share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'hoopgate_process_' });
  const registers = [registry];
  const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    requests: new Counter({
      name: 'hoopgate_requests_total',
      help: 'Requests handled, by decision effect, verb, resource and HTTP status code.',
      labelNames: ['cluster', 'effect', 'verb', 'resource', 'code'] as const,
      registers,
    }),
    decisions: new Counter({
      name: 'hoopgate_decisions_total',
      help: 'Policy decisions by effect and reason.',
      labelNames: ['effect', 'reason'] as const,
      registers,
    }),
    overheadSeconds: new Histogram({
      name: 'hoopgate_gateway_overhead_seconds',
      help: 'Time spent in the gateway before the request was sent upstream (authn, policy, audit, token).',
      labelNames: ['cluster'] as const,
      buckets: latencyBuckets,
      registers,
    }),
    upstreamSeconds: new Histogram({
      name: 'hoopgate_upstream_response_seconds',
      help: 'Time from sending upstream to the upstream response headers.',
      labelNames: ['cluster'] as const,
      buckets: latencyBuckets,
      registers,
    }),
    pendingApprovals: new Gauge({
      name: 'hoopgate_pending_approvals',
      help: 'Requests currently held for approval on this replica.',
      registers,
    }),
    approvalOutcomes: new Counter({
      name: 'hoopgate_approval_outcomes_total',
      help: 'Calls held for approval, by final state (a ticket counts when its call runs again after the decision).',
      labelNames: ['state'] as const,
      registers,
    }),
    maskedObjects: new Counter({
      name: 'hoopgate_masked_objects_total',
      help: 'Objects whose values were masked in responses.',
      registers,
    }),
    auditFailures: new Counter({
      name: 'hoopgate_audit_write_failures_total',
      help: 'Audit writes that failed (requests refused with 503).',
      registers,
    }),
    tokenMints: new Counter({
      name: 'hoopgate_token_mints_total',
      help: 'ServiceAccount tokens minted with TokenRequest.',
      labelNames: ['cluster'] as const,
      registers,
    }),
    logLinesDropped: new Counter({
      name: 'hoopgate_log_lines_dropped_total',
      help: 'Log lines dropped because the log destination was slower than the gateway (lib/log-buffer.ts).',
      registers,
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createMetrics>;

/** Kubernetes resource names (plural, lower case, DNS-label-like); anything else is one bucket. */
const resourceLabel = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

/**
 * The verb and resource labels of a request: nothing derived from the path before the caller is
 * known (an unauthenticated client would otherwise mint a label value, and a series that lives
 * forever, per request), and a resource name only when it looks like one.
 */
export function requestLabels(
  known: boolean,
  verb: string | undefined,
  resource: string | undefined,
): { verb: string; resource: string } {
  if (!known) return { verb: '', resource: '' };
  const name = resource ?? '';
  return { verb: verb ?? '', resource: name === '' || resourceLabel.test(name) ? name : 'other' };
}
