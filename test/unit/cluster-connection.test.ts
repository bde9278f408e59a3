// The gateway's own API-server connection without client-node (issue #13): kubeconfig credentials
// read like client-node read them (relative paths, *-data fields, token-file, exec plugins,
// impersonation), every TokenRequest and SubjectAccessReview on one kept-alive TLS connection.
import type { TLSSocket } from 'node:tls';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { createClusterClient, readKubeConfigFile } from '../../packages/gateway/src/kube/cluster-client.js';
import type { ClusterConfig } from '../../packages/gateway/src/config/types.js';
import { statusFromError } from '../../packages/gateway/src/kube/status.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { generateTlsMaterial } from '../../packages/sim/src/tls.js';

const tls = generateTlsMaterial();
const dir = mkdtempSync(join(tmpdir(), 'hoop-conn-'));
let server: Server;
let url = '';
let connections = 0;
const seen: { path: string; authorization?: string; impersonate?: string; clientCert: boolean }[] = [];
let answer = 201;

before(async () => {
  server = createServer(
    { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      seen.push({
        path: req.url ?? '',
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
        ...(typeof req.headers['impersonate-user'] === 'string'
          ? { impersonate: req.headers['impersonate-user'] }
          : {}),
        clientCert: socket.authorized,
      });
      req.resume();
      req.on('end', () => {
        if (answer !== 201) {
          res.writeHead(answer, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              kind: 'Status',
              apiVersion: 'v1',
              status: 'Failure',
              message: 'forbidden by the test',
              code: answer,
            }),
          );
          return;
        }
        const body = req.url?.endsWith('/token')
          ? { status: { token: 'minted', expirationTimestamp: '2030-01-01T00:00:00Z' } }
          : { status: { allowed: true } };
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    },
  );
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  writeFileSync(join(dir, 'ca.pem'), tls.ca);
  writeFileSync(join(dir, 'token'), 'file-token\n');
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function kubeconfig(
  name: string,
  user: object,
  cluster: object = { server: url, 'certificate-authority': 'ca.pem' },
): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

const clusterConfig = (file: string): ClusterConfig => ({
  name: 'prod',
  server: 'https://ignored.invalid',
  insecureSkipTLSVerify: false,
  credentials: { kubeconfig: file },
  tokens: 'tokenRequest',
  tokenTTLMs: 600_000,
  staticTokens: {},
});
const review = {
  user: 'system:serviceaccount:agents:bot',
  groups: ['system:authenticated'],
  resourceAttributes: {
    verb: 'get',
    group: '',
    version: 'v1',
    resource: 'pods',
    subresource: '',
    namespace: 'staging',
    name: '',
  },
};

test('kubeconfig with a relative CA and token-file, client certificate data and `as`: 20 calls, one TLS connection', async () => {
  seen.length = 0;
  connections = 0;
  const file = kubeconfig('full.kubeconfig', {
    'token-file': 'token',
    'client-certificate-data': Buffer.from(tls.cert).toString('base64'),
    'client-key-data': Buffer.from(tls.key).toString('base64'),
    as: 'someone',
  });
  const client = await createClusterClient(clusterConfig(file));
  try {
    const minted = await client.requestServiceAccountToken('agents', 'bot', 600);
    assert.deepEqual(minted, { token: 'minted', expiresAt: Date.parse('2030-01-01T00:00:00Z') });
    for (let i = 0; i < 19; i++)
      assert.deepEqual(await client.subjectAccessReview(review), { allowed: true, denied: false });
    assert.equal(connections, 1, 'one kept-alive TLS connection for all calls');
    assert.equal(seen[0]?.path, '/api/v1/namespaces/agents/serviceaccounts/bot/token');
    assert.equal(seen[1]?.path, '/apis/authorization.k8s.io/v1/subjectaccessreviews');
    assert.ok(
      seen.every((s) => s.authorization === 'Bearer file-token' && s.impersonate === 'someone' && s.clientCert),
      JSON.stringify(seen[0]),
    );
  } finally {
    await client.close?.();
  }
});

test('an exec plugin is run once while its token is valid', async () => {
  seen.length = 0;
  const counter = join(dir, 'exec-count');
  writeFileSync(counter, '');
  const script = `require('fs').appendFileSync(${JSON.stringify(counter)}, 'x'); console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-' + process.env.EXTRA, expirationTimestamp: new Date(Date.now() + 3600e3).toISOString() } }))`;
  const file = kubeconfig('exec.kubeconfig', {
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: process.execPath,
      args: ['-e', script],
      env: [{ name: 'EXTRA', value: 'token' }],
    },
  });
  const client = await createClusterClient(clusterConfig(file));
  try {
    await client.subjectAccessReview(review);
    await client.subjectAccessReview(review);
    assert.deepEqual(
      seen.map((s) => s.authorization),
      ['Bearer exec-token', 'Bearer exec-token'],
    );
    const { readFileSync } = await import('node:fs');
    assert.equal(readFileSync(counter, 'utf8'), 'x');
  } finally {
    await client.close?.();
  }
});

test('refusals: an auth-provider kubeconfig names what to use; a 403 is a Status that says to grant RBAC', async () => {
  const provider = kubeconfig('provider.kubeconfig', { 'auth-provider': { name: 'gcp' } });
  const read = readKubeConfigFile(provider, undefined);
  assert.ok('problem' in read);
  assert.equal(read.field, 'kubeconfig');
  assert.match(
    read.problem,
    /auth-provider "gcp" is not supported: give the gateway a token, token-file, client certificate or exec plugin$/,
  );
  await assert.rejects(
    createClusterClient(clusterConfig(provider)),
    (error: unknown) => error instanceof HoopError && error.code === 'ERR_CONFIG',
  );

  const client = await createClusterClient(clusterConfig(kubeconfig('token.kubeconfig', { token: 'static' })));
  answer = 403;
  try {
    await assert.rejects(client.subjectAccessReview(review), (error: unknown) => {
      assert.ok(error instanceof HoopError);
      assert.equal(error.code, 'ERR_UPSTREAM_TOKEN');
      assert.match(
        error.message,
        /the gateway's credential may not create subjectaccessreviews \(forbidden by the test\): grant it with deploy\/rbac$/,
      );
      const status = statusFromError(error);
      assert.equal(status.kind, 'Status');
      assert.match(status.message, /^hoopgate: /);
      return true;
    });
  } finally {
    answer = 201;
    await client.close?.();
  }
});
