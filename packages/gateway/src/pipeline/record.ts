// Stage 8, record: the audit event is written before anything is forwarded (begin), and every
// refusal is recorded with its outcome at once. Before the caller is known, what came from the
// request is bounded (path: first 256 characters + SHA-256), so such a record has a fixed size (#12).
import type { AuditRecorder } from '../audit/recorder.js';
import type { AuditHandle, AuditStart } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { IdentityConfig } from '../config/types.js';
import type { RequestInfo } from '../kube/request-info.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { withoutCredentialQuery } from '../proxy/mask/credentials.js';
import { boundPath, boundText, detailOf } from './errors.js';
import type { IncomingRequest, Refusal, RoutedPath, StageRefusal } from './types.js';

/** What the pipeline knows about a request when it records it. */
export interface Known {
  requestId: string;
  startedAt: number;
  routed: RoutedPath;
  principal?: Principal;
  identity?: IdentityConfig;
  info?: RequestInfo;
  maskedBody?: string;
}

export interface RecordDeps {
  recorder: AuditRecorder;
  logger: Logger;
  metrics?: GatewayMetrics;
  clock: () => number;
  audit: { bodies: boolean; maxBodyBytes: number };
}

/** Untrusted header text kept in a record before the caller is known. */
const UNAUTHENTICATED_TEXT_LIMIT = 256;
/** Messages may quote the path (a refused classification, an unknown cluster). */
const UNAUTHENTICATED_MESSAGE_LIMIT = 1024;

export function auditStart(
  deps: Pick<RecordDeps, 'audit'>,
  request: IncomingRequest,
  known: Known,
  decision: AuditStart['decision'],
): AuditStart {
  const authenticated = known.principal !== undefined;
  const bound = (text: string, limit: number) => (authenticated ? text : boundText(text, limit));
  const header = (name: string) => {
    const value = request.headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : bound(first, UNAUTHENTICATED_TEXT_LIMIT);
  };
  // A refused `?access_token=` keeps no query in the record (nothing else reaches here with one).
  const path = withoutCredentialQuery(known.routed.path);
  const start: AuditStart = {
    requestId: known.requestId,
    time: known.startedAt,
    cluster: known.routed.cluster,
    method: bound(request.method, 32),
    path: authenticated ? path : boundPath(path),
    decision:
      authenticated || decision.message === undefined
        ? decision
        : { ...decision, message: boundText(decision.message, UNAUTHENTICATED_MESSAGE_LIMIT) },
  };
  if (known.identity !== undefined) start.identity = known.identity.name;
  if (known.principal !== undefined) {
    const { issuer, subject, email, groups } = known.principal;
    start.principal = { issuer, subject, groups, ...(email === undefined ? {} : { email }) };
  }
  if (known.info !== undefined) start.info = authenticated ? known.info : boundInfo(known.info);
  const session = header('kubectl-session');
  const command = header('kubectl-command');
  const agent = header('user-agent');
  const reason = header('x-hoop-reason');
  if (session !== undefined) start.kubectlSession = session;
  if (command !== undefined) start.kubectlCommand = command;
  if (agent !== undefined) start.userAgent = agent;
  if (reason !== undefined) start.reason = reason;
  if (known.maskedBody !== undefined && deps.audit.bodies)
    start.requestBody = known.maskedBody.slice(0, deps.audit.maxBodyBytes);
  return start;
}

/** The classification's fields, each bounded: a 20 KB resource name stays a few hundred bytes. */
function boundInfo(info: RequestInfo): NonNullable<AuditStart['info']> {
  const b = (text: string) => boundText(text, UNAUTHENTICATED_TEXT_LIMIT);
  return {
    verb: b(info.verb),
    apiGroup: b(info.apiGroup),
    apiVersion: b(info.apiVersion),
    resource: b(info.resource),
    subresource: b(info.subresource),
    namespace: b(info.namespace),
    name: b(info.name),
    isResourceRequest: info.isResourceRequest,
  };
}

export function createRecordStage(deps: RecordDeps) {
  const { recorder, logger, metrics, clock } = deps;

  /** Records a refusal (request and outcome at once); a store failure leaves it standing, unrecorded. */
  async function recordRefusal(request: IncomingRequest, known: Known, stage: StageRefusal): Promise<Refusal> {
    const { error } = stage;
    const decision = stage.decision ?? { effect: 'deny' as const, reason: error.code, message: error.message };
    const start = auditStart(deps, request, known, decision);
    let recorded = true;
    try {
      const message =
        known.principal === undefined ? boundText(error.message, UNAUTHENTICATED_MESSAGE_LIMIT) : error.message;
      await recorder.record(start, {
        status: error.status,
        bytesOut: 0,
        durationMs: clock() - start.time,
        error: message,
      });
    } catch (recordError) {
      // Nothing is forwarded for a refusal, so the refusal still stands; the failure is visible.
      recorded = false;
      logger.error({ requestId: known.requestId, err: detailOf(recordError) }, 'audit: could not record a refusal');
      metrics?.auditFailures.inc();
    }
    return refusalOf(known, stage, recorded, start.decision.reason);
  }

  /** Write before forward: the request's record, or a 503 when the store cannot take it. */
  async function begin(
    request: IncomingRequest,
    known: Known,
    decision: AuditStart['decision'],
  ): Promise<{ ok: true; audit: AuditHandle } | { ok: false; refusal: Refusal }> {
    try {
      return { ok: true, audit: await recorder.begin(auditStart(deps, request, known, decision)) };
    } catch (error) {
      metrics?.auditFailures.inc();
      const hoopError =
        error instanceof HoopError && error.code === 'ERR_AUDIT_UNAVAILABLE'
          ? error
          : new HoopError(
              'ERR_AUDIT_UNAVAILABLE',
              `audit store unavailable, nothing is forwarded unrecorded: ${error instanceof HoopError ? error.message : 'see the gateway log'}`,
              { cause: error },
            );
      logger.error({ requestId: known.requestId, err: detailOf(error) }, 'audit: write before forward failed');
      // Counted without the caller's labels, as before the record existed.
      const anonymous: Known = {
        requestId: known.requestId,
        startedAt: known.startedAt,
        routed: known.routed,
        ...(known.info === undefined ? {} : { info: known.info }),
      };
      return { ok: false, refusal: refusalOf(anonymous, { error: hoopError }, false, hoopError.code) };
    }
  }

  return { recordRefusal, begin };
}

export function refusalOf(known: Known, stage: StageRefusal, recorded: boolean, reason: string): Refusal {
  return {
    error: stage.error,
    requestId: known.requestId,
    recorded,
    cluster: known.routed.cluster,
    verb: known.info?.verb,
    resource: known.info?.resource,
    identity: known.identity?.name,
    subject: known.principal?.subject,
    reason: stage.reason ?? reason,
  };
}
