// Classifies a request line the way kube-apiserver's RequestInfoFactory does, for the sim's own
// authorizer and router. Grammar (after the path is percent-decoded and trimmed of `/`):
//   /api/{version}[/{specialVerb}][/namespaces/{ns}]/{resource}[/{name}[/{subresource}[/…]]]
//   /apis/{group}/{version}[/{specialVerb}][/namespaces/{ns}]/{resource}[/{name}[/{subresource}[/…]]]
//   specialVerb: watch | proxy (proxy takes no subresource); namespace subresources: status, finalize
// Anything shorter or under another prefix is a non-resource request whose verb is the lower-case method.
// GET without a name is list or watch (`watch` other than 0/false); DELETE without a name is deletecollection;
// a list/watch whose fieldSelector pins metadata.name carries that name (RBAC resourceNames apply).

export interface SimRequestInfo {
  isResourceRequest: boolean;
  path: string;
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** The path segments from the resource on (proxy sub-paths, `pods/x/log`, …). */
  parts: string[];
}

const specialVerbs = new Set(['proxy', 'watch']);
const namespaceSubresources = new Set(['status', 'finalize']);
const validPathSegment = (s: string) => s !== '' && s !== '.' && s !== '..' && !s.includes('/') && !s.includes('%');

export function parseRequestInfo(method: string, rawPath: string): SimRequestInfo {
  const q = rawPath.indexOf('?');
  const encodedPath = q < 0 ? rawPath : rawPath.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawPath.slice(q + 1));
  let path: string;
  try {
    path = decodeURIComponent(encodedPath);
  } catch {
    path = encodedPath;
  }
  const info: SimRequestInfo = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  let parts = trimmed === '' ? [] : trimmed.split('/');
  if (parts.length < 3) return info;
  const prefix = parts[0]!;
  if (prefix !== 'api' && prefix !== 'apis') return info;
  parts = parts.slice(1);
  let group = '';
  if (prefix === 'apis') {
    if (parts.length < 3) return info;
    group = parts[0]!;
    parts = parts.slice(1);
  }
  const resourceInfo: SimRequestInfo = {
    ...info,
    isResourceRequest: true,
    apiPrefix: prefix,
    apiGroup: group,
    apiVersion: parts[0]!,
  };
  parts = parts.slice(1);
  if (specialVerbs.has(parts[0]!)) {
    if (parts.length < 2) return info;
    resourceInfo.verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    const byMethod: Record<string, string> = {
      POST: 'create',
      GET: 'get',
      HEAD: 'get',
      PUT: 'update',
      PATCH: 'patch',
      DELETE: 'delete',
    };
    resourceInfo.verb = byMethod[method.toUpperCase()] ?? '';
  }
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      resourceInfo.namespace = parts[1]!;
      if (parts.length > 2 && !namespaceSubresources.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  resourceInfo.parts = parts;
  if (parts.length >= 3 && resourceInfo.verb !== 'proxy') resourceInfo.subresource = parts[2]!;
  if (parts.length >= 2) resourceInfo.name = parts[1]!;
  if (parts.length >= 1) resourceInfo.resource = parts[0]!;
  // A namespace's own writes are not "in" that namespace (fixtures/requestinfo.json).
  if (resourceInfo.resource === 'namespaces' && resourceInfo.subresource === '' && resourceInfo.verb === 'patch')
    resourceInfo.namespace = '';

  if (resourceInfo.name === '' && resourceInfo.verb === 'get') {
    const watch = query.get('watch');
    resourceInfo.verb = watch !== null && watch.toLowerCase() !== 'false' && watch !== '0' ? 'watch' : 'list';
    const pinned = exactFieldMatch(query.get('fieldSelector') ?? '', 'metadata.name');
    if (pinned !== undefined && validPathSegment(pinned)) resourceInfo.name = pinned;
  }
  if (resourceInfo.name === '' && resourceInfo.verb === 'delete') resourceInfo.verb = 'deletecollection';
  return resourceInfo;
}

/** The value a field selector requires `field` to equal, when it does so exactly (`f=v` or `f==v`). */
function exactFieldMatch(selector: string, field: string): string | undefined {
  for (const term of selector.split(',')) {
    const m = /^\s*([^!=\s]+)\s*(==|=)\s*(.*?)\s*$/.exec(term);
    if (m && m[1] === field) return m[3];
  }
  return undefined;
}
