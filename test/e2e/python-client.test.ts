// A client nobody here wrote, through the gateway: the Debian python3-kubernetes (22.6) lists pods, watches
// (and sees a ConfigMap the test creates), patches a ConfigMap, execs (with stdin written as WebSocket text
// frames, and the exit code) and port-forwards — as the mapped ServiceAccount, with a bearer token from the IdP.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { startTestWorld, type TestWorld } from '../helpers/world.js';

const script = fileURLToPath(new URL('./python/client.py', import.meta.url));

/** The first interpreter that can import the Debian package (pyenv's python3 may shadow /usr/bin/python3). */
function findPython(): string | undefined {
  const candidates = [process.env['HOOPGATE_PYTHON'], 'python3', '/usr/bin/python3'].filter((c): c is string =>
    Boolean(c),
  );
  return candidates.find((python) => spawnSync(python, ['-c', 'import kubernetes'], { stdio: 'ignore' }).status === 0);
}

const python = findPython();

interface Step {
  step: string;
  [key: string]: unknown;
}

describe(
  'python3-kubernetes through the gateway',
  { skip: python === undefined && 'python3-kubernetes is not installed (apt-get install python3-kubernetes)' },
  () => {
    let world: TestWorld;
    before(async () => {
      world = await startTestWorld();
    });
    after(async () => {
      await world?.assertNoCanaryLeaked();
      await world?.close();
    });

    test('lists, watches, patches, execs and port-forwards', async () => {
      const caFile = join(world.dir, 'python-gateway-ca.pem');
      writeFileSync(caFile, world.gatewayTls.ca);
      const token = await world.token('ci-deployer');
      const watched = 'python-watched';
      const from = world.sim.requests.length;

      const child = spawn(python!, [script, world.gateway.url, caFile, 'staging', watched], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stdin.end(`${token}\n`);
      const steps: Step[] = [];
      let stderr = '';
      let buffered = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') steps.push(JSON.parse(line) as Step);
      });
      const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
      const step = (name: string) => steps.find((s) => s.step === name);
      try {
        await waitFor('the python client to start its watch', () => step('watching') ?? step('error'), 60_000);
        assert.equal(step('error'), undefined, JSON.stringify(step('error')));
        world.sim.apply({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: watched, namespace: 'staging' },
          data: { created: 'by-test' },
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<number>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`python did not finish; steps: ${JSON.stringify(steps)}\n${stderr}`)),
            90_000,
          );
        });
        const code = await Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
        assert.equal(step('error'), undefined, `${JSON.stringify(step('error'))}\n${stderr}`);
        assert.equal(code, 0, stderr);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }

      assert.deepEqual(step('list')?.['pods'], ['web-0', 'web-1']);
      assert.deepEqual(step('watch')?.['event'], { type: 'ADDED', name: watched, data: { created: 'by-test' } });
      assert.deepEqual(step('patch')?.['data'], { created: 'by-test', patched: 'by-python' });
      assert.deepEqual(world.sim.getObject('configmaps', 'staging', watched).data, {
        created: 'by-test',
        patched: 'by-python',
      });
      assert.equal(step('exec')?.['output'], 'hello from python\n');
      assert.equal(step('exec-stdin')?.['output'], 'typed in python\n');
      assert.equal(step('exec-stdin')?.['returncode'], 3);
      assert.deepEqual(
        [step('portforward')?.['bytes'], step('portforward')?.['same'], step('portforward')?.['error']],
        [1700, true, null],
      );

      // Every call reached the API server as the mapped ServiceAccount, never with the client's token.
      const upstream = world.sim.requests.slice(from).filter((r) => r.rawPath.includes('/namespaces/staging/'));
      assert.ok(upstream.length >= 7, JSON.stringify(upstream.map((r) => r.rawPath)));
      for (const r of upstream) {
        assert.equal(r.identity, 'system:serviceaccount:agents:ci-deployer', r.rawPath);
        assert.notEqual(r.token, token);
      }
      const upgraded = upstream.filter((r) => r.status === 101).map((r) => r.rawPath.split('?')[0]);
      assert.deepEqual(upgraded, [
        '/api/v1/namespaces/staging/pods/web-0/exec',
        '/api/v1/namespaces/staging/pods/web-0/exec',
        '/api/v1/namespaces/staging/pods/web-0/portforward',
      ]);

      // The interactive exec is recorded both ways, though its stdin came as WebSocket text frames.
      const recorded = await waitFor('the python exec session to be recorded', async () => {
        const requests = await world.gateway.store.audit.listRecords({ kinds: ['request'] });
        const exec = requests.find(
          (r) => String(r.data['path']).includes('/pods/web-0/exec') && String(r.data['path']).includes('command=sh'),
        );
        if (exec?.eventId === undefined) return undefined;
        const records = await world.gateway.store.audit.listRecords({ eventIds: [exec.eventId], kinds: ['frames'] });
        const frames = records.flatMap((r) => (r.data['frames'] ?? []) as { stream: string; data: string }[]);
        return frames.some((f) => f.stream === 'stdout') ? frames : undefined;
      });
      assert.equal(
        recorded
          .filter((f) => f.stream === 'stdin')
          .map((f) => f.data)
          .join(''),
        'echo typed in python\nexit 3\n',
      );
      assert.equal(
        recorded
          .filter((f) => f.stream === 'stdout')
          .map((f) => f.data)
          .join(''),
        'typed in python\n',
      );
    });
  },
);
