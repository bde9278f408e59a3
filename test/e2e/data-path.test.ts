// Issue #2 end to end: unmodified kubectl (1.27 and 1.33) → hoopgate (OIDC via `hoopgate token`) →
// the simulated API server, every call as the mapped ServiceAccount; and every refusal of the data
// path (401 / 403 / 400) asserted as a Kubernetes Status, with nothing reaching upstream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { forge } from '../helpers/idp.js';
import type { KubectlVersion } from '../helpers/kubectl.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const versions: KubectlVersion[] = ['1.27', '1.33'];

function assertStatus(
  response: { status: number; json: () => any },
  code: number,
  reason: string,
  message: RegExp,
): void {
  assert.equal(response.status, code);
  const body = response.json();
  assert.equal(body.kind, 'Status');
  assert.equal(body.apiVersion, 'v1');
  assert.equal(body.status, 'Failure');
  assert.equal(body.code, code);
  assert.equal(body.reason, reason);
  assert.match(body.message, /^hoopgate: /);
  assert.match(body.message, message);
}

function jwtIssuer(token: string | null): string | undefined {
  const payload = token?.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: string }).iss;
  } catch {
    return undefined;
  }
}

describe('data path: kubectl through the gateway', () => {
  let world: TestWorld;
  before(async () => {
    world = await startTestWorld({
      extraClients: [{ clientId: 'stranger', clientSecret: 'stranger-secret', groups: ['nobody'] }],
    });
  });
  after(async () => {
    await world?.assertNoCanaryLeaked();
    await world?.close();
  });

  for (const version of versions) {
    describe(`kubectl ${version}`, () => {
      test('get pods prints the Table the API server built', async () => {
        const result = await world.kubectl(['get', 'pods', '-n', 'staging'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^NAME\s+READY\s+STATUS/m);
        assert.match(result.stdout, /^web-0\s+1\/1\s+Running/m);
      });

      test('get -o yaml', async () => {
        const result = await world.kubectl(['get', 'pod', 'web-0', '-n', 'staging', '-o', 'yaml'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^kind: Pod$/m);
        assert.match(result.stdout, /name: web-0/);
      });

      test('get -w streams events while the watch is open', async () => {
        const name = `watched-${version.replace('.', '-')}`;
        const child = world.spawnKubectl(['get', 'configmaps', '-n', 'staging', '-w', '-o', 'name'], { version });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        try {
          await waitFor('the initial list', () => output.includes('configmap/app-config'), 20_000);
          world.sim.apply({
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name, namespace: 'staging' },
            data: { a: '1' },
          });
          await waitFor('the ADDED event', () => output.includes(`configmap/${name}`));
        } finally {
          child.kill('SIGTERM');
          await once(child, 'close');
        }
      });

      test('create -f, apply, apply --server-side and delete', async () => {
        const name = `app-${version.replace('.', '-')}`;
        const manifest = (value: string) =>
          `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: staging\ndata:\n  mode: "${value}"\n`;
        let result = await world.kubectl(['create', '-f', '-'], { version, stdin: manifest('created') });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`configmap/${name} created`));

        result = await world.kubectl(['apply', '-f', '-'], { version, stdin: manifest('applied') });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(world.sim.getObject('configmaps', 'staging', name)?.data?.mode, 'applied');

        result = await world.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], {
          version,
          stdin: manifest('server-side'),
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /serverside-applied/);
        assert.equal(world.sim.getObject('configmaps', 'staging', name)?.data?.mode, 'server-side');

        result = await world.kubectl(['delete', 'configmap', name, '-n', 'staging'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(world.sim.getObject('configmaps', 'staging', name), undefined);
      });

      test('logs -f follows until kubectl goes away', async () => {
        const child = world.spawnKubectl(['logs', '-f', 'web-0', '-n', 'staging'], { version });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        try {
          await waitFor('the first log lines', () => output.split('\n').length > 3, 20_000);
          const seen = output.length;
          await waitFor('a followed line', () => output.length > seen);
        } finally {
          child.kill('SIGTERM');
          await once(child, 'close');
        }
        await waitFor('the upstream follow stream to close', () => world.sim.openWatches() === 0);
      });
    });
  }

  test('every forwarded call carried a minted ServiceAccount token, never the OIDC token or Impersonate-*', () => {
    const forwarded = world.sim.requests.filter((r) => r.identity?.startsWith('system:serviceaccount:agents:'));
    assert.ok(forwarded.length > 20, `expected many forwarded calls, saw ${forwarded.length}`);
    for (const record of world.sim.requests) {
      assert.notEqual(
        jwtIssuer(record.token),
        world.idp.issuer,
        `${record.method} ${record.rawPath} carried an OIDC token upstream`,
      );
      assert.ok(
        record.token === null || record.identity !== null,
        `${record.method} ${record.rawPath} carried a token the API server does not know`,
      );
      for (const header of Object.keys(record.headers))
        assert.ok(!header.toLowerCase().startsWith('impersonate-'), `${header} reached upstream`);
    }
    const identities = new Set(world.sim.requests.map((r) => r.identity));
    // Only the agents' accounts and the gateway's own (for TokenRequest / SubjectAccessReview).
    for (const identity of identities) {
      assert.ok(
        identity === null ||
          identity.startsWith('system:serviceaccount:agents:') ||
          identity === 'system:serviceaccount:hoopgate:hoopgate',
        `unexpected upstream identity ${identity}`,
      );
    }
    const ownCalls = world.sim.requests.filter((r) => r.identity === 'system:serviceaccount:hoopgate:hoopgate');
    for (const call of ownCalls) {
      assert.match(
        call.rawPath,
        /^\/api\/v1\/namespaces\/agents\/serviceaccounts\/[^/]+\/token|^\/apis\/authorization\.k8s\.io\/v1\/subjectaccessreviews/,
        call.rawPath,
      );
    }
  });

  describe('refusals', () => {
    const upstreamCount = () => world.sim.requests.length;

    test('401 without a token', async () => {
      const before = upstreamCount();
      const response = await world.call('/api/v1/namespaces/staging/pods');
      assertStatus(response, 401, 'Unauthorized', /bearer|authorization/i);
      assert.equal(upstreamCount(), before);
    });

    const forgeries: [string, () => Promise<string> | string, RegExp][] = [
      ['an expired token', () => forge.expired(world.idp), /expired/],
      ['a token for another audience', () => forge.wrongAudience(world.idp), /audience/],
      ['a token from an untrusted issuer', () => forge.wrongIssuer(world.idp), /issuer .* is not trusted|not trusted/],
      ['alg: none', () => forge.algNone(world.idp), /none/],
      ['HS256 signed with the public key', () => forge.hs256WithPublicKey(world.idp), /HS256|algorithm/],
      ['a tampered signature', async () => forge.tamperedSignature(await world.token('ci-deployer')), /signature/],
      ['an unknown kid', () => forge.unknownKid(world.idp), /unknown/],
      ['a JWE', () => forge.jwe(world.idp), /encrypted|JWE/],
    ];
    for (const [what, make, message] of forgeries) {
      test(`401 for ${what}`, async () => {
        const before = upstreamCount();
        const token = await make();
        const response = await world.call('/api/v1/namespaces/staging/pods', {
          headers: { authorization: `Bearer ${token}` },
        });
        assertStatus(response, 401, 'Unauthorized', message);
        assert.ok(!response.text.includes(token), 'the refusal does not echo the token');
        assert.equal(upstreamCount(), before, 'nothing reached the API server');
      });
    }

    test('401 for a second Authorization header and for a token in the query string', async () => {
      const token = await world.token('ci-deployer');
      const twice = await world.call('/api/v1/namespaces/staging/pods', {
        headers: { authorization: [`Bearer ${token}`, `Bearer ${token}`] },
      });
      assertStatus(twice, 401, 'Unauthorized', /Authorization/i);
      const query = await world.call(`/api/v1/namespaces/staging/pods?access_token=${token}`);
      assertStatus(query, 401, 'Unauthorized', /query/i);
    });

    test('403 for an identity no mapping matches, naming subject and groups', async () => {
      const before = upstreamCount();
      const token = await world.token('stranger');
      const response = await world.call('/api/v1/namespaces/staging/pods', {
        headers: { authorization: `Bearer ${token}` },
      });
      assertStatus(response, 403, 'Forbidden', /no identity of this gateway maps subject .*stranger.*nobody/);
      assert.equal(upstreamCount(), before);
    });

    for (const header of ['Impersonate-User', 'Impersonate-Group', 'Impersonate-Uid', 'Impersonate-Extra-scopes']) {
      test(`403 for ${header}`, async () => {
        const before = upstreamCount();
        const token = await world.token('ci-deployer');
        const response = await world.call('/api/v1/namespaces/staging/pods', {
          headers: { authorization: `Bearer ${token}`, [header]: 'system:admin' },
        });
        assertStatus(response, 403, 'Forbidden', /impersonation is not allowed/);
        assert.equal(upstreamCount(), before);
      });
    }

    test('400 for a body over gateway.maxBodyBytes, 431 for an oversize header; nothing reaches upstream', async () => {
      const before = upstreamCount();
      const token = await world.token('ci-deployer');
      const body = JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'too-big' },
        data: { blob: 'z'.repeat(world.config.gateway.maxBodyBytes) },
      });
      const response = await world.call('/api/v1/namespaces/staging/configmaps', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
      assertStatus(
        response,
        400,
        'BadRequest',
        /request body of \d+ bytes exceeds the gateway's limit of \d+ bytes; send a smaller body/,
      );
      const header = await world.call('/api/v1/namespaces/staging/pods', {
        headers: { authorization: `Bearer ${token}`, 'x-padding': 'p'.repeat(40 * 1024) },
      });
      assert.equal(header.status, 431);
      assert.equal(upstreamCount(), before);
    });

    const nonCanonical = [
      '//api/v1/namespaces/staging/pods',
      '/api/v1/namespaces/staging/./pods',
      '/api/v1/namespaces/staging/../kube-system/secrets',
      '/api/v1/namespaces/kube-system%2fsecrets',
      '/api/v1/namespaces/staging/%2e%2e/secrets',
      '/api/v1/namespaces/staging/pods%5cweb-0',
      '/api/v1/namespaces/staging/pods/web-0%00',
      '/api/v1/namespaces/staging/pods/%2E',
    ];
    for (const path of nonCanonical) {
      test(`400 for the non-canonical path ${path}`, async () => {
        const before = upstreamCount();
        const token = await world.token('ci-deployer');
        const response = await world.call(path, { headers: { authorization: `Bearer ${token}` } });
        assertStatus(response, 400, 'BadRequest', /non-canonical/);
        assert.equal(upstreamCount(), before);
      });
    }
  });

  test('a client that aborts a watch leaves no open upstream connection', async () => {
    const token = await world.token('ci-deployer');
    const controller = new AbortController();
    const pending = world
      .call('/api/v1/namespaces/staging/configmaps?watch=1', {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      })
      .catch((error: unknown) => error);
    await waitFor('the watch to open upstream', () => world.sim.openWatches() === 1);
    controller.abort();
    assert.ok((await pending) instanceof Error);
    await waitFor('the upstream watch to close', () => world.sim.openWatches() === 0);
  });

  test('every request yields exactly one complete audit event, refusals included', async () => {
    const logged = () => world.logLines.filter((line) => JSON.parse(line).msg === 'request').length;
    const records = async (kind: 'request' | 'outcome') => world.gateway.store.audit.listRecords({ kinds: [kind] });
    let requests = await records('request');
    let outcomes = await records('outcome');
    const deadline = Date.now() + 10_000;
    while ((outcomes.length !== requests.length || requests.length !== logged()) && Date.now() < deadline) {
      await sleep(100);
      requests = await records('request');
      outcomes = await records('outcome');
    }
    assert.ok(requests.length > 50, `many requests were recorded (${requests.length})`);
    assert.equal(requests.length, logged(), 'one request record per request the gateway answered');
    const byEvent = new Map<string, number>();
    for (const outcome of outcomes) byEvent.set(outcome.eventId ?? '', (byEvent.get(outcome.eventId ?? '') ?? 0) + 1);
    for (const request of requests)
      assert.equal(byEvent.get(request.eventId ?? ''), 1, `event ${request.eventId} has exactly one outcome`);
    const refusals = requests.filter((r) => (r.data['decision'] as { effect: string }).effect === 'deny');
    assert.ok(refusals.length >= 20, `refusals are recorded (${refusals.length})`);
  });
});
