// What the sim knows per kind, in one table: the registry (from the discovery fixtures) plus the
// behaviours the real registries have — defaulting, validation, field labels, what a delete returns.
import { randomBytes } from 'node:crypto';
import type { DiscoveredResource } from './discovery.js';
import type { FieldError } from './status.js';

// Objects are JSON; the sim handles many kinds generically, so their shape is not typed further.
export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON of any kind, read generically

export interface ResourceDef extends DiscoveredResource {
  /** Version-independent storage key: `group/resource` (`/pods`, `apps/deployments`). */
  storeKey: string;
  apiVersion: string;
  listKind: string;
}

export interface Registry {
  lookup(group: string, version: string, resource: string): ResourceDef | undefined;
  byStoreKey(storeKey: string): ResourceDef | undefined;
  byKind(apiVersion: string, kind: string): ResourceDef | undefined;
  all(): readonly ResourceDef[];
}

/** Create-only review APIs answered by handlers, not stored. */
export const virtualResources = new Set([
  'authorization.k8s.io/subjectaccessreviews',
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authorization.k8s.io/selfsubjectrulesreviews',
  'authorization.k8s.io/localsubjectaccessreviews',
  'authentication.k8s.io/tokenreviews',
  'authentication.k8s.io/selfsubjectreviews',
]);

export function createRegistry(discovered: readonly DiscoveredResource[]): Registry {
  const defs = discovered.map((d): ResourceDef => ({
    ...d,
    storeKey: `${d.group}/${d.resource}`,
    apiVersion: d.group ? `${d.group}/${d.version}` : d.version,
    listKind: `${d.kind}List`,
  }));
  const byGvr = new Map(defs.map((d) => [`${d.group}/${d.version}/${d.resource}`, d]));
  const byKey = new Map<string, ResourceDef>();
  for (const d of defs) if (!byKey.has(d.storeKey)) byKey.set(d.storeKey, d);
  const byKindMap = new Map(defs.map((d) => [`${d.apiVersion}/${d.kind}`, d]));
  return {
    lookup: (g, v, r) => byGvr.get(`${g}/${v}/${r}`),
    byStoreKey: (k) => byKey.get(k),
    byKind: (apiVersion, kind) => byKindMap.get(`${apiVersion}/${kind}`),
    all: () => defs,
  };
}

export interface KindTraits {
  /** Registries with ReturnDeletedObject (pods, serviceaccounts) answer a delete with the object; others with a Success Status. */
  returnsDeletedObject?: boolean;
  /** PUT/PATCH of the main resource keeps the stored status (status subresource). */
  hasStatusSubresource?: boolean;
  /** metadata.generation is set to 1 and bumped on spec changes. */
  tracksGeneration?: boolean;
  /** PUT of a missing object creates it (RBAC registries allow this). */
  allowCreateOnUpdate?: boolean;
  nameRule?: 'subdomain' | 'label' | 'path';
  fieldLabels?: (o: Obj) => Record<string, string>;
  defaults?: (o: Obj, ctx: { now: string; isCreate: boolean }) => void;
  validate?: (o: Obj) => FieldError[];
  /** Top-level fields the kind has (strict field validation rejects others). */
  fields?: string[];
}

const podFields = (o: Obj): Record<string, string> => ({
  'spec.nodeName': o['spec']?.['nodeName'] ?? '',
  'spec.restartPolicy': o['spec']?.['restartPolicy'] ?? '',
  'spec.schedulerName': o['spec']?.['schedulerName'] ?? '',
  'spec.serviceAccountName': o['spec']?.['serviceAccountName'] ?? '',
  'spec.hostNetwork': String(o['spec']?.['hostNetwork'] ?? false),
  'status.phase': o['status']?.['phase'] ?? '',
  'status.podIP': o['status']?.['podIP'] ?? '',
  'status.nominatedNodeName': o['status']?.['nominatedNodeName'] ?? '',
});

function defaultContainer(c: Obj): void {
  if (c['image'] !== undefined && c['imagePullPolicy'] === undefined) {
    const image = String(c['image']);
    const tagged = /:[^/]+$/.test(image.split('@')[0] ?? '') && !image.endsWith(':latest');
    c['imagePullPolicy'] = tagged || image.includes('@') ? 'IfNotPresent' : 'Always';
  }
  c['resources'] ??= {};
  c['terminationMessagePath'] ??= '/dev/termination-log';
  c['terminationMessagePolicy'] ??= 'File';
  for (const p of (c['ports'] ?? []) as Obj[]) p['protocol'] ??= 'TCP';
}

function defaultPodSpec(spec: Obj): void {
  for (const c of (spec['containers'] ?? []) as Obj[]) defaultContainer(c);
  for (const c of (spec['initContainers'] ?? []) as Obj[]) defaultContainer(c);
  spec['restartPolicy'] ??= 'Always';
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['securityContext'] ??= {};
  spec['schedulerName'] ??= 'default-scheduler';
}

/** A pod as a kubelet would report it: the sim has no scheduler or kubelet, so every pod runs at once. */
function runPod(o: Obj, now: string): void {
  const spec = (o['spec'] ??= {});
  spec['serviceAccountName'] ??= 'default';
  spec['serviceAccount'] ??= spec['serviceAccountName'];
  spec['nodeName'] ??= 'sim-node';
  spec['enableServiceLinks'] ??= true;
  spec['preemptionPolicy'] ??= 'PreemptLowerPriority';
  spec['priority'] ??= 0;
  spec['tolerations'] ??= [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  ];
  const containers: Obj[] = spec['containers'] ?? [];
  const ip = `10.244.0.${(parseInt(randomBytes(1).toString('hex'), 16) % 250) + 2}`;
  o['status'] = {
    phase: 'Running',
    conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(
      (type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now }),
    ),
    hostIP: '172.18.0.2',
    hostIPs: [{ ip: '172.18.0.2' }],
    podIP: ip,
    podIPs: [{ ip }],
    startTime: now,
    qosClass: 'BestEffort',
    containerStatuses: containers.map((c) => ({
      name: c['name'],
      state: { running: { startedAt: now } },
      lastState: {},
      ready: true,
      restartCount: 0,
      image: c['image'],
      imageID: `${String(c['image'] ?? '').split(':')[0]}@sha256:${'0'.repeat(64)}`,
      containerID: `containerd://${randomBytes(32).toString('hex')}`,
      started: true,
    })),
  };
}

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateName(rule: KindTraits['nameRule'], name: string): FieldError[] {
  if (rule === 'path') {
    if (name === '.' || name === '..')
      return [{ type: 'Invalid', field: 'metadata.name', value: name, detail: `may not be '${name}'` }];
    if (name.includes('/') || name.includes('%'))
      return [
        {
          type: 'Invalid',
          field: 'metadata.name',
          value: name,
          detail: `may not contain '${name.includes('/') ? '/' : '%'}'`,
        },
      ];
    return [];
  }
  if (rule === 'label') {
    if (name.length > 63 || !dns1123Label.test(name))
      return [
        {
          type: 'Invalid',
          field: 'metadata.name',
          value: name,
          detail:
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        },
      ];
    return [];
  }
  if (name.length > 253 || !dns1123Subdomain.test(name))
    return [
      {
        type: 'Invalid',
        field: 'metadata.name',
        value: name,
        detail:
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      },
    ];
  return [];
}

const rbacRuleFields = ['apiVersion', 'kind', 'metadata', 'rules', 'aggregationRule'];
const rbacBindingFields = ['apiVersion', 'kind', 'metadata', 'subjects', 'roleRef'];

export const kindTraits: Record<string, KindTraits> = {
  '/pods': {
    returnsDeletedObject: true,
    hasStatusSubresource: true,
    fieldLabels: podFields,
    fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
    defaults: (o, { now, isCreate }) => {
      defaultPodSpec((o['spec'] ??= {}));
      if (isCreate) runPod(o, now);
    },
    validate: (o) => {
      const cs = o['spec']?.['containers'];
      if (!Array.isArray(cs) || cs.length === 0) return [{ type: 'Required', field: 'spec.containers', detail: '' }];
      const errs: FieldError[] = [];
      cs.forEach((c: Obj, i: number) => {
        if (!c['name']) errs.push({ type: 'Required', field: `spec.containers[${i}].name`, detail: '' });
        if (!c['image']) errs.push({ type: 'Required', field: `spec.containers[${i}].image`, detail: '' });
      });
      return errs;
    },
  },
  '/serviceaccounts': {
    returnsDeletedObject: true,
    fields: ['apiVersion', 'kind', 'metadata', 'secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
  },
  '/namespaces': {
    returnsDeletedObject: true,
    hasStatusSubresource: true,
    nameRule: 'label',
    fieldLabels: (o) => ({ 'status.phase': o['status']?.['phase'] ?? '' }),
    fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
    defaults: (o) => {
      o['metadata']['labels'] = {
        ...(o['metadata']['labels'] ?? {}),
        'kubernetes.io/metadata.name': o['metadata']['name'],
      };
      o['spec'] = { finalizers: ['kubernetes'], ...(o['spec'] ?? {}) };
      o['status'] ??= { phase: 'Active' };
    },
  },
  '/secrets': {
    fieldLabels: (o) => ({ type: o['type'] ?? '' }),
    fields: ['apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'],
    defaults: (o) => {
      // Secret.stringData is write-only: merged into data (base64), never stored (core/v1 conversion).
      const sd = o['stringData'];
      if (sd && typeof sd === 'object') {
        o['data'] = { ...(o['data'] ?? {}) };
        for (const [k, v] of Object.entries(sd as Record<string, unknown>))
          o['data'][k] = Buffer.from(String(v), 'utf8').toString('base64');
      }
      delete o['stringData'];
      o['type'] ??= 'Opaque';
    },
  },
  '/configmaps': { fields: ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable'] },
  '/events': {
    fieldLabels: (o) => ({
      'involvedObject.kind': o['involvedObject']?.['kind'] ?? '',
      'involvedObject.namespace': o['involvedObject']?.['namespace'] ?? '',
      'involvedObject.name': o['involvedObject']?.['name'] ?? '',
      'involvedObject.uid': o['involvedObject']?.['uid'] ?? '',
      'involvedObject.apiVersion': o['involvedObject']?.['apiVersion'] ?? '',
      'involvedObject.resourceVersion': o['involvedObject']?.['resourceVersion'] ?? '',
      'involvedObject.fieldPath': o['involvedObject']?.['fieldPath'] ?? '',
      reason: o['reason'] ?? '',
      reportingComponent: o['reportingComponent'] ?? '',
      source: o['source']?.['component'] ?? '',
      type: o['type'] ?? '',
    }),
  },
  'apps/deployments': {
    hasStatusSubresource: true,
    tracksGeneration: true,
    fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
    defaults: (o) => {
      const spec = (o['spec'] ??= {});
      spec['replicas'] ??= 1;
      spec['strategy'] ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
      spec['revisionHistoryLimit'] ??= 10;
      spec['progressDeadlineSeconds'] ??= 600;
      if (spec['template']) {
        spec['template']['metadata'] ??= {};
        defaultPodSpec((spec['template']['spec'] ??= {}));
      }
    },
    validate: (o) => {
      const errs: FieldError[] = [];
      const sel = o['spec']?.['selector'];
      if (!sel) errs.push({ type: 'Required', field: 'spec.selector', detail: '' });
      const labels: Record<string, string> = o['spec']?.['template']?.['metadata']?.['labels'] ?? {};
      const wanted: Record<string, string> = sel?.['matchLabels'] ?? {};
      if (sel && !Object.entries(wanted).every(([k, v]) => labels[k] === v)) {
        errs.push({
          type: 'Invalid',
          field: 'spec.template.metadata.labels',
          value: `map[${Object.entries(labels)
            .map(([k, v]) => `${k}:${v}`)
            .join(' ')}]`,
          detail: '`selector` does not match template `labels`',
        });
      }
      const cs = o['spec']?.['template']?.['spec']?.['containers'];
      if (!Array.isArray(cs) || cs.length === 0)
        errs.push({ type: 'Required', field: 'spec.template.spec.containers', detail: '' });
      return errs;
    },
  },
  'rbac.authorization.k8s.io/roles': { allowCreateOnUpdate: true, nameRule: 'path', fields: rbacRuleFields },
  'rbac.authorization.k8s.io/clusterroles': { allowCreateOnUpdate: true, nameRule: 'path', fields: rbacRuleFields },
  'rbac.authorization.k8s.io/rolebindings': {
    allowCreateOnUpdate: true,
    nameRule: 'path',
    fields: rbacBindingFields,
    validate: validateRoleRef,
  },
  'rbac.authorization.k8s.io/clusterrolebindings': {
    allowCreateOnUpdate: true,
    nameRule: 'path',
    fields: rbacBindingFields,
    validate: validateRoleRef,
  },
};

function validateRoleRef(o: Obj): FieldError[] {
  const ref = o['roleRef'];
  if (!ref) return [{ type: 'Required', field: 'roleRef', detail: '' }];
  const errs: FieldError[] = [];
  if (ref['apiGroup'] !== 'rbac.authorization.k8s.io')
    errs.push({
      type: 'NotSupported',
      field: 'roleRef.apiGroup',
      value: ref['apiGroup'] ?? '',
      detail: 'supported values: "rbac.authorization.k8s.io"',
    });
  if (!['Role', 'ClusterRole'].includes(ref['kind']))
    errs.push({
      type: 'NotSupported',
      field: 'roleRef.kind',
      value: ref['kind'] ?? '',
      detail: 'supported values: "Role", "ClusterRole"',
    });
  if (!ref['name']) errs.push({ type: 'Required', field: 'roleRef.name', detail: '' });
  return errs;
}

export function traitsOf(storeKey: string): KindTraits {
  return kindTraits[storeKey] ?? {};
}

/** Field labels every kind has, plus the kind's own (a list's fieldSelector may use only these). */
export function fieldLabelsOf(storeKey: string, o: Obj): Record<string, string> {
  const own = traitsOf(storeKey).fieldLabels?.(o) ?? {};
  const meta: Record<string, string> = { 'metadata.name': o['metadata']?.['name'] ?? '' };
  if (o['metadata']?.['namespace'] !== undefined || storeKey !== '/namespaces')
    meta['metadata.namespace'] = o['metadata']?.['namespace'] ?? '';
  return { ...meta, ...own };
}

export function supportedFieldLabels(storeKey: string): string[] {
  const sample: Obj = { metadata: {}, spec: {}, status: {} };
  return ['metadata.name', 'metadata.namespace', ...Object.keys(traitsOf(storeKey).fieldLabels?.(sample) ?? {})];
}
