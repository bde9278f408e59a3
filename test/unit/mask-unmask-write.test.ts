// Round-trip-safe writes (issue #16): a placeholder in a masked field keeps the stored value of the
// same field of the same object, or the write is refused with 422 naming the keys; other bodies pass.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MaskingConfig } from '../../packages/gateway/src/config/types.js';
import { LAST_APPLIED_ANNOTATION, MASKED_BASE64, MASKED_TEXT } from '../../packages/gateway/src/proxy/mask/index.js';
import {
  createWriteRestorer,
  describePath,
  type StoredObject,
  type WriteRequest,
  type WriteRestore,
} from '../../packages/gateway/src/proxy/mask/unmask-write.js';

const config: MaskingConfig = {
  secrets: true,
  rules: [
    { resources: ['configmaps'], keys: '(?i)password' },
    { resources: ['deployments'], paths: ['spec.template.spec.containers[].env[].value'], whenName: '(?i)token' },
  ],
  maxObjectBytes: 8 * 1024 * 1024,
};
const restorer = createWriteRestorer(config);
const b64 = (value: string): string => Buffer.from(value).toString('base64');
type Json = Record<string, any>;

const storedSecret: Json = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 's', namespace: 'ns', resourceVersion: '42', labels: { app: 'a' } },
  data: { username: b64('real-user'), password: b64('real-pass') },
  type: 'Opaque',
};
const maskedSecret = (): Json => ({
  ...structuredClone(storedSecret),
  data: { username: MASKED_BASE64, password: MASKED_BASE64 },
});

function request(body: unknown, options: Partial<WriteRequest> = {}): WriteRequest {
  return {
    method: 'PUT',
    contentType: 'application/json',
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    resource: 'secrets',
    subresource: '',
    describe: 'secret ns/s',
    ...options,
  };
}

/** analyse + restore against `stored`, as the gateway does. */
function run(req: WriteRequest, stored: StoredObject): WriteRestore {
  const analysis = restorer.analyse(req);
  if (analysis.kind !== 'restore') return analysis;
  return analysis.restore(stored);
}

function rewritten(result: WriteRestore): { body: any; kept: string[] } {
  assert.equal(result.kind, 'rewrite', JSON.stringify(result));
  if (result.kind !== 'rewrite') throw new Error('unreachable');
  return { body: JSON.parse(result.body.toString('utf8')), kept: result.kept };
}

function refused(
  result: WriteRestore | ReturnType<typeof restorer.analyse>,
  code: 'ERR_MASKED_VALUE' | 'ERR_UNSUPPORTED_MEDIA_TYPE',
  pattern: RegExp,
): void {
  assert.equal(result.kind, 'refuse', JSON.stringify(result));
  if (result.kind !== 'refuse') return;
  assert.equal(result.error.code, code);
  assert.equal(result.error.status, code === 'ERR_MASKED_VALUE' ? 422 : 415);
  assert.equal(result.error.reason, code === 'ERR_MASKED_VALUE' ? 'Invalid' : 'UnsupportedMediaType');
  assert.match(result.error.message, pattern);
}

describe('createWriteRestorer: what passes untouched (no read of the stored object)', () => {
  const cases: { name: string; req: WriteRequest }[] = [
    { name: 'a GET', req: request(maskedSecret(), { method: 'GET' }) },
    {
      name: 'a DELETE with options',
      req: request({ kind: 'DeleteOptions', propagationPolicy: MASKED_TEXT }, { method: 'DELETE' }),
    },
    { name: 'a Secret with real values', req: request({ ...storedSecret, data: { password: b64('new') } }) },
    {
      name: 'a resource nothing masks',
      req: request({ kind: 'Pod', metadata: { name: 'p', labels: { x: MASKED_TEXT } } }, { resource: 'pods' }),
    },
    {
      name: 'a placeholder in a label of a Secret',
      req: request({ ...storedSecret, metadata: { name: 's', labels: { note: MASKED_TEXT } } }),
    },
    {
      name: 'a ConfigMap key no rule masks',
      req: request(
        { kind: 'ConfigMap', metadata: { name: 'c' }, data: { LOG_LEVEL: MASKED_TEXT } },
        { resource: 'configmaps' },
      ),
    },
    {
      name: 'a Deployment env value whose name the rule does not match',
      req: request(
        {
          kind: 'Deployment',
          spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'LEVEL', value: MASKED_TEXT }] }] } } },
        },
        { resource: 'deployments' },
      ),
    },
    {
      name: 'a merge patch with only a label',
      req: request(
        { metadata: { labels: { a: 'b' } } },
        { method: 'PATCH', contentType: 'application/merge-patch+json' },
      ),
    },
    { name: 'unparseable JSON (the API server refuses it)', req: request(`{"data":{"a":"${MASKED_BASE64}"`) },
    { name: 'masking.secrets off', req: request(maskedSecret()) },
  ];
  for (const { name, req } of cases) {
    it(name, () => {
      const own = name === 'masking.secrets off' ? createWriteRestorer({ ...config, secrets: false }) : restorer;
      assert.deepEqual(own.analyse(req), { kind: 'pass' });
    });
  }
});

describe('createWriteRestorer: placeholders keep the stored value of the same key', () => {
  it('PUT of a masked read with a changed label keeps every value', () => {
    const body = maskedSecret();
    body.metadata.labels.changed = 'yes';
    const { body: out, kept } = rewritten(run(request(body), storedSecret));
    assert.deepEqual(out.data, storedSecret.data);
    assert.equal(out.metadata.labels.changed, 'yes');
    assert.deepEqual(kept.sort(), ['data.password', 'data.username']);
  });

  it('only the placeholders are replaced: a new real value for one key stays', () => {
    const body = { ...maskedSecret(), data: { username: MASKED_BASE64, password: b64('rotated') } };
    const { body: out, kept } = rewritten(run(request(body), storedSecret));
    assert.deepEqual(out.data, { username: storedSecret.data.username, password: b64('rotated') });
    assert.deepEqual(kept, ['data.username']);
  });

  it('a key removed by the client stays removed (nothing is added back)', () => {
    const body = { ...maskedSecret(), data: { username: MASKED_BASE64 } };
    const { body: out } = rewritten(run(request(body), storedSecret));
    assert.deepEqual(Object.keys(out.data), ['username']);
  });

  it('never substitutes from another key: a placeholder under a new key is refused, naming it', () => {
    const body = {
      ...maskedSecret(),
      data: { username: MASKED_BASE64, password: MASKED_BASE64, copied: MASKED_BASE64 },
    };
    refused(
      run(request(body), storedSecret),
      'ERR_MASKED_VALUE',
      /^the body carries the mask placeholder in data\.copied, but secret ns\/s has no stored value for it; .*send the real value for this key, or leave it out$/,
    );
  });

  it('a create (POST) carrying a placeholder is refused before any read, naming every key', () => {
    const analysis = restorer.analyse(request(maskedSecret(), { method: 'POST' }));
    refused(
      analysis,
      'ERR_MASKED_VALUE',
      /placeholder in data\.username, data\.password, but secret ns\/s does not exist yet/,
    );
  });

  it('an update of an object that no longer exists is refused', () => {
    refused(run(request(maskedSecret()), undefined), 'ERR_MASKED_VALUE', /does not exist yet/);
  });

  it('adds the read resourceVersion when the body has none, so a concurrent change gives 409', () => {
    const body = maskedSecret();
    delete body.metadata.resourceVersion;
    assert.equal(rewritten(run(request(body), storedSecret)).body.metadata.resourceVersion, '42');
    const own = { ...maskedSecret(), metadata: { ...maskedSecret().metadata, resourceVersion: '41' } };
    assert.equal(
      rewritten(run(request(own), storedSecret)).body.metadata.resourceVersion,
      '41',
      "the client's own precondition stays",
    );
  });

  it('stringData placeholders become the same key of data (stringData is write-only)', () => {
    const body = { ...storedSecret, data: undefined, stringData: { password: MASKED_TEXT, extra: 'plain' } };
    const { body: out, kept } = rewritten(run(request(body), storedSecret));
    assert.deepEqual(out.stringData, { extra: 'plain' });
    assert.deepEqual(out.data, { password: storedSecret.data.password });
    assert.deepEqual(kept, ['stringData.password']);
  });

  it('a merge patch carrying the placeholder for an existing key keeps it', () => {
    const req = request(
      { metadata: { labels: { a: 'b' } }, data: { password: MASKED_BASE64 } },
      { method: 'PATCH', contentType: 'application/merge-patch+json' },
    );
    const { body: out, kept } = rewritten(run(req, storedSecret));
    assert.deepEqual(out, {
      metadata: { labels: { a: 'b' }, resourceVersion: '42' },
      data: { password: storedSecret.data.password },
    });
    assert.deepEqual(kept, ['data.password']);
  });

  it('a strategic merge patch and a server-side apply body (JSON) are handled alike', () => {
    for (const contentType of ['application/strategic-merge-patch+json', 'application/apply-patch+yaml']) {
      const req = request(maskedSecret(), { method: 'PATCH', contentType });
      assert.deepEqual(rewritten(run(req, storedSecret)).body.data, storedSecret.data, contentType);
    }
  });

  it('a ConfigMap key masked by masking.rules keeps its value; other keys are untouched', () => {
    const stored = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', resourceVersion: '7' },
      data: { DB_PASSWORD: 'real', NOTE: MASKED_TEXT },
    };
    const body = { ...stored, data: { DB_PASSWORD: MASKED_TEXT, NOTE: MASKED_TEXT } };
    const { body: out, kept } = rewritten(run(request(body, { resource: 'configmaps' }), stored));
    assert.deepEqual(out.data, { DB_PASSWORD: 'real', NOTE: MASKED_TEXT });
    assert.deepEqual(kept, ['data.DB_PASSWORD']);
  });

  it('list items are matched by name, not position (a reordered env list)', () => {
    const env = (token: string, other: string) => [
      { name: 'API_TOKEN', value: token },
      { name: 'LEVEL', value: other },
    ];
    const stored = {
      kind: 'Deployment',
      metadata: { name: 'd', resourceVersion: '3' },
      spec: { template: { spec: { containers: [{ name: 'app', env: env('real-token', 'x') }] } } },
    };
    const body = {
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { template: { spec: { containers: [{ name: 'app', env: env(MASKED_TEXT, 'x').reverse() }] } } },
    };
    const { body: out, kept } = rewritten(run(request(body, { resource: 'deployments' }), stored));
    assert.deepEqual(out.spec.template.spec.containers[0].env, [
      { name: 'LEVEL', value: 'x' },
      { name: 'API_TOKEN', value: 'real-token' },
    ]);
    assert.deepEqual(kept, ['spec.template.spec.containers[0].env[1].value']);
  });

  it('a list item whose name the stored object does not have is refused', () => {
    const stored = {
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'API_TOKEN', value: 'real' }] }] } } },
    };
    const body = {
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'NEW_TOKEN', value: MASKED_TEXT }] }] } } },
    };
    refused(
      run(request(body, { resource: 'deployments' }), stored),
      'ERR_MASKED_VALUE',
      /containers\[0\]\.env\[0\]\.value/,
    );
  });

  it('the last-applied annotation gets the stored annotation back byte for byte', () => {
    const storedAnnotation = `${JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { password: 'real-pass' } })}\n`;
    const stored = {
      ...storedSecret,
      metadata: { ...storedSecret.metadata, annotations: { [LAST_APPLIED_ANNOTATION]: storedAnnotation } },
    };
    const maskedAnnotation = `${JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { password: MASKED_TEXT } })}\n`;
    const body = {
      ...maskedSecret(),
      metadata: { ...maskedSecret().metadata, annotations: { [LAST_APPLIED_ANNOTATION]: maskedAnnotation } },
    };
    const { body: out, kept } = rewritten(run(request(body), stored));
    assert.equal(out.metadata.annotations[LAST_APPLIED_ANNOTATION], storedAnnotation);
    assert.ok(kept.includes(`metadata.annotations[${LAST_APPLIED_ANNOTATION}].stringData.password`));
  });

  it('an annotation written from the object (kubectl edit) falls back to the object’s value of the same key', () => {
    const annotation = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data: { password: MASKED_BASE64 },
    });
    const body = { metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: annotation } } };
    const { body: out } = rewritten(
      run(request(body, { method: 'PATCH', contentType: 'application/strategic-merge-patch+json' }), storedSecret),
    );
    assert.deepEqual(JSON.parse(out.metadata.annotations[LAST_APPLIED_ANNOTATION]).data, {
      password: storedSecret.data.password,
    });
  });

  it('an annotation placeholder for a key found nowhere is refused', () => {
    const annotation = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data: { other: MASKED_BASE64 },
    });
    const body = { metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: annotation } } };
    refused(
      run(request(body, { method: 'PATCH', contentType: 'application/merge-patch+json' }), storedSecret),
      'ERR_MASKED_VALUE',
      /last-applied-configuration\]\.data\.other/,
    );
  });
});

describe('createWriteRestorer: JSON patch', () => {
  const patch = (ops: unknown[]) => request(ops, { method: 'PATCH', contentType: 'application/json-patch+json' });

  it('replace of a key with the placeholder keeps the stored value, guarded by a resourceVersion test', () => {
    const { body, kept } = rewritten(
      run(
        patch([
          { op: 'replace', path: '/data/password', value: MASKED_BASE64 },
          { op: 'add', path: '/metadata/labels/x', value: 'y' },
        ]),
        storedSecret,
      ),
    );
    assert.deepEqual(body, [
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'replace', path: '/data/password', value: storedSecret.data.password },
      { op: 'add', path: '/metadata/labels/x', value: 'y' },
    ]);
    assert.deepEqual(kept, ['data.password']);
  });

  it('replace of the whole data map keeps the placeholders key by key', () => {
    const { body } = rewritten(
      run(patch([{ op: 'replace', path: '/data', value: { password: MASKED_BASE64, fresh: b64('v') } }]), storedSecret),
    );
    assert.deepEqual(body[1].value, { password: storedSecret.data.password, fresh: b64('v') });
  });

  it('follows earlier operations: a key removed first leaves nothing to keep', () => {
    refused(
      run(
        patch([
          { op: 'remove', path: '/data/password' },
          { op: 'add', path: '/data/password', value: MASKED_BASE64 },
        ]),
        storedSecret,
      ),
      'ERR_MASKED_VALUE',
      /data\.password, but secret ns\/s has no stored value/,
    );
  });

  it('a key moved away is refused before anything is followed (a move on a masked kind)', () => {
    refused(
      run(
        patch([
          { op: 'move', from: '/data/password', path: '/data/old' },
          { op: 'add', path: '/data/password', value: MASKED_BASE64 },
        ]),
        storedSecret,
      ),
      'ERR_MASKED_VALUE',
      /^the JSON patch moves \(from "\/data\/password"\)/,
    );
  });

  it('add under a new key is refused, naming it', () => {
    refused(
      run(patch([{ op: 'add', path: '/data/new', value: MASKED_BASE64 }]), storedSecret),
      'ERR_MASKED_VALUE',
      /placeholder in data\.new/,
    );
  });

  it('a test against a masked value is refused (it would check a value the client never saw)', () => {
    refused(
      run(patch([{ op: 'test', path: '/data/password', value: MASKED_BASE64 }]), storedSecret),
      'ERR_MASKED_VALUE',
      /^the JSON patch carries the mask placeholder and tests the masked value data\.password/,
    );
  });

  it('a patch that does not apply to the stored object is refused', () => {
    refused(
      run(patch([{ op: 'replace', path: '/nothing/here', value: MASKED_BASE64 }]), storedSecret),
      'ERR_MASKED_VALUE',
      /does not apply to the stored object/,
    );
  });

  it('writing the last-applied annotation with placeholders is refused', () => {
    const annotation = JSON.stringify({ kind: 'Secret', apiVersion: 'v1', data: { password: MASKED_BASE64 } });
    refused(
      run(
        patch([{ op: 'add', path: `/metadata/annotations`, value: { [LAST_APPLIED_ANNOTATION]: annotation } }]),
        storedSecret,
      ),
      'ERR_MASKED_VALUE',
      /writes metadata\.annotations\[kubectl\.kubernetes\.io\/last-applied-configuration\] with masked values/,
    );
  });

  it('a placeholder in an unmasked field passes (after reading the object)', () => {
    assert.deepEqual(run(patch([{ op: 'add', path: '/metadata/labels/note', value: MASKED_TEXT }]), storedSecret), {
      kind: 'pass',
    });
  });
});

describe('createWriteRestorer: bodies it cannot rewrite exactly are refused', () => {
  it('protobuf carrying the placeholder bytes: 415', () => {
    const body = Buffer.concat([Buffer.from('k8s\u0000'), Buffer.from(MASKED_BASE64)]);
    refused(
      restorer.analyse({ ...request({}), body, contentType: 'application/vnd.kubernetes.protobuf' }),
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      /secret ns\/s .*send it as JSON/,
    );
  });

  it('YAML apply with a placeholder in a masked field: 415; in a label only: passes', () => {
    const yaml = (value: string) =>
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels:\n    note: "${MASKED_TEXT}"\ndata:\n  password: ${value}\n`;
    refused(
      restorer.analyse(request(yaml(MASKED_BASE64), { method: 'PATCH', contentType: 'application/apply-patch+yaml' })),
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      /YAML body/,
    );
    assert.deepEqual(
      restorer.analyse(request(yaml(b64('real')), { method: 'PATCH', contentType: 'application/apply-patch+yaml' })),
      { kind: 'pass' },
    );
  });

  it('integers beyond 2^53 next to a placeholder', () => {
    refused(
      restorer.analyse(
        request(
          `{"kind":"Secret","metadata":{"name":"s","generation":12345678901234567890},"data":{"a":"${MASKED_BASE64}"}}`,
        ),
      ),
      'ERR_MASKED_VALUE',
      /beyond 2\^53/,
    );
  });
});

describe('describePath', () => {
  it('names keys the way a reader finds them', () => {
    assert.equal(describePath(['data', 'password']), 'data.password');
    assert.equal(describePath(['data', 'tls.crt']), 'data[tls.crt]');
    assert.equal(describePath(['spec', 'containers', 0, 'env', 2, 'value']), 'spec.containers[0].env[2].value');
  });
});

describe('JSON patch copy and move on a masked kind', () => {
  for (const [resource, from, path] of [
    ['secrets', '/data/password', '/metadata/labels/leak'],
    ['secrets', '/data', '/metadata/annotations'],
    ['configmaps', '/data/db-password', '/metadata/labels/leak'],
  ] as const) {
    for (const op of ['copy', 'move'] as const) {
      it(`${op} from ${from} of ${resource} is refused (422), placeholder or not`, () => {
        const result = restorer.analyse(
          request([{ op, from, path }], { method: 'PATCH', contentType: 'application/json-patch+json', resource }),
        );
        refused(
          result,
          'ERR_MASKED_VALUE',
          new RegExp(`the JSON patch ${op === 'copy' ? 'copies' : 'moves'} \\(from "${from.replace(/\//g, '\\/')}"\\)`),
        );
      });
    }
  }
  it('copy on a kind hoopgate does not mask passes', () => {
    const result = restorer.analyse(
      request([{ op: 'copy', from: '/metadata/labels/a', path: '/metadata/labels/b' }], {
        method: 'PATCH',
        contentType: 'application/json-patch+json',
        resource: 'pods',
      }),
    );
    assert.equal(result.kind, 'pass');
  });
  it('add and replace without placeholders on a Secret pass', () => {
    const result = restorer.analyse(
      request([{ op: 'add', path: '/metadata/labels/a', value: 'b' }], {
        method: 'PATCH',
        contentType: 'application/json-patch+json',
      }),
    );
    assert.equal(result.kind, 'pass');
  });
});
