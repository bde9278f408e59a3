// `--held-h2`: the held cell's requests as HTTP/2 streams (node's http2 client), up to 200 per TLS
// connection (the gateway allows 250 concurrent streams per connection), for a gateway that serves
// h2 by ALPN (issue #13). Held calls then cost a stream each, not a socket and a TLS session each. Against a gateway that speaks only HTTP/1.1 the connection fails
// (no h2 in ALPN) and the bench says so.
import { connect, type ClientHttp2Session } from 'node:http2';

export interface HeldSender {
  /** Sends one GET; resolves with the status when the response headers arrive (-1 on a stream error). */
  send(path: string, headers: Record<string, string>): Promise<number>;
  sessions(): number;
  close(): Promise<void>;
}

/** Streams per connection: under the gateway's 250 concurrent streams per connection. */
const streamsPerSession = 200;

export async function connectH2(origin: string, ca: string): Promise<HeldSender> {
  // The sessions' promises, not the sessions: the sends of one wave are issued in the same tick, and
  // caching only the connected session opened one session per send until the first one connected.
  const sessions: Promise<ClientHttp2Session>[] = [];
  let sent = 0;
  return {
    async send(path, headers) {
      const index = Math.floor(sent / streamsPerSession);
      sent += 1;
      const session = await (sessions[index] ??= openSession(origin, ca));
      return request(session, path, headers);
    },
    /** How many TLS connections carry the streams (reported beside the RSS). */
    sessions: () => sessions.length,
    close: async () => {
      // The gateway may be gone (its release at shutdown is measured): destroy, do not wait for a GOAWAY.
      for (const session of await Promise.allSettled(sessions))
        if (session.status === 'fulfilled') session.value.destroy();
    },
  };
}

async function openSession(origin: string, ca: string): Promise<ClientHttp2Session> {
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
  return session;
}

function request(session: ClientHttp2Session, path: string, headers: Record<string, string>): Promise<number> {
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
}
