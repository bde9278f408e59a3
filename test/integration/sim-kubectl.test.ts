// Real kubectl (1.27 and 1.33) directly against the simulated API server, as cluster admin and as a
// ServiceAccount: kubectl is the judge of the sim's faithfulness.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startSimCluster, type SimCluster } from '../../packages/sim/src/index.js';
import {
  kubectlAvailable,
  runKubectl,
  spawnKubectl,
  writeKubeconfig,
  type KubectlVersion,
} from '../helpers/kubectl.js';

const versions: KubectlVersion[] = ['1.27', '1.33'];
const rt = '--request-timeout=10s';

let sim: SimCluster;
let dir: string;
let adminConfig: string;
let botConfig: string;

before(async () => {
  sim = await startSimCluster({ seed: true, logFollowIntervalMs: 100 });
  dir = mkdtempSync(join(tmpdir(), 'sim-kubectl-'));
  sim.createServiceAccount('agents', 'bot');
  sim.apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'bot-edit', namespace: 'staging' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
    subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'agents' }],
  });
  adminConfig = writeKubeconfig(dir, { server: sim.url, ca: sim.ca, token: sim.adminToken }, 'admin');
  botConfig = writeKubeconfig(
    dir,
    { server: sim.url, ca: sim.ca, token: sim.issueToken('agents', 'bot'), namespace: 'staging' },
    'bot',
  );
});

after(async () => {
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function waitForOutput(child: ChildProcess, pred: (out: string) => boolean, ms = 10_000): Promise<string> {
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for kubectl output; stdout: ${out}\nstderr: ${err}`)),
      ms,
    );
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (pred(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      if (!pred(out)) reject(new Error(`kubectl exited; stdout: ${out}\nstderr: ${err}`));
    });
  });
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const closed = new Promise((r) => child.on('close', r));
  child.kill('SIGTERM');
  await closed;
}

for (const version of versions) {
  const tag = version.replace('.', '');
  const admin = (args: string[], stdin?: string) =>
    runKubectl([...args, rt], { kubeconfig: adminConfig, version, ...(stdin === undefined ? {} : { stdin }) });
  const bot = (args: string[]) => runKubectl([...args, rt], { kubeconfig: botConfig, version });
  const manifest = (name: string, text: string) => {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  describe(`kubectl ${version}`, { skip: !kubectlAvailable(version) && `kubectl ${version} is not installed` }, () => {
    test('get pods prints the server-side Table', async () => {
      const r = await admin(['get', 'pods', '-n', 'staging']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
      assert.match(r.stdout, /\nweb-0\s+1\/1\s+Running\s+0\s+\d+s\n/);
      const list = sim.requests.filter((q) => q.rawPath.startsWith('/api/v1/namespaces/staging/pods?')).at(-1)!;
      assert.match(String(list.headers['accept']), /as=Table;v=v1;g=meta.k8s.io/);
      const all = await admin(['get', 'deployments', '-A', '-o', 'wide']);
      assert.match(
        all.stdout,
        /^NAMESPACE\s+NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR\n/,
      );
      assert.match(all.stdout, /\nstaging\s+web\s+2\/2\s+2\s+2\s+\S+\s+web\s+nginx:1.27\s+app=web\n/);
    });

    test('as a ServiceAccount: allowed where bound, the real Forbidden error elsewhere', async () => {
      const ok = await bot(['get', 'pods']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /web-1/);
      const denied = await bot(['get', 'pods', '-n', 'prod']);
      assert.equal(denied.code, 1);
      assert.equal(
        denied.stderr.trim(),
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:agents:bot" cannot list resource "pods" in API group "" in the namespace "prod"',
      );
      assert.equal(sim.requests.at(-1)!.identity, 'system:serviceaccount:agents:bot');
    });

    test('get -o yaml', async () => {
      const r = await bot(['get', 'pod', 'web-0', '-o', 'yaml']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^apiVersion: v1\nkind: Pod\nmetadata:\n/);
      assert.match(r.stdout, /\n {2}name: web-0\n/);
      assert.match(r.stdout, /\n {2}phase: Running\n/);
    });

    test('get -w prints an event that arrives while the watch is open', async () => {
      const before = sim.openWatches();
      const child = spawnKubectl(['get', 'configmaps', '-n', 'agents', '-w'], { kubeconfig: adminConfig, version });
      try {
        await waitForOutput(child, (o) => o.includes('kube-root-ca.crt'));
        await until(() => sim.openWatches() === before + 1);
        sim.apply({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `watched-${tag}`, namespace: 'agents' },
          data: { a: '1' },
        });
        // The whole row (NAME DATA AGE and its newline), not just the name: kubectl may write a row in
        // more than one chunk. AGE is 0s or, on a loaded machine, a second or two.
        const row = new RegExp(`(^|\\n)watched-${tag}\\s+1\\s+[0-9]s\\n`);
        const out = await waitForOutput(child, (o) => row.test(o));
        assert.match(out, row);
      } finally {
        await stop(child);
      }
      await until(() => sim.openWatches() === before);
    });

    test('create -f', async () => {
      const path = manifest(
        `create-${tag}`,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: created-${tag}\n  namespace: staging\ndata:\n  k: v\n`,
      );
      const r = await bot(['create', '-f', path]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `configmap/created-${tag} created`);
      assert.equal(
        sim.getObject('configmaps', 'staging', `created-${tag}`).metadata.managedFields[0].manager,
        'kubectl-create',
      );
      const again = await bot(['create', '-f', path]);
      assert.equal(again.code, 1);
      assert.match(
        again.stderr,
        new RegExp(
          `Error from server \\(AlreadyExists\\): error when creating "${path}": configmaps "created-${tag}" already exists`,
        ),
      );
    });

    test('apply: create, then change (strategic merge patch of a Deployment)', async () => {
      const doc = (image: string, replicas: number) =>
        `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: applied-${tag}\n  namespace: staging\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels: {app: applied}\n  template:\n    metadata:\n      labels: {app: applied}\n    spec:\n      containers:\n      - name: app\n        image: ${image}\n        env:\n        - {name: MODE, value: one}\n`;
      const path = manifest(`apply-${tag}`, doc('nginx:1.26', 1));
      const first = await admin(['apply', '-f', path]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim(), `deployment.apps/applied-${tag} created`);
      writeFileSync(path, doc('nginx:1.27', 3));
      const second = await admin(['apply', '-f', path]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout.trim(), `deployment.apps/applied-${tag} configured`);
      const stored = sim.getObject('deployments', 'staging', `applied-${tag}`);
      assert.equal(stored.spec.replicas, 3);
      assert.equal(stored.spec.template.spec.containers[0].image, 'nginx:1.27');
      assert.equal(stored.metadata.generation, 2);
      assert.ok(stored.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'].includes('nginx:1.27'));
      const patch = sim.requests.filter((q) => q.method === 'PATCH' && q.rawPath.includes(`applied-${tag}`)).at(-1)!;
      assert.equal(patch.headers['content-type'], 'application/strategic-merge-patch+json');
      assert.match(patch.rawPath, /fieldValidation=Strict/);
      const unchanged = await admin(['apply', '-f', path]);
      assert.equal(unchanged.stdout.trim(), `deployment.apps/applied-${tag} unchanged`);
    });

    test('apply --server-side', async () => {
      const path = manifest(
        `ssa-${tag}`,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-${tag}\n  namespace: staging\ndata:\n  a: "1"\n`,
      );
      const r = await bot(['apply', '--server-side', '-f', path]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `configmap/ssa-${tag} serverside-applied`);
      writeFileSync(
        path,
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-${tag}\n  namespace: staging\ndata:\n  b: "2"\n`,
      );
      const again = await bot(['apply', '--server-side', '-f', path]);
      assert.equal(again.code, 0, again.stderr);
      const stored = sim.getObject('configmaps', 'staging', `ssa-${tag}`);
      assert.deepEqual(stored.data, { b: '2' });
      assert.ok(
        stored.metadata.managedFields.some(
          (m: { manager: string; operation: string }) => m.manager === 'kubectl' && m.operation === 'Apply',
        ),
      );
    });

    test('delete', async () => {
      sim.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `doomed-${tag}`, namespace: 'staging' } });
      const r = await bot(['delete', 'configmap', `doomed-${tag}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `configmap "doomed-${tag}" deleted`);
      assert.equal(sim.getObject('configmaps', 'staging', `doomed-${tag}`), undefined);
      sim.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `pod-${tag}`, namespace: 'staging' },
        spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] },
      });
      const pod = await bot(['delete', 'pod', `pod-${tag}`]);
      assert.equal(pod.code, 0, pod.stderr);
      assert.equal(pod.stdout.trim(), `pod "pod-${tag}" deleted`);
      const missing = await bot(['delete', 'configmap', `doomed-${tag}`]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr.trim(), `Error from server (NotFound): configmaps "doomed-${tag}" not found`);
    });

    test('logs -f streams until kubectl goes away', async () => {
      const before = sim.openWatches();
      const child = spawnKubectl(['logs', '-f', 'web-0'], { kubeconfig: botConfig, version });
      try {
        const out = await waitForOutput(child, (o) => o.includes('heartbeat 2 from web-0/web'));
        assert.match(out, /^starting server pid=1\n/);
      } finally {
        await stop(child);
      }
      await until(() => sim.openWatches() === before);
    });

    test('describe secret shows sizes, never values', async () => {
      const r = await bot(['describe', 'secret', 'db-credentials']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Name:\s+db-credentials\nNamespace:\s+staging\n/);
      assert.match(r.stdout, /\npassword:\s+\d+ bytes\n/);
      for (const c of sim.canaries) assert.ok(!r.stdout.includes(c));
    });

    test('auth can-i', async () => {
      const yes = await bot(['auth', 'can-i', 'list', 'pods']);
      assert.equal(yes.stdout.trim(), 'yes', yes.stderr);
      assert.equal(yes.code, 0);
      const no = await bot(['auth', 'can-i', 'delete', 'namespaces']);
      assert.equal(no.stdout.trim(), 'no');
      assert.equal(no.code, 1);
      const asAdmin = await admin(['auth', 'can-i', '*', '*']);
      assert.equal(asAdmin.stdout.trim(), 'yes');
    });
  });
}
