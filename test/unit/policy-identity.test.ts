import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../packages/gateway/src/authn/principal.js';
import type { IdentityConfig } from '../../packages/gateway/src/config/types.js';
import {
  mapIdentity,
  matchesEveryone,
  noIdentityDecision,
  readClaim,
} from '../../packages/gateway/src/policy/index.js';

const safeDefaults = {
  nodesProxy: true,
  impersonate: true,
  escalateBind: true,
  serviceAccountTokens: true,
  gatewayNamespace: true,
};
const noApproval = { require: [], escalate: false };

const identities: IdentityConfig[] = [
  {
    name: 'ci-deployer',
    match: { groups: ['ci-deployers'] },
    serviceAccount: 'agents/ci-deployer',
    deny: [],
    approval: noApproval,
    safeDefaults,
  },
  {
    name: 'gha-app',
    match: {
      issuer: ['https://token.actions.githubusercontent.com'],
      claims: { repository: ['org/app'], ref: ['refs/heads/main', 'refs/heads/release'] },
    },
    serviceAccount: 'agents/gha-app',
    deny: [],
    approval: noApproval,
    safeDefaults,
  },
  {
    name: 'nested-roles',
    match: { claims: { 'realm_access.roles': ['k8s-reader'] } },
    serviceAccount: 'agents/reader',
    deny: [],
    approval: noApproval,
    safeDefaults,
  },
  {
    name: 'bot',
    match: { subjects: ['bot-1', 'bot-2'], issuer: ['https://idp.example.com'] },
    serviceAccount: 'agents/bot',
    deny: [],
    approval: noApproval,
    safeDefaults,
  },
  {
    name: 'prod-only',
    match: { groups: ['prod-operators'] },
    clusters: ['prod'],
    serviceAccount: 'agents/prod-op',
    deny: [],
    approval: noApproval,
    safeDefaults,
  },
];

function principal(partial: Partial<Principal>): Principal {
  return {
    issuer: 'https://idp.example.com',
    subject: 'someone',
    username: 'someone',
    groups: [],
    claims: {},
    expiresAt: 0,
    ...partial,
  };
}

const cases: Array<[string, Principal, string, string | null]> = [
  ['group match', principal({ groups: ['x', 'ci-deployers'] }), 'prod', 'ci-deployer'],
  ['no group match', principal({ groups: ['ci-deployer'] }), 'prod', null],
  [
    'claims (string claim, list of values)',
    principal({
      issuer: 'https://token.actions.githubusercontent.com',
      claims: { repository: 'org/app', ref: 'refs/heads/release' },
    }),
    'prod',
    'gha-app',
  ],
  [
    'claims: one claim fails',
    principal({
      issuer: 'https://token.actions.githubusercontent.com',
      claims: { repository: 'org/app', ref: 'refs/heads/feature' },
    }),
    'prod',
    null,
  ],
  [
    'claims: issuer must hold too',
    principal({ issuer: 'https://evil.example.com', claims: { repository: 'org/app', ref: 'refs/heads/main' } }),
    'prod',
    null,
  ],
  [
    'claims: missing claim',
    principal({ issuer: 'https://token.actions.githubusercontent.com', claims: { repository: 'org/app' } }),
    'prod',
    null,
  ],
  [
    'claims: dot path into an array claim',
    principal({ claims: { realm_access: { roles: ['a', 'k8s-reader'] } } }),
    'prod',
    'nested-roles',
  ],
  ['claims: non-string claim never coerced', principal({ claims: { realm_access: { roles: [true] } } }), 'prod', null],
  [
    'claims: a dotted key is read as the verifier reads groupsClaim (whole key first)',
    principal({ claims: { 'realm_access.roles': ['k8s-reader'] } }),
    'prod',
    'nested-roles',
  ],
  ['subjects and issuer', principal({ subject: 'bot-2' }), 'prod', 'bot'],
  ['subjects: other subject', principal({ subject: 'bot-3' }), 'prod', null],
  ['clusters: allowed cluster', principal({ groups: ['prod-operators'] }), 'prod', 'prod-only'],
  ['clusters: other cluster', principal({ groups: ['prod-operators'] }), 'staging', null],
  ['first match wins', principal({ subject: 'bot-1', groups: ['ci-deployers'] }), 'prod', 'ci-deployer'],
];

for (const [name, p, cluster, expected] of cases) {
  test(`mapIdentity: ${name}`, () => {
    const mapped = mapIdentity(identities, p, cluster);
    assert.equal(mapped?.identity.name ?? null, expected);
    if (mapped !== null) assert.equal(identities[mapped.index], mapped.identity);
  });
}

test('an empty match matches everyone, and it is visible', () => {
  const everyone: IdentityConfig = {
    name: 'everyone',
    match: {},
    serviceAccount: 'agents/ro',
    deny: [],
    approval: noApproval,
    safeDefaults,
  };
  assert.equal(matchesEveryone(everyone.match), true);
  assert.equal(matchesEveryone(identities[0]!.match), false);
  assert.deepEqual(mapIdentity([...identities, everyone], principal({ subject: 'nobody' }), 'prod'), {
    identity: everyone,
    index: identities.length,
  });
});

test('readClaim walks own properties only', () => {
  assert.equal(readClaim({ a: { b: 'c' } }, 'a.b'), 'c');
  assert.equal(readClaim({ a: {} }, 'a.constructor'), undefined);
  assert.equal(readClaim({}, '__proto__'), undefined);
  assert.equal(readClaim({ a: ['x'] }, 'a.0'), undefined);
});

test('noIdentityDecision: no mapping at all', () => {
  const decision = noIdentityDecision(identities, principal({ subject: 'nobody', groups: ['g'] }), 'prod');
  assert.equal(decision.effect, 'deny');
  assert.equal(decision.reason, 'no-identity');
  assert.match(
    decision.message,
    /^no identity of this gateway maps subject "nobody" \(issuer https:\/\/idp\.example\.com, groups \[g\]\) on cluster "prod": a token whose subject or groups an identity maps may pass\. Who may help: ask the gateway's operators\.$/,
  );
  assert.equal(decision.detail, 'add a matching entry under identities in the gateway config');
});

test("noIdentityDecision: the token's subject and groups are bounded in the message", () => {
  const many = Array.from({ length: 50 }, (_, i) => `group-${i}-${'g'.repeat(200)}`);
  const decision = noIdentityDecision(identities, principal({ subject: 's'.repeat(5000), groups: many }), 'prod', {
    helpers: { approvers: ['oncall@example.com'] },
    auditId: 'a-1',
  });
  assert.ok(decision.message.length < 1200, String(decision.message.length));
  assert.match(decision.message, /and 42 more\]\)/);
  assert.match(decision.message, /Who may help: ask an approver \(oncall@example\.com\), quoting Audit-Id a-1\.$/);
});

test('noIdentityDecision: an identity would match on another cluster', () => {
  const decision = noIdentityDecision(identities, principal({ groups: ['prod-operators'] }), 'staging');
  assert.equal(decision.reason, 'cluster-not-allowed');
  assert.equal(decision.rule, 'identities[4].clusters');
  assert.match(
    decision.message,
    /identity "prod-only", which may not use cluster "staging"\. The same call on cluster prod may pass\. Who may help: /,
  );
  assert.doesNotMatch(decision.message, /identities\[/);
  assert.match(decision.detail ?? '', /^identities\[4\]\.clusters is \[prod\]; add "staging" to allow it$/);
});
