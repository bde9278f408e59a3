// `hoopgate demo` (what `npm start` runs), as a user meets it: a separate process that prints a
// kubeconfig and commands, and a printed kubectl command that works against it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runKubectl } from '../helpers/kubectl.js';
import { waitFor } from '../helpers/wait.js';

const bin = fileURLToPath(new URL('../../packages/gateway/bin/hoopgate.js', import.meta.url));

test('hoopgate demo prints a kubeconfig and commands that work, and stops on SIGINT', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'hoopgate-demo-'));
  const child = spawn(process.execPath, [bin, 'demo', '--port', '0'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '' },
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    const kubeconfig = await waitFor('the printed kubeconfig', () => /export KUBECONFIG=(\S+)/.exec(out)?.[1], 60_000);
    assert.match(out, /kubectl get pods -n staging/);
    assert.match(out, /npx hoopgate approvals list --config \.hoopgate-demo\/hoopgate\.yaml/);
    // The first printed command, exactly as a user would run it from the same directory.
    const result = await runKubectl(['get', 'pods', '-n', 'staging'], {
      kubeconfig: join(cwd, kubeconfig),
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^web-0\s+1\/1\s+Running/m);
    const masked = await runKubectl(
      ['get', 'secret', 'db-credentials', '-n', 'staging', '-o', 'jsonpath={.data.password}'],
      { kubeconfig: join(cwd, kubeconfig) },
    );
    assert.equal(Buffer.from(masked.stdout, 'base64').toString(), '***MASKED***');
  } finally {
    child.kill('SIGINT');
    const [code] = await once(child, 'close');
    rmSync(cwd, { recursive: true, force: true });
    assert.equal(code, 0, `the demo stopped cleanly on SIGINT:\n${out}`);
  }
  assert.match(out, /stopping/);
});
