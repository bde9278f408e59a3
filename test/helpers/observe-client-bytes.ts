// Test hook: sees every byte a server writes to its clients (after TLS, so plaintext), for the canary
// scan. Wired by the test world onto the gateway's listener; production code has no such seam.
import type { Server } from 'node:http';
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
}
