// The request path and the listener as one lifecycle component: admission, the Kubernetes API route,
// upgrades, the operator routes (/hoop/...), readiness; started by listening, stopped by draining.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ApiRequest } from '../approvals/http-api.js';
import type { ApprovalService } from '../approvals/service.js';
import type { AuditRecorder } from '../audit/recorder.js';
import { extractBearer } from '../authn/bearer.js';
import type { OidcVerifier } from '../authn/oidc-verifier.js';
import { createApprovalsRoute } from '../http/approvals-route.js';
import type { ClientLimits, ScopedVerifier } from '../http/client-limits.js';
import { createKubeRoute } from '../http/kube-route.js';
import { clusterReadiness, oidcReadiness, storeReadiness } from '../http/readiness.js';
import { createHttpApp, createListener } from '../http/server.js';
import { HoopError } from '../lib/errors.js';
import type { Component } from '../lib/lifecycle.js';
import { createAdmitter } from '../pipeline/index.js';
import { createMaskedWriteKeeper } from '../proxy/masked-writes.js';
import { createGatewayMasker } from '../proxy/masking.js';
import { createUpgradeHandler } from '../http/upgrade.js';
import type { SamlService } from '../saml/index.js';
import type { Store } from '../store/index.js';
import type { GatewayContext } from './context.js';
import type { Clusters } from './core.js';
import type { SlackParts } from './slack.js';

export interface HttpParts {
  store: Store;
  clusters: Clusters;
  verifier: OidcVerifier;
  recorder: AuditRecorder;
  approvals: ApprovalService;
  saml: SamlService | undefined;
  slack: SlackParts | undefined;
  /** Per-address limits before authentication (http/client-limits.ts). */
  limits: ClientLimits;
}

export interface Listening {
  server: Server;
  /** GOAWAY to every HTTP/2 session (http/h2.ts). */
  drainSessions(): void;
  url: string;
  port: number;
}

/** The operator API's caller, by the one bearer parser every route uses (no duplicates, no query tokens). */
export function authenticateOperator(verifier: ScopedVerifier) {
  return async (request: ApiRequest) => {
    if (request.raw === undefined)
      throw new HoopError('ERR_UNAUTHENTICATED', 'no bearer token: send Authorization: Bearer <OIDC token>');
    return verifier.verify(extractBearer(request.raw.headers, request.raw.rawHeaders, request.raw.url), request.scope);
  };
}

function createApp(
  ctx: GatewayContext,
  parts: HttpParts,
  tls: { cert: Buffer; key: Buffer } | undefined,
  isDraining: () => boolean,
) {
  const { config, logger, metrics, clock } = ctx;
  const { store, clusters, verifier, recorder, approvals, saml, slack } = parts;
  const masker = createGatewayMasker(config.masking);
  const admitter = createAdmitter({
    config,
    clusters: clusters.byName,
    defaultCluster: clusters.defaultCluster,
    verifier,
    recorder,
    approvals,
    masker,
    logger,
    metrics,
    clock,
  });
  const app = createHttpApp({
    clientLimits: parts.limits.middleware,
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
    approvalsApi: createApprovalsRoute({
      service: approvals,
      authenticate: authenticateOperator(verifier),
      approverGroups: config.approval.approvers.oidcGroups,
    }),
    ...(slack === undefined ? {} : { slackRoute: slack.integration.route }),
    ...(saml === undefined ? {} : { samlRoute: saml.route }),
    readiness: [
      storeReadiness(store),
      oidcReadiness(verifier),
      ...(saml === undefined ? [] : [{ name: 'saml', check: () => saml.check() }]),
      ...[...clusters.byName.values()].map((cluster) => clusterReadiness(cluster.config.name, cluster.upstream)),
    ],
    logger,
    metrics,
    ...(tls === undefined ? {} : { tls }),
    isDraining,
  });
  const upgrade = parts.limits.upgrade(
    createUpgradeHandler({ admitter, recorder, logger, metrics, exec: config.exec, clock }),
  );
  return { app, upgrade };
}

/** Listens on config.listen; `onListening` learns the URL (SAML's issuer is derived from it). */
export function httpComponent(
  ctx: GatewayContext,
  parts: HttpParts,
  onListening: (url: string) => void,
): Component<Listening> {
  const { config, logger } = ctx;
  let draining = false;
  const sockets = new Set<Socket>();
  return {
    name: 'http listener',
    async start() {
      const tls =
        config.listen.tls === undefined
          ? undefined
          : { cert: readFileSync(config.listen.tls.certFile), key: readFileSync(config.listen.tls.keyFile) };
      const { app, upgrade } = createApp(ctx, parts, tls, () => draining);
      const { server, drainSessions } = createListener(app, {
        ...(tls === undefined ? {} : { tls }),
        upgrade,
        http2: config.listen.http2,
      });
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
      const url = `${tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
      onListening(url);
      if (tls === undefined) {
        logger.warn(
          { url },
          'serving plain HTTP: kubectl sends no bearer token to a plain-http server, so put a TLS-terminating proxy in front',
        );
      }
      return { server, url, port, drainSessions };
    },
    /** Stop accepting, answer held approvals 503 (they cannot finish here), let in-flight calls end within the drain timeout. */
    async stop({ server, drainSessions }) {
      draining = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      drainSessions();
      await parts.approvals.shutdown('gateway restarting, run again');
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, config.gateway.drainTimeoutMs).unref());
      await Promise.race([stopped, timeout]);
      for (const socket of sockets) socket.destroy();
    },
  };
}
