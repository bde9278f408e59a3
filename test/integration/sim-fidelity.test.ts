// The simulated API server where it misled clients nobody here wrote (issue #16): boolean query
// parameters read like kube-apiserver reads them, protobuf request bodies, OpenAPI v3 that
// `kubectl explain` can use, and discovery without empty groups. Real kubectl is the judge where it applies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import { queryBool } from '../../packages/sim/src/query.js';
import { kubectlAvailable, runKubectl, writeKubeconfig } from '../helpers/kubectl.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  text: string;
  json: any;
}

function call(
  sim: SimCluster,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: Buffer | string; contentType?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${sim.adminToken}`, ...opts.headers };
  const payload = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  if (payload) {
    headers['content-type'] = opts.contentType ?? 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = request(`${sim.url}${path}`, { method, headers, ca: sim.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A GET that may stream: resolves with what arrived within `ms`, and whether the response had ended by then. */
function getFor(sim: SimCluster, path: string, ms: number): Promise<{ status: number; text: string; ended: boolean }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let ended = false;
    const req = request(
      `${sim.url}${path}`,
      { headers: { authorization: `Bearer ${sim.adminToken}` }, ca: sim.ca, agent: false },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (ended = true));
        setTimeout(() => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, text, ended });
        }, ms);
      },
    );
    req.on('error', (e) => (ended ? undefined : reject(e)));
    req.end();
  });
}

let sim: SimCluster;
let dir: string;
let kubeconfig: string;
before(async () => {
  sim = await startSimCluster({ seed: true, logLines: ['line one'], logFollowIntervalMs: 40 });
  dir = mkdtempSync(join(tmpdir(), 'sim-fidelity-'));
  kubeconfig = writeKubeconfig(dir, { server: sim.url, ca: sim.ca, token: sim.adminToken, namespace: 'staging' });
});
after(async () => {
  await sim.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every leaf of `expected` is in `actual` with the same value (the server adds uid, defaults, …). */
function assertContains(actual: unknown, expected: unknown, path = ''): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === 'object', `${path} is an object in ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected))
      assertContains((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else {
    assert.deepEqual(actual, expected, path);
  }
}

describe('boolean query parameters (runtime.Convert_Slice_string_To_bool)', () => {
  test('only absent, 0 and false in any case are false', () => {
    const q = (s: string) => new URLSearchParams(s);
    for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True', 'yes', 'f', 'F', ''])
      assert.equal(queryBool(q(`x=${v}`), 'x'), true, v);
    for (const v of ['0', 'false', 'FALSE', 'False', 'fAlSe']) assert.equal(queryBool(q(`x=${v}`), 'x'), false, v);
    assert.equal(queryBool(q('y=1'), 'x'), false);
  });

  test('follow=True and follow=t stream the log; follow=False and follow=0 do not', async () => {
    for (const v of ['True', 'TRUE', 't', '1']) {
      const r = await getFor(sim, `/api/v1/namespaces/prod/pods/api-0/log?follow=${v}`, 300);
      assert.equal(r.status, 200);
      assert.equal(r.ended, false, `follow=${v} streams`);
      assert.match(r.text, /^line one\nheartbeat 1 from api-0\/api\n/, `follow=${v}`);
    }
    for (const v of ['False', 'false', '0']) {
      const r = await getFor(sim, `/api/v1/namespaces/prod/pods/api-0/log?follow=${v}`, 300);
      assert.equal(r.ended, true, `follow=${v} does not stream`);
      assert.equal(r.text, 'line one\n');
    }
  });

  test("timestamps=True stamps each line; previous=True is the kubelet's 400", async () => {
    const r = await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log?timestamps=True');
    assert.match(r.text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line one\n$/);
    const prev = await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log?previous=True');
    assert.equal(prev.status, 400);
    assert.equal(prev.json.kind, 'Status');
    assert.equal(prev.json.reason, 'BadRequest');
    assert.equal(prev.json.message, 'previous terminated container "api" in pod "api-0" not found');
    assert.equal((await call(sim, 'GET', '/api/v1/namespaces/prod/pods/api-0/log?previous=False')).status, 200);
  });

  test('watch=True watches; allowWatchBookmarks=True with sendInitialEvents=True ends the initial list with a bookmark', async () => {
    const r = await getFor(
      sim,
      '/api/v1/namespaces/prod/pods?watch=True&sendInitialEvents=True&allowWatchBookmarks=True&resourceVersionMatch=NotOlderThan',
      300,
    );
    assert.equal(r.ended, false);
    const events = r.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; object: { metadata: { annotations?: Record<string, string> } } });
    assert.equal(events[0]?.type, 'ADDED');
    assert.equal(events.at(-1)?.type, 'BOOKMARK');
    assert.equal(events.at(-1)?.object.metadata.annotations?.['k8s.io/initial-events-end'], 'true');
    const list = await getFor(sim, '/api/v1/namespaces/prod/pods?watch=False', 300);
    assert.equal(list.ended, true);
    assert.equal(JSON.parse(list.text).kind, 'PodList');
  });
});

describe('discovery lists no group version without resources', () => {
  test('every group version of /apis and of aggregated discovery has resources; the empty one is gone', async () => {
    const apis = await call(sim, 'GET', '/apis');
    const listed = (apis.json.groups as { versions: { groupVersion: string }[] }[]).flatMap((g) =>
      g.versions.map((v) => v.groupVersion),
    );
    assert.ok(listed.length > 20);
    assert.ok(
      !listed.includes('storage.k8s.io/v1beta1'),
      'the fixture lists storage.k8s.io/v1beta1 without any resource',
    );
    for (const gv of listed) {
      const r = await call(sim, 'GET', `/apis/${gv}`);
      assert.equal(r.status, 200, gv);
      assert.ok(r.json.resources.length > 0, `${gv} has resources`);
    }
    for (const g of apis.json.groups as { preferredVersion: { groupVersion: string } }[])
      assert.ok(listed.includes(g.preferredVersion.groupVersion));
    assert.equal((await call(sim, 'GET', '/apis/storage.k8s.io/v1beta1')).status, 404);
    const aggregated = await call(sim, 'GET', '/apis', {
      headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' },
    });
    for (const g of aggregated.json.items as { versions: { resources: unknown[] }[] }[])
      for (const v of g.versions) assert.ok(v.resources.length > 0);
  });
});

describe(
  'protobuf request bodies (kubectl 1.32+ sends them for kubectl create of built-in kinds)',
  { skip: !kubectlAvailable('1.33') && 'kubectl 1.33 is not installed' },
  () => {
    const kubectl = (args: string[]) => runKubectl([...args, '--request-timeout=10s'], { kubeconfig, version: '1.33' });

    test('what kubectl 1.33 creates is stored as what it would send as JSON (--dry-run=client -o json)', async () => {
      const binary = join(dir, 'blob.bin');
      writeFileSync(binary, Buffer.from([0, 1, 2, 0xff, 0xfe]));
      const cases: [string[], string, string][] = [
        [
          ['create', 'secret', 'generic', 'pb-secret', '--from-literal=user=admin', '--from-literal=password=p a ss'],
          'secrets',
          'staging',
        ],
        [
          ['create', 'secret', 'generic', 'pb-typed', '--from-literal=u=x', '--type=kubernetes.io/basic-auth'],
          'secrets',
          'staging',
        ],
        [
          [
            'create',
            'secret',
            'docker-registry',
            'pb-pull',
            '--docker-server=r.example.com',
            '--docker-username=u',
            '--docker-password=p',
          ],
          'secrets',
          'staging',
        ],
        [
          [
            'create',
            'configmap',
            'pb-config',
            '--from-literal=a=1',
            '--from-literal=b=two words',
            `--from-file=blob=${binary}`,
          ],
          'configmaps',
          'staging',
        ],
        [['create', 'namespace', 'pb-namespace'], 'namespaces', ''],
        [['create', 'serviceaccount', 'pb-account'], 'serviceaccounts', 'staging'],
        [
          ['create', 'role', 'pb-role', '--verb=get,list', '--resource=pods,secrets', '--resource-name=web-0'],
          'roles.rbac.authorization.k8s.io',
          'staging',
        ],
        [
          ['create', 'clusterrole', 'pb-clusterrole', '--verb=get', '--non-resource-url=/healthz'],
          'clusterroles.rbac.authorization.k8s.io',
          '',
        ],
        [
          [
            'create',
            'rolebinding',
            'pb-binding',
            '--role=pb-role',
            '--user=alice',
            '--group=devs',
            '--serviceaccount=staging:pb-account',
          ],
          'rolebindings.rbac.authorization.k8s.io',
          'staging',
        ],
        [
          ['create', 'clusterrolebinding', 'pb-clusterbinding', '--clusterrole=pb-clusterrole', '--user=bob'],
          'clusterrolebindings.rbac.authorization.k8s.io',
          '',
        ],
      ];
      for (const [args, resource, namespace] of cases) {
        const name = args[args[1] === 'secret' ? 3 : 2]!;
        const dry = await kubectl([...args, '--dry-run=client', '-o', 'json']);
        assert.equal(dry.code, 0, dry.stderr);
        const expected = JSON.parse(dry.stdout) as { metadata: Record<string, unknown> };
        delete expected.metadata['creationTimestamp'];
        const from = sim.requests.length;
        const created = await kubectl(args);
        assert.equal(created.code, 0, `${args.join(' ')}: ${created.stderr}`);
        const post = sim.requests.slice(from).find((r) => r.method === 'POST');
        assert.equal(
          post?.headers['content-type'],
          'application/vnd.kubernetes.protobuf',
          `${args.join(' ')} sent protobuf`,
        );
        assertContains(sim.getObject(resource, namespace, name), expected, name);
      }
      assert.equal(sim.getObject('secrets', 'staging', 'pb-secret').type, 'Opaque', 'defaulted like a JSON create');
      assert.equal(
        Buffer.from(sim.getObject('secrets', 'staging', 'pb-secret').data.password, 'base64').toString(),
        'p a ss',
      );
      assert.deepEqual(sim.getObject('configmaps', 'staging', 'pb-config').binaryData, {
        blob: Buffer.from([0, 1, 2, 0xff, 0xfe]).toString('base64'),
      });
    });

    test('a kind the sim has no protobuf schema for is 415 as for a custom resource; nothing is stored', async () => {
      const r = await kubectl(['create', 'deployment', 'pb-deploy', '--image=nginx']);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr.trim(),
        'error: failed to create deployment: the body of the request was in an unknown format - accepted media types include: application/json, application/yaml',
      );
      assert.equal(sim.getObject('deployments', 'staging', 'pb-deploy'), undefined);
    });
  },
);

describe('415 UnsupportedMediaType lists what is accepted, as negotiation.NewUnsupportedMediaTypeError does', () => {
  test('create: json, yaml, protobuf; patch: the four patch types', async () => {
    const create = await call(sim, 'POST', '/api/v1/namespaces/staging/configmaps', {
      body: 'a=b',
      contentType: 'text/plain',
    });
    assert.equal(create.status, 415);
    assert.deepEqual(create.json, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      reason: 'UnsupportedMediaType',
      code: 415,
      message:
        'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf',
    });
    const patch = await call(sim, 'PATCH', '/api/v1/namespaces/staging/configmaps/kube-root-ca.crt', {
      body: '{}',
      contentType: 'application/json',
    });
    assert.equal(patch.status, 415);
    assert.equal(
      patch.json.message,
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml',
    );
  });
});

describe('OpenAPI v3 with x-kubernetes-group-version-kind: kubectl explain', () => {
  test('every kind of a group version has a schema tagged with its GVK; PATCH has no requestBody', async () => {
    const root = await call(sim, 'GET', '/openapi/v3');
    const doc = await call(sim, 'GET', String(root.json.paths['api/v1'].serverRelativeURL));
    const schemas = doc.json.components.schemas as Record<
      string,
      { 'x-kubernetes-group-version-kind'?: { kind: string }[]; properties?: Record<string, unknown> }
    >;
    const kinds = Object.values(schemas).flatMap((s) =>
      (s['x-kubernetes-group-version-kind'] ?? []).map((g) => g.kind),
    );
    for (const kind of ['Pod', 'Secret', 'ConfigMap', 'Namespace', 'ServiceAccount'])
      assert.ok(kinds.includes(kind), kind);
    assert.deepEqual(schemas['io.k8s.api.core.v1.Secret']?.['x-kubernetes-group-version-kind'], [
      { group: '', kind: 'Secret', version: 'v1' },
    ]);
    for (const path of Object.values(doc.json.paths as Record<string, { patch?: { requestBody?: unknown } }>))
      assert.equal(path.patch?.requestBody, undefined);
  });

  for (const version of ['1.27', '1.33'] as const) {
    test(
      `kubectl ${version} explain pods, secrets.data, deployments.spec`,
      { skip: !kubectlAvailable(version) && `kubectl ${version} is not installed` },
      async () => {
        const explain = (what: string) =>
          runKubectl(['explain', what, '--request-timeout=10s'], { kubeconfig, version });
        const pods = await explain('pods');
        assert.equal(pods.code, 0, pods.stderr);
        assert.match(pods.stdout, /^KIND:\s+Pod\nVERSION:\s+v1\n\nDESCRIPTION:\n\s+Pod is a collection of containers/);
        assert.match(pods.stdout, /\n\s+metadata\t<ObjectMeta>\n/);
        assert.match(pods.stdout, /\n\s+spec\t<Object>\n/);
        const data = await explain('secrets.data');
        assert.equal(data.code, 0, data.stderr);
        assert.match(data.stdout, /^KIND:\s+Secret\nVERSION:\s+v1\n\nFIELD: data <map\[string\]string>\n/);
        assert.match(data.stdout, /Data contains the secret data/);
        const labels = await explain('configmaps.metadata.labels');
        assert.equal(labels.code, 0, labels.stderr);
        assert.match(labels.stdout, /FIELD: labels <map\[string\]string>/);
        const deployment = await explain('deployments.spec');
        assert.equal(deployment.code, 0, deployment.stderr);
        assert.match(deployment.stdout, /^GROUP:\s+apps\nKIND:\s+Deployment\nVERSION:\s+v1\n/);
      },
    );
  }
});
