// The demo as a new user meets it: `npm start` in a fresh checkout prints a kubeconfig and the
// commands to try; the first printed kubectl command, run exactly as printed, must work.
// Used by .ci/run in a clone with nothing beside it. Exits non-zero with the demo's output on failure.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const cwd = process.argv[2] ?? process.cwd();
const child = spawn('npm', ['start', '--', '--port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
let out = '';
child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
child.stderr.setEncoding('utf8').on('data', (d) => (out += d));

function fail(message) {
  process.stderr.write(`smoke-demo: ${message}\n--- demo output ---\n${out}\n`);
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  process.exit(1);
}

const deadline = Date.now() + 120_000;
while (!/Ctrl-C stops the demo/.test(out)) {
  if (child.exitCode !== null) fail(`npm start exited with ${child.exitCode} before printing its commands`);
  if (Date.now() > deadline) fail('npm start printed no commands within 120 s');
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
const command = /^\s*(kubectl [^#\n]*?)\s*(#.*)?$/m.exec(out)?.[1];
if (kubeconfig === undefined || command === undefined) fail('no KUBECONFIG or kubectl command in the output');
const [program, ...args] = command.split(/\s+/);
const result = spawnSync(program, args, {
  cwd,
  env: { ...process.env, KUBECONFIG: join(cwd, kubeconfig) },
  encoding: 'utf8',
  timeout: 60_000,
});
process.stdout.write(`$ ${command}\n${result.stdout}${result.stderr}`);
if (result.status !== 0) fail(`the printed command failed with exit ${result.status}`);
if (!/web-0/.test(result.stdout)) fail('the printed command did not list the demo pod web-0');

process.kill(-child.pid, 'SIGINT');
const timer = setTimeout(() => fail('the demo did not stop within 20 s of SIGINT'), 20_000);
await once(child, 'close');
clearTimeout(timer);
process.stdout.write(
  'smoke-demo: npm start printed its commands, the first kubectl command worked, the demo stopped\n',
);
