// The gateway's request pipeline up to the point of forwarding, shared by the Koa route and the
// upgrade (exec/attach/port-forward) path: route → canonical check → classify → authenticate →
// map identity → decide (deny / require / RBAC / escalate) → record (write before forward) →
// hold for approval → mint the ServiceAccount token. Refusals are recorded too, then thrown.
import { createHash, randomUUID } from 'node:crypto';
import type { ApprovalService } from '../approvals/service.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { AuditHandle, AuditStart } from '../audit/types.js';
import { extractBearer } from '../authn/bearer.js';
import type { Principal } from '../authn/principal.js';
import type { ClusterConfig, Config, IdentityConfig } from '../config/types.js';
import type { AccessReviewer } from '../kube/access-review.js';
import { checkCanonicalPath } from '../kube/canonical-path.js';
import { parseRequestInfo, type RequestInfo } from '../kube/request-info.js';
import { HoopError, assertNever, toHoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { authorizationAttributes, describeRequest, evaluate, mapIdentity, needsRbac, noIdentityDecision, type Decision } from '../policy/index.js';
import type { Upstream } from './forward.js';
import { withoutCredentialQuery } from './mask/credentials.js';
import type { GatewayMasker } from './masking.js';
import { refuseImpersonation, singleHeader } from './headers.js';

export interface ClusterRuntime {
  config: ClusterConfig;
  upstream: Upstream;
  tokens: { tokenFor(serviceAccount: string): Promise<string> };
  reviewer: AccessReviewer;
}

export interface AdmitDeps {
  config: Config;
  clusters: ReadonlyMap<string, ClusterRuntime>;
  defaultCluster: string;
  verifier: { verify(token: string): Promise<Principal> };
  recorder: AuditRecorder;
  approvals?: ApprovalService;
  masker: Pick<GatewayMasker, 'maskRequestBody'>;
  logger: Logger;
  metrics?: GatewayMetrics;
  clock: () => number;
}

export interface IncomingRequest {
  method: string;
  /** Path and query exactly as received. */
  rawUrl: string;
  rawHeaders: readonly string[];
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The request body, if any: only its masked form is ever recorded or shown to approvers. */
  body?: Buffer;
  /** Aborted when the client goes away: cancels a held approval. */
  signal: AbortSignal;
  /**
   * A refusal that applies only once the policy would let the call go on (e.g. an unrecordable
   * SPDY exec): checked after a deny decision, so the caller sees the policy's reason first, and
   * before anything is held for approval.
   */
  refuseIfAllowed?: () => HoopError | undefined;
}

export interface Admission {
  requestId: string;
  startedAt: number;
  cluster: ClusterRuntime;
  /** The path to send upstream: byte for byte the one classified. */
  path: string;
  info: RequestInfo;
  principal: Principal;
  identity: IdentityConfig;
  decision: Decision;
  serviceAccount: string;
  token: string;
  audit: AuditHandle;
  /** `Warning: 299 - "hoopgate: approved by …"` when an approval let it through. */
  warning?: string;
  approval?: { id: string; state: string; by: string[] };
}

/** A refusal already recorded in the audit store; the caller only has to answer it. */
export class RecordedRefusal extends Error {
  readonly cluster: string | undefined;
  readonly verb: string | undefined;
  readonly resource: string | undefined;
  /** Who was refused, once known (for the log line; the audit record has it all). */
  readonly identity: string | undefined;
  readonly subject: string | undefined;
  /** The decision reason (`deny-rule`, `rbac-denied` …) or the error code. */
  readonly reason: string;

  constructor(
    readonly error: HoopError,
    readonly requestId: string,
    context: { cluster?: string; info?: RequestInfo; identity?: string; subject?: string; reason?: string } = {},
  ) {
    super(error.message);
    this.cluster = context.cluster;
    this.verb = context.info?.verb;
    this.resource = context.info?.resource;
    this.identity = context.identity;
    this.subject = context.subject;
    this.reason = context.reason ?? error.code;
  }
}

export interface RoutedPath {
  cluster: string;
  path: string;
}

/** `/k8s/<cluster>/…` addresses a named cluster; every other path is the default cluster's API. */
export function routeCluster(rawUrl: string, clusters: ReadonlyMap<string, unknown>, defaultCluster: string): RoutedPath {
  const match = /^\/k8s\/([^/?]+)(\/[^?]*)?(\?.*)?$/.exec(rawUrl);
  if (match === null) return { cluster: defaultCluster, path: rawUrl };
  const name = match[1] ?? '';
  if (!clusters.has(name)) {
    throw new HoopError('ERR_NOT_FOUND', `no cluster named "${name}" is configured (clusters: ${[...clusters.keys()].join(', ')})`);
  }
  return { cluster: name, path: `${match[2] ?? '/'}${match[3] ?? ''}` };
}

export function createAdmitter(deps: AdmitDeps) {
  const { config, clock, logger } = deps;

  async function decide(identity: IdentityConfig, identityIndex: number, info: RequestInfo, cluster: ClusterRuntime): Promise<Decision> {
    const approvers = config.approval.approvers;
    const base = {
      identity,
      identityIndex,
      info,
      approverNames: [...approvers.slackUsers, ...approvers.slackUserGroups, ...approvers.oidcGroups.map((g) => g.group)],
      ...(config.gateway.namespace === undefined ? {} : { gatewayNamespace: config.gateway.namespace }),
    };
    if (!needsRbac({ ...base, rbac: 'not-asked' })) return evaluate({ ...base, rbac: 'not-asked' });
    const rbac = await cluster.reviewer.review(identity.serviceAccount, authorizationAttributes(info));
    return evaluate({ ...base, rbac });
  }

  function auditStart(
    requestId: string,
    startedAt: number,
    request: IncomingRequest,
    routed: RoutedPath,
    extra: { principal?: Principal; identity?: IdentityConfig; info?: RequestInfo; maskedBody?: string; decision: AuditStart['decision'] },
  ): AuditStart {
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const start: AuditStart = {
      requestId,
      time: startedAt,
      cluster: routed.cluster,
      method: request.method,
      // A refused `?access_token=` keeps no query in the record (nothing else reaches here with one).
      path: withoutCredentialQuery(routed.path),
      decision: extra.decision,
    };
    if (extra.identity !== undefined) start.identity = extra.identity.name;
    if (extra.principal !== undefined) {
      const { issuer, subject, email, groups } = extra.principal;
      start.principal = { issuer, subject, groups, ...(email === undefined ? {} : { email }) };
    }
    if (extra.info !== undefined) start.info = extra.info;
    const session = header('kubectl-session');
    const command = header('kubectl-command');
    const agent = header('user-agent');
    const reason = header('x-hoop-reason');
    if (session !== undefined) start.kubectlSession = session;
    if (command !== undefined) start.kubectlCommand = command;
    if (agent !== undefined) start.userAgent = agent;
    if (reason !== undefined) start.reason = reason;
    if (extra.maskedBody !== undefined && config.audit.bodies) start.requestBody = extra.maskedBody.slice(0, config.audit.maxBodyBytes);
    return start;
  }

  /** Records a refusal (request + outcome at once) and returns the error to answer with. */
  async function refuse(error: HoopError, requestId: string, start: AuditStart, info?: RequestInfo): Promise<RecordedRefusal> {
    try {
      await deps.recorder.record(start, { status: error.status, bytesOut: 0, durationMs: clock() - start.time, error: error.message });
    } catch (recordError) {
      // Nothing is forwarded for a refusal, so the refusal still stands; the failure is visible.
      logger.error({ requestId, err: toHoopError(recordError).message }, 'audit: could not record a refusal');
      deps.metrics?.auditFailures.inc();
    }
    return new RecordedRefusal(error, requestId, {
      cluster: start.cluster,
      ...(info === undefined ? {} : { info }),
      ...(start.identity === undefined ? {} : { identity: start.identity }),
      ...(start.principal === undefined ? {} : { subject: start.principal.subject }),
      reason: start.decision.reason,
    });
  }

  /** Records and returns a refusal decided before admission (e.g. an oversize body). */
  async function reject(request: IncomingRequest, error: HoopError): Promise<RecordedRefusal> {
    const requestId = randomUUID();
    let routed: RoutedPath = { cluster: deps.defaultCluster, path: request.rawUrl };
    try {
      routed = routeCluster(request.rawUrl, deps.clusters, deps.defaultCluster);
    } catch {
      // An unknown cluster is recorded against the default one; the refusal stands either way.
    }
    return refuse(error, requestId, auditStart(requestId, clock(), request, routed, { decision: { effect: 'deny', reason: error.code, message: error.message } }));
  }

  async function admit(request: IncomingRequest): Promise<Admission> {
    const requestId = randomUUID();
    const startedAt = clock();
    let routed: RoutedPath = { cluster: deps.defaultCluster, path: request.rawUrl };
    let principal: Principal | undefined;
    let identity: IdentityConfig | undefined;
    let info: RequestInfo | undefined;
    let maskedBody: string | undefined;
    const refusal = (error: HoopError, decision?: AuditStart['decision']) =>
      refuse(
        error,
        requestId,
        auditStart(requestId, startedAt, request, routed, {
          ...(principal === undefined ? {} : { principal }),
          ...(identity === undefined ? {} : { identity }),
          ...(info === undefined ? {} : { info }),
          ...(maskedBody === undefined ? {} : { maskedBody }),
          decision: decision ?? { effect: 'deny', reason: error.code, message: error.message },
        }),
        info,
      );

    // 1. Shape of the request: refused before anything else reads it.
    try {
      routed = routeCluster(request.rawUrl, deps.clusters, deps.defaultCluster);
      const canonical = checkCanonicalPath(routed.path);
      if (!canonical.ok) throw new HoopError('ERR_NON_CANONICAL_PATH', `refusing non-canonical path: ${canonical.problem}; send the path exactly as the API defines it`);
      info = parseRequestInfo(request.method, routed.path);
      if (request.body !== undefined && request.body.length > 0) {
        const contentType = request.headers['content-type'];
        maskedBody = deps.masker.maskRequestBody(request.body, Array.isArray(contentType) ? contentType[0] : contentType, info);
      }
    } catch (error) {
      throw await refusal(toHoopError(error));
    }
    const cluster = deps.clusters.get(routed.cluster);
    if (cluster === undefined) throw await refusal(new HoopError('ERR_INTERNAL', `cluster ${routed.cluster} has no runtime`));

    // 2. Who is calling.
    try {
      singleHeader(request.rawHeaders, 'x-hoop-reason');
      const token = extractBearer(request.headers as Record<string, string | string[] | undefined>, [...request.rawHeaders], request.rawUrl);
      principal = await deps.verifier.verify(token);
    } catch (error) {
      throw await refusal(toHoopError(error));
    }
    const mapped = mapIdentity(config.identities, principal, routed.cluster);
    if (mapped === null) {
      // Names the cluster when the caller would map to an identity limited to other clusters.
      const refused = noIdentityDecision(config.identities, principal, routed.cluster);
      throw await refusal(new HoopError('ERR_NO_IDENTITY', refused.message), {
        effect: 'deny',
        reason: refused.reason,
        message: refused.message,
        ...(refused.rule === undefined ? {} : { rule: refused.rule }),
      });
    }
    identity = mapped.identity;
    // Refused only now, so the record names who tried (issue #12 item 6).
    try {
      refuseImpersonation(request.rawHeaders);
    } catch (error) {
      throw await refusal(toHoopError(error));
    }

    // 3. The decision.
    let decision: Decision;
    try {
      decision = await decide(identity, mapped.index, info, cluster);
      if (decision.effect === 'approve' && deps.approvals !== undefined) {
        const grant = await deps.approvals.findGrant({ identity: identity.name, issuer: principal.issuer, subject: principal.subject }, routed.cluster, info, clock());
        if (grant !== undefined) {
          decision = {
            effect: 'allow',
            reason: 'grant',
            serviceAccount: grant.serviceAccount,
            rule: `grant ${grant.id}`,
            message: `allowed by a grant from ${grant.grantedBy} until ${new Date(grant.expiresAt).toISOString()}`,
          };
        }
      }
    } catch (error) {
      throw await refusal(toHoopError(error));
    }
    deps.metrics?.decisions.inc({ effect: decision.effect, reason: decision.reason });
    const recordedDecision: AuditStart['decision'] = {
      effect: decision.effect,
      reason: decision.reason,
      message: decision.message,
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      ...(decision.effect === 'deny' ? {} : { serviceAccount: decision.serviceAccount }),
    };

    if (decision.effect !== 'deny') {
      const refusalAfterPolicy = request.refuseIfAllowed?.();
      if (refusalAfterPolicy !== undefined) throw await refusal(refusalAfterPolicy);
    }

    let serviceAccount: string;
    let audit: AuditHandle;
    let warning: string | undefined;
    let approval: Admission['approval'];
    switch (decision.effect) {
      case 'deny':
        throw await refusal(new HoopError('ERR_POLICY_DENIED', decision.message, { details: kubeDetails(info) }), recordedDecision);
      case 'allow':
        serviceAccount = decision.serviceAccount;
        audit = await beginOrRefuse();
        break;
      case 'approve': {
        if (deps.approvals === undefined) {
          throw await refusal(
            new HoopError('ERR_APPROVAL_REQUIRED', `${decision.message} (no approval channel is configured: configure slack or use the approvals API)`, {
              details: kubeDetails(info),
            }),
            recordedDecision,
          );
        }
        audit = await beginOrRefuse();
        let outcome: Awaited<ReturnType<ApprovalService['hold']>>;
        try {
          outcome = await deps.approvals.hold(
          {
            sessionId: audit.sessionId,
            identity: identity.name,
            issuer: principal.issuer,
            subject: principal.subject,
            ...(principal.email === undefined ? {} : { email: principal.email }),
            groups: principal.groups,
            request: {
              cluster: routed.cluster,
              method: request.method,
              path: routed.path,
              verb: info.verb,
              authorizedVerb: authorizationAttributes(info).verb,
              apiGroup: info.apiGroup,
              resource: info.resource,
              subresource: info.subresource,
              namespace: info.namespace,
              name: info.name,
            },
            ...headerField(request, 'kubectl-command', 'kubectlCommand'),
            ...headerField(request, 'x-hoop-reason', 'reason'),
            heldBecause: decision.reason,
            ...(decision.rule === undefined ? {} : { rule: decision.rule }),
            ...(maskedBody === undefined ? {} : { bodySummary: maskedBody.slice(0, 2000) }),
            serviceAccount: decision.serviceAccount,
            fingerprint: requestFingerprint([principal.issuer, principal.subject, identity.name, routed.cluster, request.method, routed.path], request.body),
          },
          request.signal,
        );
        } catch (error) {
          // The hold itself failed (the gateway is shutting down, the store is gone): never forwarded.
          const hoopError = toHoopError(error);
          audit.complete({ status: hoopError.status, bytesOut: 0, durationMs: clock() - startedAt, error: hoopError.message });
          throw new RecordedRefusal(hoopError, requestId, { cluster: routed.cluster, info, identity: identity.name, subject: principal.subject });
        }
        const record = outcome.record;
        approval = { id: record.id, state: outcome.state, by: record.votes.map((v) => v.label) };
        deps.metrics?.approvalOutcomes.inc({ state: outcome.state });
        if (outcome.state !== 'approved') {
          const error = approvalRefusal(outcome.state, record, describeRequest(info));
          audit.complete({ status: error.status, bytesOut: 0, durationMs: clock() - startedAt, approval, error: error.message });
          throw new RecordedRefusal(error, requestId, { cluster: routed.cluster, info, identity: identity.name, subject: principal.subject, reason: outcome.state });
        }
        serviceAccount = decision.serviceAccount;
        const who = record.votes.map((v) => v.label).join(', ') || record.decidedBy || 'unknown';
        warning = `299 - "hoopgate: approved by ${who.replace(/["\\]/g, '')} (${record.id})"`;
        break;
      }
      default:
        assertNever(decision, 'decision');
    }

    // 4. The ServiceAccount's short-lived token.
    let token: string;
    try {
      token = await cluster.tokens.tokenFor(serviceAccount);
    } catch (error) {
      const hoopError = toHoopError(error);
      audit.complete({ status: hoopError.status, bytesOut: 0, durationMs: clock() - startedAt, error: hoopError.message, ...(approval === undefined ? {} : { approval }) });
      throw new RecordedRefusal(hoopError, requestId, { cluster: routed.cluster, info, identity: identity.name, subject: principal.subject });
    }
    return {
      requestId,
      startedAt,
      cluster,
      path: routed.path,
      info,
      principal,
      identity,
      decision,
      serviceAccount,
      token,
      audit,
      ...(warning === undefined ? {} : { warning }),
      ...(approval === undefined ? {} : { approval }),
    };

    async function beginOrRefuse(): Promise<AuditHandle> {
      try {
        return await deps.recorder.begin(
          auditStart(requestId, startedAt, request, routed, {
            principal,
            identity,
            info,
            ...(maskedBody === undefined ? {} : { maskedBody }),
            decision: recordedDecision,
          }),
        );
      } catch (error) {
        deps.metrics?.auditFailures.inc();
        const hoopError =
          error instanceof HoopError && error.code === 'ERR_AUDIT_UNAVAILABLE'
            ? error
            : new HoopError('ERR_AUDIT_UNAVAILABLE', `audit store unavailable, nothing is forwarded unrecorded: ${toHoopError(error).message}`, { cause: error });
        logger.error({ requestId, err: hoopError.message }, 'audit: write before forward failed');
        throw new RecordedRefusal(hoopError, requestId, { cluster: routed.cluster, ...(info === undefined ? {} : { info }) });
      }
    }
  }

  return { admit, reject };
}

export type Admitter = ReturnType<typeof createAdmitter>;

/** Identical requests (same principal, identity, call and body) share one approval. */
function requestFingerprint(parts: readonly string[], body: Buffer | undefined): string {
  const bodyHash = createHash('sha256').update(body ?? Buffer.alloc(0)).digest('hex');
  return createHash('sha256').update(JSON.stringify([...parts, bodyHash])).digest('hex');
}

function headerField<K extends string>(request: IncomingRequest, header: string, key: K): Partial<Record<K, string>> {
  const value = request.headers[header];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? {} : ({ [key]: first } as Partial<Record<K, string>>);
}

function kubeDetails(info: RequestInfo): Record<string, unknown> | undefined {
  if (!info.isResourceRequest) return undefined;
  return { ...(info.name === '' ? {} : { name: info.name }), group: info.apiGroup, kind: info.resource };
}

function approvalRefusal(state: 'denied' | 'expired' | 'cancelled', record: { id: string; decidedBy?: string; decisionReason?: string; expiresAt: number; createdAt: number }, what: string): HoopError {
  switch (state) {
    case 'denied':
      return new HoopError(
        'ERR_APPROVAL_DENIED',
        `${what} was denied by ${record.decidedBy ?? 'an approver'}${record.decisionReason ? `: ${record.decisionReason}` : ''} (approval ${record.id})`,
      );
    case 'expired':
      return new HoopError(
        'ERR_APPROVAL_EXPIRED',
        `${what} was not approved within ${Math.round((record.expiresAt - record.createdAt) / 1000)}s (approval ${record.id} timed out); ask an approver and run it again`,
      );
    case 'cancelled':
      return new HoopError('ERR_APPROVAL_CANCELLED', `${what}: approval ${record.id} was cancelled (the requester disconnected or the gateway restarted); run it again`);
    default:
      return assertNever(state, 'approval state');
  }
}
