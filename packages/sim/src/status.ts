// Status objects exactly as kube-apiserver writes them (apimachinery/pkg/api/errors): the sim's
// refusals must look like the real server's, without hoopgate's `hoopgate:` prefix.
import type { ResourceDef } from './resources.js';

export interface SimStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: { reason: string; message: string; field: string }[];
  retryAfterSeconds?: number;
}

/** Thrown inside the sim and written as the Status body by the HTTP layer. */
export class SimStatusError extends Error {
  readonly status: SimStatus;
  constructor(status: SimStatus) {
    super(status.message ?? status.reason ?? 'error');
    this.name = 'SimStatusError';
    this.status = status;
  }
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): SimStatusError {
  // Field order follows metav1.Status so a byte comparison with a real server's body is meaningful.
  const status: SimStatus = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details !== undefined) {
    const ordered: StatusDetails = {};
    if (details.name) ordered.name = details.name;
    if (details.group) ordered.group = details.group;
    if (details.kind) ordered.kind = details.kind;
    if (details.uid) ordered.uid = details.uid;
    if (details.causes) ordered.causes = details.causes;
    if (details.retryAfterSeconds !== undefined) ordered.retryAfterSeconds = details.retryAfterSeconds;
    const { code: _c, ...rest } = status;
    return new SimStatusError({ ...rest, details: ordered, code });
  }
  return new SimStatusError(status);
}

/** `pods`, `deployments.apps`: schema.GroupResource.String(). */
export function qualifiedResource(group: string, resource: string): string {
  return group === '' ? resource : `${resource}.${group}`;
}

export function unauthorized(): SimStatusError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export function forbidden(group: string, resource: string, name: string, why: string): SimStatusError {
  if (resource === '') return failure(403, 'Forbidden', `forbidden: ${why}`, {});
  const qr = qualifiedResource(group, resource);
  const message = name === '' ? `${qr} is forbidden: ${why}` : `${qr} ${JSON.stringify(name)} is forbidden: ${why}`;
  return failure(403, 'Forbidden', message, { name, group, kind: resource });
}

export function notFound(group: string, resource: string, name: string): SimStatusError {
  return failure(404, 'NotFound', `${qualifiedResource(group, resource)} ${JSON.stringify(name)} not found`, {
    name,
    group,
    kind: resource,
  });
}

/** What the API server answers for a path it does not serve. */
export function pathNotFound(): SimStatusError {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(def: ResourceDef, name: string): SimStatusError {
  return failure(
    409,
    'AlreadyExists',
    `${qualifiedResource(def.group, def.resource)} ${JSON.stringify(name)} already exists`,
    { name, group: def.group, kind: def.resource },
  );
}

export function conflict(
  def: ResourceDef,
  name: string,
  why = 'the object has been modified; please apply your changes to the latest version and try again',
): SimStatusError {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(def.group, def.resource)} ${JSON.stringify(name)}: ${why}`,
    { name, group: def.group, kind: def.resource },
  );
}

export interface FieldError {
  type: 'Required' | 'Invalid' | 'Forbidden' | 'NotSupported' | 'Duplicate';
  field: string;
  value?: unknown;
  detail: string;
}

const causeReason: Record<FieldError['type'], string> = {
  Required: 'FieldValueRequired',
  Invalid: 'FieldValueInvalid',
  Forbidden: 'FieldValueForbidden',
  NotSupported: 'FieldValueNotSupported',
  Duplicate: 'FieldValueDuplicate',
};

function fieldErrorText(e: FieldError): string {
  switch (e.type) {
    case 'Required':
      return `Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'Forbidden':
      return `Forbidden${e.detail ? `: ${e.detail}` : ''}`;
    case 'Duplicate':
      return `Duplicate value: ${JSON.stringify(e.value)}`;
    case 'NotSupported':
      return `Unsupported value: ${JSON.stringify(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
    case 'Invalid':
      return `Invalid value: ${typeof e.value === 'string' ? JSON.stringify(e.value) : String(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
  }
}

/** errors.NewInvalid: 422 with one cause per field error, kind is the Kind (`Pod`, `Deployment.apps`). */
export function invalid(group: string, kind: string, name: string, errors: FieldError[]): SimStatusError {
  const texts = errors.map((e) => `${e.field}: ${fieldErrorText(e)}`);
  const agg = texts.length === 1 ? texts[0]! : `[${texts.join(', ')}]`;
  const qk = group === '' ? kind : `${kind}.${group}`;
  return failure(422, 'Invalid', `${qk} ${JSON.stringify(name)} is invalid: ${agg}`, {
    name,
    group,
    kind,
    causes: errors.map((e) => ({ reason: causeReason[e.type], message: fieldErrorText(e), field: e.field })),
  });
}

export function badRequest(message: string): SimStatusError {
  return failure(400, 'BadRequest', message);
}

export function methodNotAllowed(group: string, resource: string): SimStatusError {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {
    group,
    kind: resource,
  });
}

export function notAcceptable(): SimStatusError {
  return failure(
    406,
    'NotAcceptable',
    'only the following media types are accepted: application/json, application/yaml',
  );
}

/** What create and update of a built-in kind accept (the serializers of the legacy scheme). */
export const objectMediaTypes = [
  'application/json',
  'application/yaml',
  'application/vnd.kubernetes.protobuf',
] as const;
/** What PATCH of a built-in kind accepts, in the handler's order (k8s.io/apiserver handlers/patch.go). */
export const patchMediaTypes = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;
/** What a kind without protobuf accepts (a custom resource): the answer for protobuf the sim cannot decode. */
export const textMediaTypes = ['application/json', 'application/yaml'] as const;

/** negotiation.NewUnsupportedMediaTypeError: the message lists what is accepted, not what was sent. */
export function unsupportedMediaType(accepted: readonly string[]): SimStatusError {
  return failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function tooLarge(): SimStatusError {
  return failure(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
}

export function expired(message: string): SimStatusError {
  return failure(410, 'Expired', message);
}

export function internalError(message: string): SimStatusError {
  return failure(500, 'InternalError', `Internal error occurred: ${message}`, {
    causes: [{ reason: '', message, field: '' }],
  });
}

export function forbiddenPlain(message: string, group: string, resource: string, name: string): SimStatusError {
  return failure(403, 'Forbidden', message, { name, group, kind: resource });
}

/** The Success Status a delete answers with for kinds whose registry does not return the object. */
export function deleteSuccess(def: ResourceDef, name: string, uid: string): Record<string, unknown> {
  const details: StatusDetails = { name };
  if (def.group) details.group = def.group;
  details.kind = def.resource;
  details.uid = uid;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}
