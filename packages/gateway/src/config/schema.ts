// The configuration schema (docs/reference.md §4) as data for the walker: every key, its type, its safe
// default (the approval section is in schema-approval.ts, the rules that span sections in references.ts).
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { caFile, checkSqlitePath, checkTlsPair, signingKeyFile, tokenFile } from './files.js';
import type { ClusterCredentials, Config, SafeDefaults } from './types.js';
import {
  bool,
  bytes,
  def,
  duration,
  file,
  from,
  int,
  list,
  obj,
  oneOf,
  oneOrMany,
  opt,
  pathOf,
  pattern,
  record,
  report,
  req,
  str,
  url,
} from './walker.js';
import type { DeepPartial, Node, WalkContext } from './walker.js';
import { approval, approvalModes, slackUsers } from './schema-approval.js';
import { checkReferences } from './references.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const MiB = 1024 * 1024;

/** The verbs the Kubernetes authorizer knows (RBAC), plus `*`. */
export const kubeVerbs = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
  'impersonate',
  'bind',
  'escalate',
  'use',
  'approve',
  'sign',
  'proxy',
  '*',
] as const;

/** Safe defaults an identity may switch off explicitly with `allowUnsafe: [...]`. */
export const unsafeOptions = [
  'nodesProxy',
  'impersonate',
  'escalateBind',
  'serviceAccountTokens',
  'gatewayNamespace',
] as const;

const label = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
const dnsLabel = new RegExp(`^${label}$`);
// A ServiceAccount name is a DNS-1123 subdomain (dots allowed), its namespace a DNS-1123 label.
const serviceAccountPattern = new RegExp(`^${label}/(?=.{1,253}$)${label}(\\.${label})*$`);

const serviceAccount = () => str({ pattern: serviceAccountPattern, expect: 'must be "namespace/name"' });
const strings = () => list(str(), { min: 1 });

const rule = obj({
  verbs: opt(
    list(
      oneOf(
        kubeVerbs,
        'a Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection, …, or *)',
      ),
      { min: 1 },
    ),
  ),
  apiGroups: opt(list(str({ allowEmpty: true }), { min: 1 })), // "" is the core group
  resources: opt(
    list(
      str({
        pattern: /^(\*|[a-z0-9][a-z0-9.-]*)(\/(\*|[a-z0-9][a-z0-9.-]*))?$/,
        expect: 'must be a lower-case "resource" or "resource/subresource" (e.g. "pods/exec")',
      }),
      { min: 1 },
    ),
  ),
  namespaces: opt(strings()),
  names: opt(strings()),
});

const match = obj({
  issuer: opt(oneOrMany(str())),
  subjects: opt(oneOrMany(str())),
  groups: opt(oneOrMany(str())),
  claims: opt(
    record(oneOrMany(str()), (key) =>
      /^[^.\s]+(\.[^.\s]+)*$/.test(key) ? undefined : 'must be a claim name or dot path',
    ),
  ),
});

const identity = obj({
  name: req(str()),
  match: req(match, '(use match: {} to match every token, on purpose)'),
  serviceAccount: req(serviceAccount()),
  clusters: opt(list(str(), { min: 1 })),
  deny: def(list(rule), []),
  approval: def(
    obj({
      serviceAccount: opt(serviceAccount()),
      require: def(list(rule), []),
      escalate: def(bool(), false),
      // Ticket mode (issue #16): the call is answered at once with the approval ID instead of held.
      mode: def(
        oneOf(
          approvalModes,
          '"wait" (hold the call until an approver decides) or "ticket" (answer at once with the approval ID; the same call sent again after approval runs)',
        ),
        'wait',
      ),
    }).check((approval, at, cx) => {
      if (approval.escalate && approval.serviceAccount === undefined) {
        report(
          cx,
          pathOf(at, 'escalate'),
          'needs approval.serviceAccount: an approved request the baseline account may not do must run as another account',
        );
      }
    }),
    {},
  ),
  safeDefaults: from('allowUnsafe', def(list(oneOf(unsafeOptions)).map(toSafeDefaults), [])),
});

function toSafeDefaults(allowUnsafe: readonly string[]): SafeDefaults {
  const on = (name: (typeof unsafeOptions)[number]) => !allowUnsafe.includes(name);
  return {
    nodesProxy: on('nodesProxy'),
    impersonate: on('impersonate'),
    escalateBind: on('escalateBind'),
    serviceAccountTokens: on('serviceAccountTokens'),
    gatewayNamespace: on('gatewayNamespace'),
  };
}

const credentials = obj({ tokenFile: opt(tokenFile()), kubeconfig: opt(file()), context: opt(str()) }).map(
  (c, at, cx): ClusterCredentials | undefined => {
    if (c.tokenFile !== undefined && c.kubeconfig !== undefined)
      return report(cx, at, 'set tokenFile or kubeconfig, not both');
    if (c.tokenFile !== undefined) {
      return c.context === undefined
        ? { tokenFile: c.tokenFile }
        : report(cx, pathOf(at, 'context'), 'only with kubeconfig');
    }
    if (c.kubeconfig !== undefined)
      return c.context === undefined ? { kubeconfig: c.kubeconfig } : { kubeconfig: c.kubeconfig, context: c.context };
    return report(cx, at, 'needs tokenFile or kubeconfig');
  },
);

const cluster = obj({
  name: req(
    str({
      pattern: dnsLabel,
      expect: 'must be lower-case letters, digits and "-" (it is part of the URL /k8s/<name>/)',
    }),
  ),
  server: req(url({ http: 'any', trailingSlash: 'strip' })),
  caFile: opt(caFile()),
  insecureSkipTLSVerify: def(bool(), false),
  credentials: opt(credentials),
  tokens: def(oneOf(['tokenRequest', 'static']), 'tokenRequest'),
  tokenTTLMs: from(
    'tokenTTL',
    def(duration({ min: 10 * MINUTE, why: "the API server's minimum TokenRequest lifetime" }), '10m'),
  ),
  staticTokens: def(
    record(obj({ tokenFile: req(tokenFile()) }), (key) =>
      serviceAccountPattern.test(key) ? undefined : `must be "namespace/name", got ${JSON.stringify(key)}`,
    ),
    {},
  ),
}).check((c, at, cx) => {
  if (c.caFile !== undefined && c.insecureSkipTLSVerify)
    report(
      cx,
      pathOf(at, 'insecureSkipTLSVerify'),
      'not with caFile: verify with the CA, or skip verification, not both',
    );
  if (c.tokens === 'tokenRequest' && c.credentials === undefined) {
    report(
      cx,
      pathOf(at, 'credentials'),
      'required with tokens: tokenRequest (the gateway mints ServiceAccount tokens with its own identity)',
    );
  }
  if (c.tokens !== 'static' && Object.keys(c.staticTokens).length > 0)
    report(cx, pathOf(at, 'staticTokens'), 'only with tokens: static');
});

const issuer = obj({
  issuer: req(url({ http: 'loopback', exact: true })),
  audience: req(str(), '(tokens without this aud are refused)'),
  groupsClaim: def(str(), 'groups'),
  usernameClaim: def(str(), 'sub'),
  caFile: opt(caFile()),
  authorizedParties: opt(list(str(), { min: 1 })),
});

const samlIdp = obj({
  entityId: req(str()),
  certFile: opt(file()),
  metadataFile: opt(file()),
  metadataUrl: opt(url({ http: 'loopback', exact: true })),
  caFile: opt(file()),
  groupsAttribute: opt(str()),
}).check((idp, at, cx) => {
  const sources = (['certFile', 'metadataFile', 'metadataUrl'] as const).filter((key) => idp[key] !== undefined);
  if (sources.length !== 1)
    report(
      cx,
      at,
      `needs exactly one of certFile, metadataFile, metadataUrl (the IdP's signing certificates)${sources.length > 1 ? `, got ${sources.join(' and ')}` : ''}`,
    );
  if (idp.caFile !== undefined && idp.metadataUrl === undefined)
    report(cx, pathOf(at, 'caFile'), 'only with metadataUrl');
});

const saml = obj({
  idps: req(list(samlIdp, { min: 1, unique: { key: (i) => i.entityId, field: 'entityId', what: 'entityId' } })),
  audience: req(str(), '(our entity ID: assertions must name it in AudienceRestriction)'),
  tokenTTLMs: from('tokenTTL', def(duration({ min: 60_000 }), '10m')),
  signingKeyFile: opt(file()),
  issuer: opt(url({ http: 'loopback', trailingSlash: 'strip' })),
  maxAssertionBytes: def(bytes({ min: 1024 }), 256 * 1024),
});

const slack = obj({
  botToken: req(str()),
  signingSecret: req(str()),
  appToken: opt(
    str({ pattern: /^xapp-/, expect: 'must be an app-level token (xapp-…) with connections:write, for Socket Mode' }),
  ),
  channel: req(str()),
  command: def(str({ pattern: /^\/[a-z0-9_-]+$/, expect: 'must be a slash command like "/hoop"' }), '/hoop'),
  auditors: opt(obj({ slackUsers: slackUsers(), slackUserGroups: slackUsers() })),
  apiUrl: def(url({ http: 'loopback', trailingSlash: 'add' }), 'https://slack.com/api/'),
});

const maskRule = obj({
  resources: req(
    list(
      str({
        pattern: /^(\*|[a-z0-9][a-z0-9.-]*)$/,
        expect: 'must be a lower-case plural resource (e.g. "configmaps") or "*"',
      }),
      { min: 1 },
    ),
  ),
  keys: opt(pattern()),
  paths: opt(
    list(
      str({
        pattern: /^[A-Za-z0-9_$-]+(\[\])?(\.[A-Za-z0-9_$-]+(\[\])?)*$/,
        expect: 'must be a simple JSON path like "spec.containers[].env[].value"',
      }),
      { min: 1 },
    ),
  ),
  whenName: opt(pattern()),
}).check((m, at, cx) => {
  if (m.keys === undefined && m.paths === undefined) report(cx, at, 'needs keys or paths (what to mask)');
  if (m.whenName !== undefined && m.paths === undefined) report(cx, pathOf(at, 'whenName'), 'only with paths');
});

const hostName = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The address to listen on: an IP address (`0.0.0.0`, `::`, `127.0.0.1`) or a host name, without brackets. */
function listenHost(): Node<string> {
  return str().map((host, at, cx) =>
    isIP(host) !== 0 || hostName.test(host)
      ? host
      : report(cx, at, `must be an IP address (0.0.0.0, ::, 127.0.0.1) or a host name, got ${JSON.stringify(host)}`),
  );
}

/** `sqlite:PATH` (relative to the config file) or a MongoDB connection string. */
function store(): Node<string> {
  return str().map((text, at, cx) => {
    if (text === 'sqlite::memory:') return text;
    if (text.startsWith('sqlite:')) {
      const path = text.slice('sqlite:'.length);
      if (path === '') return report(cx, at, 'needs a file path: sqlite:PATH');
      const file = cx.baseDir === undefined || isAbsolute(path) ? path : resolve(cx.baseDir, path);
      checkSqlitePath(file, at, cx);
      return `sqlite:${file}`;
    }
    if (/^mongodb(\+srv)?:\/\/[^/]/.test(text)) return text;
    return report(
      cx,
      at,
      `must be "sqlite:PATH" or a "mongodb://…" connection string, got ${JSON.stringify(redactStore(text))}`,
    );
  });
}

/** A store URL fit for printing: the password of a MongoDB connection string is hidden. */
export function redactStore(store: string): string {
  return store.replace(/^(mongodb(?:\+srv)?:\/\/[^:/@]+):[^@/]*@/, '$1:***@');
}

const audit = obj({
  store: def(store(), 'sqlite:./data/hoopgate.db'),
  bodies: def(bool(), true),
  maxBodyBytes: def(bytes(), 65536),
  retentionMs: from('retention', def(duration(), '90d')),
  sessionIdleMs: from('sessionIdle', def(duration(), '5m')),
  checkpoint: opt(
    obj({
      everyMs: from('every', def(duration({ min: 1000 }), '1h')),
      signingKeyFile: opt(signingKeyFile()),
      postToSlack: def(bool(), false),
    }),
  ),
});

/** A `limits` entry (issue #12): safe defaults that a busy kubectl or controller stays well under. */
function rateLimit(maxConcurrent: number, requestsPerSecond: number, burst: number) {
  return obj({
    maxConcurrent: def(int({ min: 1 }), maxConcurrent),
    requestsPerSecond: def(int({ min: 1 }), requestsPerSecond),
    burst: def(int({ min: 1 }), burst),
  });
}

const root = obj({
  listen: def(
    obj({
      host: def(listenHost(), '0.0.0.0'),
      port: def(int({ min: 0, max: 65535 }), 8443),
      tls: opt(obj({ certFile: req(file()), keyFile: req(file()) }).check(checkTlsPair)),
      http2: def(bool(), true),
    }),
    {},
  ),
  clusters: req(list(cluster, { min: 1, unique: { key: (c) => c.name, field: 'name', what: 'cluster name' } })),
  // Optional only when saml is configured (checkReferences says so).
  oidc: opt(
    obj({
      issuers: req(list(issuer, { min: 1, unique: { key: (i) => i.issuer, field: 'issuer', what: 'issuer' } })),
    }),
  ),
  identities: req(list(identity, { min: 1, unique: { key: (i) => i.name, field: 'name', what: 'identity name' } })),
  approval: def(approval, {}),
  slack: opt(slack),
  masking: def(
    obj({
      secrets: def(bool(), true),
      rules: def(list(maskRule), []),
      maxObjectBytes: def(bytes(), 8 * MiB),
    }),
    {},
  ),
  audit: def(audit, {}),
  exec: def(
    obj({
      spdy: def(oneOf(['deny', 'unrecorded']), 'deny'),
      maxRecordBytes: def(bytes(), MiB),
    }),
    {},
  ),
  limits: def(
    obj({
      perAddress: def(rateLimit(256, 200, 400), {}),
      perIdentity: def(rateLimit(128, 100, 200), {}),
      maxTrackedClients: def(int({ min: 100, max: 10_000_000 }), 10_000),
    }),
    {},
  ),
  gateway: def(
    obj({
      namespace: opt(str({ pattern: dnsLabel, expect: 'must be a namespace name (a DNS-1123 label)' })),
      maxBodyBytes: def(bytes(), 3 * MiB), // the API server's own request body limit
      drainTimeoutMs: from(
        'drainTimeout',
        def(duration({ min: 0, max: 24 * DAY, why: 'the longest timer Node.js sets is 24.8 days' }), '30s'),
      ),
    }),
    {},
  ),
  saml: opt(saml),
});

export type ParsedConfig = NonNullable<ReturnType<typeof root.parse>>;

/** Walks the document; the result is partial whenever cx.issues is not empty. */
export function walkConfig(raw: unknown, cx: WalkContext): ParsedConfig | undefined {
  const parsed = root.parse(raw, '', cx);
  if (parsed !== undefined) checkReferences(parsed as DeepPartial<Config>, cx);
  return parsed;
}

/** Defaults that depend on other sections, applied to a config without problems. */
export function completeConfig(parsed: ParsedConfig): Config {
  const slackConfig = parsed.slack && {
    ...parsed.slack,
    auditors: parsed.slack.auditors ?? {
      slackUsers: parsed.approval.approvers.slackUsers,
      slackUserGroups: parsed.approval.approvers.slackUserGroups,
    },
  };
  // Bare approver group names and people without oidcIssuer belong to the only issuer (checked above).
  const onlyIssuer = parsed.oidc?.issuers[0]?.issuer ?? '';
  const approvers = parsed.approval.approvers;
  const approval = {
    ...parsed.approval,
    approvers: {
      ...approvers,
      oidcGroups: approvers.oidcGroups.map((g) => (g.issuer === '' ? { ...g, issuer: onlyIssuer } : g)),
      people: approvers.people.map((p) =>
        p.oidcSubject !== undefined && p.oidcIssuer === undefined ? { ...p, oidcIssuer: onlyIssuer } : p,
      ),
    },
  };
  const { slack: _omit, oidc, ...rest } = parsed;
  const complete = { ...rest, approval, oidc: oidc ?? { issuers: [] } };
  return slackConfig === undefined ? complete : { ...complete, slack: slackConfig };
}
