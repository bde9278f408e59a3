// WebSocket exec, attach and port-forward of the simulated API server: real kubectl 1.33 (WebSocket exec,
// SPDY-over-WebSocket port-forward) as admin and as a ServiceAccount, kubectl 1.27's SPDY refused, and the
// channel protocol byte by byte with a raw `ws` client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import { spdyRefusedMessage } from '../../packages/sim/src/exec.js';
import { spdyDictionary } from '../../packages/sim/src/portforward.js';
import { kubectlAvailable, runKubectl, spawnKubectl, writeKubeconfig } from '../helpers/kubectl.js';

let sim: SimCluster;
let dir: string;
const configs: Record<'admin' | 'runner' | 'viewer', string> = { admin: '', runner: '', viewer: '' };
const tokens: Record<'runner' | 'viewer', string> = { runner: '', viewer: '' };
const runnerIdentity = 'system:serviceaccount:agents:runner';
const viewerIdentity = 'system:serviceaccount:agents:viewer';

before(async () => {
  sim = await startSimCluster({ seed: true });
  dir = mkdtempSync(join(tmpdir(), 'sim-exec-'));
  sim.createServiceAccount('agents', 'runner');
  sim.createServiceAccount('agents', 'viewer');
  sim.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'shell', namespace: 'default' },
    rules: [
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], verbs: ['create'] },
    ],
  });
  sim.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'look', namespace: 'default' },
    // `get` on pods/exec is what a WebSocket GET used to need; the sim (like newer API servers) wants `create`.
    rules: [{ apiGroups: [''], resources: ['pods', 'pods/exec'], verbs: ['get'] }],
  });
  for (const [name, role] of [
    ['runner', 'shell'],
    ['viewer', 'look'],
  ] as const) {
    sim.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace: 'default' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects: [{ kind: 'ServiceAccount', name, namespace: 'agents' }],
    });
    tokens[name] = sim.issueToken('agents', name);
    configs[name] = writeKubeconfig(
      dir,
      { server: sim.url, ca: sim.ca, token: tokens[name], namespace: 'default' },
      name,
    );
  }
  configs.admin = writeKubeconfig(dir, { server: sim.url, ca: sim.ca, token: sim.adminToken }, 'admin');
});

after(async () => {
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const execRecords = (identity: string, from: number) =>
  sim.requests
    .slice(from)
    .filter((r) => r.identity === identity && /\/pods\/hello\/(exec|portforward|attach)/.test(r.rawPath));

describe('kubectl 1.33 against the sim', { skip: !kubectlAvailable('1.33') && 'kubectl 1.33 is not installed' }, () => {
  for (const who of ['admin', 'runner'] as const) {
    const identity = who === 'admin' ? 'admin' : runnerIdentity;

    test(`${who}: exec -- echo hi prints hi over a websocket upgrade`, async () => {
      const from = sim.requests.length;
      const r = await runKubectl(['exec', 'hello', '--', 'echo', 'hi'], { kubeconfig: configs[who], version: '1.33' });
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, 'hi\n');
      assert.equal(r.code, 0);
      const [rec] = execRecords(identity, from);
      assert.equal(rec?.method, 'GET');
      assert.equal(rec?.status, 101);
      assert.match(rec?.rawPath ?? '', /^\/api\/v1\/namespaces\/default\/pods\/hello\/exec\?command=echo&command=hi&/);
      assert.equal(rec?.headers['upgrade'], 'websocket');
      await until(() => sim.openSessions() === 0);
    });

    test(`${who}: exec -i -- cat copies stdin to stdout until the v5 close signal`, async () => {
      const r = await runKubectl(['exec', '-i', 'hello', '--', 'cat'], {
        kubeconfig: configs[who],
        version: '1.33',
        stdin: 'first line\nsecond, no newline',
      });
      assert.equal(r.stdout, 'first line\nsecond, no newline');
      assert.equal(r.code, 0);
    });

    test(`${who}: a non-zero exit code becomes kubectl's exit code`, async () => {
      const r = await runKubectl(['exec', 'hello', '--', 'sh', '-c', 'echo before; exit 3'], {
        kubeconfig: configs[who],
        version: '1.33',
      });
      assert.equal(r.stdout, 'before\n');
      assert.equal(r.stderr, 'command terminated with exit code 3\n');
      assert.equal(r.code, 3);
      const direct = await runKubectl(['exec', 'hello', '--', 'exit', '7'], {
        kubeconfig: configs[who],
        version: '1.33',
      });
      assert.equal(direct.code, 7);
    });

    test(`${who}: port-forward relays bytes to the pod's echo service`, async () => {
      const from = sim.requests.length;
      const child = spawnKubectl(['port-forward', 'pod/hello', ':8080'], { kubeconfig: configs[who], version: '1.33' });
      try {
        const port = await forwardedPort(child);
        for (const payload of ['hello through the tunnel', 'x'.repeat(100_000)])
          assert.equal(await echoOver(port, payload), payload);
        const [rec] = execRecords(identity, from);
        assert.equal(rec?.status, 101);
        assert.equal(rec?.headers['sec-websocket-protocol'], 'SPDY/3.1+portforward.k8s.io');
        assert.equal(sim.openSessions(), 1);
      } finally {
        child.kill('SIGKILL');
      }
      await until(() => sim.openSessions() === 0);
    });
  }

  test('an unknown command prints sh: CMD: not found and exits 127', async () => {
    const r = await runKubectl(['exec', 'hello', '--', 'nope', 'arg'], { kubeconfig: configs.admin, version: '1.33' });
    assert.equal(r.stderr, 'sh: nope: not found\ncommand terminated with exit code 127\n');
    assert.equal(r.code, 127);
  });

  test('a ServiceAccount without create on pods/exec is forbidden and nothing is upgraded', async () => {
    const from = sim.requests.length;
    const r = await runKubectl(['exec', 'hello', '--', 'echo', 'hi'], { kubeconfig: configs.viewer, version: '1.33' });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /Error from server \(Forbidden\): pods "hello" is forbidden: User "system:serviceaccount:agents:viewer" cannot create resource "pods\/exec" in API group "" in the namespace "default"/,
    );
    const recs = execRecords(viewerIdentity, from);
    assert.ok(recs.length >= 1);
    for (const rec of recs) assert.equal(rec.status, 403);
  });
});

describe(
  'kubectl 1.27 (SPDY) against the sim',
  { skip: !kubectlAvailable('1.27') && 'kubectl 1.27 is not installed' },
  () => {
    test("exec is refused with the sim's websocket-only message", async () => {
      const from = sim.requests.length;
      const r = await runKubectl(['exec', 'hello', '--', 'echo', 'hi'], { kubeconfig: configs.admin, version: '1.27' });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `Error from server (BadRequest): ${spdyRefusedMessage}\n`);
      const [rec] = execRecords('admin', from);
      assert.equal(rec?.method, 'POST');
      assert.equal(rec?.status, 400);
    });
  },
);

function forwardedPort(child: ChildProcess): Promise<number> {
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`port-forward did not start; stdout: ${out}\nstderr: ${err}`)),
      10_000,
    );
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('close', () => reject(new Error(`kubectl exited; stdout: ${out}\nstderr: ${err}`)));
  });
}

/** Sends payload, half-closes, and collects what comes back until the forwarded connection ends. */
function echoOver(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
    s.end(payload);
  });
}

// ---- the protocol with a raw client ----

interface Frame {
  channel: number;
  data: Buffer;
  binary: boolean;
}

interface RawSession {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<number>;
  /** Waits for the concatenated payload of a channel to satisfy pred. */
  text(channel: number, pred: (t: string) => boolean): Promise<string>;
  send(channel: number, data: string | Buffer): void;
}

function wsUrl(path: string): string {
  return `${sim.url.replace(/^https/, 'wss')}${path}`;
}

/** codec 'base64': frames are "<channel digit><base64>" (the base64 subprotocols); sendAs 'text' sends text frames. */
function openRaw(
  path: string,
  protocols: string[],
  token = sim.adminToken,
  opts: { codec?: 'binary' | 'base64'; sendAs?: 'binary' | 'text' } = {},
): Promise<RawSession> {
  const ws = new WebSocket(wsUrl(path), protocols, { ca: sim.ca, headers: { Authorization: `Bearer ${token}` } });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  const base64 = opts.codec === 'base64';
  ws.on('message', (d: Buffer, binary: boolean) => {
    frames.push(
      base64
        ? { channel: d[0]! - 0x30, data: Buffer.from(d.subarray(1).toString('latin1'), 'base64'), binary }
        : { channel: d[0]!, data: d.subarray(1), binary },
    );
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const text = (ch: number) =>
    Buffer.concat(frames.filter((f) => f.channel === ch).map((f) => f.data)).toString('utf8');
  const session: RawSession = {
    ws,
    frames,
    closed,
    text: (ch, pred) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(text(ch))) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(text(ch));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`channel ${ch} never matched; got ${JSON.stringify(text(ch))}`));
        }, 5000);
        waiters.add(check);
        check();
      }),
    send: (ch, data) => {
      const payload = base64
        ? Buffer.from(String.fromCharCode(0x30 + ch) + Buffer.from(data).toString('base64'), 'latin1')
        : Buffer.concat([Buffer.from([ch]), Buffer.from(data)]);
      ws.send(payload, { binary: (opts.sendAs ?? (base64 ? 'text' : 'binary')) === 'binary' });
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(session));
    ws.once('error', reject);
  });
}

/** An upgrade request that is expected to be refused: the HTTP status and Status body. */
function refusedUpgrade(
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ code: number; body: Record<string, unknown> }> {
  const url = new URL(sim.url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path,
      method,
      ca: sim.ca,
      headers: { Connection: 'Upgrade', ...headers },
    });
    req.on('upgrade', () => reject(new Error('the sim upgraded a request it should have refused')));
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

const wsHeaders = {
  Upgrade: 'websocket',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
};

describe('remotecommand protocol with a raw websocket client', () => {
  test('v5 exec: empty stdout frame first, output, Success on the status channel, close 1000', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=echo&command=hi&stdout=true&stderr=true',
      ['v5.channel.k8s.io', 'v4.channel.k8s.io'],
    );
    assert.equal(s.ws.protocol, 'v5.channel.k8s.io');
    assert.equal(await s.closed, 1000);
    assert.deepEqual(
      s.frames.map((f) => [f.channel, f.data.toString()]),
      [
        [1, ''],
        [1, 'hi\n'],
        [3, '{"metadata":{},"status":"Success"}'],
      ],
    );
    await until(() => sim.openSessions() === 0);
  });

  test('a non-zero exit is a NonZeroExitCode Status with an ExitCode cause; stderr has its own channel', async () => {
    const s = await openRaw(
      `/api/v1/namespaces/default/pods/hello/exec?command=sh&command=-c&command=${encodeURIComponent('nope; exit 3')}&stdout=true&stderr=true`,
      ['v4.channel.k8s.io'],
    );
    assert.equal(s.ws.protocol, 'v4.channel.k8s.io');
    await s.closed;
    assert.equal(
      Buffer.concat(s.frames.filter((f) => f.channel === 2).map((f) => f.data)).toString(),
      'sh: nope: not found\n',
    );
    const status = s.frames.find((f) => f.channel === 3)!.data.toString();
    assert.equal(
      status,
      JSON.stringify({
        metadata: {},
        status: 'Failure',
        message:
          'command terminated with non-zero exit code: error executing command [sh -c nope; exit 3], exit code 3',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      }),
    );
  });

  test('v5 stdin: cat echoes until channel 255 closes stdin', async () => {
    const s = await openRaw('/api/v1/namespaces/default/pods/hello/exec?command=cat&stdin=true&stdout=true', [
      'v5.channel.k8s.io',
    ]);
    s.send(0, 'abc');
    await s.text(1, (t) => t === 'abc');
    s.send(0, 'def');
    s.send(255, Buffer.from([0]));
    assert.equal(await s.closed, 1000);
    assert.equal(
      s.frames
        .filter((f) => f.channel === 1)
        .map((f) => f.data.toString())
        .join(''),
      'abcdef',
    );
    assert.equal(s.frames.at(-1)?.data.toString(), '{"metadata":{},"status":"Success"}');
  });

  test('tty shell: prompt, echo of typed characters, built-ins, exit N', async () => {
    const s = await openRaw('/api/v1/namespaces/default/pods/hello/exec?command=sh&stdin=true&stdout=true&tty=true', [
      'v5.channel.k8s.io',
    ]);
    await s.text(1, (t) => t === '$ ');
    s.send(4, '{"Width":120,"Height":40}');
    s.send(0, 'hostnamX\x7fe');
    s.send(0, '\r');
    await s.text(1, (t) => t.endsWith('hello\r\n$ '));
    s.send(0, 'echo "a  b" \'$c\'\r');
    await s.text(1, (t) => t.endsWith('a  b $c\r\n$ '));
    s.send(0, 'bogus\r');
    await s.text(1, (t) => t.endsWith('sh: bogus: not found\r\n$ '));
    s.send(0, 'exit 4\r');
    await s.closed;
    assert.equal(s.frames.filter((f) => f.channel === 2).length, 0, 'a tty has no stderr channel');
    assert.equal(
      await s.text(1, () => true),
      '$ hostnamX\b \be\r\nhello\r\n$ echo "a  b" \'$c\'\r\na  b $c\r\n$ bogus\r\nsh: bogus: not found\r\n$ exit 4\r\n',
    );
    assert.match(s.frames.at(-1)!.data.toString(), /"reason":"NonZeroExitCode".*"message":"4"/);
  });

  test('attach joins the main process, a shell that reads lines from stdin', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/attach?container=hello&stdin=true&stdout=true&stderr=true',
      ['v5.channel.k8s.io'],
    );
    s.send(0, 'pwd\nenv\n');
    await s.text(1, (t) => t.includes('HOSTNAME=hello\n'));
    assert.match(await s.text(1, () => true), /^\/\nPATH=/);
    s.send(0, 'exit\n');
    assert.equal(await s.closed, 1000);
    assert.equal(s.frames.at(-1)?.data.toString(), '{"metadata":{},"status":"Success"}');
  });

  test('closing the websocket ends a running command and the session', async () => {
    const s = await openRaw('/api/v1/namespaces/default/pods/hello/exec?command=sleep&command=60&stdout=true', [
      'v5.channel.k8s.io',
    ]);
    assert.equal(sim.openSessions(), 1);
    s.ws.close();
    await s.closed;
    await until(() => sim.openSessions() === 0);
  });

  test('port-forward channel protocol: port prefix on both channels, then echoed data', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/portforward?ports=8080',
      ['v4.channel.k8s.io'],
      tokens.runner,
    );
    await until(() => s.frames.length >= 2);
    assert.deepEqual(
      s.frames.slice(0, 2).map((f) => [f.channel, [...f.data]]),
      [
        [0, [0x90, 0x1f]],
        [1, [0x90, 0x1f]],
      ],
    );
    s.send(0, 'ping over channel 0');
    await s.text(0, (t) => t.endsWith('ping over channel 0'));
    assert.equal(
      Buffer.concat(
        s.frames
          .filter((f) => f.channel === 0)
          .slice(1)
          .map((f) => f.data),
      ).toString(),
      'ping over channel 0',
    );
    s.ws.close();
    await until(() => sim.openSessions() === 0);
  });

  test('text frames are read like binary ones (wsstream): v4 stdin sent as text reaches cat', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=cat&stdin=true&stdout=true',
      ['v4.channel.k8s.io'],
      sim.adminToken,
      { sendAs: 'text' },
    );
    s.send(0, 'typed as text\n');
    await s.text(1, (t) => t === 'typed as text\n');
    s.ws.close();
    await s.closed;
    await until(() => sim.openSessions() === 0);
  });

  test('base64.channel.k8s.io (kubelet, pre-v4): text frames "<digit><base64>", a failure\'s message as text, nothing on success', async () => {
    const ok = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=echo&command=hi&stdout=true',
      ['base64.channel.k8s.io'],
      sim.adminToken,
      { codec: 'base64' },
    );
    assert.equal(ok.ws.protocol, 'base64.channel.k8s.io');
    assert.equal(await ok.closed, 1000);
    assert.deepEqual(
      ok.frames.map((f) => [f.channel, f.data.toString(), f.binary]),
      [
        [1, '', false],
        [1, 'hi\n', false],
      ],
    );
    const failed = await openRaw(
      `/api/v1/namespaces/default/pods/hello/exec?command=sh&command=-c&command=${encodeURIComponent('exit 3')}&stdout=True`,
      ['base64.channel.k8s.io'],
      sim.adminToken,
      { codec: 'base64' },
    );
    await failed.closed;
    assert.deepEqual(
      failed.frames.map((f) => [f.channel, f.data.toString()]),
      [
        [1, ''],
        [3, 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3'],
      ],
    );
  });

  test('v4.base64.channel.k8s.io: stdin decoded from base64 text, output in base64 text frames', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=cat&stdin=1&stdout=1',
      ['v4.base64.channel.k8s.io'],
      sim.adminToken,
      { codec: 'base64' },
    );
    assert.equal(s.ws.protocol, 'v4.base64.channel.k8s.io');
    s.send(0, 'über base64\n');
    await s.text(1, (t) => t === 'über base64\n');
    assert.ok(s.frames.every((f) => !f.binary));
    s.ws.close();
    await s.closed;
  });

  test('a client that offers several protocols gets its first supported one; one that offers none gets binary pre-v4', async () => {
    const first = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=echo&command=x&stdout=true',
      ['base64.channel.k8s.io', 'v4.channel.k8s.io'],
      sim.adminToken,
      { codec: 'base64' },
    );
    assert.equal(first.ws.protocol, 'base64.channel.k8s.io');
    await first.closed;
    const none = await openRaw(
      '/api/v1/namespaces/default/pods/hello/exec?command=false&stdout=true',
      [],
      sim.adminToken,
    );
    assert.equal(none.ws.protocol, '');
    await none.closed;
    assert.deepEqual(
      none.frames.map((f) => [f.channel, f.data.toString(), f.binary]),
      [
        [1, '', true],
        [3, 'command terminated with non-zero exit code: error executing command [false], exit code 1', true],
      ],
    );
  });

  test('port-forward over v4.base64.channel.k8s.io: base64 text frames both ways', async () => {
    const s = await openRaw(
      '/api/v1/namespaces/default/pods/hello/portforward?ports=8080',
      ['v4.base64.channel.k8s.io'],
      tokens.runner,
      { codec: 'base64' },
    );
    await until(() => s.frames.length >= 2);
    assert.deepEqual(
      s.frames.slice(0, 2).map((f) => [f.channel, [...f.data], f.binary]),
      [
        [0, [0x90, 0x1f], false],
        [1, [0x90, 0x1f], false],
      ],
    );
    s.send(0, 'ping in base64');
    await s.text(0, (t) => t.endsWith('ping in base64'));
    s.ws.close();
    await until(() => sim.openSessions() === 0);
  });

  test("the SPDY/3 header dictionary has the spec's 1423 bytes", () => {
    assert.equal(spdyDictionary.length, 1423);
    assert.equal(spdyDictionary.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
    assert.ok(spdyDictionary.toString('latin1').endsWith('charset=iso-8859-1,utf-,*,enq=0.'));
  });
});

describe('refused upgrades answer with a Status and never switch protocols', () => {
  const exec = '/api/v1/namespaces/default/pods/hello/exec?command=echo&stdout=true';

  test('no token: 401 Unauthorized', async () => {
    const from = sim.requests.length;
    const r = await refusedUpgrade(exec, wsHeaders);
    assert.equal(r.code, 401);
    assert.deepEqual(r.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    assert.equal(sim.requests[from]?.status, 401);
    assert.equal(sim.requests[from]?.identity, null);
  });

  test("no create on pods/exec: 403 with the API server's forbidden message", async () => {
    const r = await refusedUpgrade(exec, { ...wsHeaders, Authorization: `Bearer ${tokens.viewer}` });
    assert.equal(r.code, 403);
    assert.equal(r.body['reason'], 'Forbidden');
    assert.equal(r.body['code'], 403);
    assert.equal(
      r.body['message'],
      'pods "hello" is forbidden: User "system:serviceaccount:agents:viewer" cannot create resource "pods/exec" in API group "" in the namespace "default"',
    );
    assert.deepEqual(r.body['details'], { name: 'hello', kind: 'pods' });
  });

  test('the RBAC check is per subresource: exec granted does not grant a port-forward elsewhere', async () => {
    const r = await refusedUpgrade('/api/v1/namespaces/staging/pods/web-0/portforward?ports=80', {
      ...wsHeaders,
      'Sec-WebSocket-Protocol': 'v4.channel.k8s.io',
      Authorization: `Bearer ${tokens.runner}`,
    });
    assert.equal(r.code, 403);
    assert.match(
      String(r.body['message']),
      /cannot create resource "pods\/portforward" in API group "" in the namespace "staging"$/,
    );
  });

  test('missing pod: 404 NotFound', async () => {
    const r = await refusedUpgrade('/api/v1/namespaces/default/pods/ghost/exec?command=echo&stdout=true', {
      ...wsHeaders,
      Authorization: `Bearer ${sim.adminToken}`,
    });
    assert.equal(r.code, 404);
    assert.equal(r.body['reason'], 'NotFound');
    assert.equal(r.body['message'], 'pods "ghost" not found');
  });

  test('SPDY: 400 saying the sim speaks only websocket', async () => {
    const from = sim.requests.length;
    const r = await refusedUpgrade(
      exec,
      {
        Upgrade: 'SPDY/3.1',
        'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
        Authorization: `Bearer ${sim.adminToken}`,
      },
      'POST',
    );
    assert.equal(r.code, 400);
    assert.equal(r.body['reason'], 'BadRequest');
    assert.equal(r.body['message'], spdyRefusedMessage);
    assert.equal(sim.requests[from]?.status, 400);
  });

  test('bad options and unknown subprotocols: 400 with what to do', async () => {
    const admin = { ...wsHeaders, Authorization: `Bearer ${sim.adminToken}` };
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        '/api/v1/namespaces/default/pods/hello/exec?command=echo&stdout=true&container=sidecar',
        admin,
        /^container sidecar is not valid for pod hello$/,
      ],
      [
        '/api/v1/namespaces/default/pods/hello/exec?command=echo',
        admin,
        /^you must specify at least 1 of stdin, stdout, stderr$/,
      ],
      ['/api/v1/namespaces/default/pods/hello/exec?stdout=true', admin, /^you must specify at least one command/],
      [
        exec,
        { ...admin, 'Sec-WebSocket-Protocol': 'v9.channel.k8s.io' },
        /^unable to upgrade: none of the offered websocket subprotocols \["v9.channel.k8s.io"\] is supported; the simulated api server supports v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, channel.k8s.io, base64.channel.k8s.io$/,
      ],
      [
        '/api/v1/namespaces/default/pods/hello/portforward?ports=80',
        { ...admin, 'Sec-WebSocket-Protocol': 'portforward.k8s.io' },
        /^unable to upgrade: .*supports SPDY\/3.1\+portforward.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io$/,
      ],
      [
        '/api/v1/namespaces/default/pods/hello/portforward',
        { ...admin, 'Sec-WebSocket-Protocol': 'v4.channel.k8s.io' },
        /^query parameter "ports" is required/,
      ],
      [
        '/api/v1/namespaces/default/pods/hello/log',
        admin,
        /upgrades only pods\/exec, pods\/attach and pods\/portforward/,
      ],
    ];
    for (const [path, headers, message] of cases) {
      const r = await refusedUpgrade(path, headers);
      assert.equal(r.code, 400, path);
      assert.equal(r.body['kind'], 'Status');
      assert.equal(r.body['reason'], 'BadRequest');
      assert.match(String(r.body['message']), message);
    }
    assert.equal(sim.openSessions(), 0);
  });
});
