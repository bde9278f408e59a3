// Composition of one gateway replica from a validated Config, as a list of lifecycle components
// (lib/lifecycle.ts): started in this order, stopped in reverse, and a failed start stops what had
// started. `serve`, `demo` and the tests all build the gateway through startGateway().
import type { Server } from 'node:http';
import type { DestinationStream } from 'pino';
import type { ApprovalNotifier, ApprovalService } from './approvals/service.js';
import type { AuditRecorder } from './audit/recorder.js';
import { createGatewayContext, logFlushComponent } from './compose/context.js';
import {
  approvalsComponent,
  chainJobsComponent,
  clustersComponent,
  recorderComponent,
  samlComponent,
  storeComponent,
  sweepsComponent,
  verifierComponent,
} from './compose/core.js';
import { httpComponent } from './compose/http.js';
import { createClientLimits } from './http/client-limits.js';
import { digestComponent, probesComponent, slackComponent, slackListenerComponent } from './compose/slack.js';
import type { Config } from './config/types.js';
import { createLifecycle } from './lib/lifecycle.js';
import type { Logger } from './lib/logger.js';
import type { GatewayMetrics } from './lib/metrics.js';
import type { Store } from './store/index.js';

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
  /** The listener (tests observe what it writes to clients). */
  server: Server;
  /** The background jobs this replica runs, and how often. */
  jobs: readonly { name: string; everyMs: number }[];
  /** Stop accepting, finish in-flight calls within the drain timeout, answer held approvals 503, close. */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const ctx = createGatewayContext(options);
  const { replicaId, metrics, logger } = ctx;
  const life = createLifecycle(ctx);
  let url = '';
  return life.boot(async () => {
    await life.start(logFlushComponent(ctx));
    const store = await life.start(storeComponent(ctx, options.store));
    const clusters = await life.start(clustersComponent(ctx));
    const probes = await life.start(probesComponent(ctx));
    const slack = await life.start(slackComponent(ctx, { store, probes }));
    const chain = await life.start(chainJobsComponent(ctx, store, slack));
    const digest = await life.start(digestComponent(ctx, slack));
    const recorder = await life.start(recorderComponent(ctx, store));
    const saml = await life.start(samlComponent(ctx, { store, recorder, url: () => url }));
    const limits = createClientLimits(ctx.config.limits, ctx.clock);
    const verifier = await life.start(verifierComponent(ctx, saml, limits));
    const approvals = await life.start(
      approvalsComponent(ctx, {
        store,
        recorder,
        slack,
        notifier: options.notifier,
        pollIntervalMs: options.approvalPollMs,
      }),
    );
    await life.start(slackListenerComponent(slack, approvals));
    const sweeps = await life.start(sweepsComponent(approvals));
    const http = await life.start(
      httpComponent(
        ctx,
        { store, clusters, verifier, recorder, approvals, saml, slack, limits },
        (listening) => (url = listening),
      ),
    );
    const jobs = [chain.checkpointer.schedule, chain.retention, digest, sweeps].flatMap((job) =>
      job === undefined ? [] : [{ name: job.name, everyMs: job.everyMs }],
    );
    logger.info({ url, replicaId, clusters: [...clusters.byName.keys()], store: store.kind }, 'hoopgate listening');
    return {
      url,
      port: http.port,
      replicaId,
      store,
      recorder,
      approvals,
      metrics,
      logger,
      server: http.server,
      jobs,
      close: () => life.stop(),
    };
  });
}
