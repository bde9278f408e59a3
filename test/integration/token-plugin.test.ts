// `hoopgate token`: in-process runs against the local IdP (output, cache, refusals) and real
// kubectl using it as an exec credential plugin against a TLS endpoint that verifies the token.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createOidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import type { OidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import { run as kubeconfigCommand } from '../../packages/gateway/src/cli/kubeconfig.js';
import { createTokenCommand } from '../../packages/gateway/src/cli/token.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { generateTlsMaterial } from '../../packages/sim/src/tls.js';
import { startTestIdp } from '../helpers/idp.js';
import type { TestIdp } from '../helpers/idp.js';

const repo = resolve(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function runToken(
  argv: string[],
  options: { env?: Record<string, string>; clock?: () => number; cwd?: string } = {},
): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    stopSignal: new AbortController().signal,
  };
  const command = createTokenCommand(options.clock ? { clock: options.clock } : {});
  const code = await command(argv, io);
  return { code, stdout, stderr };
}

describe('hoopgate token (in process)', () => {
  let idp: TestIdp;
  let verifier: OidcVerifier;
  let dir: string;
  let base: string[];

  before(async () => {
    idp = await startTestIdp();
    verifier = createOidcVerifier([idp.issuerConfig()]);
    dir = mkdtempSync(join(tmpdir(), 'hoop-token-'));
  });
  after(async () => {
    await verifier.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const args = (cacheDir: string, extra: string[] = []) => [
    '--issuer',
    idp.issuer,
    '--client-id',
    'ci-deployer',
    '--audience',
    'hoopgate',
    '--ca-file',
    idp.caFile ?? '',
    '--cache-dir',
    cacheDir,
    ...extra,
  ];

  it('prints an ExecCredential with a token the gateway accepts, then serves it from the cache', async () => {
    const cacheDir = join(dir, 'cache-a');
    base = args(cacheDir);
    const before = idp.stats.token;
    const first = await runToken(base, { env: { HOOPGATE_CLIENT_SECRET: 'ci-deployer-secret' } });
    assert.equal(first.stderr, '');
    assert.equal(first.code, 0);
    const credential = JSON.parse(first.stdout) as {
      apiVersion: string;
      kind: string;
      status: { token: string; expirationTimestamp: string };
    };
    assert.equal(credential.apiVersion, 'client.authentication.k8s.io/v1');
    assert.equal(credential.kind, 'ExecCredential');
    assert.match(credential.status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const expiresIn = Date.parse(credential.status.expirationTimestamp) - Date.now();
    assert.ok(expiresIn > 3_500_000 && expiresIn <= 3_600_000, `expires in ${expiresIn} ms`);
    const principal = await verifier.verify(credential.status.token);
    assert.deepEqual([principal.subject, principal.groups], ['ci-deployer', ['ci-deployers']]);
    assert.equal(idp.stats.token, before + 1);

    const files = readdirSync(cacheDir);
    assert.equal(files.length, 1);
    assert.equal(statSync(cacheDir).mode & 0o777, 0o700);
    const file = join(cacheDir, files[0] ?? '');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!readFileSync(file, 'utf8').includes('ci-deployer-secret'));

    const second = await runToken(base, { env: { HOOPGATE_CLIENT_SECRET: 'ci-deployer-secret' } });
    assert.equal(second.code, 0);
    assert.equal(second.stdout, first.stdout);
    assert.equal(idp.stats.token, before + 1, 'no second token request');
  });

  it('answers in the ExecCredential version kubectl announces', async () => {
    const env = {
      HOOPGATE_CLIENT_SECRET: 'ci-deployer-secret',
      KUBERNETES_EXEC_INFO: JSON.stringify({
        kind: 'ExecCredential',
        apiVersion: 'client.authentication.k8s.io/v1beta1',
        spec: { interactive: false },
      }),
    };
    const out = await runToken(base, { env });
    assert.equal(out.code, 0);
    assert.equal(JSON.parse(out.stdout).apiVersion, 'client.authentication.k8s.io/v1beta1');
    const bad = await runToken(base, {
      env: { ...env, KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}' },
    });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^hoopgate token: KUBERNETES_EXEC_INFO asks for "client.authentication.k8s.io\/v1alpha1"; supported: /,
    );
  });

  it('fetches a new token within 60 s of expiry, and keys the cache by client', async () => {
    const before = idp.stats.token;
    const late = Date.now() + 3_600_000 - 59_000;
    const out = await runToken(base, { env: { HOOPGATE_CLIENT_SECRET: 'ci-deployer-secret' }, clock: () => late });
    assert.equal(out.code, 0);
    assert.equal(idp.stats.token, before + 1);

    const other = await runToken([
      '--issuer',
      idp.issuer,
      '--client-id',
      'oncall',
      '--audience',
      'hoopgate',
      '--ca-file',
      idp.caFile ?? '',
      `--cache-dir=${join(dir, 'cache-a')}`,
      '--client-secret',
      'oncall-secret',
    ]);
    assert.equal(other.code, 0);
    assert.equal((await verifier.verify(JSON.parse(other.stdout).status.token)).subject, 'oncall');
    assert.equal(readdirSync(join(dir, 'cache-a')).filter((f) => f.endsWith('.json')).length, 2);
  });

  it('reads the secret from a file relative to cwd and ignores a cache file others can read', async () => {
    writeFileSync(join(dir, 'secret'), 'readonly-bot-secret\n', { mode: 0o600 });
    const cacheDir = join(dir, 'cache-b');
    const argv = [
      '--issuer',
      idp.issuer,
      '--client-id',
      'readonly-bot',
      '--audience',
      'hoopgate',
      '--ca-file',
      idp.caFile ?? '',
      '--cache-dir',
      cacheDir,
      '--client-secret-file',
      'secret',
    ];
    const before = idp.stats.token;
    assert.equal((await runToken(argv, { cwd: dir })).code, 0);
    const file = join(cacheDir, readdirSync(cacheDir)[0] ?? '');
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o644);
    assert.equal((await runToken(argv, { cwd: dir })).code, 0);
    assert.equal(idp.stats.token, before + 2, 'a world-readable cache file is not trusted');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'and it is replaced by a private one');
  });

  it('reports failures on stderr with exit 1 and never prints the secret', async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        [...base, '--no-cache'],
        { HOOPGATE_CLIENT_SECRET: 'wrong-secret-value' },
        /^hoopgate token: token request to https:\/\/127\.0\.0\.1:\d+ as client "ci-deployer" failed: invalid_client \(client authentication failed\), HTTP 401\n$/,
      ],
      [
        [...base.slice(0, -2), '--no-cache', '--client-secret', 'x', '--client-secret-file', 'y'],
        {},
        /give only one of --client-secret and --client-secret-file/,
      ],
      [base, {}, /^hoopgate token: no client secret: pass --client-secret-file F/],
      [
        ['--client-id', 'x', '--audience', 'a', '--client-secret', 's'],
        {},
        /^hoopgate token: --issuer is required\nusage: hoopgate token/,
      ],
      [
        ['--issuer', 'http://idp.example.com', '--client-id', 'x', '--audience', 'a', '--client-secret', 's'],
        {},
        /issuer "http:\/\/idp.example.com" must use https/,
      ],
      [[...base, '--bogus', '1'], {}, /^hoopgate token: unknown argument "--bogus"/],
      [
        [
          '--issuer',
          `https://127.0.0.1:${deadPort}`,
          '--client-id',
          'x',
          '--audience',
          'a',
          '--client-secret',
          'topsecret',
          '--no-cache',
        ],
        {},
        /^hoopgate token: cannot discover issuer https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
      ],
      [
        [...base.slice(0, 6), '--no-cache', '--client-secret', 'ci-deployer-secret'],
        {},
        /^hoopgate token: cannot discover issuer .*certificate/,
      ],
    ];
    for (const [argv, env, expected] of cases) {
      const out = await runToken(argv, { env });
      assert.equal(out.code, 1, argv.join(' '));
      assert.equal(out.stdout, '');
      assert.match(out.stderr, expected);
      for (const secret of ['wrong-secret-value', 'topsecret', 'ci-deployer-secret'])
        assert.ok(!out.stderr.includes(secret));
    }
  });

  it('on a miss trusts the bundle in HOOPGATE_EXTRA_CA_CERTS (a corporate CA) besides the roots; refuses a bad one', async () => {
    const noCaFile = [...base.slice(0, 6), '--no-cache', '--client-secret', 'ci-deployer-secret'];
    const trusted = await runToken(noCaFile, { env: { HOOPGATE_EXTRA_CA_CERTS: idp.caFile ?? '' } });
    assert.equal(trusted.stderr, '');
    assert.equal(trusted.code, 0);
    assert.equal((await verifier.verify(JSON.parse(trusted.stdout).status.token)).subject, 'ci-deployer');
    // Without it the IdP's certificate is not trusted (the roots alone do not know it).
    const untrusted = await runToken(noCaFile);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^hoopgate token: cannot discover issuer .*certificate/);
    writeFileSync(join(dir, 'not-a-bundle.pem'), 'hello\n');
    const cases: [Record<string, string>, RegExp][] = [
      [
        { HOOPGATE_EXTRA_CA_CERTS: join(dir, 'missing.pem') },
        /^hoopgate token: cannot read HOOPGATE_EXTRA_CA_CERTS file .*missing\.pem \(ENOENT\): fix the path in the kubeconfig's exec env, or remove the variable\n$/,
      ],
      [
        { HOOPGATE_EXTRA_CA_CERTS: join(dir, 'not-a-bundle.pem') },
        /^hoopgate token: HOOPGATE_EXTRA_CA_CERTS file .*not-a-bundle\.pem holds no PEM certificate: point it at a CA bundle/,
      ],
    ];
    for (const [env, expected] of cases) {
      const out = await runToken(noCaFile, { env });
      assert.equal(out.code, 1);
      assert.equal(out.stdout, '');
      assert.match(out.stderr, expected);
      assert.ok(!out.stderr.includes('ci-deployer-secret'));
    }
    // --ca-file names the IdP's CA and replaces the roots: the extra bundle is then not read at all.
    const withCaFile = await runToken([...base, '--no-cache', '--client-secret', 'ci-deployer-secret'], {
      env: { HOOPGATE_EXTRA_CA_CERTS: join(dir, 'missing.pem') },
    });
    assert.equal(withCaFile.code, 0, withCaFile.stderr);
  });

  it('refuses a token issued for another audience', async () => {
    const other = await startTestIdp({ tls: false, audience: 'something-else' });
    try {
      const out = await runToken([
        '--issuer',
        other.issuer,
        '--client-id',
        'ci-deployer',
        '--audience',
        'hoopgate',
        '--client-secret',
        'ci-deployer-secret',
        '--no-cache',
      ]);
      assert.equal(out.code, 1);
      assert.match(out.stderr, /the issuer returned a token for audience "something-else", not "hoopgate"/);
    } finally {
      await other.close();
    }
  });
});

describe('hoopgate token as a real kubectl exec plugin', () => {
  let idp: TestIdp;
  let verifier: OidcVerifier;
  let dir: string;
  let server: ReturnType<typeof createServer>;
  let serverUrl: string;
  let caFile: string;
  const seen: string[] = [];

  before(async () => {
    idp = await startTestIdp();
    verifier = createOidcVerifier([idp.issuerConfig()]);
    dir = mkdtempSync(join(tmpdir(), 'hoop-kubectl-'));
    const tls = generateTlsMaterial();
    caFile = join(dir, 'server-ca.pem');
    writeFileSync(caFile, tls.ca);
    // Stands in for the gateway: answers only to a token the verifier accepts.
    server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      verifier.verify(token ?? '').then(
        (principal) => {
          seen.push(principal.subject);
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ subject: principal.subject, groups: principal.groups }));
        },
        (error: Error) =>
          res.writeHead(401, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              kind: 'Status',
              apiVersion: 'v1',
              status: 'Failure',
              code: 401,
              reason: 'Unauthorized',
              message: `hoopgate: ${error.message}`,
            }),
          ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await verifier.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function kubeconfig(name: string, command: string, args: string[]): string {
    const file = join(dir, `${name}.kubeconfig`);
    writeFileSync(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'hoop', cluster: { server: serverUrl, 'certificate-authority': caFile } }],
        users: [
          {
            name: 'agent',
            user: {
              exec: {
                apiVersion: 'client.authentication.k8s.io/v1',
                command,
                args: [
                  ...args,
                  'token',
                  '--issuer',
                  idp.issuer,
                  '--client-id',
                  'ai-agent',
                  '--audience',
                  'hoopgate',
                  '--ca-file',
                  idp.caFile ?? '',
                  '--cache-dir',
                  join(dir, `cache-${name}`),
                ],
                env: [{ name: 'HOOPGATE_CLIENT_SECRET', value: 'ai-agent-secret' }],
                interactiveMode: 'Never',
              },
            },
          },
        ],
        contexts: [{ name: 'hoop', context: { cluster: 'hoop', user: 'agent' } }],
        'current-context': 'hoop',
      }),
    );
    return file;
  }

  async function kubectlRaw(config: string, env?: NodeJS.ProcessEnv): Promise<{ subject: string; groups: string[] }> {
    const { stdout } = await execFileAsync('/usr/bin/kubectl', ['--kubeconfig', config, 'get', '--raw', '/whoami'], {
      timeout: 60_000,
      ...(env === undefined ? {} : { env }),
    });
    return JSON.parse(stdout) as { subject: string; groups: string[] };
  }

  it('kubectl runs `node bin/hoopgate.js token …`, sends its token, and the second kubectl run uses the disk cache', async () => {
    const config = kubeconfig('bin', process.execPath, [join(repo, 'packages/gateway/bin/hoopgate.js')]);
    const before = idp.stats.token;
    assert.deepEqual(await kubectlRaw(config), { subject: 'ai-agent', groups: ['ai-agents', 'readers'] });
    assert.deepEqual(await kubectlRaw(config), { subject: 'ai-agent', groups: ['ai-agents', 'readers'] });
    assert.equal(idp.stats.token, before + 1, 'the second kubectl process used the cached token');
  });

  it('on a cache hit the bin answers from token-cached.cjs alone: no CLI, no ESM loader, nothing on stderr', async () => {
    const bin = join(repo, 'packages/gateway/bin/hoopgate.js');
    const args = [bin, 'token', '--issuer', idp.issuer, '--client-id', 'ai-agent', '--audience', 'hoopgate'];
    const cached = [...args, '--ca-file', idp.caFile ?? '', '--cache-dir', join(dir, 'cache-bin')];
    const env = { ...process.env, HOOPGATE_CLIENT_SECRET: 'ai-agent-secret', NODE_DEBUG: 'module,esm' };
    const hit = spawnSync(process.execPath, cached, { env, encoding: 'utf8' });
    assert.equal(hit.status, 0, hit.stderr);
    assert.equal(JSON.parse(hit.stdout).kind, 'ExecCredential');
    assert.match(hit.stderr, /token-cached\.cjs/);
    assert.doesNotMatch(hit.stderr, /main\.js|ESM \d+:/, 'the CLI and the ESM loader stay unloaded');
    assert.ok(!hit.stderr.includes(JSON.parse(hit.stdout).status.token), 'the token is never on stderr');
    // Anything the cache does not answer runs the full command: here a miss (another cache). Not
    // spawnSync: the IdP answering it runs in this process.
    const miss = await execFileAsync(
      process.execPath,
      [...args, '--ca-file', idp.caFile ?? '', '--cache-dir', join(dir, 'cache-miss')],
      { env },
    );
    assert.equal(JSON.parse(miss.stdout).kind, 'ExecCredential');
    assert.match(miss.stderr, /main\.js/);
  });

  /** A kubeconfig as `hoopgate kubeconfig` writes it, the writer's environment given. */
  async function writtenKubeconfig(name: string, env: Record<string, string>, extra: string[] = []): Promise<string> {
    const secretFile = join(dir, 'ai-agent.secret');
    writeFileSync(secretFile, 'ai-agent-secret\n', { mode: 0o600 });
    let stdout = '';
    let stderr = '';
    const code = await kubeconfigCommand(
      [
        '--server',
        serverUrl,
        '--ca-file',
        caFile,
        '--issuer',
        idp.issuer,
        '--client-id',
        'ai-agent',
        '--audience',
        'hoopgate',
        '--client-secret-file',
        secretFile,
        ...extra,
      ],
      {
        stdout: (t) => void (stdout += t),
        stderr: (t) => void (stderr += t),
        env,
        cwd: dir,
        stopSignal: new AbortController().signal,
      },
    );
    assert.equal(code, 0, stderr);
    const file = join(dir, `${name}.kubeconfig`);
    writeFileSync(file, stdout, { mode: 0o600 });
    return file;
  }

  it('a kubeconfig as written: the plugin starts with NODE_EXTRA_CA_CERTS empty, and a miss trusts the bundle it had', async () => {
    // The IdP's CA stands in for a corporate bundle in NODE_EXTRA_CA_CERTS; no --idp-ca-file.
    const record = join(dir, 'plugin-env.txt');
    const wrapper = join(dir, 'record-env.sh');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nprintf '%s|%s\\n' "\${NODE_EXTRA_CA_CERTS-unset}" "\${HOOPGATE_EXTRA_CA_CERTS-unset}" >> '${record}'\nexec '${process.execPath}' '${join(repo, 'packages/gateway/bin/hoopgate.js')}' "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const config = await writtenKubeconfig('written', { NODE_EXTRA_CA_CERTS: idp.caFile ?? '' }, [
      '--exec-command',
      wrapper,
    ]);
    const cacheHome = join(dir, 'xdg-written');
    // kubectl's own environment still has NODE_EXTRA_CA_CERTS (this machine sets it): the kubeconfig's wins.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: idp.caFile ?? '', XDG_CACHE_HOME: cacheHome };
    const before = idp.stats.token;
    assert.deepEqual(await kubectlRaw(config, env), { subject: 'ai-agent', groups: ['ai-agents', 'readers'] });
    assert.deepEqual(await kubectlRaw(config, env), { subject: 'ai-agent', groups: ['ai-agents', 'readers'] });
    assert.equal(idp.stats.token, before + 1, 'one token request, then the cache');
    assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), [`|${idp.caFile}`, `|${idp.caFile}`]);
    const cacheDir = join(cacheHome, 'hoopgate');
    const files = readdirSync(cacheDir);
    assert.equal(files.length, 1);
    assert.equal(statSync(join(cacheDir, files[0] ?? '')).mode & 0o777, 0o600);

    // The default command (this node, this bin) works the same way.
    const plain = await writtenKubeconfig('written-default', { NODE_EXTRA_CA_CERTS: idp.caFile ?? '' });
    assert.deepEqual(await kubectlRaw(plain, env), { subject: 'ai-agent', groups: ['ai-agents', 'readers'] });
  });

  it('a kubeconfig written without the bundle: the miss fails on the certificate, no token is fetched', async () => {
    const config = await writtenKubeconfig('no-bundle', {});
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: idp.caFile ?? '', XDG_CACHE_HOME: join(dir, 'xdg-none') };
    const before = idp.stats.token;
    await assert.rejects(kubectlRaw(config, env), (error: Error & { stderr?: string }) => {
      assert.match(error.stderr ?? '', /hoopgate token: cannot discover issuer .*certificate/);
      return true;
    });
    assert.equal(idp.stats.token, before);
  });
});
