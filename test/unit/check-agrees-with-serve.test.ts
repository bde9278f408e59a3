// `hoopgate check` agrees with `hoopgate serve` (issue #11): every config in the table used to pass
// check and then fail when serve started (or at its first request). Each row shows the code serve
// runs refusing it (the `serve` proof), then that check now refuses it first — exit 1, the path in
// the file and a message saying what to fix — and that serve refuses it the same way, before
// starting anything. Last, every problem of one file comes out together.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import { stringify } from 'yaml';
import { createCheckpointer, loadSigningKey } from '../../packages/gateway/src/audit/checkpoint.js';
import type { ClusterConfig } from '../../packages/gateway/src/config/types.js';
import { createListener } from '../../packages/gateway/src/http/server.js';
import { buildKubeConfig } from '../../packages/gateway/src/kube/cluster-client.js';
import { createServiceAccountTokens } from '../../packages/gateway/src/kube/service-account-tokens.js';
import { runCli } from '../../packages/gateway/src/main.js';
import { createGatewayMasker } from '../../packages/gateway/src/proxy/masking.js';
import { createStore } from '../../packages/gateway/src/store/index.js';
import type { AuditStore } from '../../packages/gateway/src/store/types.js';
import { pki } from '../helpers/pki.js';

let dir = '';
/** Files every row may name, relative to the config file. */
const files: Record<string, string> = {
  token: 'a-token\n',
  'empty.token': '\n',
  'tls.crt': pki.cert,
  'tls.key': pki.key,
  'other.key': pki.otherKey,
  'checkpoint.pem': pki.signingKey,
  'not-a-cert.pem': 'hello\n',
  'no-server.kubeconfig': stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: {} }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  }),
  'ok.kubeconfig': stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  }),
  blocker: 'a file where the store wants a directory\n',
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hoopgate-agree-'));
  mkdirSync(join(dir, 'conf'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'conf', name), text);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const at = (name: string) => join(dir, 'conf', name);

type Doc = Record<string, any>;

function base(): Doc {
  return {
    listen: { host: '127.0.0.1', port: 0, tls: { certFile: 'tls.crt', keyFile: 'tls.key' } },
    clusters: [
      { name: 'prod', server: 'https://127.0.0.1:6443', caFile: 'tls.crt', credentials: { tokenFile: 'token' } },
    ],
    oidc: { issuers: [{ issuer: 'https://127.0.0.1:9443', audience: 'hoopgate' }] },
    identities: [{ name: 'ci', match: { groups: ['ci'] }, serviceAccount: 'agents/ci' }],
    audit: { store: 'sqlite:./data/hoopgate.db' },
  };
}

function cluster(overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: 'prod',
    server: 'https://127.0.0.1:6443',
    insecureSkipTLSVerify: false,
    tokens: 'tokenRequest',
    tokenTTLMs: 600_000,
    staticTokens: {},
    ...overrides,
  };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const stop = new AbortController();
  stop.abort(); // a serve that did start would stop at once
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
    cwd: dir,
    stopSignal: stop.signal,
  });
  return { code, stdout, stderr };
}

interface Row {
  name: string;
  edit: (doc: Doc) => void;
  /** [path, message]; DIR stands for the config file's directory. */
  issues: [string, string][];
  /** What serve did with it, shown by running serve's own code on the same input. */
  serve: { when: 'at start' | 'at the first request'; proof?: () => Promise<unknown> };
}

const rows: Row[] = [
  {
    name: 'listen.tls.certFile that is not a certificate',
    edit: (d) => (d.listen.tls.certFile = 'not-a-cert.pem'),
    issues: [
      [
        'listen.tls.certFile',
        'DIR/not-a-cert.pem holds no readable PEM certificate: error:0480006C:PEM routines::no start line',
      ],
    ],
    serve: {
      when: 'at start',
      proof: async () => createListener(new Koa(), { tls: { cert: files['not-a-cert.pem']!, key: pki.key } }),
    },
  },
  {
    name: 'listen.tls.keyFile that does not fit the certificate',
    edit: (d) => (d.listen.tls.keyFile = 'other.key'),
    issues: [
      [
        'listen.tls',
        'the key DIR/other.key does not fit the certificate DIR/tls.crt: error:05800074:x509 certificate routines::key values mismatch',
      ],
    ],
    serve: {
      when: 'at start',
      proof: async () => createListener(new Koa(), { tls: { cert: pki.cert, key: pki.otherKey } }),
    },
  },
  {
    name: 'listen.tls.keyFile that is not a key',
    edit: (d) => (d.listen.tls.keyFile = 'not-a-cert.pem'),
    issues: [
      [
        'listen.tls.keyFile',
        'DIR/not-a-cert.pem holds no readable private key (error:1E08010C:DECODER routines::unsupported); it must be an unencrypted PEM key',
      ],
    ],
    serve: {
      when: 'at start',
      proof: async () => createListener(new Koa(), { tls: { cert: pki.cert, key: 'hello\n' } }),
    },
  },
  {
    name: 'listen.host that is no address',
    edit: (d) => (d.listen.host = 'my gateway'),
    issues: [['listen.host', 'must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name, got "my gateway"']],
    serve: { when: 'at start' }, // listen() fails with getaddrinfo ENOTFOUND (not run here: it would ask DNS)
  },
  {
    name: 'clusters[].credentials.tokenFile that is empty',
    edit: (d) => (d.clusters[0].credentials.tokenFile = 'empty.token'),
    issues: [['clusters[0].credentials.tokenFile', 'DIR/empty.token is empty: it must hold the token']],
    serve: { when: 'at start', proof: () => buildKubeConfig(cluster(), { tokenFile: at('empty.token') }) },
  },
  {
    name: 'clusters[].credentials.kubeconfig whose cluster has no server',
    edit: (d) => (d.clusters[0].credentials = { kubeconfig: 'no-server.kubeconfig' }),
    issues: [
      [
        'clusters[0].credentials.kubeconfig',
        'cannot use kubeconfig DIR/no-server.kubeconfig: clusters[0].cluster.server is missing',
      ],
    ],
    serve: { when: 'at start', proof: () => buildKubeConfig(cluster(), { kubeconfig: at('no-server.kubeconfig') }) },
  },
  {
    name: 'clusters[].credentials.context that the kubeconfig does not have',
    edit: (d) => (d.clusters[0].credentials = { kubeconfig: 'ok.kubeconfig', context: 'staging' }),
    issues: [
      ['clusters[0].credentials.context', 'kubeconfig DIR/ok.kubeconfig has no context "staging" (it has "ctx")'],
    ],
    serve: {
      when: 'at start',
      proof: () => buildKubeConfig(cluster(), { kubeconfig: at('ok.kubeconfig'), context: 'staging' }),
    },
  },
  {
    name: 'clusters[].credentials.kubeconfig with no current context',
    edit: (d) => (d.clusters[0].credentials = { kubeconfig: 'token' }),
    issues: [
      [
        'clusters[0].credentials.context',
        'kubeconfig DIR/token has no current context with a cluster; set clusters[].credentials.context',
      ],
    ],
    serve: { when: 'at start', proof: () => buildKubeConfig(cluster(), { kubeconfig: at('token') }) },
  },
  {
    name: 'clusters[].staticTokens[].tokenFile that is empty',
    edit: (d) => {
      d.clusters[0] = {
        name: 'prod',
        server: 'https://127.0.0.1:6443',
        tokens: 'static',
        staticTokens: { 'agents/ci': { tokenFile: 'empty.token' } },
      };
    },
    issues: [['clusters[0].staticTokens["agents/ci"].tokenFile', 'DIR/empty.token is empty: it must hold the token']],
    serve: {
      when: 'at the first request',
      proof: () =>
        createServiceAccountTokens({
          cluster: cluster({ tokens: 'static', staticTokens: { 'agents/ci': { tokenFile: at('empty.token') } } }),
          clock: Date.now,
        }).tokenFor('agents/ci'),
    },
  },
  {
    name: 'clusters[].caFile that holds no certificate',
    edit: (d) => (d.clusters[0].caFile = 'not-a-cert.pem'),
    issues: [['clusters[0].caFile', 'DIR/not-a-cert.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)']],
    serve: { when: 'at the first request' }, // every TLS handshake with the API server fails
  },
  {
    name: 'oidc.issuers[].caFile that holds no certificate',
    edit: (d) => (d.oidc.issuers[0].caFile = 'not-a-cert.pem'),
    issues: [['oidc.issuers[0].caFile', 'DIR/not-a-cert.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)']],
    serve: { when: 'at the first request' }, // discovery never succeeds: every token is refused
  },
  {
    name: 'audit.checkpoint.signingKeyFile that is not an Ed25519 key',
    edit: (d) => (d.audit.checkpoint = { signingKeyFile: 'other.key' }),
    issues: [
      [
        'audit.checkpoint.signingKeyFile',
        'DIR/other.key holds a key of type ec; an Ed25519 key is required (openssl genpkey -algorithm ed25519)',
      ],
    ],
    serve: { when: 'at start', proof: () => loadSigningKey(at('other.key')) },
  },
  {
    name: 'audit.checkpoint.signingKeyFile that is not a key',
    edit: (d) => (d.audit.checkpoint = { signingKeyFile: 'not-a-cert.pem' }),
    issues: [
      [
        'audit.checkpoint.signingKeyFile',
        'DIR/not-a-cert.pem holds no readable private key (error:1E08010C:DECODER routines::unsupported); write an unencrypted PEM key: openssl genpkey -algorithm ed25519',
      ],
    ],
    serve: { when: 'at start', proof: () => loadSigningKey(at('not-a-cert.pem')) },
  },
  {
    name: 'audit.store sqlite file under a file',
    edit: (d) => (d.audit.store = 'sqlite:./blocker/audit.db'),
    issues: [['audit.store', 'cannot create DIR/blocker: DIR/blocker is not a directory']],
    serve: {
      when: 'at start',
      proof: () => createStore(`sqlite:${at('blocker/audit.db')}`, { replicaId: 'r', clock: Date.now }),
    },
  },
  {
    name: 'audit.store MongoDB URL with a bad port',
    edit: (d) => (d.audit.store = 'mongodb://mongo:99999/hoopgate'),
    issues: [['audit.store', 'not a usable MongoDB connection string: Unable to parse mongo:99999 with URL']],
    serve: {
      when: 'at start',
      proof: () => createStore('mongodb://mongo:99999/hoopgate', { replicaId: 'r', clock: Date.now }),
    },
  },
  {
    name: 'audit.store mongodb+srv URL with a port',
    edit: (d) => (d.audit.store = 'mongodb+srv://mongo.example.com:27017/hoopgate'),
    issues: [['audit.store', 'not a usable MongoDB connection string: mongodb+srv URI cannot have port number']],
    serve: {
      when: 'at start',
      proof: () => createStore('mongodb+srv://mongo.example.com:27017/hoopgate', { replicaId: 'r', clock: Date.now }),
    },
  },
  {
    name: 'slack.appToken that is not an app-level token',
    edit: (d) => (d.slack = { botToken: 'xoxb-1', signingSecret: 's', channel: 'C1', appToken: 'xoxb-2' }),
    issues: [
      ['slack.appToken', 'must be an app-level token (xapp-…) with connections:write, for Socket Mode, got "xoxb-2"'],
    ],
    serve: { when: 'at start' }, // Socket Mode's apps.connections.open refuses a bot token (not run here: it would call Slack)
  },
  {
    name: 'gateway.drainTimeout longer than a Node.js timer',
    edit: (d) => (d.gateway = { drainTimeout: '30d' }),
    issues: [['gateway.drainTimeout', 'must be at most 24d (the longest timer Node.js sets is 24.8 days), got 30d']],
    serve: {
      when: 'at start', // not refused: the drain timer overflowed and fired after 1 ms, so SIGTERM cut every call
      proof: () =>
        new Promise((resolve, reject) => {
          const started = Date.now();
          setTimeout(
            () => reject(new Error(`a 30d timer fired after ${Date.now() - started} ms`)),
            30 * 86_400_000,
          ).unref();
          setTimeout(resolve, 2000).unref();
        }),
    },
  },
  {
    name: 'masking.rules[].keys that is not a regular expression',
    edit: (d) => (d.masking = { rules: [{ resources: ['configmaps'], keys: '(?i)(password' }] }),
    issues: [
      [
        'masking.rules[0].keys',
        'not a valid regular expression: Invalid regular expression: /(password/i: Unterminated group',
      ],
    ],
    serve: {
      when: 'at start',
      proof: async () =>
        createGatewayMasker({
          secrets: true,
          rules: [{ resources: ['configmaps'], keys: '(?i)(password' }],
          maxObjectBytes: 1024,
        }),
    },
  },
];

function expected(issues: [string, string][], file: string): string {
  return (
    [
      `invalid configuration (${file}):`,
      ...issues.map(([path, message]) => `  ${path}: ${message.replaceAll('DIR', join(dir, 'conf'))}`),
    ].join('\n') + '\n'
  );
}

describe('what serve refused, check refuses first, with the path', () => {
  test('the base config of the table passes check', async () => {
    writeFileSync(at('base.yaml'), stringify(base()));
    const result = await cli(['check', '--config', 'conf/base.yaml']);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
  });

  rows.forEach((row, i) => {
    test(row.name, async () => {
      if (row.serve.proof !== undefined)
        await assert.rejects(row.serve.proof(), `serve's own code refuses it ${row.serve.when}`);
      const doc = base();
      row.edit(doc);
      const file = `conf/row-${i}.yaml`;
      writeFileSync(join(dir, file), stringify(doc));
      const check = await cli(['check', '--config', file]);
      assert.equal(check.stderr, expected(row.issues, file));
      assert.equal(check.code, 1);
      const serve = await cli(['serve', '--config', join(dir, file)]);
      assert.equal(serve.stderr, `hoopgate: ${expected(row.issues, join(dir, file))}`);
      assert.equal(serve.code, 1);
    });
  });

  test('every problem of one file comes out together (the schema walk first, then the library checks)', async () => {
    const doc = base();
    const picked = [0, 4, 16, 11, 14];
    for (const i of picked) rows[i]!.edit(doc);
    writeFileSync(at('all.yaml'), stringify(doc));
    const check = await cli(['check', '--config', 'conf/all.yaml']);
    assert.equal(check.code, 1);
    assert.equal(
      check.stderr,
      expected(
        picked.flatMap((i) => rows[i]!.issues),
        'conf/all.yaml',
      ),
    );
  });

  test('--skip-files leaves file contents alone, as it leaves their existence', async () => {
    const doc = base();
    for (const i of [0, 4, 5, 11, 13]) rows[i]!.edit(doc);
    writeFileSync(at('skip.yaml'), stringify(doc));
    const check = await cli(['check', '--config', 'conf/skip.yaml', '--skip-files']);
    assert.equal(check.stderr, '');
    assert.equal(check.code, 0);
  });

  test('audit.checkpoint.every 90s: check accepts it and so does the checkpointer serve builds', async () => {
    const doc = base();
    doc.audit.checkpoint = { every: '90s', signingKeyFile: 'checkpoint.pem' };
    writeFileSync(at('every.yaml'), stringify(doc));
    const check = await cli(['check', '--config', 'conf/every.yaml']);
    assert.equal(check.stderr, '');
    assert.equal(check.code, 0);
    const checkpointer = createCheckpointer({
      store: {} as AuditStore,
      key: await loadSigningKey(at('checkpoint.pem')),
      replicaId: 'r',
      clock: Date.now,
      everyMs: 90_000,
    });
    assert.deepEqual(checkpointer.schedule, { name: 'audit-checkpoint-r', everyMs: 90_000 });
  });
});
