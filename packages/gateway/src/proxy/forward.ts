// Streams one request to the API server with undici and hands back the response stream untouched
// (status, headers, body). Aborting the signal (the client went away) closes the upstream request.
// Why undici and not koa-proxies/http-proxy: see README "Why not koa-proxies".
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { ClusterConfig } from '../config/types.js';
import { HoopError } from '../lib/errors.js';

export interface Upstream {
  cluster: string;
  origin: string;
  /** Path prefix of the server URL (e.g. `/k8s/proxy` behind another proxy); usually empty. */
  basePath: string;
  dispatcher: Dispatcher;
  /** TLS settings for raw connections (the upgrade path dials the API server itself). */
  tls: { ca?: string; rejectUnauthorized: boolean };
}

export function createUpstream(cluster: ClusterConfig, options: { ca?: string } = {}): Upstream {
  const url = new URL(cluster.server);
  const ca = options.ca ?? (cluster.caFile === undefined ? undefined : readFileSync(cluster.caFile, 'utf8'));
  const dispatcher = new Agent({
    connect: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: !cluster.insecureSkipTLSVerify },
    keepAliveTimeout: 30_000,
    // Long watches and `logs -f` must never be cut by a body timeout: the client's disconnect ends them.
    bodyTimeout: 0,
    headersTimeout: 60_000,
  });
  const tls = { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: !cluster.insecureSkipTLSVerify };
  return { cluster: cluster.name, origin: url.origin, basePath: url.pathname.replace(/\/$/, ''), dispatcher, tls };
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** undici's body: a Readable that can also be read whole (`arrayBuffer()`). */
  body: Dispatcher.ResponseData['body'];
}

export async function forwardToUpstream(
  upstream: Upstream,
  request: { method: string; path: string; headers: Record<string, string>; body?: Buffer; signal: AbortSignal },
): Promise<UpstreamResponse> {
  try {
    const response = await upstream.dispatcher.request({
      origin: upstream.origin,
      path: upstream.basePath + request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers,
      body: request.body === undefined || request.body.length === 0 ? null : request.body,
      signal: request.signal,
      // A redirect from the API server is relayed, never followed (it could point anywhere).
      maxRedirections: 0,
    } as Dispatcher.RequestOptions);
    // A body the gateway drops unread (HEAD, a refused format) or whose client went away errors
    // with undici's RequestAbortedError; with no listener that error would end the process.
    // Readers (stream.pipeline) attach their own listeners and still see every error.
    response.body.on('error', ignoreDroppedBodyError);
    return { status: response.statusCode, headers: response.headers, body: response.body };
  } catch (error) {
    if (request.signal.aborted) throw new HoopError('ERR_BAD_REQUEST', 'client went away', { cause: error });
    const detail =
      error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
    throw new HoopError(
      'ERR_UPSTREAM_UNREACHABLE',
      `API server of cluster "${upstream.cluster}" (${upstream.origin}) is unreachable: ${detail}`,
      {
        cause: error,
      },
    );
  }
}

function ignoreDroppedBodyError(): void {}

/** Drops an upstream body the gateway will not relay, closing its connection. Never throws. */
export function discardUpstreamBody(body: Readable): void {
  body.on('error', ignoreDroppedBodyError);
  body.destroy();
}
