// A refusal answered before the request's body was read closes the connection (#12): the gateway
// neither buffers nor drains a body it has refused (an unauthenticated client may declare 3 MiB and
// stall, or stream it for ever). As Go's net/http server does for an unread body over 256 KB
// (`closeWriteAndWait`), the answer goes out with `Connection: close`, the write side is closed, and
// the socket is destroyed only after a short delay: a client still sending its body then reads the
// answer instead of a connection reset.
import type { Socket } from 'node:net';
import type Koa from 'koa';

/** How long a refused client has to read its answer before the socket is destroyed. */
export const LINGER_MS = 1000;

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
 * destroy once written); here destroy waits LINGER_MS after the end, reading and discarding meanwhile.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function destroySoon(this: Socket) {
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}
