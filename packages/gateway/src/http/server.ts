// The Koa application and the HTTP(S) listener. Only wiring: /hoop/* operator routes, everything
// else is the Kubernetes API route; upgrades (exec/attach/port-forward) go to the upgrade handler.
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import Koa from 'koa';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { sendStatus } from './kube-route.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface HttpServerDeps {
  /** Per-client limits (http/client-limits.ts), before anything else. */
  clientLimits?: Koa.Middleware;
  kubeRoute: Koa.Middleware;
  slackRoute?: Koa.Middleware;
  approvalsApi?: Koa.Middleware;
  /** SAML token exchange and the gateway's issuer metadata (CONTRACT §9), when saml is configured. */
  samlRoute?: Koa.Middleware;
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readiness: readonly ReadinessCheck[];
  metrics?: GatewayMetrics;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Where readyz details go (the HTTP answer only says ready or not). */
  logger?: Logger;
  /** While draining, readyz fails and new requests get 503 so the load balancer moves on. */
  isDraining: () => boolean;
}

export function createHttpApp(deps: HttpServerDeps): Koa {
  const app = new Koa();
  app.silent = true;
  if (deps.clientLimits !== undefined) app.use(deps.clientLimits);
  app.use(async (ctx, next) => {
    const path = ctx.req.url ?? '/';
    if (!path.startsWith('/hoop/')) {
      if (deps.isDraining()) return sendStatus(ctx, new HoopError('ERR_SHUTTING_DOWN', 'gateway restarting, run again'));
      return deps.kubeRoute(ctx, next);
    }
    const route = path.split('?')[0] ?? path;
    if (route === '/hoop/healthz') {
      ctx.type = 'text/plain';
      ctx.body = 'ok';
      return;
    }
    if (route === '/hoop/readyz') return readyz(ctx);
    if (route === '/hoop/metrics' && deps.metrics !== undefined) {
      ctx.type = deps.metrics.registry.contentType;
      ctx.body = await deps.metrics.registry.metrics();
      return;
    }
    if (route === '/hoop/slack/events' && deps.slackRoute !== undefined) return deps.slackRoute(ctx, next);
    if ((route.startsWith('/hoop/v1/approvals') || route.startsWith('/hoop/v1/grants')) && deps.approvalsApi !== undefined) return deps.approvalsApi(ctx, next);
    if ((route === '/hoop/v1/token' || route.startsWith('/hoop/.well-known/')) && deps.samlRoute !== undefined) return deps.samlRoute(ctx, next);
    return sendStatus(ctx, new HoopError('ERR_NOT_FOUND', `no such gateway endpoint ${route}`));
  });

  async function readyz(ctx: Koa.Context): Promise<void> {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          await check();
          return `[+]${name} ok`;
        } catch (error) {
          return `[-]${name} failed: ${error instanceof Error ? error.message : String(error)}`;
        }
      }),
    );
    if (deps.isDraining()) results.push('[-]draining: gateway is shutting down');
    const ok = results.every((line) => line.startsWith('[+]'));
    reportReadiness(ok, results);
    // Anyone may probe: the answer says ready or not, nothing about upstreams, the IdP or the store.
    ctx.status = ok ? 200 : 503;
    ctx.type = 'text/plain';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = `${ok ? 'readyz check passed' : 'readyz check failed'}\n`;
  }

  /** The details go to the log: when they change, and at most once a minute while they stay the same. */
  let lastReport = { text: '', at: Number.NEGATIVE_INFINITY };
  function reportReadiness(ok: boolean, results: readonly string[]): void {
    if (deps.logger === undefined) return;
    const text = ok ? '' : results.filter((line) => line.startsWith('[-]')).join('; ');
    const now = Date.now();
    if (text === lastReport.text && (ok || now - lastReport.at < 60_000)) return;
    if (ok) deps.logger.info({ checks: results }, 'readyz: ready again');
    else deps.logger.warn({ checks: results }, `readyz: not ready: ${text}`);
    lastReport = { text, at: now };
  }

  return app;
}

export function createListener(app: Koa, deps: Pick<HttpServerDeps, 'tls' | 'upgrade'>): Server {
  const handler = app.callback();
  // Headers over 32 KiB get the HTTP layer's 431; watches and held approvals may last long, so no
  // overall request timeout applies to the response (the request itself must arrive in 60 s).
  const options = { maxHeaderSize: 32 * 1024, requestTimeout: 60_000, headersTimeout: 30_000 };
  const server: Server =
    deps.tls === undefined ? createHttpServer(options, handler) : (createHttpsServer({ ...options, ...deps.tls }, handler) as unknown as Server);
  if (deps.upgrade !== undefined) server.on('upgrade', deps.upgrade);
  else server.on('upgrade', (_req, socket: Duplex) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  return server;
}
