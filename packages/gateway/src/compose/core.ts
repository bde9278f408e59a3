// The parts every replica has, as lifecycle components (lib/lifecycle.ts): the store, the upstream
// clusters, the audit recorder and chain jobs, SAML, the OIDC verifier, the approval service and its sweeps.
import type { ApprovalNotifier, ApprovalService } from '../approvals/service.js';
import { createApprovalService } from '../approvals/service.js';
import { createPostLimiter } from '../approvals/post-limit.js';
import { createRecordedNotifier } from '../approvals/recorded-notifier.js';
import { createCheckpointer, loadSigningKey, type Checkpointer } from '../audit/checkpoint.js';
import { createAuditRecorder, type AuditRecorder } from '../audit/recorder.js';
import { createRetentionJob, type RetentionJob } from '../audit/retention.js';
import { createOidcVerifier, type OidcVerifier } from '../authn/oidc-verifier.js';
import { createAccessReviewer } from '../kube/access-review.js';
import { createClusterClient } from '../kube/cluster-client.js';
import { createServiceAccountTokens } from '../kube/service-account-tokens.js';
import { HoopError } from '../lib/errors.js';
import type { Component } from '../lib/lifecycle.js';
import type { ScheduledJob } from '../lib/scheduled-job.js';
import type { ClientLimits } from '../http/client-limits.js';
import type { ClusterRuntime } from '../pipeline/index.js';
import { createUpstream } from '../proxy/forward.js';
import { createSamlService, type SamlService } from '../saml/index.js';
import { createStore, type Store } from '../store/index.js';
import type { GatewayContext } from './context.js';
import type { SlackParts } from './slack.js';

/** The store; one handed in (tests share one between two replicas) is not closed here. */
export function storeComponent(
  { config, replicaId, clock }: GatewayContext,
  given: Store | undefined,
): Component<Store> {
  return {
    name: 'store',
    start: () => given ?? createStore(config.audit.store, { replicaId, clock }),
    stop: (store) => (given === undefined ? store.close() : undefined),
  };
}

export interface Clusters {
  byName: Map<string, ClusterRuntime>;
  defaultCluster: string;
}

/** Per cluster: the upstream connection pool, the token source and the access reviewer. */
export function clustersComponent({ config, clock, metrics }: GatewayContext): Component<Clusters> {
  return {
    name: 'clusters',
    async start() {
      const byName = new Map<string, ClusterRuntime>();
      for (const cluster of config.clusters) {
        const client = await createClusterClient(cluster);
        byName.set(cluster.name, {
          config: cluster,
          upstream: createUpstream(cluster),
          tokens: createServiceAccountTokens({
            client,
            cluster,
            clock,
            onMint: () => metrics.tokenMints.inc({ cluster: cluster.name }),
          }),
          reviewer: createAccessReviewer({ client, clock }),
        });
      }
      const defaultCluster = config.clusters[0]?.name;
      if (defaultCluster === undefined) throw new HoopError('ERR_CONFIG', 'clusters: at least one cluster is required');
      return { byName, defaultCluster };
    },
    async stop({ byName }) {
      for (const cluster of byName.values()) await cluster.upstream.dispatcher.close().catch(() => undefined);
    },
  };
}

export interface ChainJobs {
  checkpointer: Checkpointer;
  retention: RetentionJob;
}

/**
 * Signed checkpoints of the chain heads, and retention that leaves a signed checkpoint behind (one
 * key for both). Stopping writes a last checkpoint: it comes after the recorder has flushed.
 */
export function chainJobsComponent(
  { config, replicaId, clock, logger }: GatewayContext,
  store: Store,
  slack: SlackParts | undefined,
): Component<ChainJobs> {
  return {
    name: 'audit checkpoints and retention',
    async start() {
      const key = await loadSigningKey(config.audit.checkpoint?.signingKeyFile);
      const witness = slack?.witness(config.audit.checkpoint?.postToSlack === true);
      const checkpointer = createCheckpointer({
        store: store.audit,
        key,
        replicaId,
        clock,
        logger,
        // Tamper evidence by default: without audit.checkpoint the heads are still signed hourly.
        everyMs: config.audit.checkpoint?.everyMs ?? 3_600_000,
        ...(witness === undefined ? {} : { witness }),
      });
      const retention = createRetentionJob({
        store: store.audit,
        key,
        replicaId,
        clock,
        retentionMs: config.audit.retentionMs,
        logger,
      });
      checkpointer.start();
      retention.start();
      return { checkpointer, retention };
    },
    async stop({ checkpointer, retention }) {
      await retention.stop();
      await checkpointer
        .stop()
        .catch((error: unknown) => logger.error({ err: String(error) }, 'audit: final checkpoint failed'));
    },
  };
}

/** Write-before-forward audit records; stopping flushes what is queued (bounded by its close timeout). */
export function recorderComponent(
  { config, replicaId, clock, logger }: GatewayContext,
  store: Store,
): Component<AuditRecorder> {
  return {
    name: 'audit recorder',
    start: () =>
      createAuditRecorder({
        store,
        replicaId,
        clock,
        bodies: config.audit.bodies,
        maxBodyBytes: config.audit.maxBodyBytes,
        sessionIdleMs: config.audit.sessionIdleMs,
        logger,
      }),
    stop: (recorder) =>
      recorder
        .close()
        .catch((error: unknown) => logger.error({ err: String(error) }, 'audit: records lost at shutdown')),
  };
}

/** SAML agents exchange assertions for tokens the gateway issues and verifies itself (docs/saml.md). */
export function samlComponent(
  { config, clock, logger }: GatewayContext,
  deps: { store: Store; recorder: AuditRecorder; url: () => string },
): Component<SamlService | undefined> {
  const saml = config.saml;
  return {
    name: 'saml',
    start: () =>
      saml === undefined
        ? undefined
        : createSamlService(saml, {
            recorder: deps.recorder,
            consumeOnce: (key, expiresAt) => deps.store.consumeOnce(key, expiresAt),
            logger,
            clock,
            url: deps.url,
          }),
    stop: (service) => service?.close(),
  };
}

/** OIDC (and the gateway's own SAML-exchange issuer); discovery runs in the background, readiness reports it. */
/** The OIDC verifier, wrapped by the per-identity limit (http/client-limits.ts) once a token is verified. */
export function verifierComponent(
  { config, clock, logger }: GatewayContext,
  saml: SamlService | undefined,
  limits: ClientLimits,
): Component<OidcVerifier> {
  return {
    name: 'oidc verifier',
    start() {
      const verifier = limits.verifier(
        createOidcVerifier(config.oidc.issuers, {
          clock,
          ...(saml === undefined ? {} : { localIssuers: [saml.localIssuer] }),
        }),
      );
      void verifier
        .ready()
        .catch((error: unknown) =>
          logger.warn({ err: String(error) }, 'oidc: issuer discovery failed; tokens are refused until it succeeds'),
        );
      return verifier;
    },
    stop: (verifier) => verifier.close(),
  };
}

/**
 * The hold/approve/deny/expire service. Every end state joins the audit chain, then reaches Slack (or
 * the demo's terminal); Slack posts are rate-limited per identity, the terminal is not. Held approvals
 * of a replica that went away are cancelled at start.
 */
export function approvalsComponent(
  { config, replicaId, clock, logger, metrics }: GatewayContext,
  deps: {
    store: Store;
    recorder: AuditRecorder;
    slack: SlackParts | undefined;
    notifier: ApprovalNotifier | undefined;
    pollIntervalMs: number | undefined;
  },
): Component<ApprovalService> {
  return {
    name: 'approvals',
    async start() {
      const announce =
        deps.slack === undefined ? deps.notifier : createPostLimiter(deps.slack.integration.notifier, { clock });
      const approvals = createApprovalService({
        repo: deps.store.approvals,
        config: config.approval,
        replicaId,
        clock,
        logger,
        notifier: createRecordedNotifier({ recordOutcome: (record) => deps.recorder.recordApproval(record), announce }),
        ...(deps.pollIntervalMs === undefined ? {} : { pollIntervalMs: deps.pollIntervalMs }),
        onPendingChange: (delta: number) => metrics.pendingApprovals.inc(delta),
      });
      await approvals.cancelOrphans();
      return approvals;
    },
  };
}

/** The expiry sweep of held approvals. */
export function sweepsComponent(approvals: ApprovalService): Component<ScheduledJob<number>> {
  return { name: 'approval sweeps', start: () => approvals.startSweeps(), stop: (sweeps) => sweeps.stop() };
}
