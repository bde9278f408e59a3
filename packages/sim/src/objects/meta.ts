// The metadata the API server owns and the checks every write shares: field order on the wire,
// decoding (apiVersion/kind checks, unknown fields per fieldValidation), validation, managedFields
// and the one controller the simulator runs (Deployments roll out at once).
import { randomBytes } from 'node:crypto';
import { fieldsV1 } from '../patch.js';
import { traitsOf, validateName, type Obj, type Registry, type ResourceDef } from '../resources.js';
import { badRequest, invalid, type FieldError } from '../status.js';
import type { Store } from '../store.js';

export interface WriteOptions {
  dryRun: boolean;
  fieldManager: string;
  fieldValidation: 'Strict' | 'Warn' | 'Ignore';
  /** Set when the request addressed the status subresource. */
  subresource?: 'status';
}

export interface WriteResult {
  object: Obj;
  created: boolean;
  warnings: string[];
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
}

export interface OpsDeps {
  registry: Registry;
  store: Store;
  now: () => number;
  onNamespaceCreated: (name: string) => void;
}

const metaOrder = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
const metaFields = new Set(metaOrder);

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Field order as the API server serialises: kind, apiVersion, metadata (its own fixed order), the rest, status. */
export function canonical(def: ResourceDef, o: Obj): Obj {
  const meta: Obj = {};
  const m: Obj = o['metadata'] ?? {};
  for (const k of metaOrder) if (m[k] !== undefined) meta[k] = m[k];
  for (const k of Object.keys(m)) if (!metaFields.has(k)) meta[k] = m[k];
  const out: Obj = { kind: def.kind, apiVersion: def.apiVersion, metadata: meta };
  for (const [k, v] of Object.entries(o)) if (!['kind', 'apiVersion', 'metadata', 'status'].includes(k)) out[k] = v;
  if (o['status'] !== undefined) out['status'] = o['status'];
  return out;
}

export function withoutVolatile(o: Obj): string {
  const c = structuredClone(o);
  delete c['metadata']?.['managedFields'];
  delete c['metadata']?.['resourceVersion'];
  return JSON.stringify(c);
}

const nameChars = 'bcdfghjklmnpqrstvwxz2456789';
export function generatedSuffix(): string {
  return [...randomBytes(5)].map((b) => nameChars[b % nameChars.length]).join('');
}

function unknownFields(def: ResourceDef, o: Obj): string[] {
  const allowed = traitsOf(def.storeKey).fields;
  const out: string[] = [];
  if (allowed) for (const k of Object.keys(o)) if (!allowed.includes(k)) out.push(k);
  if (isObj(o['metadata']))
    for (const k of Object.keys(o['metadata'])) if (!metaFields.has(k)) out.push(`metadata.${k}`);
  return out;
}

export function decode(def: ResourceDef, body: unknown, opts: WriteOptions): { object: Obj; warnings: string[] } {
  if (!isObj(body))
    throw badRequest(
      `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: the object provided is not a JSON object`,
    );
  if (body['apiVersion'] !== undefined && body['apiVersion'] !== def.apiVersion) {
    throw badRequest(
      `the API version in the data (${body['apiVersion']}) does not match the expected API version (${def.apiVersion})`,
    );
  }
  if (body['kind'] !== undefined && body['kind'] !== def.kind) {
    throw badRequest(
      `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: the kind in the data (${body['kind']}) does not match the expected kind (${def.kind})`,
    );
  }
  if (body['metadata'] !== undefined && !isObj(body['metadata']))
    throw badRequest(
      `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: metadata is not an object`,
    );
  const object = structuredClone(body);
  object['metadata'] ??= {};
  const warnings: string[] = [];
  const unknown = unknownFields(def, object);
  if (unknown.length && opts.fieldValidation === 'Strict') {
    throw badRequest(
      `${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(', ')}`,
    );
  }
  if (unknown.length && opts.fieldValidation === 'Warn')
    warnings.push(...unknown.map((f) => `unknown field ${JSON.stringify(f)}`));
  for (const f of unknown) {
    if (f.startsWith('metadata.')) delete object['metadata'][f.slice('metadata.'.length)];
    else delete object[f];
  }
  if (def.storeKey === '/secrets') {
    for (const [k, v] of Object.entries((object['data'] ?? {}) as Obj)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
        throw badRequest(
          `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${Math.max(0, String(v).search(/[^A-Za-z0-9+/=]/))} (key ${JSON.stringify(k)})`,
        );
      }
    }
  }
  return { object, warnings };
}

export function validate(def: ResourceDef, o: Obj): void {
  const t = traitsOf(def.storeKey);
  const name: string = o['metadata']['name'];
  const errs: FieldError[] = [...validateName(t.nameRule ?? 'subdomain', name), ...(t.validate?.(o) ?? [])];
  const labels = o['metadata']['labels'];
  if (labels !== undefined && (!isObj(labels) || Object.values(labels).some((v) => typeof v !== 'string'))) {
    errs.push({
      type: 'Invalid',
      field: 'metadata.labels',
      value: JSON.stringify(labels),
      detail: 'label values must be strings',
    });
  }
  if (errs.length) throw invalid(def.group, def.kind, name, errs);
}

export function recordManager(
  deps: OpsDeps,
  def: ResourceDef,
  o: Obj,
  manager: string,
  operation: 'Update' | 'Apply',
  subresource?: string,
  appliedConfig?: Obj,
): void {
  const entries = ((o['metadata']['managedFields'] ?? []) as Obj[]).filter(
    (e) =>
      !(e['manager'] === manager && e['operation'] === operation && (e['subresource'] ?? '') === (subresource ?? '')),
  );
  const entry: Obj = {
    manager,
    operation,
    apiVersion: def.apiVersion,
    time: rfc3339(deps.now()),
    fieldsType: 'FieldsV1',
    fieldsV1: fieldsV1(appliedConfig ?? o),
  };
  if (subresource) entry['subresource'] = subresource;
  entries.push(entry);
  o['metadata']['managedFields'] = entries;
}

/** The controllers the sim has: a Deployment is at once fully rolled out. */
export function reconcile(deps: OpsDeps, def: ResourceDef, o: Obj): void {
  if (def.storeKey !== 'apps/deployments') return;
  const replicas = Number(o['spec']?.['replicas'] ?? 1);
  const now = rfc3339(deps.now());
  const status: Obj = { observedGeneration: o['metadata']['generation'] ?? 1 };
  if (replicas > 0)
    Object.assign(status, {
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    });
  const previous: Obj[] = o['status']?.['conditions'] ?? [];
  const since = (type: string) => previous.find((c) => c['type'] === type)?.['lastTransitionTime'] ?? now;
  status['conditions'] = [
    {
      type: 'Available',
      status: 'True',
      lastUpdateTime: now,
      lastTransitionTime: since('Available'),
      reason: 'MinimumReplicasAvailable',
      message: 'Deployment has minimum availability.',
    },
    {
      type: 'Progressing',
      status: 'True',
      lastUpdateTime: now,
      lastTransitionTime: since('Progressing'),
      reason: 'NewReplicaSetAvailable',
      message: `ReplicaSet "${o['metadata']['name']}-${(o['metadata']['uid'] ?? '').slice(0, 10).replace(/-/g, '')}" has successfully progressed.`,
    },
  ];
  o['status'] = status;
}
