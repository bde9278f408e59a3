// loadConfig/parseConfig: every validation rule refuses with its exact path and message, all
// problems come together, defaults are the safe ones, ${ENV} expands, the result is frozen.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  ConfigError,
  configWarnings,
  describeConfig,
  loadConfig,
  parseConfig,
} from '../../packages/gateway/src/config/load.js';
import type { ConfigIssue } from '../../packages/gateway/src/config/load.js';
import type { Config } from '../../packages/gateway/src/config/types.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { pki } from '../helpers/pki.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hoopgate-config-'));
  for (const name of ['token', 'kubeconfig', 'ci.token', 'ci-elevated.token']) {
    writeFileSync(join(dir, name), 'x');
  }
  writeFileSync(join(dir, 'ca.crt'), pki.cert);
  writeFileSync(join(dir, 'tls.crt'), pki.cert);
  writeFileSync(join(dir, 'tls.key'), pki.key);
});
after(() => rmSync(dir, { recursive: true, force: true }));

// Test documents are edited freely, so they are loosely typed.
type Doc = Record<string, any>;

/** The smallest valid document; files are relative, resolved against `dir`. */
function base(): Doc {
  return {
    listen: { tls: { certFile: 'tls.crt', keyFile: 'tls.key' } },
    clusters: [
      { name: 'prod', server: 'https://k8s.example:6443', caFile: 'ca.crt', credentials: { tokenFile: 'token' } },
    ],
    oidc: { issuers: [{ issuer: 'https://idp.example', audience: 'hoopgate' }] },
    identities: [{ name: 'ci', match: { groups: ['ci'] }, serviceAccount: 'agents/ci' }],
  };
}

function parse(doc: Doc, env: Record<string, string> = {}): Config {
  return parseConfig(stringify(doc), env, { baseDir: dir, source: 'hoopgate.yaml' });
}

function issuesOf(run: () => unknown): [string, string][] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_CONFIG');
    return error.issues.map((i: ConfigIssue) => [i.path, i.message]);
  }
  return assert.fail('expected the configuration to be refused');
}

const refusals: { name: string; edit: (d: Doc) => void; issues: [string, string][] }[] = [
  // listen
  {
    name: 'unknown key with a suggestion',
    edit: (d) => (d.listen.porrt = 1),
    issues: [['listen.porrt', 'unknown key (did you mean "port"?)']],
  },
  {
    name: 'unknown top-level key',
    edit: (d) => (d.identites = []),
    issues: [['identites', 'unknown key (did you mean "identities"?)']],
  },
  {
    name: 'unknown key without a near one',
    edit: (d) => (d.listen.banana = 1),
    issues: [['listen.banana', 'unknown key']],
  },
  {
    name: 'port range',
    edit: (d) => (d.listen.port = 70000),
    issues: [['listen.port', 'must be between 0 and 65535, got 70000']],
  },
  {
    name: 'port type',
    edit: (d) => (d.listen.port = '8443'),
    issues: [['listen.port', 'must be an integer, got "8443"']],
  },
  {
    name: 'tls file missing',
    edit: (d) => (d.listen.tls.keyFile = 'nope.key'),
    issues: [['listen.tls.keyFile', `file not found: ${join('DIR', 'nope.key')}`]],
  },
  {
    name: 'tls needs both files',
    edit: (d) => delete d.listen.tls.certFile,
    issues: [['listen.tls.certFile', 'required']],
  },
  // clusters
  { name: 'no clusters', edit: (d) => (d.clusters = []), issues: [['clusters', 'must not be empty']] },
  { name: 'clusters missing', edit: (d) => delete d.clusters, issues: [['clusters', 'required']] },
  { name: 'server missing', edit: (d) => delete d.clusters[0].server, issues: [['clusters[0].server', 'required']] },
  {
    name: 'cluster name not URL-safe',
    edit: (d) => (d.clusters[0].name = 'Prod_1'),
    issues: [
      [
        'clusters[0].name',
        'must be lower-case letters, digits and "-" (it is part of the URL /k8s/<name>/), got "Prod_1"',
      ],
    ],
  },
  {
    name: 'cluster names unique',
    edit: (d) => d.clusters.push({ ...d.clusters[0], server: 'https://other.example' }),
    issues: [['clusters[1].name', 'duplicate cluster name "prod" (also clusters[0])']],
  },
  {
    name: 'server scheme',
    edit: (d) => (d.clusters[0].server = 'ftp://k8s'),
    issues: [['clusters[0].server', 'must be an https URL, got "ftp://k8s"']],
  },
  {
    name: 'server not a URL',
    edit: (d) => (d.clusters[0].server = 'k8s.example'),
    issues: [['clusters[0].server', 'must be an https URL, got "k8s.example"']],
  },
  {
    name: 'server with userinfo',
    edit: (d) => (d.clusters[0].server = 'https://u:p@k8s'),
    issues: [['clusters[0].server', 'must not carry credentials in the URL']],
  },
  {
    name: 'caFile missing',
    edit: (d) => (d.clusters[0].caFile = 'nope.crt'),
    issues: [['clusters[0].caFile', `file not found: ${join('DIR', 'nope.crt')}`]],
  },
  {
    name: 'caFile is a directory',
    edit: (d) => (d.clusters[0].caFile = '.'),
    issues: [['clusters[0].caFile', 'not a file: DIR']],
  },
  {
    name: 'caFile and insecureSkipTLSVerify',
    edit: (d) => (d.clusters[0].insecureSkipTLSVerify = true),
    issues: [
      ['clusters[0].insecureSkipTLSVerify', 'not with caFile: verify with the CA, or skip verification, not both'],
    ],
  },
  {
    name: 'credentials exclusive',
    edit: (d) => (d.clusters[0].credentials = { tokenFile: 'token', kubeconfig: 'kubeconfig' }),
    issues: [['clusters[0].credentials', 'set tokenFile or kubeconfig, not both']],
  },
  {
    name: 'credentials empty',
    edit: (d) => (d.clusters[0].credentials = { context: 'x' }),
    issues: [['clusters[0].credentials', 'needs tokenFile or kubeconfig']],
  },
  {
    name: 'context only with kubeconfig',
    edit: (d) => (d.clusters[0].credentials = { tokenFile: 'token', context: 'admin' }),
    issues: [['clusters[0].credentials.context', 'only with kubeconfig']],
  },
  {
    name: 'tokenRequest needs credentials',
    edit: (d) => delete d.clusters[0].credentials,
    issues: [
      [
        'clusters[0].credentials',
        'required with tokens: tokenRequest (the gateway mints ServiceAccount tokens with its own identity)',
      ],
    ],
  },
  {
    name: 'tokens mode',
    edit: (d) => (d.clusters[0].tokens = 'tokenrequest'),
    issues: [
      [
        'clusters[0].tokens',
        'must be one of "tokenRequest", "static", got "tokenrequest" (did you mean "tokenRequest"?)',
      ],
    ],
  },
  {
    name: 'tokenTTL below the TokenRequest minimum',
    edit: (d) => (d.clusters[0].tokenTTL = '5m'),
    issues: [['clusters[0].tokenTTL', "must be at least 10m (the API server's minimum TokenRequest lifetime), got 5m"]],
  },
  {
    name: 'static tokens cover every account',
    edit: (d) => {
      d.clusters[0].tokens = 'static';
      d.clusters[0].staticTokens = { 'agents/ci': { tokenFile: 'ci.token' } };
      d.identities[0].approval = { serviceAccount: 'agents/ci-elevated', escalate: true };
    },
    issues: [
      ['clusters[0].staticTokens', 'needs a token for "agents/ci-elevated" (identities[0].approval.serviceAccount)'],
    ],
  },
  {
    name: 'static tokens key format',
    edit: (d) => {
      d.clusters[0].tokens = 'static';
      d.clusters[0].staticTokens = { ci: { tokenFile: 'ci.token' } };
    },
    issues: [
      ['clusters[0].staticTokens.ci', 'must be "namespace/name", got "ci"'],
      ['clusters[0].staticTokens', 'needs a token for "agents/ci" (identities[0].serviceAccount)'],
    ],
  },
  {
    name: 'staticTokens only with tokens: static',
    edit: (d) => (d.clusters[0].staticTokens = { 'agents/ci': { tokenFile: 'ci.token' } }),
    issues: [['clusters[0].staticTokens', 'only with tokens: static']],
  },
  // oidc
  {
    name: 'audience required',
    edit: (d) => delete d.oidc.issuers[0].audience,
    issues: [['oidc.issuers[0].audience', 'required (tokens without this aud are refused)']],
  },
  { name: 'no issuers', edit: (d) => (d.oidc = { issuers: [] }), issues: [['oidc.issuers', 'must not be empty']] },
  {
    name: 'issuer over plain http',
    edit: (d) => (d.oidc.issuers[0].issuer = 'http://idp.example'),
    issues: [['oidc.issuers[0].issuer', 'must be an https URL (http only for localhost), got "http://idp.example"']],
  },
  {
    name: 'issuers unique',
    edit: (d) => d.oidc.issuers.push({ issuer: 'https://idp.example', audience: 'other' }),
    issues: [['oidc.issuers[1].issuer', 'duplicate issuer "https://idp.example" (also oidc.issuers[0])']],
  },
  // identities
  { name: 'no identities', edit: (d) => (d.identities = []), issues: [['identities', 'must not be empty']] },
  {
    name: 'identity names unique',
    edit: (d) => d.identities.push({ name: 'ci', match: {}, serviceAccount: 'agents/other' }),
    issues: [['identities[1].name', 'duplicate identity name "ci" (also identities[0])']],
  },
  {
    name: 'serviceAccount format',
    edit: (d) => (d.identities[0].serviceAccount = 'ci'),
    issues: [['identities[0].serviceAccount', 'must be "namespace/name", got "ci"']],
  },
  {
    name: 'serviceAccount labels',
    edit: (d) => (d.identities[0].serviceAccount = 'Agents/ci'),
    issues: [['identities[0].serviceAccount', 'must be "namespace/name", got "Agents/ci"']],
  },
  {
    name: 'match required',
    edit: (d) => delete d.identities[0].match,
    issues: [['identities[0].match', 'required (use match: {} to match every token, on purpose)']],
  },
  {
    name: 'match claims values are strings',
    edit: (d) => (d.identities[0].match = { claims: { repository_id: 1234 } }),
    issues: [['identities[0].match.claims.repository_id', 'must be a string, got 1234 (quote it: "1234")']],
  },
  {
    name: 'match issuer must be configured',
    edit: (d) => (d.identities[0].match.issuer = 'https://idp.exampel'),
    issues: [
      [
        'identities[0].match.issuer[0]',
        'unknown issuer "https://idp.exampel" (not in oidc.issuers nor saml.idps) (did you mean "https://idp.example"?)',
      ],
    ],
  },
  {
    name: 'identity clusters must exist',
    edit: (d) => (d.identities[0].clusters = ['prdo']),
    issues: [['identities[0].clusters[0]', 'unknown cluster "prdo" (did you mean "prod"?)']],
  },
  {
    name: 'verbs from the Kubernetes verb set',
    edit: (d) => (d.identities[0].deny = [{ verbs: ['lists'] }]),
    issues: [
      [
        'identities[0].deny[0].verbs[0]',
        'must be a Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection, …, or *), got "lists" (did you mean "list"?)',
      ],
    ],
  },
  {
    name: 'rule fields are lists',
    edit: (d) => (d.identities[0].deny = [{ verbs: 'get' }]),
    issues: [['identities[0].deny[0].verbs', 'must be a list, got "get"']],
  },
  {
    name: 'rule lists are not empty',
    edit: (d) => (d.identities[0].approval = { require: [{ resources: [] }] }),
    issues: [['identities[0].approval.require[0].resources', 'must not be empty']],
  },
  {
    name: 'resources are lower-case res or res/sub',
    edit: (d) => (d.identities[0].deny = [{ resources: ['Pods/Exec'] }]),
    issues: [
      [
        'identities[0].deny[0].resources[0]',
        'must be a lower-case "resource" or "resource/subresource" (e.g. "pods/exec"), got "Pods/Exec"',
      ],
    ],
  },
  {
    name: 'unknown rule key',
    edit: (d) => (d.identities[0].deny = [{ resource: ['pods'] }]),
    issues: [['identities[0].deny[0].resource', 'unknown key (did you mean "resources"?)']],
  },
  {
    name: 'escalate needs an elevated account',
    edit: (d) => (d.identities[0].approval = { escalate: true }),
    issues: [
      [
        'identities[0].approval.escalate',
        'needs approval.serviceAccount: an approved request the baseline account may not do must run as another account',
      ],
    ],
  },
  {
    name: 'approval.mode is wait or ticket (issue #16)',
    edit: (d) => (d.identities[0].approval = { mode: 'tickets' }),
    issues: [
      [
        'identities[0].approval.mode',
        'must be "wait" (hold the call until an approver decides) or "ticket" (answer at once with the approval ID; the same call sent again after approval runs), got "tickets" (did you mean "ticket"?)',
      ],
    ],
  },
  {
    name: 'approval.ticketTTL is a duration',
    edit: (d) => (d.approval = { ticketTTL: 'soon' }),
    issues: [['approval.ticketTTL', 'must be a duration like 90s, 5m, 12h or 90d, got "soon"']],
  },
  {
    name: 'allowUnsafe names',
    edit: (d) => (d.identities[0].allowUnsafe = ['nodeProxy']),
    issues: [
      [
        'identities[0].allowUnsafe[0]',
        'must be one of "nodesProxy", "impersonate", "escalateBind", "serviceAccountTokens", "gatewayNamespace", got "nodeProxy" (did you mean "nodesProxy"?)',
      ],
    ],
  },
  {
    name: 'a __proto__ claim key',
    edit: (d) => (d.identities[0].match = { claims: JSON.parse('{"__proto__": "x"}') }),
    issues: [['identities[0].match.claims.__proto__', 'reserved key']],
  },
  // approval
  {
    name: 'minApprovals at least 1',
    edit: (d) => (d.approval = { minApprovals: 0 }),
    issues: [['approval.minApprovals', 'must be at least 1, got 0']],
  },
  {
    name: 'duration without unit',
    edit: (d) => (d.approval = { timeout: 300 }),
    issues: [['approval.timeout', 'must be a duration like 90s, 5m, 12h or 90d, got 300 (add a unit)']],
  },
  {
    name: 'duration spelling',
    edit: (d) => (d.approval = { timeout: '5 minutes' }),
    issues: [['approval.timeout', 'must be a duration like 90s, 5m, 12h or 90d, got "5 minutes"']],
  },
  {
    name: 'grant options unique',
    edit: (d) => (d.approval = { grantOptions: ['15m', '15m'] }),
    issues: [['approval.grantOptions[1]', 'duplicate grant option "15m" (also approval.grantOptions[0])']],
  },
  // slack
  {
    name: 'slack needs token, secret and channel',
    edit: (d) => (d.slack = {}),
    issues: [
      ['slack.botToken', 'required'],
      ['slack.signingSecret', 'required'],
      ['slack.channel', 'required'],
    ],
  },
  {
    name: 'slack command',
    edit: (d) => (d.slack = { botToken: 'b', signingSecret: 's', channel: 'C1', command: 'hoop' }),
    issues: [['slack.command', 'must be a slash command like "/hoop", got "hoop"']],
  },
  {
    name: 'slack apiUrl over plain http',
    edit: (d) => (d.slack = { botToken: 'b', signingSecret: 's', channel: 'C1', apiUrl: 'http://slack.example/api/' }),
    issues: [['slack.apiUrl', 'must be an https URL (http only for localhost), got "http://slack.example/api/"']],
  },
  {
    name: 'empty string',
    edit: (d) => (d.slack = { botToken: '', signingSecret: 's', channel: 'C1' }),
    issues: [['slack.botToken', 'must not be empty']],
  },
  // masking
  {
    name: 'mask keys compile',
    edit: (d) => (d.masking = { rules: [{ resources: ['configmaps'], keys: '(?i)(pass' }] }),
    issues: [
      [
        'masking.rules[0].keys',
        'not a valid regular expression: Invalid regular expression: /(pass/i: Unterminated group',
      ],
    ],
  },
  {
    name: 'mask rule needs keys or paths',
    edit: (d) => (d.masking = { rules: [{ resources: ['configmaps'] }] }),
    issues: [['masking.rules[0]', 'needs keys or paths (what to mask)']],
  },
  {
    name: 'whenName only with paths',
    edit: (d) => (d.masking = { rules: [{ resources: ['configmaps'], keys: 'x', whenName: 'y' }] }),
    issues: [['masking.rules[0].whenName', 'only with paths']],
  },
  {
    name: 'secrets is a boolean',
    edit: (d) => (d.masking = { secrets: 'no' }),
    issues: [['masking.secrets', 'must be true or false, got "no"']],
  },
  {
    name: 'byte size',
    edit: (d) => (d.masking = { maxObjectBytes: '8MB' }),
    issues: [['masking.maxObjectBytes', 'must be a byte count like 65536, 64Ki or 8Mi, got "8MB"']],
  },
  // audit, exec, gateway
  {
    name: 'store scheme',
    edit: (d) => (d.audit = { store: 'postgres://db' }),
    issues: [['audit.store', 'must be "sqlite:PATH" or a "mongodb://…" connection string, got "postgres://db"']],
  },
  {
    name: 'checkpoint to slack needs slack',
    edit: (d) => (d.audit = { checkpoint: { postToSlack: true } }),
    issues: [['audit.checkpoint.postToSlack', 'needs the slack section']],
  },
  {
    name: 'exec.spdy',
    edit: (d) => (d.exec = { spdy: 'allow' }),
    issues: [['exec.spdy', 'must be one of "deny", "unrecorded", got "allow"']],
  },
  {
    name: 'gateway.namespace',
    edit: (d) => (d.gateway = { namespace: 'Hoop Gate' }),
    issues: [['gateway.namespace', 'must be a namespace name (a DNS-1123 label), got "Hoop Gate"']],
  },
  // approvers: groups per issuer, people
  {
    name: 'a bare approver group with several issuers',
    edit: (d) => {
      d.oidc.issuers.push({ issuer: 'https://other.example', audience: 'hoopgate' });
      d.approval = { approvers: { oidcGroups: ['platform-oncall'] } };
    },
    issues: [
      [
        'approval.approvers.oidcGroups[0]',
        'a bare group name is ambiguous with 2 issuers (oidc.issuers and saml.idps: a token from any of them with group "platform-oncall" would make an approver); write { issuer: https://idp.example, group: platform-oncall } naming the issuer whose group it is',
      ],
    ],
  },
  {
    name: 'an approver group of an unknown issuer',
    edit: (d) => (d.approval = { approvers: { oidcGroups: [{ issuer: 'https://idp.exampel', group: 'oncall' }] } }),
    issues: [
      [
        'approval.approvers.oidcGroups[0].issuer',
        'unknown issuer "https://idp.exampel" (not in oidc.issuers nor saml.idps) (did you mean "https://idp.example"?)',
      ],
    ],
  },
  {
    name: 'an approver group without its group',
    edit: (d) => (d.approval = { approvers: { oidcGroups: [{ issuer: 'https://idp.example' }] } }),
    issues: [['approval.approvers.oidcGroups[0].group', 'required']],
  },
  {
    name: 'a person with one identity',
    edit: (d) => (d.approval = { approvers: { people: [{ slackUser: 'U1ALICE' }] } }),
    issues: [
      [
        'approval.approvers.people[0]',
        'must name at least two of slackUser, oidcSubject, email (the identities that are one person)',
      ],
    ],
  },
  {
    name: 'a person whose Slack id is not one',
    edit: (d) => (d.approval = { approvers: { people: [{ slackUser: 'alice', email: 'a@example.com' }] } }),
    issues: [['approval.approvers.people[0].slackUser', 'must be a Slack user id like "U0123ABCD", got "alice"']],
  },
  {
    name: 'one identity in two people',
    edit: (d) =>
      (d.approval = {
        approvers: {
          people: [
            { slackUser: 'U1ALICE', email: 'a@example.com' },
            { slackUser: 'U1ALICE', oidcSubject: 'bob' },
          ],
        },
      }),
    issues: [
      [
        'approval.approvers.people[1].slackUser',
        'also in approval.approvers.people[0]: one identity belongs to one person',
      ],
    ],
  },
  {
    name: 'a person subject without its issuer when there are several',
    edit: (d) => {
      d.oidc.issuers.push({ issuer: 'https://other.example', audience: 'hoopgate' });
      d.approval = { approvers: { people: [{ slackUser: 'U1ALICE', oidcSubject: 'alice' }] } };
    },
    issues: [
      [
        'approval.approvers.people[0].oidcIssuer',
        'required with 2 oidc.issuers: a subject is unique only within its issuer',
      ],
    ],
  },
  {
    name: 'maxPendingPerIdentity',
    edit: (d) => (d.approval = { maxPendingPerIdentity: 0 }),
    issues: [['approval.maxPendingPerIdentity', 'must be at least 1, got 0']],
  },
  // structure
  {
    name: 'a mapping expected',
    edit: (d) => (d.listen = ['0.0.0.0']),
    issues: [['listen', 'must be a mapping, got a list']],
  },
  { name: 'a null list entry', edit: (d) => d.identities.push(null), issues: [['identities[1]', 'must not be empty']] },
];

describe('parseConfig refuses', () => {
  for (const { name, edit, issues } of refusals) {
    test(name, () => {
      const doc = base();
      edit(doc);
      const expected = issues.map(([path, message]): [string, string] => [path, message.replaceAll('DIR', dir)]);
      assert.deepEqual(
        issuesOf(() => parse(doc)),
        expected,
      );
    });
  }

  test('the base document itself is valid', () => assert.equal(parse(base()).identities[0]?.name, 'ci'));

  test('every problem at once, each with its path, in one message', () => {
    const doc = base();
    doc.listen.porrt = 8443;
    doc.clusters[0].server = undefined;
    delete doc.oidc.issuers[0].audience;
    doc.identities.push({ name: 'other', match: { groups: ['x'] }, serviceAccount: 'ci' });
    assert.throws(
      () => parse(doc),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.ok(error instanceof HoopError);
        assert.equal(
          error.message,
          [
            'invalid configuration (hoopgate.yaml):',
            '  listen.porrt: unknown key (did you mean "port"?)',
            '  clusters[0].server: required',
            '  oidc.issuers[0].audience: required (tokens without this aud are refused)',
            '  identities[1].serviceAccount: must be "namespace/name", got "ci"',
          ].join('\n'),
        );
        return true;
      },
    );
  });

  test('a refused entry keeps later paths and cross-references right', () => {
    const doc = base();
    doc.clusters.push({ name: 'Bad' }, { name: 'prod', server: 'https://x' });
    doc.identities[0].clusters = ['staging'];
    assert.deepEqual(
      issuesOf(() => parse(doc)),
      [
        [
          'clusters[1].name',
          'must be lower-case letters, digits and "-" (it is part of the URL /k8s/<name>/), got "Bad"',
        ],
        ['clusters[1].server', 'required'],
        [
          'clusters[2].credentials',
          'required with tokens: tokenRequest (the gateway mints ServiceAccount tokens with its own identity)',
        ],
        ['clusters[2].name', 'duplicate cluster name "prod" (also clusters[0])'],
        ['identities[0].clusters[0]', 'unknown cluster "staging"'],
      ],
    );
  });

  test('YAML syntax errors name the line (the first one only)', () => {
    assert.deepEqual(
      issuesOf(() => parseConfig('listen:\n  port: [1\nclusters: []\n', {})).slice(0, 1)[0]?.[0],
      'line 3, column 1',
    );
    assert.deepEqual(
      issuesOf(() => parseConfig('listen: {}\nlisten: {}\n', {})),
      [['line 2, column 1', 'map keys must be unique']],
    );
  });

  test('an empty document, or one that is not a mapping', () => {
    assert.deepEqual(
      issuesOf(() => parseConfig('# nothing\n', {})),
      [['', 'the configuration is empty']],
    );
    assert.deepEqual(
      issuesOf(() => parseConfig('- a\n', {})),
      [['', 'must be a mapping, got a list']],
    );
    assert.throws(() => parseConfig('', {}, { source: 'x.yaml' }), {
      message: 'invalid configuration (x.yaml):\n  (document): the configuration is empty',
    });
  });
});

const samlBlock = () => ({
  idps: [
    {
      entityId: 'https://adfs.example/adfs/services/trust',
      certFile: 'ca.crt',
      groupsAttribute: 'http://schemas.xmlsoap.org/claims/Group',
    },
  ],
  audience: 'https://hoopgate.example/saml',
});

describe('the saml: block (issue #14)', () => {
  test('a SAML-only config: oidc may be left out, identities match the IdP entity ID; defaults apply', () => {
    const doc = base();
    delete doc.oidc;
    doc.saml = samlBlock();
    doc.identities[0].match = { issuer: 'https://adfs.example/adfs/services/trust', groups: ['ci'] };
    const config = parse(doc);
    assert.deepEqual(config.oidc.issuers, []);
    assert.equal(config.saml?.tokenTTLMs, 600_000);
    assert.equal(config.saml?.maxAssertionBytes, 256 * 1024);
    assert.equal(config.saml?.idps[0]?.certFile, join(dir, 'ca.crt'));
  });

  const cases: { name: string; edit: (d: Doc) => void; issues: [string, string][] }[] = [
    {
      name: 'neither oidc nor saml',
      edit: (d) => {
        delete d.oidc;
        delete d.saml;
      },
      issues: [['oidc', "required (the issuers agents' tokens come from), unless saml is configured"]],
    },
    {
      name: 'audience required',
      edit: (d) => delete d.saml.audience,
      issues: [['saml.audience', 'required (our entity ID: assertions must name it in AudienceRestriction)']],
    },
    {
      name: 'exactly one certificate source',
      edit: (d) =>
        (d.saml.idps[0].metadataUrl = 'https://adfs.example/FederationMetadata/2007-06/FederationMetadata.xml'),
      issues: [
        [
          'saml.idps[0]',
          "needs exactly one of certFile, metadataFile, metadataUrl (the IdP's signing certificates), got certFile and metadataUrl",
        ],
      ],
    },
    {
      name: 'no certificate source',
      edit: (d) => delete d.saml.idps[0].certFile,
      issues: [
        ['saml.idps[0]', "needs exactly one of certFile, metadataFile, metadataUrl (the IdP's signing certificates)"],
      ],
    },
    {
      name: 'certFile must exist',
      edit: (d) => (d.saml.idps[0].certFile = 'adfs.pem'),
      issues: [['saml.idps[0].certFile', `file not found: ${join('DIR', 'adfs.pem')}`]],
    },
    {
      name: 'metadataUrl https',
      edit: (d) => (d.saml.idps[0] = { entityId: 'x', metadataUrl: 'http://adfs.example/m.xml' }),
      issues: [
        ['saml.idps[0].metadataUrl', 'must be an https URL (http only for localhost), got "http://adfs.example/m.xml"'],
      ],
    },
    {
      name: 'unknown key',
      edit: (d) => (d.saml.tokenTtl = '5m'),
      issues: [['saml.tokenTtl', 'unknown key (did you mean "tokenTTL"?)']],
    },
    {
      name: 'tokenTTL minimum',
      edit: (d) => (d.saml.tokenTTL = '10s'),
      issues: [['saml.tokenTTL', 'must be at least 1m, got 10s']],
    },
    {
      name: 'duplicate entity IDs',
      edit: (d) => d.saml.idps.push({ ...d.saml.idps[0] }),
      issues: [
        ['saml.idps[1].entityId', 'duplicate entityId "https://adfs.example/adfs/services/trust" (also saml.idps[0])'],
      ],
    },
  ];
  for (const { name, edit, issues } of cases) {
    test(name, () => {
      const doc = base();
      doc.saml = samlBlock();
      edit(doc);
      const got = issuesOf(() => parse(doc)).map(([path, message]): [string, string] => [
        path,
        message.replace(dir, 'DIR'),
      ]);
      assert.deepEqual(got, issues);
    });
  }
});

describe('parseConfig accepts', () => {
  test('the safe defaults, with relative files resolved against the base directory', () => {
    const expected: Config = {
      listen: {
        host: '0.0.0.0',
        port: 8443,
        tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
        http2: true,
      },
      clusters: [
        {
          name: 'prod',
          server: 'https://k8s.example:6443',
          caFile: join(dir, 'ca.crt'),
          insecureSkipTLSVerify: false,
          credentials: { tokenFile: join(dir, 'token') },
          tokens: 'tokenRequest',
          tokenTTLMs: 600_000,
          staticTokens: {},
        },
      ],
      oidc: {
        issuers: [{ issuer: 'https://idp.example', audience: 'hoopgate', groupsClaim: 'groups', usernameClaim: 'sub' }],
      },
      identities: [
        {
          name: 'ci',
          match: { groups: ['ci'] },
          serviceAccount: 'agents/ci',
          deny: [],
          approval: { require: [], escalate: false, mode: 'wait' },
          safeDefaults: {
            nodesProxy: true,
            impersonate: true,
            escalateBind: true,
            serviceAccountTokens: true,
            gatewayNamespace: true,
          },
        },
      ],
      approval: {
        timeoutMs: 300_000,
        minApprovals: 1,
        grantOptionsMs: [],
        approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [] },
        maxPendingPerIdentity: 10,
        ticketTtlMs: 900_000,
      },
      masking: { secrets: true, rules: [], maxObjectBytes: 8 * 1024 * 1024 },
      audit: {
        store: `sqlite:${join(dir, 'data', 'hoopgate.db')}`,
        bodies: true,
        maxBodyBytes: 65536,
        retentionMs: 90 * 86_400_000,
        sessionIdleMs: 300_000,
      },
      exec: { spdy: 'deny', maxRecordBytes: 1024 * 1024 },
      limits: {
        perAddress: { maxConcurrent: 256, requestsPerSecond: 200, burst: 400 },
        perIdentity: { maxConcurrent: 128, requestsPerSecond: 100, burst: 200 },
        maxTrackedClients: 10_000,
      },
      gateway: { maxBodyBytes: 3 * 1024 * 1024, drainTimeoutMs: 30_000 },
    };
    assert.deepEqual(parse(base()), expected);
  });

  test('durations, byte sizes and renamed keys', () => {
    const doc = base();
    doc.clusters[0].tokenTTL = '1h30m';
    doc.approval = { timeout: '90s', grantOptions: ['15m', '12h'], ticketTTL: '2m' };
    doc.identities[0].approval = { mode: 'ticket' };
    doc.audit = { retention: '30d', sessionIdle: '500ms', maxBodyBytes: '64Ki', checkpoint: {} };
    doc.gateway = { drainTimeout: '0s', maxBodyBytes: '1Mi' };
    const config = parse(doc);
    assert.equal(config.clusters[0]?.tokenTTLMs, 5_400_000);
    assert.equal(config.approval.timeoutMs, 90_000);
    assert.equal(config.approval.ticketTtlMs, 120_000);
    assert.equal(config.identities[0]?.approval.mode, 'ticket');
    assert.deepEqual(config.approval.grantOptionsMs, [900_000, 43_200_000]);
    assert.equal(config.audit.retentionMs, 30 * 86_400_000);
    assert.equal(config.audit.sessionIdleMs, 500);
    assert.equal(config.audit.maxBodyBytes, 65536);
    assert.deepEqual(config.audit.checkpoint, { everyMs: 3_600_000, postToSlack: false });
    assert.equal(config.gateway.drainTimeoutMs, 0);
    assert.equal(config.gateway.maxBodyBytes, 1024 * 1024);
  });

  test('approver groups: a bare name belongs to the only issuer; people get the only issuer too', () => {
    const doc = base();
    doc.approval = {
      approvers: {
        oidcGroups: ['oncall', { issuer: 'https://idp.example', group: 'sre' }],
        people: [{ slackUser: 'U1ALICE', oidcSubject: 'alice', email: 'alice@example.com' }],
      },
    };
    const config = parse(doc);
    assert.deepEqual(config.approval.approvers.oidcGroups, [
      { issuer: 'https://idp.example', group: 'oncall' },
      { issuer: 'https://idp.example', group: 'sre' },
    ]);
    assert.deepEqual(config.approval.approvers.people, [
      { slackUser: 'U1ALICE', oidcIssuer: 'https://idp.example', oidcSubject: 'alice', email: 'alice@example.com' },
    ]);
    assert.equal(config.approval.maxPendingPerIdentity, 10);
  });

  test('grantOptions: 0 means approve once', () => {
    const doc = base();
    doc.approval = { grantOptions: 0 };
    assert.deepEqual(parse(doc).approval.grantOptionsMs, []);
  });

  test('allowUnsafe switches off exactly the named safe defaults', () => {
    const doc = base();
    doc.identities[0].allowUnsafe = ['nodesProxy', 'gatewayNamespace'];
    assert.deepEqual(parse(doc).identities[0]?.safeDefaults, {
      nodesProxy: false,
      impersonate: true,
      escalateBind: true,
      serviceAccountTokens: true,
      gatewayNamespace: false,
    });
  });

  test('match fields take a string or a list; claims a string or a list', () => {
    const doc = base();
    doc.identities[0].match = {
      issuer: 'https://idp.example',
      subjects: 'bot',
      claims: { repository: 'org/app', ref: ['refs/heads/main'] },
    };
    assert.deepEqual(parse(doc).identities[0]?.match, {
      issuer: ['https://idp.example'],
      subjects: ['bot'],
      claims: { repository: ['org/app'], ref: ['refs/heads/main'] },
    });
  });

  test('kubeconfig credentials with a context; static tokens that cover every account', () => {
    const doc = base();
    doc.clusters[0].credentials = { kubeconfig: 'kubeconfig', context: 'admin' };
    doc.clusters.push({
      name: 'edge',
      server: 'https://edge.example',
      tokens: 'static',
      staticTokens: {
        'agents/ci': { tokenFile: 'ci.token' },
        'agents/ci-elevated': { tokenFile: join(dir, 'ci-elevated.token') },
      },
    });
    doc.identities[0].approval = { serviceAccount: 'agents/ci-elevated', escalate: true };
    // An identity limited to another cluster needs no token on this one.
    doc.identities.push({
      name: 'prod-only',
      match: { groups: ['p'] },
      serviceAccount: 'agents/prod-only',
      clusters: ['prod'],
    });
    const config = parse(doc);
    assert.deepEqual(config.clusters[0]?.credentials, { kubeconfig: join(dir, 'kubeconfig'), context: 'admin' });
    assert.deepEqual(config.clusters[1]?.staticTokens, {
      'agents/ci': { tokenFile: join(dir, 'ci.token') },
      'agents/ci-elevated': { tokenFile: join(dir, 'ci-elevated.token') },
    });
    assert.equal(config.clusters[1]?.credentials, undefined);
  });

  test('http issuers on loopback (a local IdP), a trailing slash on the server is dropped', () => {
    const doc = base();
    doc.oidc.issuers[0].issuer = 'http://127.0.0.1:5556/dex';
    doc.clusters[0].server = 'https://k8s.example:6443/';
    const config = parse(doc);
    assert.equal(config.oidc.issuers[0]?.issuer, 'http://127.0.0.1:5556/dex');
    assert.equal(config.clusters[0]?.server, 'https://k8s.example:6443');
  });

  test('slack: defaults, and auditors default to the approvers', () => {
    const doc = base();
    doc.approval = { approvers: { slackUsers: ['U1'], slackUserGroups: ['S1'] } };
    doc.slack = { botToken: 'xoxb-1', signingSecret: 'sec', channel: 'C1', apiUrl: 'http://127.0.0.1:9999/api' };
    assert.deepEqual(parse(doc).slack, {
      botToken: 'xoxb-1',
      signingSecret: 'sec',
      channel: 'C1',
      command: '/hoop',
      auditors: { slackUsers: ['U1'], slackUserGroups: ['S1'] },
      apiUrl: 'http://127.0.0.1:9999/api/',
    });
    delete doc.slack.apiUrl;
    doc.slack.auditors = { slackUsers: ['U9'] };
    const slack = parse(doc).slack;
    assert.equal(slack?.apiUrl, 'https://slack.com/api/');
    assert.deepEqual(slack?.auditors, { slackUsers: ['U9'], slackUserGroups: [] });
  });

  test('the store: sqlite paths resolve against the config file, mongodb passes as given', () => {
    const doc = base();
    doc.audit = { store: 'sqlite:/var/lib/hoopgate.db' };
    assert.equal(parse(doc).audit.store, 'sqlite:/var/lib/hoopgate.db');
    doc.audit = { store: 'sqlite::memory:' };
    assert.equal(parse(doc).audit.store, 'sqlite::memory:');
    doc.audit = { store: 'mongodb://u:p@mongo:27017/hoopgate?replicaSet=rs0' };
    assert.equal(parse(doc).audit.store, 'mongodb://u:p@mongo:27017/hoopgate?replicaSet=rs0');
  });

  test('checkFiles: false resolves paths but does not look for the files', () => {
    const doc = base();
    doc.clusters[0].caFile = '/nowhere/ca.crt';
    const config = parseConfig(stringify(doc), {}, { baseDir: dir, checkFiles: false });
    assert.equal(config.clusters[0]?.caFile, '/nowhere/ca.crt');
  });

  test('the result is deeply frozen', () => {
    const config = parse(base());
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.identities[0]?.match.groups));
    assert.ok(Object.isFrozen(config.clusters[0]?.credentials));
    assert.throws(() => {
      (config.listen as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => (config.identities[0]?.deny as unknown[]).push({}), TypeError);
  });
});

describe('${ENV} expansion', () => {
  const withEnv = (edit: (d: Doc) => void, env: Record<string, string>) => {
    const doc = base();
    edit(doc);
    return parse(doc, env);
  };

  test('${NAME}, ${NAME:-default} and $${ for a literal', () => {
    const config = withEnv(
      (d) => {
        d.oidc.issuers[0].audience = '${AUD}';
        d.oidc.issuers[0].groupsClaim = '${GROUPS:-roles}';
        d.oidc.issuers[0].usernameClaim = '${EMPTY:-email}';
        d.identities[0].match.groups = ['team-${TEAM}', '$${literal}'];
      },
      { AUD: 'hoopgate-prod', TEAM: 'ci', EMPTY: '' },
    );
    assert.equal(config.oidc.issuers[0]?.audience, 'hoopgate-prod');
    assert.equal(config.oidc.issuers[0]?.groupsClaim, 'roles');
    assert.equal(config.oidc.issuers[0]?.usernameClaim, 'email');
    assert.deepEqual(config.identities[0]?.match.groups, ['team-ci', '${literal}']);
  });

  test('numbers, booleans, durations and files from the environment', () => {
    const config = withEnv(
      (d) => {
        d.listen.port = '${PORT}';
        d.listen.tls.certFile = '${TLS_DIR}/tls.crt';
        d.masking = { secrets: '${MASK:-true}' };
        d.approval = { timeout: '${TIMEOUT}' };
      },
      { PORT: '9443', TLS_DIR: dir, TIMEOUT: '2m' },
    );
    assert.equal(config.listen.port, 9443);
    assert.equal(config.listen.tls?.certFile, join(dir, 'tls.crt'));
    assert.equal(config.masking.secrets, true);
    assert.equal(config.approval.timeoutMs, 120_000);
  });

  test('an expanded value is not expanded again, nor read as YAML', () => {
    const config = withEnv((d) => (d.oidc.issuers[0].audience = '${AUD}'), { AUD: '${OTHER} [a, b]: {c}' });
    assert.equal(config.oidc.issuers[0]?.audience, '${OTHER} [a, b]: {c}');
  });

  test('an unset variable names itself and the path that uses it', () => {
    const doc = base();
    doc.oidc.issuers[0].audience = '${AUD}';
    doc.slack = { botToken: '${SLACK_BOT_TOKEN}', signingSecret: '${SLACK_SIGNING_SECRET}', channel: 'C1' };
    doc.listen.port = '${PORT}';
    assert.deepEqual(
      issuesOf(() => parse(doc, { SLACK_SIGNING_SECRET: 's', PORT: 'x' })),
      [
        ['listen.port', 'must be an integer, got "x"'],
        ['oidc.issuers[0].audience', 'environment variable AUD is not set'],
        ['slack.botToken', 'environment variable SLACK_BOT_TOKEN is not set'],
      ],
    );
  });

  test('a malformed reference', () => {
    const doc = base();
    doc.oidc.issuers[0].audience = '${AUD';
    assert.deepEqual(
      issuesOf(() => parse(doc)),
      [
        [
          'oidc.issuers[0].audience',
          'malformed variable reference: use ${NAME} or ${NAME:-default} (and $${ for a literal ${)',
        ],
      ],
    );
  });

  test('a set variable that is empty is refused where a value is required', () => {
    const doc = base();
    doc.oidc.issuers[0].audience = '${AUD}';
    assert.deepEqual(
      issuesOf(() => parse(doc, { AUD: '' })),
      [['oidc.issuers[0].audience', 'must not be empty']],
    );
  });
});

describe('configWarnings', () => {
  test('a hardened config has none', () => assert.deepEqual(configWarnings(parse(base())), []));

  test('plain http listener and upstream, skipped TLS verification, secrets unmasked, a catch-all identity', () => {
    const doc = base();
    delete doc.listen.tls;
    doc.clusters[0].server = 'http://k8s.example:8080';
    delete doc.clusters[0].caFile;
    doc.clusters[0].insecureSkipTLSVerify = true;
    doc.clusters.push({ name: 'local', server: 'http://127.0.0.1:8001', credentials: { tokenFile: 'token' } });
    doc.masking = { secrets: false };
    doc.identities.unshift({ name: 'everyone', match: {}, serviceAccount: 'agents/all' });
    assert.deepEqual(configWarnings(parse(doc)), [
      'listen: no tls, serving plain http: kubectl sends no bearer token to a plain-http server: put a TLS-terminating proxy in front',
      'clusters[0].server: plain http upstream http://k8s.example:8080: ServiceAccount tokens and responses cross the network unencrypted',
      "clusters[0].insecureSkipTLSVerify: the API server's certificate is not verified: anyone on the path can read the tokens; set caFile",
      'clusters[1].server: plain http upstream http://127.0.0.1:8001 (fine for a local test server only)',
      'masking.secrets: false: Secret values leave the gateway unmasked and reach the audit store and Slack',
      'identities[0] (everyone): matches every token from every trusted issuer; the identities after it are never reached',
    ]);
  });
});

describe('loadConfig', () => {
  test('reads the file; relative paths and the default store resolve against its directory', async () => {
    const path = join(dir, 'hoopgate.yaml');
    writeFileSync(path, stringify(base()));
    const config = await loadConfig(path, {});
    assert.equal(config.clusters[0]?.caFile, join(dir, 'ca.crt'));
    assert.equal(config.audit.store, `sqlite:${join(dir, 'data', 'hoopgate.db')}`);
    assert.equal(describeConfig(config), `1 cluster, 1 identity, store sqlite:${join(dir, 'data', 'hoopgate.db')}`);
  });

  test('names the file in the heading', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, stringify({ ...base(), clusters: [] }));
    await assert.rejects(loadConfig(path, {}), {
      name: 'ConfigError',
      message: `invalid configuration (${path}):\n  clusters: must not be empty`,
    });
  });

  test('a missing file is an ERR_CONFIG that says so', async () => {
    const path = join(dir, 'missing.yaml');
    await assert.rejects(loadConfig(path, {}), (error: unknown) => {
      assert.ok(error instanceof HoopError);
      assert.equal(error.code, 'ERR_CONFIG');
      assert.equal(error.message, `cannot read configuration ${path}: no such file`);
      return true;
    });
  });
});

describe('examples/hoopgate.yaml', () => {
  const examplePath = join(import.meta.dirname, '..', '..', 'examples', 'hoopgate.yaml');
  const env = {
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'secret',
    HOOPGATE_MONGODB_URI: 'mongodb://hoopgate:pw@mongo:27017/hoopgate',
  };

  test('parses clean, with no warning, and shows every section of the contract', () => {
    const config = parseConfig(readFileSync(examplePath, 'utf8'), env, {
      baseDir: dir,
      checkFiles: false,
      source: 'examples/hoopgate.yaml',
    });
    assert.deepEqual(configWarnings(config), []);
    assert.deepEqual(
      config.clusters.map((c) => c.name),
      ['prod', 'staging'],
    );
    assert.deepEqual(
      config.identities.map((i) => i.name),
      ['ci-deployer', 'release-workflow', 'readonly-bot'],
    );
    assert.equal(config.slack?.botToken, 'xoxb-test');
    assert.equal(config.audit.store, env.HOOPGATE_MONGODB_URI);
    assert.equal(config.gateway.namespace, 'hoopgate');
    assert.ok(config.audit.checkpoint?.postToSlack);
    assert.equal(describeConfig(config), '2 clusters, 3 identities, store mongodb://hoopgate:***@mongo:27017/hoopgate');
  });

  test('names each variable it needs when they are unset', () => {
    const issues = issuesOf(() => parseConfig(readFileSync(examplePath, 'utf8'), {}, { checkFiles: false }));
    assert.deepEqual(issues.map(([, message]) => message).sort(), [
      'environment variable HOOPGATE_MONGODB_URI is not set',
      'environment variable SLACK_BOT_TOKEN is not set',
      'environment variable SLACK_SIGNING_SECRET is not set',
    ]);
  });
});
