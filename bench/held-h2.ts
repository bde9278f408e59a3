// `--held-h2`: the held cell's requests as HTTP/2 streams over one TLS connection (node's http2
// client), for a gateway that serves h2 by ALPN (issue #13). Held calls then cost a stream each, not
// a socket and a TLS session each. Against a gateway that speaks only HTTP/1.1 the connection fails
// (no h2 in ALPN) and the bench says so.
import { connect, type ClientHttp2Session } from 'node:http2';

export interface HeldSender {
  /** Sends one GET; resolves with the status when the response headers arrive (-1 on a stream error). */
  send(path: string, headers: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function connectH2(origin: string, ca: string): Promise<HeldSender> {
  const session: ClientHttp2Session = connect(origin, { ca, settings: { enablePush: false } });
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', (error) =>
      reject(
        new Error(`--held-h2: no HTTP/2 session with ${origin} (does the gateway offer h2 by ALPN?): ${error.message}`),
      ),
    );
  });
  session.on('error', () => undefined);
  return {
    send(path, headers) {
      return new Promise((resolve) => {
        const stream = session.request({ ':method': 'GET', ':path': path, ...headers }, { endStream: true });
        let status = -1;
        stream.once('response', (responseHeaders) => {
          status = Number(responseHeaders[':status']);
          resolve(status);
        });
        stream.on('error', () => resolve(-1));
        stream.on('close', () => resolve(status));
        stream.resume();
      });
    },
    close: () => new Promise((resolve) => session.close(() => resolve())),
  };
}
