// A refusal answered before the request's body was read closes the connection (#12): the gateway
// neither buffers nor drains a body it has refused (an unauthenticated client may declare 3 MiB and
// stall, or stream it for ever). As Go's net/http server does for an unread body over 256 KB
// (`closeWriteAndWait`), the answer goes out with `Connection: close`, the write side is closed, and
// the socket is destroyed only after a short delay: a client still sending its body reads the answer
// before the reset that closing a socket with unread input sends.
// Until then, an HTTP/1.1 request's body stays in the kernel: the socket is paused when the request
// arrives (holdBodyUntilRead) and resumes only when someone reads the request, after authentication.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type Koa from 'koa';

/**
 * How long a refused client has to read its answer before the socket is destroyed (Go waits 500 ms;
 * a busy client may take longer). Paused meanwhile, a socket costs its descriptor and TLS state.
 */
export const LINGER_MS = 2000;

/** An HTTP/1.1 request that declares a body it has not fully sent yet (HTTP/2 streams have flow control). */
function bodyPending(req: IncomingMessage): boolean {
  if (req.httpVersionMajor !== 1 || req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Stops reading a request's connection until the request itself is read (#12): node would otherwise
 * go on reading, decrypting and buffering its body (tens of KiB per connection) while the gateway
 * authenticates the caller. Reading the request (a body read after authentication, a route's body
 * parser) resumes the socket; so does node when it discards the body of an answered request.
 */
export function holdBodyUntilRead(req: IncomingMessage): void {
  if (bodyPending(req)) req.socket.pause();
}

/** Marks a refusal to end its connection when the request's body has not been (fully) read. */
export function closeIfBodyUnread(ctx: Koa.Context): void {
  if (!bodyPending(ctx.req)) return;
  ctx.set('Connection', 'close');
  lingerOnClose(ctx.req.socket);
}

/**
 * Node's HTTP server ends a `Connection: close` response's socket with destroySoon() (end, then
 * destroy once written); here destroy waits LINGER_MS after the end, and nothing more is read
 * meanwhile: Node resumed the request to discard its body (on the next tick), the socket is paused
 * after that, so an endless body is neither drained nor decrypted.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function destroySoon(this: Socket) {
    if (this.writable) this.end();
    setImmediate(() => this.pause());
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}
