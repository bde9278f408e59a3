// The end of every request, HTTP or upgrade alike: the outcome joins the audit record, the request
// is counted in hoopgate_requests_total, and one bounded log line says what happened.
import type { Logger } from '../lib/logger.js';
import { requestLabels, type GatewayMetrics } from '../lib/metrics.js';
import { withoutCredentialQuery } from '../proxy/mask/credentials.js';
import { boundPath, boundText } from './errors.js';
import type { Admission, Refusal } from './types.js';

/** How the request came in: the log line's message (`request` or `upgrade`), method and raw path. */
export interface RequestLine {
  transport: 'request' | 'upgrade';
  method: string;
  rawUrl: string;
  /** `1.1` or `2.0` (HTTP/2 by ALPN, http/h2.ts); logged, so an operator sees which clients multiplex. */
  httpVersion?: string;
}

export interface Outcome {
  status: number;
  bytesOut: number;
  /** Why it ended early (recorded and logged). */
  error?: string;
  /** Logged, not recorded: a stream that broke after the status was sent. */
  streamError?: string;
  responseBody?: string;
  keptMaskedValues?: string[];
}

export interface CompletionDeps {
  logger: Logger;
  metrics?: GatewayMetrics;
  clock: () => number;
}

export function createCompletion(deps: CompletionDeps) {
  const { logger, metrics, clock } = deps;

  /** A refusal, already recorded by the pipeline: counted and logged. */
  function refused(refusal: Refusal, line: RequestLine, receivedAt: number): void {
    log(line, refusal.error.status, receivedAt, {
      requestId: refusal.requestId,
      ...(refusal.recorded ? {} : { recorded: false }),
      ...(refusal.cluster === undefined ? {} : { cluster: refusal.cluster }),
      ...(refusal.identity === undefined ? {} : { identity: refusal.identity }),
      ...(refusal.subject === undefined ? {} : { subject: refusal.subject }),
      effect: 'deny',
      reason: refusal.reason,
      code: refusal.error.code,
      message: boundText(refusal.error.message, 1024),
      ...(refusal.error.operatorDetail === undefined ? {} : { detail: boundText(refusal.error.operatorDetail, 1024) }),
    });
    metrics?.requests.inc({
      cluster: refusal.cluster ?? '',
      effect: 'deny',
      ...requestLabels(refusal.identity !== undefined, refusal.verb, refusal.resource),
      code: String(refusal.error.status),
    });
  }

  /** An admitted request's end: its outcome recorded, counted and logged. */
  function finished(
    admission: Admission,
    line: RequestLine,
    outcome: Outcome,
    logFields: Record<string, unknown> = {},
  ): void {
    const { streamError, ...recorded } = outcome;
    admission.audit.complete({
      ...recorded,
      durationMs: clock() - admission.startedAt,
      ...(admission.approval === undefined ? {} : { approval: admission.approval }),
    });
    metrics?.requests.inc({
      cluster: admission.cluster.config.name,
      effect: admission.decision.effect,
      ...requestLabels(true, admission.info.verb, admission.info.resource),
      code: String(outcome.status),
    });
    log(line, outcome.status, admission.startedAt, {
      ...decided(admission),
      ...(line.transport === 'upgrade' ? { bytesOut: outcome.bytesOut } : {}),
      ...(outcome.error === undefined || streamError !== undefined ? {} : { message: outcome.error }),
      ...(streamError === undefined ? {} : { streamError }),
      ...logFields,
    });
  }

  /** One JSON line per request; never a token or a body, and of bounded size (#12). */
  function log(line: RequestLine, status: number, startedAt: number, fields: Record<string, unknown>): void {
    const path = boundPath(withoutCredentialQuery(line.rawUrl));
    logger.info(
      {
        method: boundText(line.method, 32),
        path,
        status,
        durationMs: clock() - startedAt,
        ...(line.httpVersion === undefined ? {} : { httpVersion: line.httpVersion }),
        ...fields,
      },
      line.transport,
    );
  }

  return { refused, finished };
}

export type Completion = ReturnType<typeof createCompletion>;

/** The log line's view of an admitted request: who, as which account, and why it was let through. */
function decided(admission: Admission): Record<string, unknown> {
  const { decision } = admission;
  return {
    requestId: admission.requestId,
    cluster: admission.cluster.config.name,
    identity: admission.identity.name,
    subject: admission.principal.subject,
    serviceAccount: admission.serviceAccount,
    effect: decision.effect,
    reason: decision.reason,
    ...(decision.rule === undefined ? {} : { rule: decision.rule }),
    ...(admission.approval === undefined ? {} : { approval: admission.approval.id }),
  };
}
