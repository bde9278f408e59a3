// What the request pipeline hands the audit recorder, and the joined event view that export, replay
// and the Slack timeline read back.

export interface AuditPrincipal {
  issuer: string;
  subject: string;
  email?: string;
  groups: readonly string[];
}

export interface AuditRequestInfo {
  verb: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  isResourceRequest: boolean;
}

export interface AuditDecision {
  effect: 'allow' | 'deny' | 'approve';
  reason: string;
  rule?: string;
  serviceAccount?: string;
  message?: string;
}

export interface AuditStart {
  requestId: string;
  time: number;
  cluster: string;
  /** The mapped identity name; absent before authentication succeeded. */
  identity?: string;
  principal?: AuditPrincipal;
  method: string;
  path: string;
  info?: AuditRequestInfo;
  /** The `Kubectl-Session` header: one kubectl invocation. */
  kubectlSession?: string;
  kubectlCommand?: string;
  userAgent?: string;
  /** X-Hoop-Reason as sent (untrusted text). */
  reason?: string;
  decision: AuditDecision;
  /** Already masked by the caller. */
  requestBody?: string;
  /** A SAML token exchange (`/hoop/v1/token`): never the assertion, only its ID and issuer. */
  exchange?: AuditExchange;
}

export interface AuditExchange {
  grantType: string;
  assertionId?: string;
  idp?: string;
  /** Which element's signature was verified. */
  signed?: 'Assertion' | 'Response';
  /** OAuth error code of a refusal. */
  error?: string;
  tokenExpiresAt?: number;
}

export interface AuditOutcome {
  status: number;
  bytesOut: number;
  durationMs: number;
  upstreamMs?: number;
  approval?: { id: string; state: string; by: string[]; reason?: string };
  /** Already masked by the caller. */
  responseBody?: string;
  error?: string;
  /** Fields of a write that still carried the mask placeholder and kept their stored values (names only). */
  keptMaskedValues?: string[];
}

/** One frame of an exec/attach session, as relayed. */
export interface ExecFrame {
  /** Milliseconds since the epoch. */
  at: number;
  stream: 'stdin' | 'stdout' | 'stderr' | 'error' | 'resize';
  /** UTF-8 text, or base64 when `base64` is set. */
  data: string;
  base64?: boolean;
}

export interface AuditHandle {
  eventId: string;
  sessionId: string;
  /** Queued; retried with backoff and counted on failure, never silently dropped; flushed by close(). */
  complete(outcome: AuditOutcome): void;
}

/** A request joined with its outcome: one line of `audit export`, one row of a replay. */
export interface AuditEvent {
  eventId: string;
  sessionId: string;
  time: string;
  chain: string;
  seq: number;
  hash: string;
  identity?: string;
  cluster: string;
  method: string;
  path: string;
  requestId?: string;
  principal?: AuditPrincipal;
  info?: AuditRequestInfo;
  kubectlSession?: string;
  kubectlCommand?: string;
  userAgent?: string;
  reason?: string;
  decision: AuditDecision;
  requestBody?: string;
  requestBodyBytes?: number;
  requestBodyTruncated?: boolean;
  exchange?: AuditExchange;
  /** Absent while the request is in flight (or when its outcome could not be written). */
  outcome?: AuditOutcome & { time: string; responseBodyBytes?: number; responseBodyTruncated?: boolean };
  /** Exec frames recorded for this event. */
  frames?: number;
}
