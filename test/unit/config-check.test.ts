// `hoopgate check`, in-process through run() with a captured CliIo: exit codes and output.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../packages/gateway/src/cli/check.js';
import { UsageError } from '../../packages/gateway/src/cli/args.js';
import type { CliIo } from '../../packages/gateway/src/cli/io.js';
import { pki } from '../helpers/pki.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hoopgate-check-'));
  mkdirSync(join(dir, 'conf'));
  writeFileSync(join(dir, 'conf', 'token'), 'x');
  writeFileSync(join(dir, 'conf', 'tls.crt'), pki.cert);
  writeFileSync(join(dir, 'conf', 'tls.key'), pki.key);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function capture(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    env,
    cwd: dir,
    stopSignal: new AbortController().signal,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

function document(extra: Record<string, unknown> = {}) {
  return {
    clusters: [{ name: 'prod', server: 'https://k8s.example', credentials: { tokenFile: 'token' } }],
    oidc: { issuers: [{ issuer: 'https://idp.example', audience: 'hoopgate' }] },
    identities: [{ name: 'ci', match: { groups: ['ci'] }, serviceAccount: 'agents/ci' }],
    ...extra,
  };
}

function write(name: string, doc: unknown): string {
  writeFileSync(join(dir, 'conf', name), stringify(doc));
  return `conf/${name}`;
}

describe('hoopgate check', () => {
  test('a valid config: exit 0, the summary on stdout, warnings on stderr', async () => {
    const file = write('ok.yaml', document());
    const cli = capture();
    assert.equal(await run(['--config', file], cli.io), 0);
    assert.equal(
      cli.stdout(),
      `configuration ok: 1 cluster, 1 identity, store sqlite:${join(dir, 'conf', 'data', 'hoopgate.db')}\n`,
    );
    assert.equal(
      cli.stderr(),
      'warning: listen: no tls, serving plain http: kubectl sends no bearer token to a plain-http server: put a TLS-terminating proxy in front\n',
    );
  });

  test('an invalid config: exit 1 and every problem with its path', async () => {
    const doc = document({ listen: { porrt: 1 } });
    doc.identities.push({ name: 'other', match: { groups: ['x'] }, serviceAccount: 'ci' });
    const file = write('bad.yaml', doc);
    const cli = capture();
    assert.equal(await run(['-c', file], cli.io), 1);
    assert.equal(cli.stdout(), '');
    assert.equal(
      cli.stderr(),
      `invalid configuration (${file}):\n` +
        '  listen.porrt: unknown key (did you mean "port"?)\n' +
        '  identities[1].serviceAccount: must be "namespace/name", got "ci"\n',
    );
  });

  test('referenced files must exist, unless --skip-files', async () => {
    const file = write(
      'files.yaml',
      document({ listen: { tls: { certFile: '/etc/hoopgate/tls.crt', keyFile: '/etc/hoopgate/tls.key' } } }),
    );
    const strict = capture();
    assert.equal(await run(['--config', file], strict.io), 1);
    assert.match(
      strict.stderr(),
      /listen\.tls\.certFile: file not found: \/etc\/hoopgate\/tls\.crt\n {2}listen\.tls\.keyFile: file not found/,
    );
    const lax = capture();
    assert.equal(await run(['--config', file, '--skip-files'], lax.io), 0);
    assert.equal(lax.stderr(), '');
  });

  test('the environment comes from the io; a MongoDB password is not printed', async () => {
    const file = write(
      'env.yaml',
      document({ audit: { store: '${STORE}' }, listen: { tls: { certFile: 'tls.crt', keyFile: 'tls.key' } } }),
    );
    const cli = capture({ STORE: 'mongodb://hoopgate:s3cret@mongo:27017/hoopgate' });
    assert.equal(await run(['--config', file], cli.io), 0);
    assert.equal(
      cli.stdout(),
      'configuration ok: 1 cluster, 1 identity, store mongodb://hoopgate:***@mongo:27017/hoopgate\n',
    );
    const unset = capture();
    assert.equal(await run(['--config', file], unset.io), 1);
    assert.match(unset.stderr(), /audit\.store: environment variable STORE is not set/);
  });

  test('a missing file: exit 1, said plainly', async () => {
    const cli = capture();
    assert.equal(await run(['--config', 'nope.yaml'], cli.io), 1);
    assert.equal(cli.stderr(), `cannot read configuration ${join(dir, 'nope.yaml')}: no such file\n`);
  });

  test('usage errors are thrown for main to turn into exit 2; --help prints the usage', async () => {
    await assert.rejects(run([], capture().io), new UsageError('check', 'option --config is required'));
    await assert.rejects(run(['--config', 'a', 'extra'], capture().io), {
      message: 'hoopgate check: unexpected argument "extra"',
    });
    const help = capture();
    assert.equal(await run(['--help'], help.io), 0);
    assert.match(help.stdout(), /^usage: hoopgate check --config FILE/);
  });
});
