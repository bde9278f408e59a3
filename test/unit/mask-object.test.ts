// Unit tables for the object masker: every shape a Secret can take in a response (docs/reference.md §6).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MaskingConfig } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import {
  createObjectMasker,
  kindToResource,
  LAST_APPLIED_ANNOTATION,
  MASKED_BASE64,
  MASKED_TEXT,
  resourceToKind,
} from '../../packages/gateway/src/proxy/mask/index.js';

const config: MaskingConfig = { secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 };
const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** Fails when any form of a canary value is left. */
function assertNoCanary(value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  assert.ok(!text.includes('CANARY'), `CANARY leaked: ${text}`);
  assert.ok(!text.includes(b64('CANARY')), `base64 CANARY leaked: ${text}`);
}

function secret(name: string, withKind = true): Record<string, unknown> {
  const applied = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    stringData: { token: `CANARY-applied-${name}` },
  };
  return {
    ...(withKind ? { kind: 'Secret', apiVersion: 'v1' } : {}),
    metadata: {
      name,
      namespace: 'default',
      annotations: { [LAST_APPLIED_ANNOTATION]: `${JSON.stringify(applied)}\n`, team: 'x' },
      managedFields: [{ manager: 'kubectl', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { 'f:password': {} } } }],
    },
    data: { password: b64(`CANARY-${name}`), empty: null },
    stringData: { note: `CANARY-note-${name}` },
    type: 'Opaque',
  };
}

const configMap = {
  kind: 'ConfigMap',
  apiVersion: 'v1',
  metadata: { name: 'cm' },
  data: { password: 'plain', color: 'blue' },
};

type Json = Record<string, any>;
const masker = createObjectMasker(config);

describe('maskObject: Secret shapes', () => {
  it('masks a single Secret: data, stringData, last-applied; keeps keys, nulls and managedFields', () => {
    const input = secret('a');
    const { value, masked } = masker.maskObject(input);
    const out = value as Json;
    assertNoCanary(out);
    assert.deepEqual(out.data, { password: MASKED_BASE64, empty: null });
    assert.deepEqual(out.stringData, { note: MASKED_TEXT });
    assert.equal(Buffer.from(MASKED_BASE64, 'base64').toString(), MASKED_TEXT);
    const applied = out.metadata.annotations[LAST_APPLIED_ANNOTATION] as string;
    assert.ok(applied.endsWith('\n'));
    assert.deepEqual(JSON.parse(applied).stringData, { token: MASKED_TEXT });
    assert.equal(out.metadata.annotations.team, 'x');
    assert.deepEqual(out.metadata.managedFields, (input.metadata as Json).managedFields);
    assert.equal(masked, 3);
    assert.ok(JSON.stringify(input).includes('CANARY'), 'the input is not mutated');
  });

  it('replaces an unparseable last-applied annotation of a Secret entirely', () => {
    const input = {
      ...secret('a'),
      metadata: { name: 'a', annotations: { [LAST_APPLIED_ANNOTATION]: '{not json CANARY' } },
    };
    const out = masker.maskObject(input).value as Json;
    assert.equal(out.metadata.annotations[LAST_APPLIED_ANNOTATION], MASKED_TEXT);
    assertNoCanary(out);
  });

  it('masks a malformed (non-map) data field whole', () => {
    const out = masker.maskObject({ kind: 'Secret', apiVersion: 'v1', metadata: {}, data: 'CANARY' }).value as Json;
    assert.equal(out.data, MASKED_BASE64);
  });

  const shapes: { name: string; input: unknown; secrets: (out: Json) => Json[]; hint?: { resource: string } }[] = [
    {
      name: 'SecretList with kind-less items',
      input: { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [secret('a', false), secret('b', false)] },
      secrets: (o) => o.items,
    },
    {
      name: 'mixed kind: List',
      input: {
        kind: 'List',
        apiVersion: 'v1',
        items: [configMap, secret('a'), { kind: 'SecretList', apiVersion: 'v1', items: [secret('n', false)] }],
      },
      secrets: (o) => [o.items[1], o.items[2].items[0]],
    },
    { name: 'watch event', input: { type: 'ADDED', object: secret('a') }, secrets: (o) => [o.object] },
    {
      name: 'watch event of a kind-less object, resource hint',
      input: { type: 'MODIFIED', object: secret('a', false) },
      secrets: (o) => [o.object],
      hint: { resource: 'secrets' },
    },
    {
      name: 'Table with includeObject=Object',
      input: {
        kind: 'Table',
        apiVersion: 'meta.k8s.io/v1',
        metadata: {},
        columnDefinitions: [{ name: 'Name', type: 'string' }],
        rows: [{ cells: ['a', 'Opaque', 2, `CANARY-note-a`], object: secret('a') }],
      },
      secrets: (o) => [o.rows[0].object],
    },
    {
      name: 'Table watch event',
      input: {
        type: 'ADDED',
        object: { kind: 'Table', apiVersion: 'meta.k8s.io/v1', rows: [{ cells: ['a'], object: secret('a') }] },
      },
      secrets: (o) => [o.object.rows[0].object],
    },
    { name: 'create/update/patch response (the object)', input: secret('created'), secrets: (o) => [o] },
    {
      name: 'delete response (the object being deleted)',
      input: {
        ...secret('gone'),
        metadata: { ...(secret('gone').metadata as Json), deletionTimestamp: '2024-01-01T00:00:00Z' },
      },
      secrets: (o) => [o],
    },
    {
      name: 'deletecollection response (a SecretList)',
      input: { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '9' }, items: [secret('x', false)] },
      secrets: (o) => o.items,
    },
  ];
  for (const shape of shapes) {
    it(`masks a ${shape.name}`, () => {
      const { value, masked } = masker.maskObject(shape.input, shape.hint);
      assertNoCanary(value);
      assert.ok(masked > 0);
      for (const s of shape.secrets(value as Json)) {
        assert.equal(s.data.password, MASKED_BASE64);
        assert.equal(s.stringData.note, MASKED_TEXT);
      }
    });
  }

  it('masks a Table cell equal to a secret value (defensive)', () => {
    const out = masker.maskObject({
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      rows: [{ cells: ['a', 'CANARY-a', 'CANARY-note-a'], object: secret('a') }],
    }).value as Json;
    assert.deepEqual(out.rows[0].cells, ['a', MASKED_TEXT, MASKED_TEXT]);
  });

  it('masks the last-applied annotation of PartialObjectMetadata (Table rows and lists)', () => {
    const meta = (name: string): Json => ({
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: secret(name).metadata as Json,
    });
    const table = masker.maskObject(
      { kind: 'Table', apiVersion: 'meta.k8s.io/v1', rows: [{ cells: ['a'], object: meta('a') }] },
      { resource: 'secrets' },
    ).value as Json;
    assertNoCanary(table);
    const list = masker.maskObject({
      kind: 'PartialObjectMetadataList',
      apiVersion: 'meta.k8s.io/v1',
      items: [meta('b')],
    }).value as Json;
    assertNoCanary(list);
    assert.deepEqual(JSON.parse(list.items[0].metadata.annotations[LAST_APPLIED_ANNOTATION]).stringData, {
      token: MASKED_TEXT,
    });
    // Unknown underlying kind and an annotation that cannot be parsed: replaced, fail closed.
    const broken = {
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: 'CANARY{' } },
    };
    assert.equal((masker.maskObject(broken).value as Json).metadata.annotations[LAST_APPLIED_ANNOTATION], MASKED_TEXT);
  });

  it('masks a kind-less object shaped like a Secret when nothing says its kind', () => {
    const out = masker.maskObject({ kind: 'List', items: [secret('a', false)] }).value;
    assertNoCanary(out);
  });

  it('passes unknown kinds, non-v1 Secrets, Status and non-objects unchanged (same reference)', () => {
    for (const input of [
      configMap,
      { kind: 'Secret', apiVersion: 'example.com/v1', data: { a: 'not-a-core-secret' } },
      { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 },
      [1, 2],
      'text',
      null,
    ]) {
      const result = masker.maskObject(input);
      assert.equal(result.value, input);
      assert.equal(result.masked, 0);
    }
  });

  it('masking.secrets: false leaves Secrets to the rules', () => {
    const off = createObjectMasker({ ...config, secrets: false });
    assert.equal(off.maskObject({ kind: 'Secret', apiVersion: 'v1', data: { a: 'eA==' } }).masked, 0);
  });
});

describe('maskObject: config rules', () => {
  const ruled = createObjectMasker({
    ...config,
    rules: [
      { resources: ['configmaps'], keys: '(?i)(password|token|secret|key)' },
      {
        resources: ['deployments', 'pods'],
        paths: ['spec.template.spec.containers[].env[].value', 'spec.containers[].env[].value'],
        whenName: '(?i)token|pass',
      },
      { resources: ['*'], paths: ['spec.containers[].args[]'] },
    ],
  });

  it('masks matching keys of data/binaryData of matching resources, case-insensitively', () => {
    const input = {
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: { name: 'c' },
      data: { DB_PASSWORD: 'CANARY-1', color: 'blue' },
      binaryData: { apiKey: b64('CANARY-2') },
    };
    const { value, masked } = ruled.maskObject(input);
    const out = value as Json;
    assertNoCanary(out);
    assert.deepEqual(out.data, { DB_PASSWORD: MASKED_TEXT, color: 'blue' });
    assert.deepEqual(out.binaryData, { apiKey: MASKED_BASE64 });
    assert.equal(masked, 2);
  });

  it('does not touch other resources', () => {
    const input = { kind: 'Service', apiVersion: 'v1', data: { password: 'visible' } };
    assert.equal(ruled.maskObject(input).value, input);
  });

  it('masks JSON paths with whenName, in a Deployment and in a Pod list', () => {
    const env = [
      { name: 'API_TOKEN', value: 'CANARY-t' },
      { name: 'LOG_LEVEL', value: 'debug' },
      { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
    ];
    const deployment = {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      spec: { template: { spec: { containers: [{ name: 'app', env, args: ['--x'] }] } } },
    };
    const out = ruled.maskObject(deployment).value as Json;
    assertNoCanary(out);
    const outEnv = out.spec.template.spec.containers[0].env;
    assert.deepEqual(outEnv[0], { name: 'API_TOKEN', value: MASKED_TEXT });
    assert.deepEqual(outEnv[1], { name: 'LOG_LEVEL', value: 'debug' });
    assert.deepEqual(outEnv[2], env[2]);
    const pods = ruled.maskObject({
      kind: 'PodList',
      apiVersion: 'v1',
      items: [{ spec: { containers: [{ env, args: ['--password=CANARY-a'] }] } }],
    }).value as Json;
    assertNoCanary(pods);
    assert.deepEqual(pods.items[0].spec.containers[0].args, [MASKED_TEXT]);
    assert.equal(pods.items[0].spec.containers[0].env[1].value, 'debug');
  });

  it('masks the last-applied annotation of a rule-matched object as that object', () => {
    const applied = { kind: 'ConfigMap', apiVersion: 'v1', data: { token: 'CANARY-x', color: 'red' } };
    const input = {
      ...applied,
      data: { token: 'CANARY-y' },
      metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify(applied) } },
    };
    const out = ruled.maskObject(input).value as Json;
    assertNoCanary(out);
    assert.equal(JSON.parse(out.metadata.annotations[LAST_APPLIED_ANNOTATION]).data.color, 'red');
  });

  it('rejects a bad rule regex or path at creation with ERR_CONFIG', () => {
    assert.throws(
      () => createObjectMasker({ ...config, rules: [{ resources: ['configmaps'], keys: '(' }] }),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_CONFIG' &&
        /masking\.rules\[0\]\.keys: invalid regular expression/.test(error.message),
    );
    assert.throws(
      () => createObjectMasker({ ...config, rules: [{ resources: ['pods'], paths: ['spec..x'] }] }),
      (error: unknown) =>
        error instanceof HoopError &&
        error.code === 'ERR_CONFIG' &&
        /masking\.rules\[0\]\.paths\[0\]: invalid path/.test(error.message),
    );
  });
});

describe('kind ↔ resource', () => {
  it('maps known kinds by table and others by the plural fallback', () => {
    assert.equal(kindToResource('ConfigMap'), 'configmaps');
    assert.equal(kindToResource('Ingress'), 'ingresses');
    assert.equal(kindToResource('NetworkPolicy'), 'networkpolicies');
    assert.equal(kindToResource('Endpoints'), 'endpoints');
    assert.equal(kindToResource('Widget'), 'widgets');
    assert.equal(kindToResource('Gateway'), 'gateways');
    assert.equal(kindToResource('Proxy'), 'proxies');
    assert.equal(resourceToKind('secrets'), 'Secret');
    assert.equal(resourceToKind('secrets/status'), 'Secret');
    assert.equal(resourceToKind('widgets'), undefined);
  });
});
