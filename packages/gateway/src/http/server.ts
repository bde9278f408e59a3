// The Koa application and the HTTP(S) listener. Only wiring: /hoop/* operator routes, everything
// else is the Kubernetes API route; upgrades (exec/attach/port-forward) go to the upgrade handler.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import Koa from 'koa';
import { createHttp2Listener } from './h2.js';
import { boundPath } from '../pipeline/errors.js';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { sendStatus, statusOnError } from './status.js';
import { holdBodyUntilRead } from './unread-body.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface HttpServerDeps {
  /** Per-client limits (http/client-limits.ts): right after the error middleware, before any route. */
  clientLimits?: Koa.Middleware;
  kubeRoute: Koa.Middleware;
  slackRoute?: Koa.Middleware;
  approvalsApi?: Koa.Middleware;
  /** SAML token exchange and the gateway's issuer metadata (docs/saml.md), when saml is configured. */
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
  // Koa reports errors it catches itself (a stream body that fails mid-way) here; the answer is
  // already cut by then. The detail goes to the log, never to the client.
  app.on('error', (error: unknown) =>
    deps.logger?.debug(
      { err: error instanceof Error ? error.message : String(error) },
      'http: response stream ended early',
    ),
  );
  app.use(statusOnError(deps.logger ?? silentLogger));
  if (deps.clientLimits !== undefined) app.use(deps.clientLimits);
  app.use(hoopRoutes(deps, { readyz }));
  app.use(drainGuard(deps.isDraining));
  app.use(deps.kubeRoute);
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

/** The gateway's own endpoints: everything under /hoop/ (an unknown one is a 404 Status). */
function hoopRoutes(deps: HttpServerDeps, own: { readyz: Koa.Middleware }): Koa.Middleware {
  const exact = new Map<string, Koa.Middleware | undefined>([
    ['/hoop/healthz', healthz],
    ['/hoop/readyz', own.readyz],
    ['/hoop/metrics', deps.metrics === undefined ? undefined : metricsRoute(deps.metrics)],
    ['/hoop/slack/events', deps.slackRoute],
    ['/hoop/v1/token', deps.samlRoute],
  ]);
  const prefixes: readonly [string, Koa.Middleware | undefined][] = [
    ['/hoop/v1/approvals', deps.approvalsApi],
    ['/hoop/v1/grants', deps.approvalsApi],
    ['/hoop/.well-known/', deps.samlRoute],
  ];
  return async function hoopRoutes(ctx, next) {
    const path = ctx.req.url ?? '/';
    if (!path.startsWith('/hoop/')) return next();
    const route = path.split('?')[0] ?? path;
    const handler =
      exact.get(route) ?? prefixes.find(([prefix, h]) => h !== undefined && route.startsWith(prefix))?.[1];
    const notFound = async () =>
      sendStatus(ctx, new HoopError('ERR_NOT_FOUND', `no such gateway endpoint ${boundPath(route)}`));
    // A /hoop/ path never reaches the Kubernetes API route, even when its handler passes it on.
    return handler === undefined ? notFound() : handler(ctx, notFound);
  };
}

/** While draining, the Kubernetes API route answers 503 so clients retry against another replica. */
function drainGuard(isDraining: () => boolean): Koa.Middleware {
  return async function drainGuard(ctx, next) {
    if (isDraining()) return sendStatus(ctx, new HoopError('ERR_SHUTTING_DOWN', 'gateway restarting, run again'));
    return next();
  };
}

async function healthz(ctx: Koa.Context): Promise<void> {
  ctx.type = 'text/plain';
  ctx.body = 'ok';
}

function metricsRoute(metrics: GatewayMetrics): Koa.Middleware {
  return async function metricsRoute(ctx) {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  };
}

const silentLogger = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;

export interface Listener {
  /** The HTTP(S) server; with HTTP/2 on, node's Http2SecureServer (allowHTTP1), typed as the HTTP/1.1 server it also is. */
  server: Server;
  /** Sends GOAWAY to every HTTP/2 session (a stop's drain); nothing to do for HTTP/1.1. */
  drainSessions(): void;
}

export function createListener(
  app: Koa,
  deps: Pick<HttpServerDeps, 'tls' | 'upgrade'> & { http2?: boolean },
): Listener {
  const callback = app.callback();
  // Koa's callback answers every error itself; the returned promise has nothing left to report. A
  // body stays unread (in the kernel, not in memory) until the pipeline reads it, after authentication.
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    holdBodyUntilRead(req);
    void callback(req, res);
  };
  // Headers over 32 KiB get the HTTP layer's 431; watches and held approvals may last long, so no
  // overall request timeout applies to the response (the request itself must arrive in 60 s).
  const options = { maxHeaderSize: 32 * 1024, requestTimeout: 60_000, headersTimeout: 30_000 };
  let listener: Listener;
  if (deps.tls === undefined) listener = { server: createHttpServer(options, handler), drainSessions() {} };
  else if (deps.http2 === false)
    listener = {
      server: createHttpsServer({ ...options, ...deps.tls }, handler) as unknown as Server,
      drainSessions() {},
    };
  else {
    // Koa's callback serves node's HTTP/2 compatibility request/response as it serves HTTP/1.1's.
    const h2 = createHttp2Listener(deps.tls, options, handler as never);
    listener = { server: h2.server as unknown as Server, drainSessions: h2.drainSessions };
  }
  const { server } = listener;
  if (deps.upgrade !== undefined) server.on('upgrade', deps.upgrade);
  else
    server.on('upgrade', (_req, socket: Duplex) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  return listener;
}
