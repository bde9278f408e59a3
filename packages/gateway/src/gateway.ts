// Composition of one gateway replica from a validated Config: store, recorder, OIDC verifier,
// per-cluster upstreams and token sources, masker, approvals, Slack, HTTP listener, scheduled jobs.
// `serve`, `demo` and the tests all build the gateway through startGateway().
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import { createApprovalsApi } from './approvals/http-api.js';
import { createPostLimiter } from './approvals/post-limit.js';
import { createApprovalService, type ApprovalNotifier, type ApprovalService } from './approvals/service.js';
import { createCheckpointer, loadSigningKey } from './audit/checkpoint.js';
import { createAuditReader } from './audit/reader.js';
import { createAuditRecorder, type AuditRecorder } from './audit/recorder.js';
import { createRetentionJob } from './audit/retention.js';
import { createOidcVerifier } from './authn/oidc-verifier.js';
import type { Config } from './config/types.js';
import { createKubeRoute } from './http/kube-route.js';
import { createSamlService } from './saml/index.js';
import { createClientLimits } from './http/client-limits.js';
import { createHttpApp, createListener, type ReadinessCheck } from './http/server.js';
import { createAccessReviewer } from './kube/access-review.js';
import { createClusterClient } from './kube/cluster-client.js';
import { createServiceAccountTokens } from './kube/service-account-tokens.js';
import { HoopError } from './lib/errors.js';
import { createLogger, type Logger } from './lib/logger.js';
import { createMetrics, type GatewayMetrics } from './lib/metrics.js';
import { createAdmitter, type ClusterRuntime } from './proxy/admit.js';
import { createUpstream } from './proxy/forward.js';
import { createMaskedWriteKeeper } from './proxy/masked-writes.js';
import { createGatewayMasker } from './proxy/masking.js';
import { createUpgradeHandler } from './proxy/upgrade.js';
import { createStore, type Store } from './store/index.js';

export interface GatewayOptions {
  config: Config;
  /** Where JSON logs go (tests capture them for the canary scan). */
  logDestination?: DestinationStream;
  logger?: Logger;
  clock?: () => number;
  replicaId?: string;
  /** An already open store (tests share one between two replicas). */
  store?: Store;
  approvalPollMs?: number;
  /** Sees every byte the gateway writes to a client socket (tests scan it for leaked canaries). */
  observeClientBytes?: (chunk: Buffer | string) => void;
  /** Where held requests are announced when Slack is not configured (the demo's terminal). */
  notifier?: ApprovalNotifier;
}

export interface Gateway {
  url: string;
  port: number;
  replicaId: string;
  store: Store;
  recorder: AuditRecorder;
  approvals: ApprovalService;
  metrics: GatewayMetrics;
  logger: Logger;
  /** The background jobs this replica runs, and how often. */
  jobs: readonly { name: string; everyMs: number }[];
  /** Stop accepting, finish in-flight calls within the drain timeout, answer held approvals 503, close. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const clock = options.clock ?? Date.now;
  const replicaId = options.replicaId ?? `hoopgate-${randomUUID().slice(0, 8)}`;
  const logger = options.logger ?? createLogger(options.logDestination === undefined ? {} : { destination: options.logDestination });
  const metrics = createMetrics();

  const ownsStore = options.store === undefined;
  const store = options.store ?? (await createStore(config.audit.store, { replicaId, clock }));
  const recorder = createAuditRecorder({
    store,
    replicaId,
    clock,
    bodies: config.audit.bodies,
    maxBodyBytes: config.audit.maxBodyBytes,
    sessionIdleMs: config.audit.sessionIdleMs,
    logger,
  });

  // SAML agents exchange assertions for tokens the gateway issues and verifies itself (CONTRACT §9).
  let url = '';
  const saml = config.saml === undefined ? undefined : await createSamlService(config.saml, { recorder, consumeOnce: (key, expiresAt) => store.consumeOnce(key, expiresAt), logger, clock, url: () => url });
  // Per-address limits before authentication, per-identity limits once the token is verified (issue #12).
  const limits = createClientLimits(config.limits, clock);
  const verifier = limits.verifier(createOidcVerifier(config.oidc.issuers, { clock, ...(saml === undefined ? {} : { localIssuers: [saml.localIssuer] }) }));
  void verifier.ready().catch((error: unknown) => logger.warn({ err: String(error) }, 'oidc: issuer discovery failed; tokens are refused until it succeeds'));

  const clusters = new Map<string, ClusterRuntime>();
  for (const cluster of config.clusters) {
    const client = await createClusterClient(cluster);
    clusters.set(cluster.name, {
      config: cluster,
      upstream: createUpstream(cluster),
      tokens: createServiceAccountTokens({ client, cluster, clock, onMint: () => metrics.tokenMints.inc({ cluster: cluster.name }) }),
      reviewer: createAccessReviewer({ client, clock }),
    });
  }
  const defaultCluster = config.clusters[0]?.name;
  if (defaultCluster === undefined) throw new HoopError('ERR_CONFIG', 'clusters: at least one cluster is required');

  // Least-privilege summaries (issue #8): `/hoop privileges` and the weekly digest, for the default cluster.
  // Slack (@slack/bolt, ~36 MB resident) loads only when configured.
  const slackModules = config.slack === undefined ? undefined : await loadSlackModules();
  const privileges = config.slack === undefined || slackModules === undefined ? undefined : await slackModules.createGatewayPrivileges({ identities: config.identities, cluster: config.clusters[0]!, store: store.audit, clock, logger });
  const slack =
    config.slack === undefined || slackModules === undefined
      ? undefined
      : slackModules.createSlackIntegration({ slack: config.slack, approval: config.approval, audit: { ...createAuditReader(store), ...(privileges === undefined ? {} : { privileges: privileges.source.view }) }, logger, clock });
  // Every end state of a held request joins the audit chain, then reaches Slack (or the terminal).
  // Slack posts are rate-limited per identity (approvals/post-limit.ts); the demo's terminal is not.
  const announce = slack === undefined ? options.notifier : createPostLimiter(slack.notifier, { clock });
  const notifier: ApprovalNotifier = {
    posted: async (record) => announce?.posted(record),
    finalize: async (record) => {
      recorder.recordApproval(record);
      await announce?.finalize(record);
    },
    ...(announce?.threadReply === undefined ? {} : { threadReply: announce.threadReply.bind(announce) }),
  };
  const approvals = createApprovalService({
    repo: store.approvals,
    config: config.approval,
    replicaId,
    clock,
    logger,
    notifier,
    ...(options.approvalPollMs === undefined ? {} : { pollIntervalMs: options.approvalPollMs }),
    onPendingChange: (delta: number) => metrics.pendingApprovals.inc(delta),
  });
  await approvals.cancelOrphans();
  slack?.bindService(approvals);
  await slack?.start();

  // Signed checkpoints of the chain heads, and retention that leaves a signed checkpoint behind.
  const signingKey = await loadSigningKey(config.audit.checkpoint?.signingKeyFile);
  const checkpointer = createCheckpointer({
    store: store.audit,
    key: signingKey,
    replicaId,
    clock,
    logger,
    // Tamper evidence by default: without audit.checkpoint the heads are still signed hourly.
    everyMs: config.audit.checkpoint?.everyMs ?? 3_600_000,
    ...(slack !== undefined && slackModules !== undefined && config.slack !== undefined && config.audit.checkpoint?.postToSlack === true
      ? { witness: slackModules.createCheckpointWitness(slack.app.client, config.slack) }
      : {}),
  });
  const retention = createRetentionJob({ store: store.audit, key: signingKey, replicaId, clock, retentionMs: config.audit.retentionMs, logger });
  checkpointer.start();
  retention.start();
  const digest = slack !== undefined && config.slack !== undefined ? privileges?.startDigest(slack.app.client, config.slack.channel) : undefined;

  const masker = createGatewayMasker(config.masking);
  const admitter = createAdmitter({ config, clusters, defaultCluster, verifier, recorder, approvals, masker, logger, metrics, clock });

  let draining = false;
  const readiness: ReadinessCheck[] = [
    { name: 'store', check: () => store.ping() },
    {
      name: 'oidc',
      check: async () => {
        const failing = verifier.status().filter((s) => !s.ok);
        if (failing.length > 0) throw new Error(failing.map((s) => `${s.issuer}: ${s.error ?? 'not discovered'}`).join('; '));
      },
    },
    ...(saml === undefined ? [] : [{ name: 'saml', check: () => saml.check() }]),
    ...[...clusters.values()].map((cluster) => ({
      name: `cluster ${cluster.config.name}`,
      check: async () => {
        const response = await cluster.upstream.dispatcher.request({ origin: cluster.upstream.origin, path: `${cluster.upstream.basePath}/readyz`, method: 'GET' });
        await response.body.dump();
        if (response.statusCode >= 500) throw new Error(`API server answered ${response.statusCode}`);
      },
    })),
  ];

  const tls = config.listen.tls === undefined ? undefined : { cert: readFileSync(config.listen.tls.certFile), key: readFileSync(config.listen.tls.keyFile) };
  const app = createHttpApp({
    clientLimits: limits.middleware,
    kubeRoute: createKubeRoute({
      admitter,
      masker,
      writes: createMaskedWriteKeeper(config.masking),
      logger,
      metrics,
      maxBodyBytes: config.gateway.maxBodyBytes,
      auditBodies: config.audit.bodies,
      maxAuditBodyBytes: config.audit.maxBodyBytes,
      clock,
    }),
    approvalsApi: createApprovalsApi({
      service: approvals,
      authenticate: async (ctx: import('koa').Context) => verifier.verify(bearerOf(ctx.get('authorization'))),
      approverGroups: config.approval.approvers.oidcGroups,
    }),
    ...(slack === undefined ? {} : { slackRoute: slack.route }),
    ...(saml === undefined ? {} : { samlRoute: saml.route }),
    readiness,
    logger,
    metrics,
    ...(tls === undefined ? {} : { tls }),
    isDraining: () => draining,
  });
  const upgrade = limits.upgrade(createUpgradeHandler({ admitter, recorder, logger, metrics, exec: config.exec, clock }));
  const server = createListener(app, { ...(tls === undefined ? {} : { tls }), upgrade });

  const observe = options.observeClientBytes;
  if (observe !== undefined) {
    server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: import('node:net').Socket) => {
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      const end = socket.end.bind(socket) as (...args: unknown[]) => typeof socket;
      socket.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
        observe(chunk);
        return write(chunk, ...rest);
      }) as typeof socket.write;
      socket.end = ((chunk?: unknown, ...rest: unknown[]) => {
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) observe(chunk);
        return end(chunk, ...rest);
      }) as typeof socket.end;
    });
  }
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
  url = `${tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (tls === undefined) {
    logger.warn({ url }, 'serving plain HTTP: kubectl sends no bearer token to a plain-http server, so put a TLS-terminating proxy in front');
  }
  const sweeps = approvals.startSweeps();
  const jobs = [checkpointer.schedule, retention, digest, sweeps].flatMap((job) => (job === undefined ? [] : [{ name: job.name, everyMs: job.everyMs }]));
  logger.info({ url, replicaId, clusters: [...clusters.keys()], store: store.kind }, 'hoopgate listening');

  let closed: Promise<void> | undefined;
  async function close(): Promise<void> {
    closed ??= (async () => {
      draining = true;
      // Not awaited here: a sweep under way must not delay the drain; it ends before the store closes.
      const sweepsStopped = sweeps.stop();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Held approvals cannot finish on a replica that is going away: answer them 503, update Slack.
      await approvals.shutdown('gateway restarting, run again');
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, config.gateway.drainTimeoutMs).unref());
      await Promise.race([stopped, timeout]);
      for (const socket of sockets) socket.destroy();
      await recorder.close().catch((error: unknown) => logger.error({ err: String(error) }, 'audit: records lost at shutdown'));
      await sweepsStopped;
      await retention.stop();
      await privileges?.close().catch((error: unknown) => logger.warn({ err: String(error) }, 'least-privilege digest: close failed'));
      await checkpointer.stop().catch((error: unknown) => logger.error({ err: String(error) }, 'audit: final checkpoint failed'));
      for (const cluster of clusters.values()) await cluster.upstream.dispatcher.close().catch(() => undefined);
      await slack?.close();
      await verifier.close();
      await saml?.close();
      if (ownsStore) await store.close();
    })();
    return closed;
  }

  return { url, port, replicaId, store, recorder, approvals, metrics, logger, jobs, close };
}

function bearerOf(header: string): string {
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (match === null) throw new HoopError('ERR_UNAUTHENTICATED', 'missing bearer token: send Authorization: Bearer <OIDC token>');
  return match[1] ?? '';
}

async function loadSlackModules() {
  const [app, digest, witness] = await Promise.all([import('./slack/app.js'), import('./slack/digest.js'), import('./slack/witness.js')]);
  return { createSlackIntegration: app.createSlackIntegration, createGatewayPrivileges: digest.createGatewayPrivileges, createCheckpointWitness: witness.createCheckpointWitness };
}
