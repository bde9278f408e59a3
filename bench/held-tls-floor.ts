// The HTTP/1.1 floor of the held cell: what an idle TLS connection alone costs the gateway (OpenSSL
// session and buffers, the socket wrap, node's TLSSocket), measured as the RSS growth of a replica
// that holds nothing while `count` handshaken, silent connections are open. A held HTTP/1.1 call
// cannot cost less than this; HTTP/2 streams share a few such connections.
import { connect, type TLSSocket } from 'node:tls';
import { memoryOf } from './children.js';

export interface TlsFloor {
  sockets: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  perSocketKb: number;
}

export async function idleTlsFloor(origin: string, ca: string, count: number, pid: number): Promise<TlsFloor> {
  const url = new URL(origin);
  const before = memoryOf(pid).rssMb;
  const sockets: TLSSocket[] = [];
  // Waves of 250, as the held cell sends them: the listen backlog stays short.
  for (let i = 0; i < count; i += 250) {
    const wave = Array.from(
      { length: Math.min(250, count - i) },
      () =>
        new Promise<TLSSocket>((resolve, reject) => {
          const socket = connect({ host: url.hostname, port: Number(url.port), ca, ALPNProtocols: ['http/1.1'] });
          socket.once('secureConnect', () => resolve(socket));
          socket.once('error', reject);
        }),
    );
    sockets.push(...(await Promise.all(wave)));
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const after = memoryOf(pid).rssMb;
  for (const socket of sockets) socket.destroy();
  return {
    sockets: count,
    rssBeforeMb: before,
    rssAfterMb: after,
    perSocketKb: Math.round(((after - before) * 1024) / Math.max(1, count)),
  };
}
