// The simulated API server where it misled clients nobody here wrote (issue #16): boolean query
// parameters read like kube-apiserver reads them, protobuf request bodies, OpenAPI v3 that
// `kubectl explain` can use, and discovery without empty groups. Real kubectl is the judge where it applies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import { queryBool } from '../../packages/sim/src/query.js';

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; raw: Buffer; text: string; json: any } // eslint-disable-line @typescript-eslint/no-explicit-any

function call(sim: SimCluster, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer | string; contentType?: string } = {}): Promise<Reply> {
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
    const req = request(`${sim.url}${path}`, { headers: { authorization: `Bearer ${sim.adminToken}` }, ca: sim.ca, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (ended = true));
      setTimeout(() => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text, ended });
      }, ms);
    });
    req.on('error', (e) => (ended ? undefined : reject(e)));
    req.end();
  });
}

let sim: SimCluster;
before(async () => {
  sim = await startSimCluster({ seed: true, logLines: ['line one'], logFollowIntervalMs: 40 });
});
after(async () => {
  await sim.close();
});

describe('boolean query parameters (runtime.Convert_Slice_string_To_bool)', () => {
  test('only absent, 0 and false in any case are false', () => {
    const q = (s: string) => new URLSearchParams(s);
    for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True', 'yes', 'f', 'F', '']) assert.equal(queryBool(q(`x=${v}`), 'x'), true, v);
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

  test('timestamps=True stamps each line; previous=True is the kubelet\'s 400', async () => {
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
    const r = await getFor(sim, '/api/v1/namespaces/prod/pods?watch=True&sendInitialEvents=True&allowWatchBookmarks=True&resourceVersionMatch=NotOlderThan', 300);
    assert.equal(r.ended, false);
    const events = r.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { annotations?: Record<string, string> } } });
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
    const listed = (apis.json.groups as { versions: { groupVersion: string }[] }[]).flatMap((g) => g.versions.map((v) => v.groupVersion));
    assert.ok(listed.length > 20);
    assert.ok(!listed.includes('storage.k8s.io/v1beta1'), 'the fixture lists storage.k8s.io/v1beta1 without any resource');
    for (const gv of listed) {
      const r = await call(sim, 'GET', `/apis/${gv}`);
      assert.equal(r.status, 200, gv);
      assert.ok(r.json.resources.length > 0, `${gv} has resources`);
    }
    for (const g of apis.json.groups as { preferredVersion: { groupVersion: string } }[]) assert.ok(listed.includes(g.preferredVersion.groupVersion));
    assert.equal((await call(sim, 'GET', '/apis/storage.k8s.io/v1beta1')).status, 404);
    const aggregated = await call(sim, 'GET', '/apis', { headers: { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } });
    for (const g of aggregated.json.items as { versions: { resources: unknown[] }[] }[]) for (const v of g.versions) assert.ok(v.resources.length > 0);
  });
});
