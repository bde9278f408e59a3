// `hoopgate kubeconfig`: prints a kubeconfig that points one agent at the gateway — its server
// (optionally a named cluster's /k8s/<name>), the gateway's CA embedded, and the agent's credential:
// the `hoopgate token` exec plugin (client credentials) or a token file (CI, in-cluster agents).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { parseIssuerUrl } from '../authn/issuer-fetch.js';
import { HoopError, isHoopError } from '../lib/errors.js';
import { parseCommandArgs, UsageError } from './args.js';
import type { CliCommand } from './io.js';

export const usage = `usage: hoopgate kubeconfig --server URL [--ca-file F] [--cluster NAME] [--namespace NS] [--name NAME]
         (--issuer URL --client-id ID --audience AUD [--client-secret-file F] [--idp-ca-file F] [--exec-command CMD | --npx]
          | --token-file F)

Prints a kubeconfig for one agent on stdout. kubectl then reaches the gateway with the agent's OIDC token.

options:
  --server URL              the gateway (https://…); with --cluster the API of that named cluster is SERVER/k8s/NAME
  --ca-file F               the gateway's CA (PEM), embedded as certificate-authority-data (default: system roots)
  --cluster NAME            a named cluster of the gateway (its API is /k8s/NAME/…); default: its first cluster
  --namespace NS            the context's default namespace
  --name NAME               the user and context name (default: the client id, or "agent")
credential, one of:
  exec plugin: kubectl runs \`hoopgate token …\` (client credentials at the IdP) before each call: this node
  and this hoopgate by absolute path, with NODE_EXTRA_CA_CERTS emptied so Node does not parse a CA bundle at
  every call; a bundle set here is passed as HOOPGATE_EXTRA_CA_CERTS, read only when a token is fetched
  --issuer URL              the IdP's issuer
  --client-id ID            the agent's OAuth client id
  --audience AUD            the audience the gateway expects (oidc.issuers[].audience)
  --client-secret-file F    file holding the client secret, read at every token request (never embedded);
                            without it the plugin reads HOOPGATE_CLIENT_SECRET from kubectl's environment
  --idp-ca-file F           CA (PEM) for a private IdP
  --exec-command CMD        run CMD token … instead (e.g. hoopgate, found on kubectl's PATH)
  --npx                     run npx hoopgate token … (any machine with hoopgate in the project; npm's start-up
                            adds some 300 ms to every kubectl call)
  token file: a JWT the platform writes and refreshes (CI job token, projected ServiceAccount token)
  --token-file F            kubectl reads the bearer token from F at each call
`;

const execApiVersion = 'client.authentication.k8s.io/v1';
/** This installation's bin (src/cli or dist/cli → bin/hoopgate.js): what kubectl runs by default. */
const binPath = fileURLToPath(new URL('../../bin/hoopgate.js', import.meta.url));
/** DNS-1123 label: the gateway's cluster names are one (they are a path segment). */
const clusterName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const run: CliCommand = async (argv, io) => {
  const args = parseCommandArgs('kubeconfig', argv, {
    server: { type: 'string', required: true },
    'ca-file': { type: 'string' },
    cluster: { type: 'string' },
    namespace: { type: 'string' },
    name: { type: 'string' },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret-file': { type: 'string' },
    audience: { type: 'string' },
    'idp-ca-file': { type: 'string' },
    'exec-command': { type: 'string' },
    npx: { type: 'boolean' },
    'token-file': { type: 'string' },
  });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  const v = args.values;
  const fail = (message: string): never => {
    throw new UsageError('kubeconfig', message);
  };
  const path = (file: string) => (isAbsolute(file) ? file : resolve(io.cwd, file));

  const server = gatewayServer(v.server, v.cluster, fail);
  if (v.namespace !== undefined && !clusterName.test(v.namespace))
    fail(`--namespace ${JSON.stringify(v.namespace)} is not a namespace name`);

  const execOptions = [
    'issuer',
    'client-id',
    'client-secret-file',
    'audience',
    'idp-ca-file',
    'exec-command',
    'npx',
  ] as const;
  const givenExec = execOptions.filter((name) => v[name] !== undefined && v[name] !== false);
  let user: Record<string, unknown>;
  let defaultName: string;
  if (v['token-file'] !== undefined) {
    if (givenExec.length > 0)
      fail(
        `--token-file and --${givenExec[0]} exclude each other: the agent has a token file or uses the exec plugin, not both`,
      );
    user = { tokenFile: path(v['token-file']) };
    defaultName = 'agent';
  } else {
    if (givenExec.length === 0)
      fail('no credential: give --issuer, --client-id and --audience (the exec plugin) or --token-file');
    const issuer = v.issuer ?? fail('--issuer is required with the exec plugin');
    const clientId = v['client-id'] ?? fail('--client-id is required with the exec plugin');
    const audience =
      v.audience ??
      fail('--audience is required with the exec plugin (the gateway refuses tokens for another audience)');
    try {
      parseIssuerUrl(issuer);
    } catch (error) {
      fail(isHoopError(error) ? error.message : String(error));
    }
    const tokenArgs = ['token', '--issuer', issuer, '--client-id', clientId, '--audience', audience];
    if (v['client-secret-file'] !== undefined) tokenArgs.push('--client-secret-file', path(v['client-secret-file']));
    if (v['idp-ca-file'] !== undefined) tokenArgs.push('--ca-file', path(v['idp-ca-file']));
    if (v['exec-command'] !== undefined && v.npx === true) fail('give only one of --exec-command and --npx');
    const [command, ...args] =
      v['exec-command'] !== undefined
        ? [v['exec-command'], ...tokenArgs]
        : v.npx === true
          ? ['npx', 'hoopgate', ...tokenArgs]
          : [process.execPath, binPath, ...tokenArgs];
    user = {
      exec: {
        apiVersion: execApiVersion,
        command,
        args,
        env: pluginEnv(io.env, io.cwd),
        interactiveMode: 'Never',
        provideClusterInfo: false,
        installHint:
          'the hoopgate token plugin needs Node.js 20 and hoopgate (npx hoopgate); see hoopgate kubeconfig --help',
      },
    };
    defaultName = clientId;
  }
  const name = v.name ?? defaultName;

  const cluster: Record<string, unknown> = { server };
  if (v['ca-file'] !== undefined)
    cluster['certificate-authority-data'] = Buffer.from(await readCa(path(v['ca-file']))).toString('base64');
  const clusterEntry = v.cluster === undefined ? 'hoopgate' : `hoopgate-${v.cluster}`;
  const context: Record<string, unknown> = { cluster: clusterEntry, user: name };
  if (v.namespace !== undefined) context.namespace = v.namespace;

  io.stdout(
    toYaml(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: clusterEntry, cluster }],
        users: [{ name, user }],
        contexts: [{ name, context }],
        'current-context': name,
      },
      { lineWidth: 0 },
    ),
  );
  return 0;
};

/**
 * The exec plugin's environment (kubectl adds it to its own; a name given here wins). Node parses
 * the bundle in NODE_EXTRA_CA_CERTS at every start — some 40 ms for a system-sized bundle, at every
 * kubectl call — though only a token request (a cache miss) makes a TLS connection; an empty value
 * skips that. The bundle in effect here, if any, goes to HOOPGATE_EXTRA_CA_CERTS, which the plugin
 * adds to Node's roots for the token request only.
 */
function pluginEnv(env: Readonly<Record<string, string | undefined>>, cwd: string): { name: string; value: string }[] {
  const entries = [{ name: 'NODE_EXTRA_CA_CERTS', value: '' }];
  const bundle = env.HOOPGATE_EXTRA_CA_CERTS || env.NODE_EXTRA_CA_CERTS;
  if (bundle) entries.push({ name: 'HOOPGATE_EXTRA_CA_CERTS', value: resolve(cwd, bundle) });
  return entries;
}

/** The gateway URL kubectl talks to: https only, since kubectl sends no bearer token over plain http. */
function gatewayServer(raw: string, cluster: string | undefined, fail: (message: string) => never): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`--server ${JSON.stringify(raw)} is not a URL (e.g. https://hoopgate.example.com)`);
  }
  if (url.protocol !== 'https:')
    fail(`--server must be an https URL: kubectl sends no bearer token to a plain-http server`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    fail('--server must not contain credentials, a query or a fragment');
  }
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  if (cluster === undefined) return base;
  if (!clusterName.test(cluster))
    fail(`--cluster ${JSON.stringify(cluster)} is not a cluster name (lower-case letters, digits and "-")`);
  return `${base}/k8s/${cluster}`;
}

async function readCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new HoopError(
      'ERR_CONFIG',
      `cannot read the CA file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  try {
    new X509Certificate(pem); // parse only: kubectl would fail later and less clearly
  } catch {
    throw new HoopError(
      'ERR_CONFIG',
      `the CA file ${file} holds no PEM certificate: pass the gateway's CA certificate`,
    );
  }
  return pem;
}
