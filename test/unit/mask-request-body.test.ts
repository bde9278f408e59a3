// Request bodies as the audit store and Slack see them: created Secrets, patches of each type, YAML
// apply bodies; anything unparseable is withheld.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { MaskingConfig } from '../../packages/gateway/src/config/types.js';
import {
  LAST_APPLIED_ANNOTATION,
  MASKED_BASE64,
  MASKED_TEXT,
  maskRequestBody,
} from '../../packages/gateway/src/proxy/mask/index.js';

const config: MaskingConfig = {
  secrets: true,
  rules: [
    { resources: ['configmaps'], keys: '(?i)password' },
    { resources: ['deployments'], paths: ['spec.template.spec.containers[].env[].value'], whenName: '(?i)token' },
  ],
  maxObjectBytes: 8 * 1024 * 1024,
};
const b64 = (value: string): string => Buffer.from(value).toString('base64');
type Json = Record<string, any>;

function assertNoCanary(text: string): void {
  assert.ok(!text.includes('CANARY'), `CANARY leaked: ${text}`);
  assert.ok(!text.includes(b64('CANARY')), `base64 CANARY leaked: ${text}`);
}

const mask = (body: string | Buffer, contentType: string | undefined, resource?: string): string =>
  maskRequestBody(
    Buffer.isBuffer(body) ? body : Buffer.from(body),
    contentType,
    config,
    resource === undefined ? {} : { resource },
  );

describe('maskRequestBody', () => {
  it('masks a created Secret (application/json)', () => {
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 's',
        annotations: {
          [LAST_APPLIED_ANNOTATION]: JSON.stringify({ kind: 'Secret', apiVersion: 'v1', stringData: { a: 'CANARY' } }),
        },
      },
      data: { a: b64('CANARY-1') },
      stringData: { b: 'CANARY-2' },
    };
    const out = mask(JSON.stringify(body), 'application/json', 'secrets');
    assertNoCanary(out);
    const parsed = JSON.parse(out) as Json;
    assert.deepEqual(parsed.data, { a: MASKED_BASE64 });
    assert.deepEqual(parsed.stringData, { b: MASKED_TEXT });
  });

  for (const type of ['application/merge-patch+json', 'application/strategic-merge-patch+json']) {
    it(`masks a kind-less ${type} of a secret by the resource hint`, () => {
      const out = mask(
        JSON.stringify({
          data: { a: b64('CANARY-1'), gone: null },
          stringData: { b: 'CANARY-2' },
          metadata: { labels: { x: 'y' } },
        }),
        type,
        'secrets',
      );
      assertNoCanary(out);
      assert.deepEqual(JSON.parse(out), {
        data: { a: MASKED_BASE64, gone: null },
        stringData: { b: MASKED_TEXT },
        metadata: { labels: { x: 'y' } },
      });
    });
  }

  it('masks JSON patch values under /data and /stringData of a secret, and the last-applied annotation', () => {
    const ops = [
      { op: 'add', path: '/data/password', value: b64('CANARY-1') },
      { op: 'replace', path: '/stringData', value: { token: 'CANARY-2' } },
      { op: 'test', path: '/data/x', value: b64('CANARY-3') },
      {
        op: 'add',
        path: `/metadata/annotations/${LAST_APPLIED_ANNOTATION.replace('/', '~1')}`,
        value: JSON.stringify({ kind: 'Secret', apiVersion: 'v1', data: { a: b64('CANARY-4') } }),
      },
      { op: 'replace', path: '/metadata/labels/app', value: 'web' },
      { op: 'remove', path: '/data/old' },
      { op: 'replace', path: '', value: { kind: 'Secret', apiVersion: 'v1', data: { a: b64('CANARY-5') } } },
    ];
    const out = mask(JSON.stringify(ops), 'application/json-patch+json', 'secrets');
    assertNoCanary(out);
    const parsed = JSON.parse(out) as Json[];
    assert.equal(parsed[0]!.value, MASKED_BASE64);
    assert.deepEqual(parsed[1]!.value, { token: MASKED_TEXT });
    assert.equal(parsed[4]!.value, 'web');
    assert.deepEqual(parsed[5], ops[5]);
  });

  it('masks JSON patches against rules (keys and paths, whenName unknown → masked)', () => {
    const cm = mask(
      JSON.stringify([
        { op: 'add', path: '/data/DB_PASSWORD', value: 'CANARY' },
        { op: 'add', path: '/data/color', value: 'blue' },
      ]),
      'application/json-patch+json',
      'configmaps',
    );
    assertNoCanary(cm);
    assert.equal((JSON.parse(cm) as Json[])[1]!.value, 'blue');
    const deploy = mask(
      JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/env/1/value', value: 'CANARY' }]),
      'application/json-patch+json',
      'deployments',
    );
    assertNoCanary(deploy);
  });

  it('masks a YAML apply body (application/apply-patch+yaml) and re-serialises it as YAML', () => {
    const yaml = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  token: CANARY-1\ndata:\n  key: ${b64('CANARY-2')}\n`;
    const out = mask(yaml, 'application/apply-patch+yaml', 'secrets');
    assertNoCanary(out);
    assert.deepEqual(parseYaml(out), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      stringData: { token: MASKED_TEXT },
      data: { key: MASKED_BASE64 },
    });
  });

  it('masks a kind-less YAML apply patch of a secret', () => {
    const out = mask(`stringData:\n  token: CANARY\n`, 'application/apply-patch+yaml', 'secrets');
    assertNoCanary(out);
  });

  it('masks ConfigMap keys by rule and keeps other bodies as sent', () => {
    const out = mask(
      JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', data: { password: 'CANARY', color: 'blue' } }),
      'application/json',
      'configmaps',
    );
    assertNoCanary(out);
    const pod = '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}';
    assert.equal(mask(pod, 'application/json', 'pods'), pod);
    assert.equal(mask('', 'application/json', 'secrets'), '');
  });

  const unparseable: [string, string | undefined, Buffer][] = [
    ['malformed JSON', 'application/json', Buffer.from('{"data":{"a":"CANARY"')],
    [
      'protobuf',
      'application/vnd.kubernetes.protobuf',
      Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), Buffer.from('CANARY')]),
    ],
    ['cbor', 'application/cbor', Buffer.from('CANARY')],
    ['malformed YAML', 'application/apply-patch+yaml', Buffer.from('stringData: {token: CANARY\n  - :')],
    ['no content type, not JSON', undefined, Buffer.from('token=CANARY')],
  ];
  for (const [name, type, body] of unparseable) {
    it(`withholds ${name}`, () => {
      assert.equal(mask(body, type, 'secrets'), `<unparseable body withheld: ${body.length} bytes>`);
    });
  }
});
