// The data a request carries through the pipeline (pipeline/index.ts lists the stages in order):
// what arrives, what each stage returns, what an admitted request holds, what a refusal says.
import type { ApprovalService } from '../approvals/service.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { AuditHandle, AuditStart } from '../audit/types.js';
import type { Principal } from '../authn/principal.js';
import type { ClusterConfig, Config, IdentityConfig } from '../config/types.js';
import type { AccessReviewer } from '../kube/access-review.js';
import type { RequestInfo } from '../kube/request-info.js';
import type { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import type { Decision } from '../policy/index.js';
import type { Upstream } from '../proxy/forward.js';
import type { GatewayMasker } from '../proxy/masking.js';
import type { Departure } from '../lib/client-gone.js';

export interface ClusterRuntime {
  config: ClusterConfig;
  upstream: Upstream;
  tokens: { tokenFor(serviceAccount: string): Promise<string> };
  reviewer: AccessReviewer;
}

export interface PipelineDeps {
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
  /**
   * Reads the request body (bounded; throws a HoopError when it is too large). Called only once the
   * caller is authenticated and mapped, so nothing is buffered for an unauthenticated client (#12).
   */
  readBody?: () => Promise<Buffer | undefined>;
  /** Aborted when the client goes away: cancels a held approval. */
  signal: AbortSignal;
  /** The same departure, cheaper to listen to while a call is held (lib/client-gone.ts); else `signal`. */
  leaving?: Departure;
  /** The request object the client limits admitted (its identity slot is held until it ends). */
  scope?: object;
  /**
   * A refusal that applies only once the policy would let the call go on (e.g. an unrecordable
   * SPDY exec): checked after a deny decision, so the caller sees the policy's reason first, and
   * before anything is held for approval.
   */
  refuseIfAllowed?: () => HoopError | undefined;
}

export interface RoutedPath {
  cluster: string;
  path: string;
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
  /** The request body as received (forwarded after the masked-write check). */
  body?: Buffer;
  /** `Warning: 299 - "hoopgate: approved by …"` when an approval let it through. */
  warning?: string;
  approval?: { id: string; state: string; by: string[] };
  /** The gateway's own answer (`kubectl auth can-i`, pipeline/self-review.ts): sent, never forwarded. */
  answer?: { status: number; body: Record<string, unknown> };
}

/** A refusal the pipeline has finished with: recorded (or not, when the store failed), to be answered. */
export interface Refusal {
  error: HoopError;
  requestId: string;
  /** False when the audit store could not take it: the answer then names no Audit-Id. */
  recorded: boolean;
  cluster: string | undefined;
  verb: string | undefined;
  resource: string | undefined;
  /** Who was refused, once known (for the log line; the audit record has it all). */
  identity: string | undefined;
  subject: string | undefined;
  /** The decision reason (`deny-rule`, `rbac-denied` …) or the error code. */
  reason: string;
}

/** What a stage returns when it refuses: the error and, for policy refusals, the decision to record. */
export interface StageRefusal {
  error: HoopError;
  decision?: AuditStart['decision'];
  /** The reason for the log line when it is not the decision's (an approval's end state). */
  reason?: string;
}

/** Every stage's result: the value it adds, or why the request ends here. */
export type Step<T> = ({ ok: true } & T) | { ok: false; refusal: StageRefusal };

export function refused(error: HoopError, decision?: AuditStart['decision']): { ok: false; refusal: StageRefusal } {
  return { ok: false, refusal: decision === undefined ? { error } : { error, decision } };
}
