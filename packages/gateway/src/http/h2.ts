// HTTP/2 beside HTTP/1.1 on the TLS port (issue #13): ALPN offers `h2` and `http/1.1`; kubectl and
// client-go multiplex their calls and watches as streams of one connection, and WebSocket/SPDY upgrades
// (exec, attach, port-forward) stay HTTP/1.1, which client-go asks for by ALPN. HTTP/1.1 connections get
// the same limits as before (header size, header and request timeouts, keep-alive); HTTP/2 sessions get
// their own bounds, below, and are drained with GOAWAY on stop.
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The HTTP/2 bounds; per-client request limits (client-limits.ts) apply to each stream on top. */
export const http2Bounds = {
  /** Streams open at once per connection (Go's server default; client-go opens another connection beyond it). */
  maxConcurrentStreams: 250,
  /** Decoded request header list, as the HTTP/1.1 side's 32 KiB header limit. */
  maxHeaderListSize: 32 * 1024,
  /** A connection with no open stream is closed (GOAWAY) after this long. */
  sessionIdleMs: 30_000,
  /** A request body must have arrived within this long, as the HTTP/1.1 side's requestTimeout. */
  requestBodyMs: 60_000,
  /** nghttp2's memory per session (MB); beyond it new streams are refused with ENHANCE_YOUR_CALM. */
  maxSessionMemoryMb: 10,
} as const;

/** HTTP/1.1 options, as `createListener` gives them to a plain http.Server. */
export interface Http1Options {
  maxHeaderSize: number;
  requestTimeout: number;
  headersTimeout: number;
}

export interface Http2Listener {
  server: Http2SecureServer;
  /** Sends GOAWAY on every session: open streams finish (or are answered by the drain), no new ones start. */
  drainSessions(): void;
}

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

export function createHttp2Listener(
  tls: { cert: string | Buffer; key: string | Buffer },
  http1: Http1Options,
  handler: Handler,
  bounds: Partial<typeof http2Bounds> = {},
): Http2Listener {
  const limits = { ...http2Bounds, ...bounds };
  const server = createSecureServer(
    {
      ...tls,
      allowHTTP1: true,
      // Node 20's own defaults bound the rest: maxSessionInvalidFrames 1000, maxSessionRejectedStreams
      // 100, maxOutstandingPings 10, maxOutstandingSettings 10; nghttp2 1.57+ limits the rate of
      // stream resets (CVE-2023-44487 "rapid reset") and answers a flood with GOAWAY.
      maxSessionMemory: limits.maxSessionMemoryMb,
      maxHeaderListPairs: 128,
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderListSize,
        enablePush: false,
      },
    },
    handler,
  );
  // The HTTP/1.1 side of the same server (allowHTTP1) reads these, as an http.Server would.
  Object.assign(server, {
    maxHeaderSize: http1.maxHeaderSize,
    requestTimeout: http1.requestTimeout,
    headersTimeout: http1.headersTimeout,
    keepAliveTimeout: 5_000,
  });
  // Nagle off, as node's http.Server does by default (noDelay): without it an HTTP/1.1 answer written
  // in two parts waits for the client's delayed ACK, ~40 ms per request at one request at a time.
  server.on('secureConnection', (socket: { setNoDelay(noDelay?: boolean): unknown }) => socket.setNoDelay(true));
  const sessions = new Set<Http2Session>();
  server.on('session', (session) => trackSession(session, sessions, limits));
  server.on('stream', (stream) => boundRequestBody(stream, limits.requestBodyMs));
  return {
    server,
    drainSessions() {
      for (const session of sessions) if (!session.closed) session.close();
    },
  };
}

/** Counts a session's open streams; an idle one (no stream) is closed after `sessionIdleMs` of silence. */
function trackSession(session: Http2Session, sessions: Set<Http2Session>, limits: typeof http2Bounds): void {
  sessions.add(session);
  let open = 0;
  session.on('stream', (stream: ServerHttp2Stream) => {
    open += 1;
    stream.once('close', () => (open -= 1));
  });
  const onIdle = (): void => {
    // A quiet watch is not idle: only a session without streams is closed; otherwise look again later.
    if (open === 0) session.close();
    else session.setTimeout(limits.sessionIdleMs, onIdle);
  };
  session.setTimeout(limits.sessionIdleMs, onIdle);
  // A session error (a protocol violation, a flood answered with GOAWAY) ends that session only.
  session.on('error', () => session.destroy());
  session.once('close', () => sessions.delete(session));
}

/** A request whose body has not fully arrived within `ms` is reset (slow-body clients hold no stream). */
function boundRequestBody(stream: ServerHttp2Stream, ms: number): void {
  if (stream.endAfterHeaders) return;
  const timer = setTimeout(() => {
    if (!stream.closed && stream.state.remoteClose !== 1) stream.close(constants.NGHTTP2_CANCEL);
  }, ms);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}
