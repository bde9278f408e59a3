// Issue #3 end to end: Secret values never leave the gateway, whatever kubectl asks for (YAML,
// JSON lists, Tables, watches, describe, jsonpath, apply's annotation, server-side dry-run delete),
// and the policy decision reaches the API server only when it allows the call.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { KubectlVersion } from '../helpers/kubectl.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const MASKED_BASE64 = 'KioqTUFTS0VEKioq';
const versions: KubectlVersion[] = ['1.27', '1.33'];

describe('Secret masking through kubectl', () => {
  let world: TestWorld;
  const addedCanaries: string[] = [];
  before(async () => {
    world = await startTestWorld();
  });
  after(async () => {
    await world?.assertNoCanaryLeaked(addedCanaries);
    await world?.close();
  });

  for (const version of versions) {
    describe(`kubectl ${version}`, () => {
      test('get secret -o yaml shows keys with masked values', async () => {
        const result = await world.kubectl(['get', 'secret', 'db-credentials', '-n', 'staging', '-o', 'yaml'], {
          version,
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`password: ${MASKED_BASE64}`));
        assert.match(result.stdout, new RegExp(`username: ${MASKED_BASE64}`));
      });

      test('get secrets -o json masks every list item', async () => {
        const result = await world.kubectl(['get', 'secrets', '-n', 'staging', '-o', 'json'], { version });
        assert.equal(result.code, 0, result.stderr);
        const list = JSON.parse(result.stdout) as { items: { data?: Record<string, string> }[] };
        assert.ok(list.items.length >= 1);
        for (const item of list.items)
          for (const value of Object.values(item.data ?? {})) assert.equal(value, MASKED_BASE64);
      });

      test('get secrets prints the Table', async () => {
        const result = await world.kubectl(['get', 'secrets', '-n', 'staging'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^NAME\s+TYPE\s+DATA\s+AGE/m);
        assert.match(result.stdout, /^db-credentials\s+Opaque\s+2/m);
      });

      test('jsonpath | base64 -d prints ***MASKED***', async () => {
        const result = await world.kubectl(
          ['get', 'secret', 'db-credentials', '-n', 'staging', '-o', 'jsonpath={.data.password}'],
          { version },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.equal(Buffer.from(result.stdout, 'base64').toString('utf8'), '***MASKED***');
      });

      test('describe secret works and shows no value', async () => {
        const result = await world.kubectl(['describe', 'secret', 'db-credentials', '-n', 'staging'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /password:\s+12 bytes/);
      });

      test('get secret -w -o json streams a later change masked', async () => {
        const name = `watched-secret-${version.replace('.', '-')}`;
        const canary = `CANARY-watch-${version}-${Date.now()}`;
        addedCanaries.push(canary);
        world.sim.apply({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace: 'staging' },
          stringData: { token: 'initial-value' },
        });
        const child = world.spawnKubectl(['get', 'secret', name, '-n', 'staging', '-w', '-o', 'json'], { version });
        let output = '';
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        try {
          await waitFor('the initial object', () => output.includes(`"name": "${name}"`), 20_000);
          await waitFor('the watch to be open upstream', () => world.sim.openWatches() >= 1);
          const seen = output.length;
          world.sim.apply({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, namespace: 'staging', labels: { changed: 'yes' } },
            stringData: { token: canary },
          });
          await waitFor('the MODIFIED event', () => output.slice(seen).includes('"changed": "yes"'));
          assert.ok(!output.includes(canary));
          assert.ok(!output.includes('initial-value'));
          assert.match(output.slice(seen), new RegExp(`"token": "${MASKED_BASE64}"`));
        } finally {
          child.kill('SIGTERM');
          await once(child, 'close');
        }
      });

      test('apply of a Secret, then get -o yaml: values and last-applied annotation masked', async () => {
        const name = `applied-${version.replace('.', '-')}`;
        const canary = `CANARY-apply-${version}-${Date.now()}`;
        addedCanaries.push(canary);
        const manifest = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: staging\nstringData:\n  apiKey: ${canary}\n`;
        const applied = await world.kubectl(['apply', '-f', '-'], { version, stdin: manifest });
        assert.equal(applied.code, 0, applied.stderr);
        assert.ok(world.sim.getObject('secrets', 'staging', name), 'the Secret reached the API server');
        const result = await world.kubectl(['get', 'secret', name, '-n', 'staging', '-o', 'yaml'], { version });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /kubectl\.kubernetes\.io\/last-applied-configuration/);
        assert.ok(!result.stdout.includes(canary));
        assert.match(result.stdout, new RegExp(`apiKey: ${MASKED_BASE64}`));
      });

      test('delete secrets --all --dry-run=server shows nothing secret and deletes nothing', async () => {
        const before = world.sim.getObject('secrets', 'staging', 'db-credentials');
        const result = await world.kubectl(['delete', 'secrets', '--all', '-n', 'staging', '--dry-run=server'], {
          version,
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /secret "db-credentials" deleted \(server dry run\)/);
        assert.ok(!result.stdout.includes('CANARY'));
        assert.deepEqual(world.sim.getObject('secrets', 'staging', 'db-credentials'), before);
      });
    });
  }

  test('deletecollection with dryRun returns the would-be-deleted Secrets masked', async () => {
    const rbac = { apiVersion: 'rbac.authorization.k8s.io/v1' };
    world.sim.apply({
      ...rbac,
      kind: 'Role',
      metadata: { namespace: 'staging', name: 'secret-sweeper' },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['deletecollection'] }],
    });
    world.sim.apply({
      ...rbac,
      kind: 'RoleBinding',
      metadata: { namespace: 'staging', name: 'secret-sweeper' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-sweeper' },
      subjects: [{ kind: 'ServiceAccount', namespace: 'agents', name: 'ci-deployer' }],
    });
    const token = await world.token('ci-deployer');
    const response = await world.call('/api/v1/namespaces/staging/secrets?dryRun=All', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200, response.text);
    const list = response.json() as { kind: string; items: { data?: Record<string, string> }[] };
    assert.equal(list.kind, 'SecretList');
    assert.ok(list.items.length >= 1);
    for (const item of list.items)
      for (const value of Object.values(item.data ?? {})) assert.equal(value, MASKED_BASE64);
    assert.ok(world.sim.getObject('secrets', 'staging', 'db-credentials'), 'nothing was deleted');
  });

  test('a client asking only for protobuf gets JSON, masked', async () => {
    const token = await world.token('ci-deployer');
    const response = await world.call('/api/v1/namespaces/staging/secrets/db-credentials', {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.kubernetes.protobuf' },
    });
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.equal(response.json().data.password, MASKED_BASE64);
  });

  test('gzip responses are decoded and masked', async () => {
    // The API server compresses only bodies over 128 KiB: a large Secret makes the list one.
    const canary = `CANARY-gzip-${Date.now()}`;
    addedCanaries.push(canary);
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'large-for-gzip', namespace: 'staging' },
      stringData: { blob: `${canary}-${'y'.repeat(140 * 1024)}` },
    });
    const token = await world.token('ci-deployer');
    const response = await world.call('/api/v1/namespaces/staging/secrets', {
      headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' },
    });
    assert.equal(response.status, 200);
    const gzipped = world.sim.requests.at(-1);
    assert.equal(gzipped?.headers['accept-encoding'], 'gzip', 'the gateway asked upstream for gzip');
    assert.ok(!response.text.includes(canary));
    assert.equal(response.headers['content-encoding'], undefined, 'the masked body is re-emitted uncompressed');
    for (const item of response.json().items as { data: Record<string, string> }[]) {
      for (const value of Object.values(item.data)) assert.equal(value, MASKED_BASE64);
    }
  });

  test('the audit store holds the masked request body of a created Secret', async () => {
    const canary = `CANARY-created-${Date.now()}`;
    addedCanaries.push(canary);
    const token = await world.token('ci-deployer');
    const body = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'created-by-call' },
      stringData: { password: canary },
    });
    const response = await world.call('/api/v1/namespaces/staging/secrets', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(response.status, 201, response.text);
    const records = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
    const created = records.find(
      (r) => r.data['path'] === '/api/v1/namespaces/staging/secrets' && r.data['method'] === 'POST',
    );
    assert.ok(created, 'the create was recorded');
    const recorded = JSON.stringify(created.data);
    assert.match(recorded, /\*\*\*MASKED\*\*\*/);
    assert.ok(!recorded.includes(canary));
  });

  describe('decisions reach upstream only when they allow', () => {
    test('a call the baseline RBAC allows is forwarded as the baseline account', async () => {
      const before = world.sim.requests.length;
      const result = await world.kubectl(['get', 'configmaps', '-n', 'staging', '-o', 'name'], {
        context: 'readonly-bot',
      });
      assert.equal(result.code, 0, result.stderr);
      const forwarded = world.sim.requests
        .slice(before)
        .filter((r) => r.rawPath.startsWith('/api/v1/namespaces/staging/configmaps'));
      assert.ok(forwarded.length >= 1);
      for (const record of forwarded) assert.equal(record.identity, 'system:serviceaccount:agents:readonly-bot');
    });

    test('a call RBAC forbids is refused with the reason, and the upstream saw nothing of it', async () => {
      const before = world.sim.requests.length;
      const result = await world.kubectl(['delete', 'configmap', 'app-config', '-n', 'staging'], {
        context: 'readonly-bot',
      });
      assert.notEqual(result.code, 0);
      assert.match(
        result.stderr,
        /Error from server \(Forbidden\): hoopgate: .*readonly-bot.*may not delete configmaps\/app-config -n staging.*has no RBAC permission for it/,
      );
      const deletes = world.sim.requests.slice(before).filter((r) => r.method === 'DELETE');
      assert.equal(deletes.length, 0);
      assert.ok(world.sim.getObject('configmaps', 'staging', 'app-config'));
    });

    test('a deny rule wins over RBAC', async () => {
      const before = world.sim.requests.filter((r) => r.rawPath.includes('/secrets')).length;
      const result = await world.kubectl(['get', 'secrets', '-n', 'staging'], { context: 'readonly-bot' });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /Forbidden.*a deny rule of the gateway covers get, list, watch on secrets/);
      assert.equal(world.sim.requests.filter((r) => r.rawPath.includes('/secrets')).length, before);
    });
  });
});
