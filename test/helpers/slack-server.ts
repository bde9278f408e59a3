// A local Slack Web API on loopback: records every call (method, parsed body) and answers like Slack
// for the methods hoopgate uses; also receives `response_url` posts at /response/<id>.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SlackConfig } from '../../packages/gateway/src/config/types.js';

export interface SlackCall {
  method: string;
  body: Record<string, unknown>;
  token?: string;
}

export interface LocalSlackServer {
  /** `http://127.0.0.1:PORT/api/` — give it to slack.apiUrl. */
  apiUrl: string;
  calls: SlackCall[];
  /** Slack user id → profile email for users.info. */
  emails: Map<string, string>;
  /** User group id → member ids for usergroups.users.list. */
  groups: Map<string, string[]>;
  /** Methods that answer `{ ok: false, error: 'fatal_error' }`. */
  failing: Set<string>;
  responseUrl(id: string): string;
  callsTo(method: string): SlackCall[];
  waitFor(method: string, count?: number, timeoutMs?: number): Promise<SlackCall[]>;
  close(): Promise<void>;
}

/** WebClient sends form-encoded bodies with objects as JSON strings; decode both forms. */
function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType.startsWith('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    if (/^[[{]/.test(value)) {
      try {
        out[key] = JSON.parse(value);
        continue;
      } catch {
        // plain string after all
      }
    }
    out[key] = value;
  }
  return out;
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startSlackServer(): Promise<LocalSlackServer> {
  const calls: SlackCall[] = [];
  const emails = new Map<string, string>();
  const groups = new Map<string, string[]>();
  const failing = new Set<string>();
  let counter = 0;
  const nextTs = (): string => `${Math.floor(Date.now() / 1000)}.${String(++counter).padStart(6, '0')}`;

  function answer(method: string, body: Record<string, unknown>): Record<string, unknown> {
    if (failing.has(method)) return { ok: false, error: 'fatal_error' };
    switch (method) {
      case 'auth.test':
        return { ok: true, user_id: 'UBOT', bot_id: 'BBOT', team_id: 'T1' };
      case 'chat.postMessage':
        // As Slack answers: the message names the workspace and the app that posted it.
        return {
          ok: true,
          channel: body['channel'],
          ts: nextTs(),
          message: { text: body['text'], team: 'T1', app_id: 'A1', bot_profile: { app_id: 'A1', team_id: 'T1' } },
        };
      case 'chat.update':
        return { ok: true, channel: body['channel'], ts: body['ts'], text: body['text'] };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: nextTs() };
      case 'users.info': {
        const user = String(body['user']);
        const email = emails.get(user);
        return {
          ok: true,
          user: { id: user, name: user.toLowerCase(), profile: email === undefined ? {} : { email } },
        };
      }
      case 'usergroups.users.list':
        return { ok: true, users: groups.get(String(body['usergroup'])) ?? [] };
      case 'views.open':
        return { ok: true, view: { id: `V${++counter}` } };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readAll(req);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const body = parseBody(raw, String(req.headers['content-type'] ?? ''));
      if (url.pathname.startsWith('/response/')) {
        calls.push({ method: 'response_url', body: { ...body, id: url.pathname.slice('/response/'.length) } });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      const method = url.pathname.replace(/^\/api\//, '');
      const auth = String(req.headers.authorization ?? '');
      const call: SlackCall = { method, body };
      const token = auth.startsWith('Bearer ')
        ? auth.slice(7)
        : typeof body['token'] === 'string'
          ? body['token']
          : undefined;
      if (token !== undefined) call.token = token;
      calls.push(call);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(method, body)));
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;

  const callsTo = (method: string) => calls.filter((c) => c.method === method);
  return {
    apiUrl: `${base}/api/`,
    calls,
    emails,
    groups,
    failing,
    responseUrl: (id) => `${base}/response/${id}`,
    callsTo,
    async waitFor(method, count = 1, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      while (callsTo(method).length < count) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${count} ${method} call(s); got ${callsTo(method).length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return callsTo(method);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** The `slack` config of a gateway talking to this local Slack API, signed with `signingSecret`. */
export function slackConfigFor(
  slack: Pick<LocalSlackServer, 'apiUrl'>,
  signingSecret: string,
  auditors: string[],
): SlackConfig {
  return {
    botToken: 'xoxb-test',
    signingSecret,
    channel: 'C0APPROVALS',
    command: '/hoop',
    auditors: { slackUsers: auditors, slackUserGroups: [] },
    apiUrl: slack.apiUrl,
  };
}
