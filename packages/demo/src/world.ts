// A complete local world with no outside service: the simulated API server (seeded, with agent
// ServiceAccounts and their Roles), a local OpenID provider, and a gateway in front, plus a
// kubeconfig whose users get their tokens through `hoopgate token`. `hoopgate demo` and the
// end-to-end tests both stand on it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DestinationStream } from 'pino';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from 'hoopgate/config/load.js';
import type { Config } from 'hoopgate/config/types.js';
import { startGateway, type Gateway, type GatewayOptions } from 'hoopgate/gateway.js';
import { agentRbac } from './agent-rbac.js';
import { startLocalIdp, type LocalIdp, type LocalIdpClient } from './local-idp.js';
import { createLocalSamlIdp, type LocalSamlIdp } from './local-saml-idp.js';
import { generateTlsMaterial, type TlsMaterial } from '@hoopgate/sim/tls.js';
import { startSimCluster, type SimCluster } from '@hoopgate/sim/index.js';

export const demoAudience = 'hoopgate';
const binPath = fileURLToPath(new URL('../../gateway/bin/hoopgate.js', import.meta.url));
// The assertion command is a separate process run by `hoopgate token`: the compiled script, from
// src/ (tests through tsx) and from dist/ alike.
const samlAssertionPath = fileURLToPath(new URL('../dist/saml-assertion-cli.js', import.meta.url));
/** The demo's SAML agent (issue #14): a local SAML IdP signs its assertions, the gateway exchanges them. */
export const demoSaml = {
  entityId: 'https://saml-idp.demo.hoopgate.test/saml',
  audience: 'https://hoopgate.demo.test/saml',
  agent: {
    name: 'saml-bot',
    nameId: 'saml-bot@agents.example.com',
    attributes: { groups: ['saml-readers'], department: ['platform'] },
  },
} as const;

export interface DemoAgent {
  /** kubeconfig user and context name. */
  name: string;
  client: LocalIdpClient;
}

export const demoAgents: readonly DemoAgent[] = [
  {
    name: 'readonly-bot',
    client: {
      clientId: 'readonly-bot',
      clientSecret: 'readonly-bot-secret',
      groups: ['readers'],
      email: 'readonly-bot@agents.example.com',
    },
  },
  {
    name: 'ci-deployer',
    client: {
      clientId: 'ci-deployer',
      clientSecret: 'ci-deployer-secret',
      groups: ['ci-deployers'],
      email: 'ci-deployer@agents.example.com',
    },
  },
];

/** The demo's gateway configuration, as the YAML an operator would write. */
export function demoConfigDocument(input: {
  port: number;
  simUrl: string;
  issuer: string;
  store: string;
  files: { simCa: string; gatewayToken: string; tlsCert: string; tlsKey: string; idpCa: string; samlIdpCert?: string };
}): Record<string, unknown> {
  const samlCert = input.files.samlIdpCert;
  return {
    listen: {
      host: '127.0.0.1',
      port: input.port,
      tls: { certFile: input.files.tlsCert, keyFile: input.files.tlsKey },
    },
    clusters: [
      {
        name: 'demo',
        server: input.simUrl,
        caFile: input.files.simCa,
        credentials: { tokenFile: input.files.gatewayToken },
        tokens: 'tokenRequest',
        tokenTTL: '10m',
      },
    ],
    oidc: {
      issuers: [
        {
          issuer: input.issuer,
          audience: demoAudience,
          groupsClaim: 'groups',
          usernameClaim: 'sub',
          caFile: input.files.idpCa,
        },
      ],
    },
    identities: [
      {
        name: 'readonly-bot',
        match: { groups: ['readers'] },
        serviceAccount: 'agents/readonly-bot',
        deny: [{ verbs: ['get', 'list', 'watch'], resources: ['secrets'] }],
      },
      {
        name: 'ci-deployer',
        match: { groups: ['ci-deployers'] },
        serviceAccount: 'agents/ci-deployer',
        approval: {
          serviceAccount: 'agents/ci-deployer-elevated',
          require: [{ verbs: ['delete', 'deletecollection'], resources: ['namespaces'] }],
          escalate: true,
        },
      },
      ...(samlCert === undefined
        ? []
        : [
            {
              name: 'saml-bot',
              match: { issuer: [demoSaml.entityId], groups: ['saml-readers'] },
              serviceAccount: 'agents/saml-bot',
              deny: [{ verbs: ['get', 'list', 'watch'], resources: ['secrets'] }],
            },
          ]),
    ],
    approval: {
      timeout: '5m',
      minApprovals: 1,
      grantOptions: ['15m'],
      approvers: { oidcGroups: [{ issuer: input.issuer, group: 'platform-oncall' }] },
    },
    masking: { secrets: true, rules: [{ resources: ['configmaps'], keys: '(?i)(password|token|secret|key)' }] },
    audit: { store: input.store, bodies: true, maxBodyBytes: 65536, retention: '90d' },
    gateway: { namespace: 'hoopgate' },
    ...(samlCert === undefined
      ? {}
      : {
          saml: {
            idps: [{ entityId: demoSaml.entityId, certFile: samlCert, groupsAttribute: 'groups' }],
            audience: demoSaml.audience,
            tokenTTL: '10m',
          },
        }),
  };
}

export interface DemoWorldOptions {
  dir: string;
  /** Gateway port; 0 picks a free one. */
  port?: number;
  store?: string;
  logDestination?: DestinationStream;
  /** Edits the config document before it is written and loaded. */
  editConfig?: (document: Record<string, unknown>) => void;
  gateway?: Partial<Omit<GatewayOptions, 'config'>>;
  /** Extra IdP clients (tests). */
  extraClients?: readonly LocalIdpClient[];
}

export interface DemoWorld {
  dir: string;
  sim: SimCluster;
  idp: LocalIdp;
  gateway: Gateway;
  config: Config;
  configPath: string;
  kubeconfigPath: string;
  gatewayTls: TlsMaterial;
  agents: readonly DemoAgent[];
  /** The local SAML IdP whose assertions the gateway exchanges (its key signs them). */
  samlIdp: LocalSamlIdp;
  /** A kubeconfig user entry's exec plugin arguments for an agent (tests build their own). */
  tokenCommand(clientId: string): string[];
  close(): Promise<void>;
}

export async function startDemoWorld(options: DemoWorldOptions): Promise<DemoWorld> {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const sim = await startSimCluster({ seed: true });
  const clients = [...demoAgents.map((a) => a.client), ...(options.extraClients ?? [])];
  const idpTls = generateTlsMaterial({ commonName: 'hoopgate demo IdP' });
  const idp = await startLocalIdp({ clients, audience: demoAudience, tls: idpTls });
  try {
    for (const account of ['readonly-bot', 'ci-deployer', 'ci-deployer-elevated', 'saml-bot'])
      sim.createServiceAccount('agents', account);
    sim.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'hoopgate' } });
    sim.createServiceAccount('hoopgate', 'hoopgate');
    for (const object of agentRbac()) sim.apply(object);

    const gatewayTls = generateTlsMaterial({ commonName: 'hoopgate demo gateway' });
    const files = {
      simCa: join(dir, 'cluster-ca.pem'),
      gatewayToken: join(dir, 'gateway-token'),
      tlsCert: join(dir, 'gateway-cert.pem'),
      tlsKey: join(dir, 'gateway-key.pem'),
      gatewayCa: join(dir, 'gateway-ca.pem'),
      idpCa: join(dir, 'idp-ca.pem'),
      samlIdpCert: join(dir, 'saml-idp-cert.pem'),
    };
    const samlIdp = createLocalSamlIdp(demoSaml.entityId);
    writeFileSync(files.samlIdpCert, samlIdp.material.cert);
    writeFileSync(join(dir, 'saml-idp-key.pem'), samlIdp.material.key, { mode: 0o600 });
    const { name: samlAgent, ...samlAgentSpec } = demoSaml.agent;
    writeFileSync(
      join(dir, 'saml-idp.json'),
      JSON.stringify(
        { entityId: demoSaml.entityId, audience: demoSaml.audience, agents: { [samlAgent]: samlAgentSpec } },
        null,
        2,
      ),
    );
    writeFileSync(files.simCa, sim.ca);
    writeFileSync(files.gatewayToken, sim.issueToken('hoopgate', 'hoopgate', 24 * 3600), { mode: 0o600 });
    writeFileSync(files.tlsCert, gatewayTls.cert);
    writeFileSync(files.tlsKey, gatewayTls.key, { mode: 0o600 });
    writeFileSync(files.gatewayCa, gatewayTls.ca);
    writeFileSync(files.idpCa, idp.ca ?? '');
    for (const client of clients)
      writeFileSync(join(dir, `${client.clientId}.secret`), client.clientSecret, { mode: 0o600 });

    const document = demoConfigDocument({
      port: options.port ?? 0,
      simUrl: sim.url,
      issuer: idp.issuer,
      store: options.store ?? `sqlite:${join(dir, 'hoopgate.db')}`,
      files,
    });
    options.editConfig?.(document);
    const configPath = join(dir, 'hoopgate.yaml');
    writeFileSync(configPath, `# written by hoopgate demo\n${toYaml(document)}`);
    const config = await loadConfig(configPath, {});
    const gateway = await startGateway({
      config,
      ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
      ...options.gateway,
    });

    const tokenCommand = (clientId: string) => [
      binPath,
      'token',
      '--issuer',
      idp.issuer,
      '--client-id',
      clientId,
      '--client-secret-file',
      join(dir, `${clientId}.secret`),
      '--audience',
      demoAudience,
      '--ca-file',
      files.idpCa,
      '--cache-dir',
      join(dir, 'token-cache'),
    ];
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfigPath,
      toYaml(demoKubeconfig({ gatewayUrl: gateway.url, gatewayCa: files.gatewayCa, dir, samlAgent, tokenCommand })),
      { mode: 0o600 },
    );

    return {
      dir,
      sim,
      idp,
      gateway,
      config,
      configPath,
      kubeconfigPath,
      gatewayTls,
      agents: demoAgents,
      samlIdp,
      tokenCommand,
      async close() {
        await gateway.close();
        await idp.close();
        await sim.close();
      },
    };
  } catch (error) {
    await idp.close().catch(() => undefined);
    await sim.close().catch(() => undefined);
    throw error;
  }
}

/** The demo kubeconfig: one user and context per agent, each getting its token from `hoopgate token`. */
function demoKubeconfig(input: {
  gatewayUrl: string;
  gatewayCa: string;
  dir: string;
  samlAgent: string;
  tokenCommand: (clientId: string) => string[];
}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'hoopgate-demo', cluster: { server: input.gatewayUrl, 'certificate-authority': input.gatewayCa } },
    ],
    users: [
      ...demoAgents.map((agent) => ({
        name: agent.name,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: input.tokenCommand(agent.client.clientId),
            interactiveMode: 'Never',
          },
        },
      })),
      {
        name: input.samlAgent,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: samlTokenCommand(input.gatewayUrl, input.gatewayCa, input.dir, input.samlAgent),
            interactiveMode: 'Never',
          },
        },
      },
    ],
    contexts: [...demoAgents.map((agent) => agent.name), input.samlAgent].map((name) => ({
      name,
      context: { cluster: 'hoopgate-demo', user: name, namespace: 'staging' },
    })),
    'current-context': 'ci-deployer',
  };
}

/** `hoopgate token` in SAML mode: each run without a cached token asks the local SAML IdP for a fresh assertion. */
export function samlTokenCommand(gatewayUrl: string, caFile: string, dir: string, agent: string): string[] {
  const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  const assertionCommand = [process.execPath, samlAssertionPath, '--dir', dir, '--agent', agent].map(quote).join(' ');
  return [
    binPath,
    'token',
    '--gateway',
    gatewayUrl,
    '--ca-file',
    caFile,
    '--saml-assertion-command',
    assertionCommand,
    '--cache-dir',
    join(dir, 'token-cache'),
  ];
}
