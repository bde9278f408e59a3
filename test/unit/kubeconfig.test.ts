// `hoopgate kubeconfig`: the kubeconfig it prints (server, embedded CA, exec plugin or token file)
// and every refusal of a wrong command line. Real kubectl against it: test/e2e/operations.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { run } from '../../packages/gateway/src/cli/kubeconfig.js';
import { runCli } from '../../packages/gateway/src/main.js';
import { generateTlsMaterial } from '../../packages/sim/src/tls.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let caFile: string;
let caPem: string;

async function kubeconfig(argv: string[], env: Record<string, string> = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (t: string) => void (stdout += t),
    stderr: (t: string) => void (stderr += t),
    env,
    cwd: dir,
    stopSignal: new AbortController().signal,
  };
  // Through runCli, as `hoopgate kubeconfig …` runs: usage errors become exit 2 with the message.
  const code = await runCli(['kubeconfig', ...argv], io);
  return { code, stdout, stderr };
}

const exec = [
  '--issuer',
  'https://idp.example.com/realms/agents',
  '--client-id',
  'ci-deployer',
  '--audience',
  'hoopgate',
];

describe('hoopgate kubeconfig', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-kubeconfig-'));
    caPem = generateTlsMaterial().ca;
    caFile = join(dir, 'gateway-ca.pem');
    writeFileSync(caFile, caPem);
    writeFileSync(join(dir, 'not-a-cert.pem'), 'hello\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('exec plugin: server, embedded CA, this node running this hoopgate token with absolute file paths, namespace', async () => {
    const result = await kubeconfig([
      '--server',
      'https://hoopgate.example.com/',
      '--ca-file',
      'gateway-ca.pem',
      '--namespace',
      'staging',
      ...exec,
      '--client-secret-file',
      'secret.txt',
      '--idp-ca-file',
      '/etc/idp/ca.pem',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const config = parseYaml(result.stdout);
    assert.equal(config.apiVersion, 'v1');
    assert.equal(config.kind, 'Config');
    assert.deepEqual(config.clusters, [
      {
        name: 'hoopgate',
        cluster: {
          server: 'https://hoopgate.example.com',
          'certificate-authority-data': Buffer.from(caPem).toString('base64'),
        },
      },
    ]);
    assert.deepEqual(config.contexts, [
      { name: 'ci-deployer', context: { cluster: 'hoopgate', user: 'ci-deployer', namespace: 'staging' } },
    ]);
    assert.equal(config['current-context'], 'ci-deployer');
    const user = config.users[0];
    assert.equal(user.name, 'ci-deployer');
    assert.equal(user.user.exec.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(user.user.exec.command, process.execPath);
    assert.equal(user.user.exec.interactiveMode, 'Never');
    assert.deepEqual(user.user.exec.env, [{ name: 'NODE_EXTRA_CA_CERTS', value: '' }]);
    assert.deepEqual(user.user.exec.args, [
      resolve(import.meta.dirname, '../../packages/gateway/bin/hoopgate.js'),
      'token',
      '--issuer',
      'https://idp.example.com/realms/agents',
      '--client-id',
      'ci-deployer',
      '--audience',
      'hoopgate',
      '--client-secret-file',
      join(dir, 'secret.txt'),
      '--ca-file',
      '/etc/idp/ca.pem',
    ]);
  });

  test('the client secret is never embedded: without a file the plugin reads HOOPGATE_CLIENT_SECRET', async () => {
    const result = await kubeconfig(['--server', 'https://gw.example.com', ...exec]);
    assert.equal(result.code, 0, result.stderr);
    const config = parseYaml(result.stdout);
    assert.ok(!config.users[0].user.exec.args.includes('--client-secret-file'));
    assert.equal(config.clusters[0].cluster['certificate-authority-data'], undefined, 'no --ca-file: system roots');
    const refused = await kubeconfig(['--server', 'https://gw.example.com', ...exec, '--client-secret', 's3cr3t']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^hoopgate kubeconfig: unknown option --client-secret$/m);
  });

  test('NODE_EXTRA_CA_CERTS is emptied for the plugin and its bundle passed as HOOPGATE_EXTRA_CA_CERTS (absolute)', async () => {
    const withBundle = await kubeconfig(['--server', 'https://gw.example.com', ...exec], {
      NODE_EXTRA_CA_CERTS: 'corp/ca-bundle.pem',
    });
    assert.equal(withBundle.code, 0, withBundle.stderr);
    assert.deepEqual(parseYaml(withBundle.stdout).users[0].user.exec.env, [
      { name: 'NODE_EXTRA_CA_CERTS', value: '' },
      { name: 'HOOPGATE_EXTRA_CA_CERTS', value: join(dir, 'corp/ca-bundle.pem') },
    ]);
    // One already split off (a kubeconfig written from a plugin's environment) is kept as it is.
    const split = await kubeconfig(['--server', 'https://gw.example.com', ...exec], {
      NODE_EXTRA_CA_CERTS: '',
      HOOPGATE_EXTRA_CA_CERTS: '/etc/corp/ca.pem',
    });
    assert.deepEqual(parseYaml(split.stdout).users[0].user.exec.env, [
      { name: 'NODE_EXTRA_CA_CERTS', value: '' },
      { name: 'HOOPGATE_EXTRA_CA_CERTS', value: '/etc/corp/ca.pem' },
    ]);
    const tokenFile = await kubeconfig(['--server', 'https://gw.example.com', '--token-file', '/t'], {
      NODE_EXTRA_CA_CERTS: '/etc/corp/ca.pem',
    });
    assert.equal(parseYaml(tokenFile.stdout).users[0].user.exec, undefined, 'no plugin, no plugin environment');
  });

  test('--npx writes the portable npx hoopgate token …', async () => {
    const result = await kubeconfig(['--server', 'https://gw.example.com', '--npx', ...exec]);
    assert.equal(result.code, 0, result.stderr);
    const execEntry = parseYaml(result.stdout).users[0].user.exec;
    assert.equal(execEntry.command, 'npx');
    assert.deepEqual(execEntry.args.slice(0, 3), ['hoopgate', 'token', '--issuer']);
    assert.deepEqual(execEntry.env, [{ name: 'NODE_EXTRA_CA_CERTS', value: '' }]);
  });

  test('--cluster NAME addresses SERVER/k8s/NAME; --exec-command replaces this node and bin', async () => {
    const result = await kubeconfig([
      '--server',
      'https://gw.example.com:8443/prefix',
      '--cluster',
      'second',
      '--exec-command',
      '/usr/local/bin/hoopgate',
      ...exec,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const config = parseYaml(result.stdout);
    assert.equal(config.clusters[0].name, 'hoopgate-second');
    assert.equal(config.clusters[0].cluster.server, 'https://gw.example.com:8443/prefix/k8s/second');
    assert.equal(config.contexts[0].context.cluster, 'hoopgate-second');
    assert.equal(config.users[0].user.exec.command, '/usr/local/bin/hoopgate');
    assert.deepEqual(config.users[0].user.exec.args.slice(0, 2), ['token', '--issuer']);
  });

  test('--token-file: a bearer token file (CI job token, projected ServiceAccount token)', async () => {
    const result = await kubeconfig([
      '--server',
      'https://gw.example.com',
      '--token-file',
      '/var/run/secrets/hoopgate/token',
      '--name',
      'triage-bot',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const config = parseYaml(result.stdout);
    assert.deepEqual(config.users, [{ name: 'triage-bot', user: { tokenFile: '/var/run/secrets/hoopgate/token' } }]);
    assert.equal(config['current-context'], 'triage-bot');
  });

  test('--help prints the usage', async () => {
    const result = await kubeconfig(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^usage: hoopgate kubeconfig --server URL/);
  });

  const refusals: [string, string[], RegExp][] = [
    ['no --server', [...exec], /option --server is required/],
    [
      'plain http',
      ['--server', 'http://gw.example.com', ...exec],
      /--server must be an https URL: kubectl sends no bearer token to a plain-http server/,
    ],
    ['not a URL', ['--server', 'gw.example.com', ...exec], /--server "gw\.example\.com" is not a URL/],
    [
      'a query',
      ['--server', 'https://gw.example.com/?x=1', ...exec],
      /must not contain credentials, a query or a fragment/,
    ],
    [
      'no credential',
      ['--server', 'https://gw.example.com'],
      /no credential: give --issuer, --client-id and --audience .* or --token-file/,
    ],
    [
      'no audience',
      ['--server', 'https://gw.example.com', '--issuer', 'https://idp.example.com', '--client-id', 'x'],
      /--audience is required/,
    ],
    [
      'no client id',
      ['--server', 'https://gw.example.com', '--issuer', 'https://idp.example.com', '--audience', 'x'],
      /--client-id is required/,
    ],
    [
      'http issuer',
      [
        '--server',
        'https://gw.example.com',
        '--issuer',
        'http://idp.example.com',
        '--client-id',
        'x',
        '--audience',
        'y',
      ],
      /issuer "http:\/\/idp\.example\.com" must use https/,
    ],
    [
      'both credentials',
      ['--server', 'https://gw.example.com', '--token-file', '/t', ...exec],
      /--token-file and --issuer exclude each other/,
    ],
    [
      '--exec-command and --npx',
      ['--server', 'https://gw.example.com', '--exec-command', 'hoopgate', '--npx', ...exec],
      /give only one of --exec-command and --npx/,
    ],
    [
      '--npx with a token file',
      ['--server', 'https://gw.example.com', '--token-file', '/t', '--npx'],
      /--token-file and --npx exclude each other/,
    ],
    [
      'bad cluster name',
      ['--server', 'https://gw.example.com', '--cluster', 'Prod/x', ...exec],
      /--cluster "Prod\/x" is not a cluster name/,
    ],
    [
      'bad namespace',
      ['--server', 'https://gw.example.com', '--namespace', 'A B', ...exec],
      /--namespace "A B" is not a namespace name/,
    ],
  ];
  for (const [what, argv, message] of refusals) {
    test(`refuses: ${what} (exit 2, says what to do)`, async () => {
      const result = await kubeconfig(argv);
      assert.equal(result.code, 2, result.stdout);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^hoopgate kubeconfig: /);
      assert.match(result.stderr, message);
    });
  }

  test('refuses an unreadable or non-certificate CA file (exit 1)', async () => {
    const missing = await kubeconfig(['--server', 'https://gw.example.com', '--ca-file', 'nope.pem', ...exec]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^hoopgate: cannot read the CA file .*nope\.pem: ENOENT/);
    const garbage = await kubeconfig(['--server', 'https://gw.example.com', '--ca-file', 'not-a-cert.pem', ...exec]);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /holds no PEM certificate: pass the gateway's CA certificate/);
    assert.equal(garbage.stdout, '');
  });

  test('the module exports run (main loads it by name)', () => {
    assert.equal(typeof run, 'function');
  });
});
