// Test hook: sees every byte a server writes to its clients (after TLS, so plaintext), for the canary
// scan. Wired by the test world onto the gateway's listener; production code has no such seam.
// HTTP/2 frames are written by nghttp2, not through socket.write, and their headers are HPACK-coded,
// so HTTP/2 responses are seen per stream instead: the headers as given, the body as written.
import type { Server } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

export function observeClientBytes(server: Server, observe: (chunk: Buffer | string) => void): void {
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
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
  // Before the compatibility layer's own listener, so that no write of the handler is missed.
  server.prependListener('stream' as never, (stream: ServerHttp2Stream) => {
    const respond = stream.respond.bind(stream);
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    const end = stream.end.bind(stream) as (...args: unknown[]) => typeof stream;
    stream.respond = ((headers, ...rest) => {
      observe(JSON.stringify(headers ?? {}));
      return respond(headers, ...rest);
    }) as typeof stream.respond;
    stream.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
      observe(chunk);
      return write(chunk, ...rest);
    }) as typeof stream.write;
    stream.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) observe(chunk);
      return end(chunk, ...rest);
    }) as typeof stream.end;
  });
}
