// Issue #16 item 1 end to end: a masked object written back never destroys data. Real kubectl and
// client-node read through the gateway (masked), change a label and write the object back; the
// values are then read from the simulated API server directly, never through the gateway.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { runKubectl, type KubectlVersion } from '../helpers/kubectl.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const MASKED_BASE64 = 'KioqTUFTS0VEKioq';
const MASKED_TEXT = '***MASKED***';
const b64 = (value: string) => Buffer.from(value).toString('base64');

describe('writing a masked object back keeps the stored values', () => {
  let world: TestWorld;
  let dir: string;
  const canaries: string[] = [];
  let counter = 0;

  /** A Secret seeded directly in the simulator, whose values are canaries. */
  function seedSecret(extra: Record<string, unknown> = {}): { name: string; data: Record<string, string> } {
    const name = `roundtrip-${++counter}`;
    const password = `CANARY-pw-${counter}-${Date.now()}`;
    const username = `CANARY-user-${counter}-${Date.now()}`;
    canaries.push(password, username);
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'staging', labels: { app: 'roundtrip' }, ...extra },
      stringData: { password, username },
    });
    return { name, data: { password: b64(password), username: b64(username) } };
  }
  const stored = (name: string, resource = 'secrets') => world.sim.getObject(resource, 'staging', name);

  async function outcomeOf(method: string, path: string): Promise<Record<string, unknown> | undefined> {
    const records = await world.gateway.store.audit.listRecords({});
    const request = records
      .filter((r) => r.kind === 'request' && r.data['method'] === method && r.data['path'] === path)
      .at(-1);
    if (request === undefined) return undefined;
    return records.find((r) => r.kind === 'outcome' && r.eventId === request.eventId)?.data;
  }

  before(async () => {
    world = await startTestWorld();
    dir = mkdtempSync(join(tmpdir(), 'hoopgate-editor-'));
  });
  after(async () => {
    await world?.assertNoCanaryLeaked(canaries);
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const version of ['1.27', '1.33'] as KubectlVersion[]) {
    test(`kubectl ${version}: get -o json | change a label | replace -f - keeps every value`, async () => {
      const { name, data } = seedSecret();
      const read = await world.kubectl(['get', 'secret', name, '-o', 'json'], { version });
      assert.equal(read.code, 0, read.stderr);
      const object = JSON.parse(read.stdout);
      assert.equal(object.data.password, MASKED_BASE64, 'the read is masked');
      object.metadata.labels.changed = 'yes';
      const replaced = await world.kubectl(['replace', '-f', '-'], { version, stdin: JSON.stringify(object) });
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.match(replaced.stdout, new RegExp(`secret/${name} replaced`));
      const after = stored(name);
      assert.deepEqual(after.data, data, 'the real values are intact upstream');
      assert.equal(after.metadata.labels.changed, 'yes', 'the label change went through');
      const outcome =
        (await outcomeOf(
          'PUT',
          `/api/v1/namespaces/staging/secrets/${name}?fieldManager=kubectl-replace&fieldValidation=Strict`,
        )) ?? (await outcomeOf('PUT', `/api/v1/namespaces/staging/secrets/${name}?fieldManager=kubectl-replace`));
      assert.deepEqual(
        (outcome?.['keptMaskedValues'] as string[] | undefined)?.slice().sort(),
        ['data.password', 'data.username'],
        'the audit record names the kept keys',
      );
    });
  }

  test('kubectl edit (KUBE_EDITOR changes only a label) keeps the values, with a last-applied annotation', async () => {
    // Created with apply, so the object carries the last-applied annotation (masked on read).
    const name = 'edited-applied';
    const apiKey = `CANARY-edit-${Date.now()}`;
    canaries.push(apiKey);
    const manifest = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: staging\n  labels:\n    app: roundtrip\nstringData:\n  apiKey: ${apiKey}\n`;
    assert.equal((await world.kubectl(['apply', '-f', '-'], { stdin: manifest })).code, 0);
    const before = stored(name);
    const editor = join(dir, 'label-editor.sh');
    writeFileSync(editor, `#!/bin/sh\nsed -i 's/^    app: roundtrip$/    app: roundtrip\\n    edited: "yes"/' "$1"\n`);
    chmodSync(editor, 0o755);
    const edited = await runKubectl(['edit', 'secret', name, '-n', 'staging'], {
      kubeconfig: world.kubeconfigPath,
      env: { KUBE_EDITOR: editor },
    });
    assert.equal(edited.code, 0, edited.stderr);
    const after = stored(name);
    assert.equal(after.metadata.labels.edited, 'yes');
    assert.deepEqual(after.data, before.data);
    assert.equal(
      after.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'],
      before.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'],
    );
  });

  test('kubectl edit that copies a masked value under a new key is refused (422 naming the key), nothing stored', async () => {
    const { name, data } = seedSecret();
    const before = stored(name);
    const editor = join(dir, 'copy-editor.sh');
    writeFileSync(
      editor,
      `#!/bin/sh\ngrep -q copied "$1" || sed -i 's/^data:$/data:\\n  copied: ${MASKED_BASE64}/' "$1"\n`,
    );
    chmodSync(editor, 0o755);
    const edited = await runKubectl(['edit', 'secret', name, '-n', 'staging'], {
      kubeconfig: world.kubeconfigPath,
      env: { KUBE_EDITOR: editor },
    });
    assert.notEqual(edited.code, 0);
    assert.match(edited.stderr, /is invalid/);
    const after = stored(name);
    assert.deepEqual(after.data, data);
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'nothing was written');
  });

  test('client-node replaceNamespacedSecret of a masked read keeps the values', async () => {
    const { name, data } = seedSecret();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'gateway', server: world.gateway.url, caData: Buffer.from(world.gatewayTls.ca).toString('base64') },
      ],
      users: [{ name: 'ci', token: await world.token('ci-deployer') }],
      contexts: [{ name: 'ci', cluster: 'gateway', user: 'ci' }],
      currentContext: 'ci',
    });
    const api = kc.makeApiClient(CoreV1Api);
    const secret = await api.readNamespacedSecret({ name, namespace: 'staging' });
    assert.equal(secret.data?.['password'], MASKED_BASE64);
    secret.metadata = { ...secret.metadata, labels: { ...secret.metadata?.labels, client: 'node' } };
    const replaced = await api.replaceNamespacedSecret({ name, namespace: 'staging', body: secret });
    assert.equal(replaced.data?.['password'], MASKED_BASE64, 'the answer is masked too');
    assert.deepEqual(stored(name).data, data);
    assert.equal(stored(name).metadata.labels.client, 'node');
  });

  test('a ConfigMap key masked by masking.rules survives the round trip; other keys change', async () => {
    const password = `CANARY-cm-${Date.now()}`;
    canaries.push(password);
    world.sim.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'roundtrip-config', namespace: 'staging' },
      data: { DB_PASSWORD: password, LOG_LEVEL: 'info' },
    });
    const read = await world.kubectl(['get', 'configmap', 'roundtrip-config', '-o', 'json']);
    assert.equal(read.code, 0, read.stderr);
    const object = JSON.parse(read.stdout);
    assert.equal(object.data.DB_PASSWORD, MASKED_TEXT);
    object.data.LOG_LEVEL = 'debug';
    const replaced = await world.kubectl(['replace', '-f', '-'], { stdin: JSON.stringify(object) });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual(stored('roundtrip-config', 'configmaps').data, { DB_PASSWORD: password, LOG_LEVEL: 'debug' });
  });

  test('a placeholder under a NEW key: 422 Invalid naming the key, nothing stored', async () => {
    const { name, data } = seedSecret();
    const before = stored(name);
    const read = await world.kubectl(['get', 'secret', name, '-o', 'json']);
    const object = JSON.parse(read.stdout);
    object.data.copied = MASKED_BASE64;
    const replaced = await world.kubectl(['replace', '-f', '-'], { stdin: JSON.stringify(object) });
    assert.notEqual(replaced.code, 0);
    assert.match(replaced.stderr, /data\.copied/);
    assert.match(replaced.stderr, /hoopgate: /);
    assert.equal(stored(name).metadata.resourceVersion, before.metadata.resourceVersion);
    assert.deepEqual(stored(name).data, data);

    // The Status itself, and a create carrying a placeholder.
    const token = await world.token('ci-deployer');
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const response = await world.call(`/api/v1/namespaces/staging/secrets/${name}`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(object),
    });
    assert.equal(response.status, 422, response.text);
    const status = response.json();
    assert.equal(status.kind, 'Status');
    assert.equal(status.code, 422);
    assert.equal(status.reason, 'Invalid');
    assert.match(
      status.message,
      /^hoopgate: the body carries the mask placeholder in data\.copied, but secrets\/roundtrip-\d+ -n staging has no stored value for it/,
    );
    assert.deepEqual(
      status.details.causes.map((c: { field: string }) => c.field),
      ['data.copied'],
    );
    const created = await world.call('/api/v1/namespaces/staging/secrets', {
      method: 'POST',
      headers,
      body: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'never-created' },
        data: { password: MASKED_BASE64 },
      }),
    });
    assert.equal(created.status, 422, created.text);
    assert.match(created.json().message, /^hoopgate: .*data\.password, but the new secrets object does not exist yet/);
    assert.equal(stored('never-created'), undefined);
    const outcome = await outcomeOf('PUT', `/api/v1/namespaces/staging/secrets/${name}`);
    assert.equal(outcome?.['status'], 422, 'the refusal is recorded');
  });

  test('a merge patch carrying the placeholder for an existing key keeps the value', async () => {
    const { name, data } = seedSecret();
    const patched = await world.kubectl([
      'patch',
      'secret',
      name,
      '--type=merge',
      '-p',
      JSON.stringify({
        metadata: { labels: { merged: 'yes' } },
        data: { password: MASKED_BASE64, extra: b64('plain') },
      }),
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.deepEqual(stored(name).data, { ...data, extra: b64('plain') });
    assert.equal(stored(name).metadata.labels.merged, 'yes');
  });

  test('a JSON patch: replace with the placeholder keeps the value; add under a new key is refused', async () => {
    const { name, data } = seedSecret();
    const ops = [
      { op: 'replace', path: '/data/password', value: MASKED_BASE64 },
      { op: 'add', path: '/metadata/labels/json', value: 'yes' },
    ];
    const patched = await world.kubectl(['patch', 'secret', name, '--type=json', '-p', JSON.stringify(ops)]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.deepEqual(stored(name).data, data);
    assert.equal(stored(name).metadata.labels.json, 'yes');

    const refused = await world.kubectl([
      'patch',
      'secret',
      name,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/data/fresh', value: MASKED_BASE64 }]),
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /data\.fresh/);
    assert.equal(stored(name).data.fresh, undefined);
  });

  test('server-side apply of a masked read keeps the values', async () => {
    const { name, data } = seedSecret();
    const read = await world.kubectl(['get', 'secret', name, '-o', 'json']);
    const object = JSON.parse(read.stdout);
    delete object.metadata.managedFields;
    delete object.metadata.resourceVersion;
    object.metadata.labels.ssa = 'yes';
    const applied = await world.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], {
      stdin: JSON.stringify(object),
    });
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual(stored(name).data, data);
    assert.equal(stored(name).metadata.labels.ssa, 'yes');
  });
});
