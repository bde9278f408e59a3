// Renders the kustomize base and overlays with the real kubectl and checks what an operator relies on:
// the gateway's RBAC is exactly "mint the named agents' tokens + ask access reviews", the pod is
// hardened, each overlay's shape (replicas, store, volume, PDB, egress) and that its config is valid.
// The Dockerfile and docker-compose.yml cannot be built here (no Docker engine): they are read.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import * as kubeModels from '@kubernetes/client-node';
import { ConfigError, parseConfig } from '../../packages/gateway/src/config/load.js';
import type { Config } from '../../packages/gateway/src/config/types.js';

const root = join(import.meta.dirname, '..', '..');
const kubectl = process.env.HOOPGATE_KUBECTL ?? '/usr/bin/kubectl';

// --- the subset of Kubernetes object shapes these tests read ---------------------------------
interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [field: string]: unknown;
}
interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface RoleObject extends KubeObject {
  rules?: PolicyRule[];
  aggregationRule?: unknown;
}
interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}
interface BindingObject extends KubeObject {
  roleRef: { apiGroup: string; kind: 'Role' | 'ClusterRole'; name: string };
  subjects?: Subject[];
}
interface HttpProbe {
  httpGet?: { path: string; port: number | string; scheme?: string };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: unknown[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  livenessProbe?: HttpProbe;
  readinessProbe?: HttpProbe;
  startupProbe?: HttpProbe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: Record<string, unknown>;
  persistentVolumeClaim?: { claimName: string };
  projected?: unknown;
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    seccompProfile?: { type: string };
  };
  topologySpreadConstraints?: { topologyKey: string }[];
  affinity?: { podAntiAffinity?: unknown };
  containers: Container[];
  volumes?: Volume[];
}
interface DeploymentObject extends KubeObject {
  spec: {
    replicas: number;
    strategy?: { type: string; rollingUpdate?: unknown };
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface NetworkPolicyPort {
  protocol?: string;
  port: number;
}
interface NetworkPolicyObject extends KubeObject {
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes: string[];
    ingress?: { from?: unknown[]; ports?: NetworkPolicyPort[] }[];
    egress?: { to?: unknown[]; ports?: NetworkPolicyPort[] }[];
  };
}

// --- rendering ----------------------------------------------------------------------------------
const targets = ['base', 'overlays/mongodb', 'overlays/embedded'] as const;
type Target = (typeof targets)[number];

function render(target: Target): KubeObject[] {
  const result = spawnSync(kubectl, ['kustomize', join(root, 'deploy', target)], { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new Error(`cannot run ${kubectl} (set HOOPGATE_KUBECTL): ${result.error.message}`);
  assert.equal(result.status, 0, `kubectl kustomize deploy/${target} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout).map((doc) => {
    assert.deepEqual(doc.errors, [], `deploy/${target} rendered invalid YAML`);
    return doc.toJS() as KubeObject;
  });
}

const rendered = new Map<Target, KubeObject[]>(targets.map((t) => [t, render(t)]));
function objectsOf(target: Target): KubeObject[] {
  const objects = rendered.get(target);
  assert.ok(objects);
  return objects;
}
function ofKind<T extends KubeObject>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}
function theOne<T extends KubeObject>(objects: KubeObject[], kind: string, name: string, namespace?: string): T {
  const found = objects.filter(
    (o) =>
      o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  assert.equal(found.length, 1, `expected exactly one ${kind} ${namespace ?? ''}/${name}, found ${found.length}`);
  return found[0] as T;
}
function gatewayDeployment(objects: KubeObject[]): DeploymentObject {
  return theOne<DeploymentObject>(objects, 'Deployment', 'hoopgate', 'hoopgate');
}
function gatewayContainer(deployment: DeploymentObject): Container {
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'hoopgate');
  assert.ok(container, 'the Deployment has a "hoopgate" container');
  return container;
}
function envOf(container: Container, name: string): EnvVar | undefined {
  return container.env?.find((e) => e.name === name);
}

// --- schema: no cluster here to apply to, so the client library's API models stand in ----------
type AttributeMap = readonly { baseName: string; type: string }[];
function attributesOf(type: string): AttributeMap | undefined {
  const model = (kubeModels as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>)[
    type
  ];
  return model?.getAttributeTypeMap?.();
}

/** Every field the Kubernetes API would not know (a typo it would drop or reject), or of the wrong type. */
function schemaProblems(value: unknown, type: string, path: string): string[] {
  const list = /^Array<(.+)>$/.exec(type);
  if (list) {
    if (!Array.isArray(value)) return [`${path}: expected a list`];
    return value.flatMap((item, i) => schemaProblems(item, list[1] ?? 'any', `${path}[${i}]`));
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== 'object' || value === null) return [`${path}: expected a map`];
    return Object.entries(value).flatMap(([key, item]) => schemaProblems(item, map[1] ?? 'any', `${path}.${key}`));
  }
  switch (type) {
    case 'any':
      return [];
    case 'string':
    case 'Date':
      return typeof value === 'string' ? [] : [`${path}: expected a string`];
    case 'number':
      return typeof value === 'number' ? [] : [`${path}: expected a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path}: expected a boolean`];
    case 'IntOrString':
      return typeof value === 'string' || typeof value === 'number' ? [] : [`${path}: expected an int or a string`];
  }
  const attributes = attributesOf(type);
  if (!attributes) return [`${path}: no model ${type}`];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${path}: expected an object (${type})`];
  return Object.entries(value).flatMap(([key, item]) => {
    const attribute = attributes.find((a) => a.baseName === key);
    return attribute
      ? schemaProblems(item, attribute.type, `${path}.${key}`)
      : [`${path}.${key}: unknown field of ${type}`];
  });
}

// --- RBAC analysis ------------------------------------------------------------------------------
const gatewaySA = { namespace: 'hoopgate', name: 'hoopgate' };

/** Does this subject include the given ServiceAccount, directly or through one of its groups? */
function subjectCovers(subject: Subject, sa: { namespace: string; name: string }): boolean {
  switch (subject.kind) {
    case 'ServiceAccount':
      return subject.name === sa.name && subject.namespace === sa.namespace;
    case 'User':
      return subject.name === `system:serviceaccount:${sa.namespace}:${sa.name}`;
    case 'Group':
      return ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`, 'system:authenticated'].includes(
        subject.name,
      );
    default:
      return false;
  }
}

interface Grant {
  scope: string; // a namespace, or "cluster"
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames: string[];
  nonResourceURLs: string[];
}

function sorted(values: readonly string[] | undefined): string[] {
  return [...(values ?? [])].sort();
}

/** Every rule granted to `sa` by the rendered bindings; a binding to a role not in the manifests fails. */
function grantsOf(objects: KubeObject[], sa: { namespace: string; name: string }): Grant[] {
  const grants: Grant[] = [];
  for (const binding of [
    ...ofKind<BindingObject>(objects, 'RoleBinding'),
    ...ofKind<BindingObject>(objects, 'ClusterRoleBinding'),
  ]) {
    if (!(binding.subjects ?? []).some((s) => subjectCovers(s, sa))) continue;
    const scope = binding.kind === 'RoleBinding' ? (binding.metadata.namespace ?? 'default') : 'cluster';
    const role =
      binding.roleRef.kind === 'Role'
        ? objects.find(
            (o) => o.kind === 'Role' && o.metadata.name === binding.roleRef.name && o.metadata.namespace === scope,
          )
        : objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === binding.roleRef.name);
    assert.ok(
      role,
      `${binding.kind} ${binding.metadata.name} refers to ${binding.roleRef.kind} ${binding.roleRef.name}, not in the manifests`,
    );
    assert.equal(
      (role as RoleObject).aggregationRule,
      undefined,
      `${role.kind} ${role.metadata.name} must not aggregate other roles`,
    );
    for (const rule of (role as RoleObject).rules ?? []) {
      grants.push({
        scope,
        apiGroups: sorted(rule.apiGroups),
        resources: sorted(rule.resources),
        verbs: sorted(rule.verbs),
        resourceNames: sorted(rule.resourceNames),
        nonResourceURLs: sorted(rule.nonResourceURLs),
      });
    }
  }
  return grants.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

const agentAccounts = ['ci-deployer', 'ci-deployer-elevated', 'readonly-bot'];

// --- config -------------------------------------------------------------------------------------
/** Stand-ins for the Secret's keys, so the config's `${VAR}` references resolve as in the pod. */
const fakeSecrets: Record<string, string> = {
  SLACK_BOT_TOKEN: 'xoxb-test-token',
  SLACK_SIGNING_SECRET: 'test-signing-secret',
  MONGODB_URI: 'mongodb://mongo-0.example:27017,mongo-1.example:27017/hoopgate?replicaSet=rs0',
};

/** The environment the container would get (Secret values faked). */
function podEnvironment(deployment: DeploymentObject): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of gatewayContainer(deployment).env ?? []) {
    const secretRef = variable.valueFrom?.secretKeyRef;
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (secretRef) {
      assert.equal(secretRef.name, 'hoopgate-secrets', `${variable.name} comes from Secret hoopgate-secrets`);
      const value = fakeSecrets[secretRef.key];
      assert.ok(value !== undefined, `no stand-in for secret key ${secretRef.key}`);
      env[variable.name] = value;
    } else if (fieldPath === 'metadata.namespace') env[variable.name] = deployment.metadata.namespace ?? '';
    else assert.fail(`unexpected env source for ${variable.name}`);
  }
  return env;
}

function configText(objects: KubeObject[], deployment: DeploymentObject): string {
  const volume = deployment.spec.template.spec.volumes?.find((v) => v.name === 'config');
  assert.ok(volume?.configMap, 'the config volume is a ConfigMap');
  assert.match(volume.configMap.name, /^hoopgate-config-[a-z0-9]+$/, 'the ConfigMap is generated (hash-suffixed)');
  const configMap = theOne(objects, 'ConfigMap', volume.configMap.name, 'hoopgate') as KubeObject & {
    data: Record<string, string>;
  };
  const text = configMap.data['hoopgate.yaml'];
  assert.ok(text, 'the ConfigMap holds hoopgate.yaml');
  return text;
}

/** Every account the config names, "namespace/name". */
function configAccounts(config: Config): string[] {
  const accounts = config.identities.flatMap((i) => [
    i.serviceAccount,
    ...(i.approval.serviceAccount ? [i.approval.serviceAccount] : []),
  ]);
  return [...new Set(accounts)].sort();
}

/** The in-cluster files the config names exist only inside the pod, so they are not looked for here. */
function podConfig(objects: KubeObject[], target: Target, env: Record<string, string>): Config {
  return parseConfig(configText(objects, gatewayDeployment(objects)), env, {
    source: `deploy/${target}`,
    checkFiles: false,
  });
}

// --- tests --------------------------------------------------------------------------------------
describe('deploy manifests (kubectl kustomize)', () => {
  for (const target of targets) {
    describe(`deploy/${target}`, () => {
      const objects = objectsOf(target);

      test('every object is a known v1 kind with only fields the Kubernetes API knows', () => {
        for (const object of objects) {
          assert.match(object.apiVersion, /(^|\/)v1$/, `${object.kind} ${object.metadata.name}: a GA api version`);
          assert.deepEqual(schemaProblems(object, `V1${object.kind}`, `${object.kind}/${object.metadata.name}`), []);
        }
      });

      test('the gateway account is granted exactly: create agents/serviceaccounts/token for the named accounts, create subjectaccessreviews', () => {
        assert.deepEqual(grantsOf(objects, gatewaySA), [
          {
            scope: 'agents',
            apiGroups: [''],
            resources: ['serviceaccounts/token'],
            verbs: ['create'],
            resourceNames: agentAccounts,
            nonResourceURLs: [],
          },
          {
            scope: 'cluster',
            apiGroups: ['authorization.k8s.io'],
            resources: ['subjectaccessreviews'],
            verbs: ['create'],
            resourceNames: [],
            nonResourceURLs: [],
          },
        ]);
      });

      test('no role anywhere has a wildcard, and no binding grants to broad groups', () => {
        for (const role of [...ofKind<RoleObject>(objects, 'Role'), ...ofKind<RoleObject>(objects, 'ClusterRole')]) {
          for (const rule of role.rules ?? []) {
            for (const field of [
              rule.apiGroups,
              rule.resources,
              rule.verbs,
              rule.resourceNames,
              rule.nonResourceURLs,
            ]) {
              assert.ok(
                !(field ?? []).some((v) => v.includes('*')),
                `${role.kind} ${role.metadata.name} has a wildcard`,
              );
            }
          }
        }
        for (const binding of [
          ...ofKind<BindingObject>(objects, 'RoleBinding'),
          ...ofKind<BindingObject>(objects, 'ClusterRoleBinding'),
        ]) {
          for (const subject of binding.subjects ?? []) {
            assert.notEqual(subject.kind, 'Group', `${binding.kind} ${binding.metadata.name} binds a group`);
          }
        }
      });

      test('the agent accounts exist, mount no token, and hold no dangerous right', () => {
        for (const name of agentAccounts) {
          const sa = theOne<KubeObject & { automountServiceAccountToken?: boolean }>(
            objects,
            'ServiceAccount',
            name,
            'agents',
          );
          assert.equal(sa.automountServiceAccountToken, false, `${name} mounts no token`);
          const grants = grantsOf(objects, { namespace: 'agents', name });
          assert.ok(grants.length > 0, `${name} has some rights`);
          for (const grant of grants) {
            assert.notEqual(grant.scope, 'cluster', `${name} has no cluster-wide binding`);
            assert.ok(
              ['staging', 'prod'].includes(grant.scope),
              `${name} acts only in staging/prod, not ${grant.scope}`,
            );
            for (const resource of grant.resources) {
              assert.ok(
                ![
                  'secrets',
                  'serviceaccounts/token',
                  'pods/exec',
                  'pods/attach',
                  'pods/portforward',
                  'nodes/proxy',
                  'namespaces',
                ].includes(resource),
                `${name} may not touch ${resource}`,
              );
            }
            for (const verb of grant.verbs) {
              assert.ok(
                !['escalate', 'bind', 'impersonate', 'deletecollection'].includes(verb),
                `${name} may not ${verb}`,
              );
            }
          }
          if (name === 'readonly-bot') {
            assert.deepEqual([...new Set(grants.flatMap((g) => g.verbs))].sort(), ['get', 'list', 'watch']);
          }
          if (name === 'ci-deployer') {
            assert.deepEqual(
              [...new Set(grants.map((g) => g.scope))],
              ['staging'],
              'the baseline deployer acts in staging only',
            );
            assert.ok(!grants.some((g) => g.verbs.includes('delete')), 'the baseline deployer deletes nothing');
          }
        }
      });

      test('the Deployment runs hoopgate serve, hardened, as its own account', () => {
        const deployment = gatewayDeployment(objects);
        const pod = deployment.spec.template.spec;
        const container = gatewayContainer(deployment);
        assert.equal(pod.serviceAccountName, 'hoopgate');
        assert.equal(pod.automountServiceAccountToken, true, 'the gateway needs its token to mint agent tokens');
        assert.equal(pod.hostNetwork, undefined);
        assert.equal(pod.hostPID, undefined);
        assert.equal(pod.securityContext?.runAsNonRoot, true);
        assert.equal(pod.securityContext?.runAsUser, 10001);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
        assert.deepEqual(
          pod.containers.map((c) => c.name),
          ['hoopgate'],
        );
        assert.deepEqual(
          [...(container.command ?? []), ...(container.args ?? [])],
          ['node', 'bin/hoopgate.js', 'serve', '--config', '/etc/hoopgate/hoopgate.yaml'],
        );
        const security = container.securityContext;
        assert.equal(security?.allowPrivilegeEscalation, false);
        assert.equal(security?.readOnlyRootFilesystem, true);
        assert.equal(security?.privileged, false);
        assert.equal(security?.runAsNonRoot, true);
        assert.equal(security?.runAsUser, 10001);
        assert.deepEqual(security?.capabilities?.drop, ['ALL']);
        assert.equal(security?.capabilities?.add, undefined);
        assert.equal(security?.seccompProfile?.type, 'RuntimeDefault');
        assert.equal(container.envFrom, undefined, 'secrets are named one by one, not imported wholesale');
        for (const kind of ['requests', 'limits'] as const) {
          assert.ok(container.resources?.[kind]?.cpu, `cpu ${kind}`);
          assert.ok(container.resources?.[kind]?.memory, `memory ${kind}`);
        }
        assert.deepEqual(container.ports, [{ name: 'https', containerPort: 8443, protocol: 'TCP' }]);
        assert.deepEqual(container.livenessProbe?.httpGet, { path: '/hoop/healthz', port: 'https', scheme: 'HTTPS' });
        assert.deepEqual(container.readinessProbe?.httpGet, { path: '/hoop/readyz', port: 'https', scheme: 'HTTPS' });
        assert.deepEqual(container.startupProbe?.httpGet, { path: '/hoop/healthz', port: 'https', scheme: 'HTTPS' });
        assert.equal(pod.terminationGracePeriodSeconds, 45);
        assert.ok(pod.topologySpreadConstraints?.some((c) => c.topologyKey === 'kubernetes.io/hostname'));
        assert.ok(pod.affinity?.podAntiAffinity);

        for (const name of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET']) {
          assert.deepEqual(envOf(container, name)?.valueFrom?.secretKeyRef, { name: 'hoopgate-secrets', key: name });
        }
        const mounts = new Map((container.volumeMounts ?? []).map((m) => [m.name, m]));
        const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
        assert.equal(mounts.get('tmp')?.mountPath, '/tmp');
        assert.ok(volumes.get('tmp')?.emptyDir);
        assert.equal(mounts.get('config')?.mountPath, '/etc/hoopgate/hoopgate.yaml');
        assert.equal(mounts.get('tls')?.mountPath, '/etc/hoopgate/tls');
        assert.equal(volumes.get('tls')?.secret?.secretName, 'hoopgate-tls');
        assert.deepEqual(volumes.get('checkpoint-key')?.secret, {
          secretName: 'hoopgate-secrets',
          defaultMode: 0o440,
          items: [{ key: 'checkpoint-signing-key.pem', path: 'checkpoint-signing-key.pem' }],
        });
        for (const mount of container.volumeMounts ?? []) {
          if (mount.name !== 'tmp' && mount.name !== 'data')
            assert.equal(mount.readOnly, true, `${mount.name} is read-only`);
        }
        // No volume brings in a second token or the host: the token is the default projected mount.
        for (const volume of pod.volumes ?? []) {
          assert.equal(volume.projected, undefined, `volume ${volume.name}`);
          assert.ok(Object.keys(volume).length === 2, `volume ${volume.name} has one source`);
        }
      });

      test('the Service, NetworkPolicy and namespace fit the pod', () => {
        const deployment = gatewayDeployment(objects);
        const labels = deployment.spec.template.metadata.labels;
        const service = theOne<KubeObject & { spec: { selector: Record<string, string>; ports: unknown[] } }>(
          objects,
          'Service',
          'hoopgate',
          'hoopgate',
        );
        assert.deepEqual(service.spec.ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
        for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(labels[key], value);

        const policy = theOne<NetworkPolicyObject>(objects, 'NetworkPolicy', 'hoopgate', 'hoopgate');
        for (const [key, value] of Object.entries(policy.spec.podSelector.matchLabels ?? {}))
          assert.equal(labels[key], value);
        assert.deepEqual(policy.spec.policyTypes, ['Ingress', 'Egress']);
        assert.deepEqual(policy.spec.ingress, [{ ports: [{ protocol: 'TCP', port: 8443 }] }]);
        const egressPorts = (policy.spec.egress ?? []).flatMap((rule) => {
          assert.ok(rule.ports && rule.ports.length > 0, 'every egress rule names its ports');
          return rule.ports.map((p) => `${p.protocol}/${p.port}`);
        });
        const expected = [
          'TCP/443',
          'TCP/53',
          'TCP/6443',
          'UDP/53',
          ...(target === 'overlays/mongodb' ? ['TCP/27017'] : []),
        ];
        assert.deepEqual(egressPorts.sort(), expected.sort());

        const namespace = theOne(objects, 'Namespace', 'hoopgate');
        assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
      });

      test('replicas, store, volume, strategy and disruption budget fit the overlay', () => {
        const deployment = gatewayDeployment(objects);
        const container = gatewayContainer(deployment);
        const pvcs = ofKind(objects, 'PersistentVolumeClaim');
        const pdbs = ofKind<KubeObject & { spec: { minAvailable?: number; maxUnavailable?: number } }>(
          objects,
          'PodDisruptionBudget',
        );
        const store = envOf(container, 'HOOPGATE_AUDIT_STORE');
        if (target === 'overlays/embedded') {
          assert.equal(deployment.spec.replicas, 1, 'sqlite cannot be shared between pods');
          assert.deepEqual(deployment.spec.strategy, { type: 'Recreate' });
          assert.deepEqual(
            pvcs.map((p) => p.metadata.name),
            ['hoopgate-data'],
          );
          assert.equal(store?.value, 'sqlite:/var/lib/hoopgate/hoopgate.db');
          assert.deepEqual(
            container.volumeMounts?.find((m) => m.name === 'data'),
            { name: 'data', mountPath: '/var/lib/hoopgate' },
          );
          assert.deepEqual(
            deployment.spec.template.spec.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim,
            {
              claimName: 'hoopgate-data',
            },
          );
          assert.deepEqual(pdbs, [], 'a budget on a single replica could only block node drains');
        } else {
          assert.equal(deployment.spec.replicas, 2);
          assert.deepEqual(deployment.spec.strategy, {
            type: 'RollingUpdate',
            rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
          });
          assert.deepEqual(pvcs, []);
          assert.deepEqual(
            pdbs.map((p) => p.spec.minAvailable),
            [1],
          );
          if (target === 'overlays/mongodb') {
            assert.deepEqual(store?.valueFrom?.secretKeyRef, { name: 'hoopgate-secrets', key: 'MONGODB_URI' });
          } else {
            assert.equal(store, undefined, 'the base leaves the store to an overlay');
          }
        }
      });

      test('the config is valid for hoopgate with the environment the pod gets', () => {
        const deployment = gatewayDeployment(objects);
        const env = podEnvironment(deployment);
        assert.equal(env.POD_NAMESPACE, 'hoopgate');
        if (target === 'base') {
          // The base leaves the store to an overlay, and alone is refused, saying what is missing.
          assert.throws(
            () => podConfig(objects, target, env),
            (error: unknown) => {
              assert.ok(error instanceof ConfigError);
              assert.deepEqual(error.issues, [
                { path: 'audit.store', message: 'environment variable HOOPGATE_AUDIT_STORE is not set' },
              ]);
              return true;
            },
          );
          return;
        }
        const config = podConfig(objects, target, env);
        assert.equal(
          config.audit.store,
          target === 'overlays/embedded' ? 'sqlite:/var/lib/hoopgate/hoopgate.db' : fakeSecrets.MONGODB_URI,
        );
        assert.equal(config.gateway.namespace, 'hoopgate', 'requests into the gateway namespace are refused');
        assert.equal(config.slack?.botToken, fakeSecrets.SLACK_BOT_TOKEN);
        assert.equal(config.slack?.signingSecret, fakeSecrets.SLACK_SIGNING_SECRET);
      });

      test('with file checks on, the only problems are the pod-only files, all of them mounted', () => {
        const deployment = gatewayDeployment(objects);
        const container = gatewayContainer(deployment);
        const env = { ...podEnvironment(deployment), HOOPGATE_AUDIT_STORE: 'sqlite::memory:' };
        const text = configText(objects, deployment);
        const issues = (() => {
          try {
            parseConfig(text, env, { checkFiles: true });
            return [];
          } catch (error) {
            assert.ok(error instanceof ConfigError);
            return error.issues;
          }
        })();
        const missing = issues.map((issue) => {
          const file = /^file not found: (\/.+)$/.exec(issue.message)?.[1];
          assert.ok(file, `unexpected problem ${issue.path}: ${issue.message}`);
          return file;
        });
        const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';
        for (const file of missing) {
          const mounted =
            file.startsWith(`${serviceAccountDir}/`) ||
            (container.volumeMounts ?? []).some((m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`));
          assert.ok(mounted, `${file} is mounted into the pod`);
        }
        assert.deepEqual(missing.sort(), [
          '/etc/hoopgate/keys/checkpoint-signing-key.pem',
          '/etc/hoopgate/tls/tls.crt',
          '/etc/hoopgate/tls/tls.key',
          `${serviceAccountDir}/ca.crt`,
          `${serviceAccountDir}/token`,
        ]);
      });

      test('the config names only accounts that exist and that the gateway may mint tokens for', () => {
        const env = { ...podEnvironment(gatewayDeployment(objects)), HOOPGATE_AUDIT_STORE: 'sqlite::memory:' };
        const config = podConfig(objects, target, env);
        const accounts = configAccounts(config);
        assert.deepEqual(accounts, agentAccounts.map((a) => `agents/${a}`).sort());
        for (const account of accounts) {
          const [namespace, name] = account.split('/') as [string, string];
          theOne(objects, 'ServiceAccount', name, namespace);
        }
        const minter = theOne<RoleObject>(objects, 'Role', 'hoopgate-token-minter', 'agents');
        assert.deepEqual(
          sorted(minter.rules?.flatMap((r) => r.resourceNames ?? [])),
          accounts.map((a) => a.split('/')[1]),
        );
      });

      test('the config points at the in-cluster API server, and the drain fits the grace period', () => {
        const deployment = gatewayDeployment(objects);
        const container = gatewayContainer(deployment);
        const env = { ...podEnvironment(deployment), HOOPGATE_AUDIT_STORE: 'sqlite::memory:' };
        const config = podConfig(objects, target, env);
        assert.deepEqual(config.clusters, [
          {
            name: 'in-cluster',
            server: 'https://kubernetes.default.svc',
            caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
            insecureSkipTLSVerify: false,
            credentials: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' },
            tokens: 'tokenRequest',
            tokenTTLMs: 600_000,
            staticTokens: {},
          },
        ]);
        assert.equal(config.listen.port, container.ports?.[0]?.containerPort);
        assert.deepEqual(config.listen.tls, {
          certFile: '/etc/hoopgate/tls/tls.crt',
          keyFile: '/etc/hoopgate/tls/tls.key',
        });
        // SIGTERM comes after preStop; the drain must end before the kubelet's SIGKILL.
        const preStopMs = (container.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
        const graceMs = (deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
        assert.equal(config.gateway.drainTimeoutMs, 30_000);
        assert.ok(preStopMs + config.gateway.drainTimeoutMs < graceMs);
      });
    });
  }
});

describe('image and compose files (read, not built: no Docker engine here)', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  test('the image runs the same command as the Deployment, as uid 10001, on 8443', () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(runtime, /^USER 10001:10001$/m);
    assert.match(runtime, /^EXPOSE 8443$/m);
    assert.match(runtime, /^ENTRYPOINT \["node", "bin\/hoopgate\.js"\]$/m);
    assert.match(runtime, /^CMD \["serve", "--config", "\/etc\/hoopgate\/hoopgate\.yaml"\]$/m);
    assert.match(dockerfile, /^FROM \$\{NODE_IMAGE\} AS build$/m);
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  });

  test('everything the build copies from the context exists and is not docker-ignored', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
    assert.deepEqual(sources, ['package.json', 'package-lock.json', 'tsconfig.base.json', 'packages/gateway']);
    for (const source of sources) {
      assert.ok(existsSync(join(root, source)), `${source} exists`);
      assert.ok(!dockerignore.includes(source), `${source} is not ignored`);
    }
    assert.ok(existsSync(join(root, 'packages', 'gateway', 'bin', 'hoopgate.js')));
    for (const ignored of ['**/node_modules', '**/dist', '.git', 'test', '**/*.db', 'packages/sim', 'packages/demo'])
      assert.ok(dockerignore.includes(ignored), `${ignored} is ignored`);
  });

  test('the runtime stage holds the compiled gateway only: dist/, bin/, package.json, node_modules', () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const copied = [...runtime.matchAll(/^COPY --from=build (\S+) (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(copied, [
      '/src/packages/gateway/package.json',
      '/src/packages/gateway/bin',
      '/src/packages/gateway/dist',
      '/src/node_modules',
    ]);
    assert.doesNotMatch(runtime, /tsx|\/src\/packages\/gateway\/src/, 'no TypeScript sources or tsx at run time');
    // The production install names only the gateway workspace and omits dev dependencies.
    assert.match(dockerfile, /^RUN npm ci --workspace hoopgate --omit=dev /m);
  });

  test("the gateway's production dependencies (package-lock.json) hold no test-world package", () => {
    // npm ls --omit=dev -w hoopgate, computed from the lock file: the transitive closure of the
    // gateway's dependencies, resolved the way node does (nearest node_modules first).
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<
        string,
        {
          dependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
          link?: boolean;
          resolved?: string;
        }
      >;
    };
    const resolveFrom = (from: string, name: string): string | undefined => {
      for (
        let dir = from;
        ;
        dir = dir.includes('/node_modules/') ? dir.slice(0, dir.lastIndexOf('/node_modules/')) : ''
      ) {
        const candidate = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`;
        if (lock.packages[candidate] !== undefined) return candidate;
        if (dir === '') return undefined;
      }
    };
    const seen = new Set<string>();
    const queue = ['packages/gateway'];
    while (queue.length > 0) {
      const at = queue.pop() as string;
      const entry = lock.packages[at];
      assert.ok(entry, `${at} is in the lock file`);
      for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
        const found = resolveFrom(at, name);
        if (found === undefined || seen.has(found)) continue;
        seen.add(found);
        queue.push(lock.packages[found]?.link === true ? (lock.packages[found]?.resolved ?? found) : found);
      }
    }
    const names = new Set(
      [...seen].map((path) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)),
    );
    assert.ok(
      names.has('koa') && names.has('better-sqlite3') && names.has('undici'),
      "the closure holds the gateway's own dependencies",
    );
    for (const forbidden of [
      'oidc-provider',
      'node-forge',
      'selfsigned',
      'tsx',
      'typescript',
      'esbuild',
      '@hoopgate/sim',
      '@hoopgate/demo',
    ]) {
      assert.ok(!names.has(forbidden), `${forbidden} is not a production dependency of the gateway`);
    }
  });

  test('compose: mongo as a single-node replica set, the gateway hardened with the bind-mounted config', () => {
    interface ComposeService {
      image?: string;
      command?: string[];
      healthcheck?: { test: string[] };
      depends_on?: Record<string, { condition: string }>;
      environment?: Record<string, string>;
      volumes?: string[];
      user?: string;
      read_only?: boolean;
      cap_drop?: string[];
    }
    const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, ComposeService>;
    };
    const mongo = compose.services.mongo;
    const gateway = compose.services.hoopgate;
    assert.ok(mongo && gateway);
    assert.equal(mongo.image, 'mongo:7');
    assert.deepEqual(mongo.command?.slice(0, 2), ['--replSet', 'rs0']);
    assert.ok(mongo.healthcheck?.test.join(' ').includes('rs.initiate'));
    assert.deepEqual(gateway.depends_on, { mongo: { condition: 'service_healthy' } });
    assert.match(
      gateway.environment?.HOOPGATE_AUDIT_STORE ?? '',
      /^mongodb:\/\/mongo:27017\/hoopgate\?replicaSet=rs0$/,
    );
    assert.equal(gateway.user, '10001:10001');
    assert.equal(gateway.read_only, true);
    assert.deepEqual(gateway.cap_drop, ['ALL']);
    for (const volume of gateway.volumes ?? []) {
      const source = volume.split(':')[0] ?? '';
      assert.ok(existsSync(join(root, source)), `bind-mount source ${source} exists`);
    }
    assert.ok(gateway.volumes?.includes('./deploy/compose/hoopgate.yaml:/etc/hoopgate/hoopgate.yaml:ro'));

    // Its config is valid with the environment compose gives (the certificate and token files are the operator's).
    const config = parseConfig(
      readFileSync(join(root, 'deploy', 'compose', 'hoopgate.yaml'), 'utf8'),
      {
        ...gateway.environment,
        KUBE_SERVER: 'https://203.0.113.10:6443',
        SLACK_BOT_TOKEN: fakeSecrets.SLACK_BOT_TOKEN,
        SLACK_SIGNING_SECRET: fakeSecrets.SLACK_SIGNING_SECRET,
      },
      { source: 'deploy/compose/hoopgate.yaml', checkFiles: false },
    );
    assert.equal(config.audit.store, 'mongodb://mongo:27017/hoopgate?replicaSet=rs0');
    assert.equal(config.clusters[0]?.server, 'https://203.0.113.10:6443');
    assert.deepEqual(configAccounts(config), agentAccounts.map((a) => `agents/${a}`).sort());
  });
});
