// A refusal answered before the request's body was read closes the connection (#12): the gateway
// neither buffers nor drains a body it has refused (an unauthenticated client may declare 3 MiB and
// stall, or stream it for ever). As Go's net/http server does for an unread body over 256 KB
// (`closeWriteAndWait`), the answer goes out with `Connection: close`, the write side is closed, and
// the socket is destroyed only after a short delay: a client still sending its body reads the answer
// before the reset that closing a socket with unread input sends.
import type { Socket } from 'node:net';
import type Koa from 'koa';

/**
 * How long a refused client has to read its answer before the socket is destroyed (Go waits 500 ms;
 * a busy client may take longer). Paused meanwhile, a socket costs its descriptor and TLS state.
 */
export const LINGER_MS = 2000;

/** Marks a refusal to end its connection when the request's body has not been (fully) read. */
export function closeIfBodyUnread(ctx: Koa.Context): void {
  const req = ctx.req;
  if (req.httpVersionMajor !== 1 || req.complete) return;
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return;
  ctx.set('Connection', 'close');
  lingerOnClose(req.socket);
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
