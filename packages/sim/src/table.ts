// Server-side printing: the meta.k8s.io Table the API server returns when kubectl asks for
// `application/json;as=Table;v=v1;g=meta.k8s.io`. Columns follow kubernetes/pkg/printers/internalversion.
import type { Obj } from './resources.js';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const nameDoc =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const ageDoc =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

function col(name: string, type = 'string', priority = 0, description = '', format = ''): ColumnDefinition {
  return { name, type, format, description, priority };
}
const nameCol = col('Name', 'string', 0, nameDoc, 'name');
const ageCol = col('Age', 'string', 0, ageDoc);

/** apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8)
    return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(obj: Obj, now: number): string {
  const ts = obj['metadata']?.['creationTimestamp'];
  return typeof ts === 'string' ? humanDuration(now - Date.parse(ts)) : '<unknown>';
}

function podCells(p: Obj, now: number): unknown[] {
  const statuses: Obj[] = p['status']?.['containerStatuses'] ?? [];
  const total = (p['spec']?.['containers'] ?? []).length;
  const ready = statuses.filter((s) => s['ready']).length;
  const restarts = statuses.reduce((n, s) => n + (Number(s['restartCount']) || 0), 0);
  let reason: string = p['status']?.['reason'] ?? p['status']?.['phase'] ?? 'Unknown';
  for (const s of statuses) {
    if (s['state']?.['waiting']?.['reason']) reason = s['state']['waiting']['reason'];
    else if (s['state']?.['terminated']?.['reason']) reason = s['state']['terminated']['reason'];
  }
  if (p['metadata']?.['deletionTimestamp']) reason = 'Terminating';
  const gates: Obj[] = p['spec']?.['readinessGates'] ?? [];
  return [
    p['metadata']['name'],
    `${ready}/${total}`,
    reason,
    String(restarts),
    age(p, now),
    p['status']?.['podIP'] ?? '<none>',
    p['spec']?.['nodeName'] ?? '<none>',
    p['status']?.['nominatedNodeName'] ?? '<none>',
    gates.length ? `0/${gates.length}` : '<none>',
  ];
}

function containersOf(template: Obj | undefined): Obj[] {
  return template?.['spec']?.['containers'] ?? [];
}

function selectorString(sel: Obj | undefined): string {
  if (!sel) return '<none>';
  const parts = Object.entries((sel['matchLabels'] ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  for (const e of (sel['matchExpressions'] ?? []) as Obj[])
    parts.push(`${e['key']} ${String(e['operator']).toLowerCase()} (${(e['values'] ?? []).join(',')})`);
  return parts.length ? parts.join(',') : '<none>';
}

function bindingCells(b: Obj, now: number): unknown[] {
  const subjects: Obj[] = b['subjects'] ?? [];
  const pick = (kind: string) =>
    subjects
      .filter((s) => s['kind'] === kind)
      .map((s) => (kind === 'ServiceAccount' ? `${s['namespace'] ?? ''}/${s['name']}` : s['name']))
      .join(', ');
  return [
    b['metadata']['name'],
    `${b['roleRef']?.['kind']}/${b['roleRef']?.['name']}`,
    age(b, now),
    pick('User'),
    pick('Group'),
    pick('ServiceAccount'),
  ];
}

export interface Printer {
  columns: ColumnDefinition[];
  cells: (obj: Obj, now: number) => unknown[];
}

const printers: Record<string, Printer> = {
  '/pods': {
    columns: [
      nameCol,
      col('Ready', 'string', 0, 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'string', 0, 'The aggregate status of the containers in this pod.'),
      col(
        'Restarts',
        'string',
        0,
        'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
      ),
      ageCol,
      col('IP', 'string', 1, 'podIP is the IP address allocated to the pod.'),
      col('Node', 'string', 1, 'NodeName indicates in which node this pod is scheduled.'),
      col(
        'Nominated Node',
        'string',
        1,
        'nominatedNodeName is set only when this pod preempts other pods on the node.',
      ),
      col('Readiness Gates', 'string', 1, 'If specified, all readiness gates will be evaluated for pod readiness.'),
    ],
    cells: podCells,
  },
  '/namespaces': {
    columns: [nameCol, col('Status', 'string', 0, 'The status of the namespace'), ageCol],
    cells: (o, now) => [o['metadata']['name'], o['status']?.['phase'] ?? '', age(o, now)],
  },
  '/secrets': {
    columns: [
      nameCol,
      col('Type', 'string', 0, 'The type of the secret'),
      col('Data', 'string', 0, 'The number of entries in the secret'),
      ageCol,
    ],
    cells: (o, now) => [o['metadata']['name'], o['type'] ?? 'Opaque', Object.keys(o['data'] ?? {}).length, age(o, now)],
  },
  '/configmaps': {
    columns: [nameCol, col('Data', 'string', 0, 'Number of data in configmap'), ageCol],
    cells: (o, now) => [
      o['metadata']['name'],
      Object.keys(o['data'] ?? {}).length + Object.keys(o['binaryData'] ?? {}).length,
      age(o, now),
    ],
  },
  '/serviceaccounts': {
    columns: [
      nameCol,
      col(
        'Secrets',
        'string',
        0,
        'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.',
      ),
      ageCol,
    ],
    cells: (o, now) => [o['metadata']['name'], (o['secrets'] ?? []).length, age(o, now)],
  },
  'apps/deployments': {
    columns: [
      nameCol,
      col('Ready', 'string', 0, 'Number of the pod with ready state'),
      col(
        'Up-to-date',
        'string',
        0,
        'Total number of non-terminated pods targeted by this deployment that have the desired template spec.',
      ),
      col(
        'Available',
        'string',
        0,
        'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.',
      ),
      ageCol,
      col('Containers', 'string', 1, 'Names of each container in the template.'),
      col('Images', 'string', 1, 'Images referenced by each container in the template.'),
      col(
        'Selector',
        'string',
        1,
        'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.',
      ),
    ],
    cells: (o, now) => {
      const cs = containersOf(o['spec']?.['template']);
      return [
        o['metadata']['name'],
        `${o['status']?.['readyReplicas'] ?? 0}/${o['spec']?.['replicas'] ?? 1}`,
        o['status']?.['updatedReplicas'] ?? 0,
        o['status']?.['availableReplicas'] ?? 0,
        age(o, now),
        cs.map((c) => c['name']).join(','),
        cs.map((c) => c['image']).join(','),
        selectorString(o['spec']?.['selector']),
      ];
    },
  },
  'rbac.authorization.k8s.io/roles': {
    columns: [nameCol, col('Created At', 'date', 0, ageDoc)],
    cells: (o) => [o['metadata']['name'], o['metadata']['creationTimestamp']],
  },
  'rbac.authorization.k8s.io/clusterroles': {
    columns: [nameCol, col('Created At', 'date', 0, ageDoc)],
    cells: (o) => [o['metadata']['name'], o['metadata']['creationTimestamp']],
  },
  'rbac.authorization.k8s.io/rolebindings': {
    columns: [
      nameCol,
      col('Role', 'string', 0, 'Role references the role that this binding grants.'),
      ageCol,
      col('Users', 'string', 1, 'Users in the binding'),
      col('Groups', 'string', 1, 'Groups in the binding'),
      col('ServiceAccounts', 'string', 1, 'ServiceAccounts in the binding'),
    ],
    cells: bindingCells,
  },
  'rbac.authorization.k8s.io/clusterrolebindings': {
    columns: [
      nameCol,
      col('Role', 'string', 0, 'Role references the role that this binding grants.'),
      ageCol,
      col('Users', 'string', 1, 'Users in the binding'),
      col('Groups', 'string', 1, 'Groups in the binding'),
      col('ServiceAccounts', 'string', 1, 'ServiceAccounts in the binding'),
    ],
    cells: bindingCells,
  },
};

/** The default table of a kind without a printer (apiserver's DefaultTableConvertor). */
const defaultPrinter: Printer = {
  columns: [nameCol, col('Created At', 'date', 0, ageDoc)],
  cells: (o) => [o['metadata']['name'], o['metadata']['creationTimestamp']],
};

export function printerFor(storeKey: string): Printer {
  return printers[storeKey] ?? defaultPrinter;
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function partialObjectMetadata(obj: Obj, apiVersion = 'meta.k8s.io/v1'): Obj {
  return { kind: 'PartialObjectMetadata', apiVersion, metadata: obj['metadata'] };
}

export function buildTable(
  storeKey: string,
  objects: readonly Obj[],
  options: { now: number; include: IncludeObject; noHeaders?: boolean; tableVersion: string; listMeta?: Obj },
): Obj {
  const printer = printerFor(storeKey);
  const rows = objects.map((o) => {
    const row: Obj = { cells: printer.cells(o, options.now) };
    if (options.include === 'Object') row['object'] = o;
    else if (options.include === 'Metadata')
      row['object'] = partialObjectMetadata(o, `meta.k8s.io/${options.tableVersion}`);
    return row;
  });
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${options.tableVersion}`,
    metadata: options.listMeta ?? {},
    columnDefinitions: options.noHeaders ? null : printer.columns,
    rows,
  };
}
