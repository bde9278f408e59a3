// The IdP recipes of docs/idp-recipes.md, tested from the document itself: every ```yaml block whose
// first line is `# recipe: NAME` is loaded with the gateway's config parser, a token of that IdP's real
// claim shape (signed by a local issuer standing in for the real one) goes through the real verifier,
// and mapIdentity must pick the intended identity — and none for another repository, ref or project.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { JWTPayload } from 'jose';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { createOidcVerifier, type OidcVerifier } from '../../packages/gateway/src/authn/oidc-verifier.js';
import { parseConfig } from '../../packages/gateway/src/config/load.js';
import type { Config, IssuerConfig } from '../../packages/gateway/src/config/types.js';
import { isHoopError } from '../../packages/gateway/src/lib/errors.js';
import { mapIdentity } from '../../packages/gateway/src/policy/index.js';
import { startStaticIssuer, type StaticIssuer } from '../helpers/idp.js';

const docPath = new URL('../../docs/idp-recipes.md', import.meta.url);

/** The rest of a configuration the recipes are merged into (the doc says: keep your own sections). */
const baseConfig = `
clusters:
  - name: prod
    server: https://kubernetes.example.com
    credentials: { tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token }
audit: { store: "sqlite::memory:" }
`;

/** `# recipe: NAME` ```yaml blocks of the document, by name. */
function extractRecipes(markdown: string): Map<string, string> {
  const recipes = new Map<string, string>();
  for (const match of markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)) {
    const body = match[1] ?? '';
    const name = /^# recipe: ([a-z0-9-]+)\n/.exec(body)?.[1];
    if (name === undefined) continue;
    assert.ok(!recipes.has(name), `recipe ${name} appears twice in the document`);
    recipes.set(name, body);
  }
  return recipes;
}

const now = () => Math.floor(Date.now() / 1000);
const jwtTimes = () => ({ iat: now(), nbf: now() - 5, exp: now() + 300, jti: randomUUID() });

interface Expectation {
  what: string;
  claims: JWTPayload;
  /** The identity it must map to; null: no identity (a 403 at the gateway). */
  identity: string | null;
}

interface RecipeCase {
  /** The audience the agent's token carries (what the recipe configures). */
  audience: string | string[];
  expectations: Expectation[];
  /** A token that must not even verify (audience of another service), with the message's cause. */
  unverifiable: { what: string; claims: JWTPayload; message: RegExp };
}

// ---- real claim shapes ----------------------------------------------------------------------

function github(
  over: { repository?: string; repository_id?: string; ref?: string; environment?: string | undefined } = {},
): JWTPayload {
  const repository = over.repository ?? 'org/app';
  const ref = over.ref ?? 'refs/heads/main';
  const environment = 'environment' in over ? over.environment : 'production';
  const claims: JWTPayload = {
    ...jwtTimes(),
    sub: environment === undefined ? `repo:${repository}:ref:${ref}` : `repo:${repository}:environment:${environment}`,
    ref,
    sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    repository,
    repository_owner: repository.split('/')[0],
    repository_owner_id: '65',
    repository_id: over.repository_id ?? '123456789',
    repository_visibility: 'private',
    run_id: '9876543210',
    run_number: '42',
    run_attempt: '1',
    actor: 'octocat',
    actor_id: '583231',
    workflow: 'deploy',
    workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    event_name: 'push',
    ref_type: 'branch',
    ref_protected: 'true',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    runner_environment: 'github-hosted',
  };
  if (environment !== undefined) claims.environment = environment;
  return claims;
}

function gitlab(
  over: {
    project_path?: string;
    project_id?: string;
    ref?: string;
    ref_protected?: unknown;
    environment?: string;
  } = {},
): JWTPayload {
  const project = over.project_path ?? 'platform/app';
  const ref = over.ref ?? 'main';
  return {
    ...jwtTimes(),
    sub: `project_path:${project}:ref_type:branch:ref:${ref}`,
    namespace_id: '1000',
    namespace_path: project.split('/')[0],
    project_id: over.project_id ?? '42424242',
    project_path: project,
    user_id: '7',
    user_login: 'release-bot',
    user_email: 'release-bot@example.com',
    user_access_level: 'maintainer',
    pipeline_id: '1122334455',
    pipeline_source: 'push',
    job_id: '5566778899',
    ref,
    ref_type: 'branch',
    ref_path: `refs/heads/${ref}`,
    ref_protected: over.ref_protected ?? 'true',
    environment: over.environment ?? 'production',
    environment_protected: 'true',
    deployment_tier: 'production',
    runner_id: 12270859,
    runner_environment: 'gitlab-hosted',
    sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    project_visibility: 'private',
    ci_config_ref_uri: `gitlab.com/${project}//.gitlab-ci.yml@refs/heads/${ref}`,
  };
}

function serviceAccount(namespace: string, name: string): JWTPayload {
  return {
    ...jwtTimes(),
    sub: `system:serviceaccount:${namespace}:${name}`,
    'kubernetes.io': {
      namespace,
      node: { name: 'node-a', uid: randomUUID() },
      pod: { name: `${name}-7d9f8c6b5-x2kqz`, uid: randomUUID() },
      serviceaccount: { name, uid: randomUUID() },
    },
  };
}

function keycloak(clientId: string, roles: string[], extra: JWTPayload = {}): JWTPayload {
  return {
    ...jwtTimes(),
    sub: randomUUID(), // the client's service-account user
    typ: 'Bearer',
    azp: clientId,
    acr: '1',
    'allowed-origins': ['/*'],
    realm_access: { roles: ['default-roles-agents', 'offline_access', 'uma_authorization', ...roles] },
    resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
    scope: 'profile email',
    clientHost: '10.0.0.7',
    email_verified: false,
    preferred_username: `service-account-${clientId}`,
    clientAddress: '10.0.0.7',
    client_id: clientId,
    ...extra,
  };
}

function okta(cid: string, scp: string[]): JWTPayload {
  return { ...jwtTimes(), ver: 1, jti: `AT.${randomUUID()}`, cid, scp, sub: cid };
}

// ---- what each recipe must do ------------------------------------------------------------------

const cases: Record<string, RecipeCase> = {
  'github-actions': {
    audience: 'hoopgate',
    expectations: [
      { what: 'main in the production environment deploys', claims: github(), identity: 'app-deploy-production' },
      {
        what: 'a feature branch is read-only',
        claims: github({ ref: 'refs/heads/feature-x', environment: undefined }),
        identity: 'app-ci-readonly',
      },
      {
        what: 'main without the environment is read-only',
        claims: github({ environment: undefined }),
        identity: 'app-ci-readonly',
      },
      {
        what: 'main in another environment is read-only',
        claims: github({ environment: 'staging' }),
        identity: 'app-ci-readonly',
      },
      {
        what: 'another repository maps to nothing',
        claims: github({ repository: 'org/other', repository_id: '555' }),
        identity: null,
      },
      {
        what: 'another owner of the same repository name maps to nothing',
        claims: github({ repository: 'evil/app', repository_id: '666' }),
        identity: null,
      },
      {
        what: 'a re-created repository (same name, new id) maps to nothing',
        claims: github({ repository_id: '999999999' }),
        identity: null,
      },
    ],
    unverifiable: {
      what: "GitHub's default audience (the owner's URL)",
      claims: { ...github(), aud: 'https://github.com/org' },
      message: /token audience "https:\/\/github\.com\/org" does not include "hoopgate"/,
    },
  },
  'gitlab-ci': {
    audience: 'https://hoopgate.example.com',
    expectations: [
      { what: 'protected main in production deploys', claims: gitlab(), identity: 'gitlab-deploy-production' },
      {
        what: 'a feature branch is read-only',
        claims: gitlab({ ref: 'feature-x', ref_protected: 'false' }),
        identity: 'gitlab-ci-readonly',
      },
      {
        what: 'ref_protected as a boolean is not the string "true"',
        claims: gitlab({ ref_protected: true }),
        identity: 'gitlab-ci-readonly',
      },
      {
        what: 'another environment is read-only',
        claims: gitlab({ environment: 'review/feature-x' }),
        identity: 'gitlab-ci-readonly',
      },
      {
        what: 'another project maps to nothing',
        claims: gitlab({ project_path: 'platform/other', project_id: '1' }),
        identity: null,
      },
      {
        what: 'a fork (same path elsewhere, other id) maps to nothing',
        claims: gitlab({ project_path: 'mallory/app', project_id: '77' }),
        identity: null,
      },
      {
        what: 'the same path with another project id maps to nothing',
        claims: gitlab({ project_id: '1' }),
        identity: null,
      },
    ],
    unverifiable: {
      what: 'a token for another service',
      claims: { ...gitlab(), aud: 'https://vault.example.com' },
      message: /does not include "https:\/\/hoopgate\.example\.com"/,
    },
  },
  'kubernetes-serviceaccount': {
    audience: ['hoopgate'],
    expectations: [
      { what: 'the agent ServiceAccount', claims: serviceAccount('ai-agents', 'triage-bot'), identity: 'triage-bot' },
      {
        what: 'the same name in another namespace maps to nothing',
        claims: serviceAccount('default', 'triage-bot'),
        identity: null,
      },
      {
        what: 'another account of the namespace maps to nothing',
        claims: serviceAccount('ai-agents', 'other-bot'),
        identity: null,
      },
    ],
    unverifiable: {
      what: "the pod's API-server token (audience: the API server)",
      claims: { ...serviceAccount('ai-agents', 'triage-bot'), aud: ['https://kubernetes.default.svc.cluster.local'] },
      message: /does not include "hoopgate"/,
    },
  },
  keycloak: {
    audience: ['hoopgate', 'account'],
    expectations: [
      { what: 'realm role ci-deployers', claims: keycloak('ci-deployer', ['ci-deployers']), identity: 'ci-deployer' },
      { what: 'realm role readers', claims: keycloak('report-bot', ['readers']), identity: 'readers' },
      { what: 'only default roles maps to nothing', claims: keycloak('report-bot', []), identity: null },
      {
        what: 'a top-level groups claim is not the configured groupsClaim',
        claims: keycloak('report-bot', [], { groups: ['ci-deployers'] }),
        identity: null,
      },
      {
        what: 'a client role of the same name is not a realm role',
        claims: keycloak('report-bot', [], { resource_access: { hoopgate: { roles: ['ci-deployers'] } } }),
        identity: null,
      },
    ],
    unverifiable: {
      what: 'a client without the audience mapper',
      claims: { ...keycloak('ci-deployer', ['ci-deployers']), aud: 'account' },
      message: /does not include "hoopgate"/,
    },
  },
  okta: {
    audience: 'api://hoopgate',
    expectations: [
      {
        what: 'the deployer app with the deploy scope',
        claims: okta('0oa1deployer0example', ['hoopgate.deploy']),
        identity: 'okta-deployer',
      },
      {
        what: 'the deployer app without the deploy scope is read-only',
        claims: okta('0oa1deployer0example', ['hoopgate.read']),
        identity: 'okta-readonly',
      },
      {
        what: 'the reporter app is read-only, even with the deploy scope',
        claims: okta('0oa1reporter0example', ['hoopgate.deploy']),
        identity: 'okta-readonly',
      },
      {
        what: 'another app maps to nothing',
        claims: okta('0oa1stranger00example', ['hoopgate.deploy']),
        identity: null,
      },
    ],
    unverifiable: {
      what: "the org authorization server's audience",
      claims: { ...okta('0oa1deployer0example', ['hoopgate.deploy']), aud: 'https://example.okta.com' },
      message: /does not include "api:\/\/hoopgate"/,
    },
  },
};

/** The local issuer is plain http on loopback: a recipe's CA file for the real issuer does not apply. */
function standIn(config: Config): IssuerConfig[] {
  return config.oidc.issuers.map(({ caFile: _caFile, ...issuer }) => issuer);
}

interface LoadedRecipe {
  name: string;
  realIssuer: string;
  issuer: StaticIssuer;
  signer: ReturnType<StaticIssuer['addKey']>;
  /** The recipe's YAML with the real issuer URL replaced by the local one. */
  yaml: string;
}

describe('IdP recipes (docs/idp-recipes.md)', () => {
  const recipes = extractRecipes(readFileSync(docPath, 'utf8'));
  const loaded = new Map<string, LoadedRecipe>();

  before(async () => {
    for (const [name, yaml] of recipes) {
      const document = parseYaml(yaml) as { oidc: { issuers: { issuer: string; audience: string }[] } };
      assert.equal(document.oidc.issuers.length, 1, `recipe ${name} configures one issuer`);
      const realIssuer = document.oidc.issuers[0]?.issuer ?? '';
      const issuer = await startStaticIssuer(document.oidc.issuers[0]?.audience);
      // The local issuer stands in for the real one everywhere the recipe names it (issuers, match.issuer).
      loaded.set(name, {
        name,
        realIssuer,
        issuer,
        signer: issuer.addKey(),
        yaml: yaml.split(realIssuer).join(issuer.issuer),
      });
    }
  });
  after(async () => {
    for (const recipe of loaded.values()) await recipe.issuer.close();
  });

  test('the document has exactly the tested recipes', () => {
    assert.deepEqual([...recipes.keys()].sort(), Object.keys(cases).sort());
  });

  test('every recipe names its real issuer over https', () => {
    for (const recipe of loaded.values()) assert.match(recipe.realIssuer, /^https:\/\/[^/]+/, recipe.name);
  });

  for (const [name, recipeCase] of Object.entries(cases)) {
    describe(name, () => {
      let config: Config;
      let verifier: OidcVerifier;
      let recipe: LoadedRecipe;
      before(() => {
        recipe = loaded.get(name) ?? assert.fail(`recipe ${name} is missing from docs/idp-recipes.md`);
        config = parseConfig(
          `${baseConfig}\n${recipe.yaml}`,
          {},
          { checkFiles: false, source: `docs/idp-recipes.md#${name}` },
        );
        verifier = createOidcVerifier(standIn(config));
      });
      after(async () => verifier?.close());

      test('the snippet is a valid configuration, and its identities are pinned to its issuer', () => {
        assert.equal(config.oidc.issuers[0]?.issuer, recipe.issuer.issuer);
        for (const identity of config.identities)
          assert.deepEqual(identity.match.issuer, [recipe.issuer.issuer], identity.name);
        const parsed = parseConfig(`${baseConfig}\n${recipes.get(name) ?? ''}`, {}, { checkFiles: false });
        assert.equal(parsed.oidc.issuers[0]?.issuer, recipe.realIssuer, 'the document as written parses too');
      });

      for (const expectation of recipeCase.expectations) {
        test(`${expectation.what} → ${expectation.identity ?? 'no identity'}`, async () => {
          const token = await recipe.signer.sign({
            ...expectation.claims,
            iss: recipe.issuer.issuer,
            aud: recipeCase.audience,
          });
          const principal = await verifier.verify(token);
          assert.equal(principal.issuer, recipe.issuer.issuer);
          assert.equal(principal.subject, expectation.claims.sub);
          const mapped = mapIdentity(config.identities, principal, 'prod');
          assert.equal(mapped?.identity.name ?? null, expectation.identity);
        });
      }

      test(`refused by the verifier: ${recipeCase.unverifiable.what}`, async () => {
        const token = await recipe.signer.sign({ ...recipeCase.unverifiable.claims, iss: recipe.issuer.issuer });
        await assert.rejects(verifier.verify(token), (error: unknown) => {
          assert.ok(isHoopError(error));
          assert.equal(error.code, 'ERR_TOKEN_INVALID');
          assert.equal(error.status, 401);
          assert.match(error.message, recipeCase.unverifiable.message);
          return true;
        });
      });
    });
  }

  describe('all recipes in one configuration', () => {
    let config: Config;
    let verifier: OidcVerifier;
    const sign = (name: string, claims: JWTPayload, aud: string | string[]) => {
      const recipe = loaded.get(name) ?? assert.fail(`recipe ${name} is missing`);
      return recipe.signer.sign({ ...claims, iss: recipe.issuer.issuer, aud });
    };
    before(() => {
      const merged = { oidc: { issuers: [] as unknown[] }, identities: [] as unknown[] };
      for (const recipe of loaded.values()) {
        const document = parseYaml(recipe.yaml) as { oidc: { issuers: unknown[] }; identities: unknown[] };
        merged.oidc.issuers.push(...document.oidc.issuers);
        merged.identities.push(...document.identities);
      }
      config = parseConfig(`${baseConfig}\n${toYaml(merged)}`, {}, { checkFiles: false });
      verifier = createOidcVerifier(standIn(config));
    });
    after(async () => verifier?.close());

    test('each recipe still maps its own tokens', async () => {
      for (const [name, recipeCase] of Object.entries(cases)) {
        for (const expectation of recipeCase.expectations) {
          const principal = await verifier.verify(await sign(name, expectation.claims, recipeCase.audience));
          assert.equal(
            mapIdentity(config.identities, principal, 'prod')?.identity.name ?? null,
            expectation.identity,
            `${name}: ${expectation.what}`,
          );
        }
      }
    });

    test("another issuer's token carrying GitHub's or GitLab's claims maps to none of their identities", async () => {
      // A Keycloak client with custom mappers can put any claim in its tokens: only the issuer pin stops it.
      const spoofed = keycloak('mallory', [], { ...github(), ...gitlab(), sub: randomUUID() });
      const principal = await verifier.verify(await sign('keycloak', spoofed, 'hoopgate'));
      assert.equal(mapIdentity(config.identities, principal, 'prod'), null);
      const oktaSpoof = await verifier.verify(
        await sign('okta', { ...github(), ...okta('0oa1stranger00example', []) }, 'api://hoopgate'),
      );
      assert.equal(mapIdentity(config.identities, oktaSpoof, 'prod'), null);
      const clusterSpoof = await verifier.verify(
        await sign(
          'kubernetes-serviceaccount',
          {
            ...serviceAccount('ai-agents', 'other-bot'),
            ...gitlab(),
            sub: 'system:serviceaccount:ai-agents:other-bot',
          },
          ['hoopgate'],
        ),
      );
      assert.equal(mapIdentity(config.identities, clusterSpoof, 'prod'), null);
    });

    test("a GitHub token's sub spelling a Kubernetes subject is not the in-cluster agent", async () => {
      const principal = await verifier.verify(
        await sign(
          'github-actions',
          {
            ...github({ repository: 'evil/x', repository_id: '1' }),
            sub: 'system:serviceaccount:ai-agents:triage-bot',
          },
          'hoopgate',
        ),
      );
      assert.equal(mapIdentity(config.identities, principal, 'prod'), null);
    });
  });
});
