// The review APIs (SubjectAccessReview and friends, TokenReview, SelfSubjectReview): virtual
// resources answered from RBAC and the authenticator, never stored.
import { defaultAudience } from '../authn.js';
import { authorize, rulesFor, type Attributes, type RbacState, type UserInfo } from '../rbac.js';
import type { Obj, ResourceDef } from '../resources.js';
import { badRequest, invalid, methodNotAllowed } from '../status.js';
import type { Ctx } from './context.js';
import { readObjectBody, userOf } from './request.js';
import { sendPlain } from './respond.js';

function attributesFromSpec(spec: Obj, user: UserInfo): Attributes {
  const ra = spec['resourceAttributes'];
  if (ra) {
    return {
      user,
      verb: ra['verb'] ?? '',
      isResourceRequest: true,
      path: '',
      namespace: ra['namespace'] ?? '',
      apiGroup: ra['group'] ?? '',
      resource: ra['resource'] ?? '',
      subresource: ra['subresource'] ?? '',
      name: ra['name'] ?? '',
    };
  }
  const nra = spec['nonResourceAttributes'] ?? {};
  return {
    user,
    verb: nra['verb'] ?? '',
    isResourceRequest: false,
    path: nra['path'] ?? '',
    namespace: '',
    apiGroup: '',
    resource: '',
    subresource: '',
    name: '',
  };
}

function accessStatus(rbac: RbacState, a: Attributes): Obj {
  const d = authorize(rbac, a);
  const status: Obj = { allowed: d.allowed };
  if (d.reason) status['reason'] = d.reason;
  return status;
}

export async function serveReview(ctx: Ctx, def: ResourceDef): Promise<void> {
  if (ctx.info.verb !== 'create') throw methodNotAllowed(def.group, def.resource);
  const body = await readObjectBody(ctx);
  if (typeof body !== 'object' || body === null) throw badRequest('the object provided is not a JSON object');
  const review = body as Obj;
  const spec: Obj = review['spec'] ?? {};
  const base = { kind: def.kind, apiVersion: def.apiVersion, metadata: { creationTimestamp: null } };
  const needsOneOf = () => {
    if (!spec['resourceAttributes'] === !spec['nonResourceAttributes']) {
      throw invalid(def.group, def.kind, '', [
        {
          type: 'Invalid',
          field: 'spec.resourceAttributes',
          value: 'null',
          detail: 'exactly one of nonResourceAttributes or resourceAttributes must be specified',
        },
      ]);
    }
  };
  switch (def.resource) {
    case 'subjectaccessreviews':
    case 'localsubjectaccessreviews': {
      needsOneOf();
      if (!spec['user'] && !(spec['groups'] ?? []).length) {
        throw invalid(def.group, def.kind, '', [
          { type: 'Invalid', field: 'spec.user', value: '', detail: 'at least one of user or group must be specified' },
        ]);
      }
      if (
        def.resource === 'localsubjectaccessreviews' &&
        spec['resourceAttributes']?.['namespace'] !== ctx.info.namespace
      ) {
        throw invalid(def.group, def.kind, '', [
          {
            type: 'Invalid',
            field: 'spec.resourceAttributes.namespace',
            value: spec['resourceAttributes']?.['namespace'] ?? '',
            detail: 'must match metadata.namespace',
          },
        ]);
      }
      const user: UserInfo = { name: spec['user'] ?? '', groups: spec['groups'] ?? [] };
      const meta =
        def.resource === 'localsubjectaccessreviews'
          ? { namespace: ctx.info.namespace, creationTimestamp: null }
          : base.metadata;
      return sendPlain(ctx, 201, {
        ...base,
        metadata: meta,
        spec,
        status: accessStatus(ctx.deps.rbac, attributesFromSpec(spec, user)),
      });
    }
    case 'selfsubjectaccessreviews':
      needsOneOf();
      return sendPlain(ctx, 201, {
        ...base,
        spec,
        status: accessStatus(ctx.deps.rbac, attributesFromSpec(spec, userOf(ctx))),
      });
    case 'selfsubjectrulesreviews': {
      const rules = rulesFor(ctx.deps.rbac, userOf(ctx), spec['namespace'] ?? '');
      const status: Obj = {
        resourceRules: rules.resourceRules,
        nonResourceRules: rules.nonResourceRules,
        incomplete: false,
      };
      if (rules.errors.length) status['evaluationError'] = rules.errors.join(', ');
      return sendPlain(ctx, 201, { ...base, spec, status });
    }
    case 'tokenreviews': {
      const who = typeof spec['token'] === 'string' ? ctx.deps.authn.authenticate(spec['token']) : undefined;
      const status: Obj = who
        ? {
            authenticated: true,
            user: userInfoJson(who.user),
            audiences: spec['audiences']?.length ? spec['audiences'] : [defaultAudience],
          }
        : { user: {}, error: '[invalid bearer token, token lookup failed]' };
      return sendPlain(ctx, 201, { ...base, spec, status });
    }
    case 'selfsubjectreviews':
      return sendPlain(ctx, 201, { ...base, status: { userInfo: userInfoJson(userOf(ctx)) } });
    default:
      throw methodNotAllowed(def.group, def.resource);
  }
}

function userInfoJson(u: UserInfo): Obj {
  const out: Obj = { username: u.name };
  if (u.uid) out['uid'] = u.uid;
  out['groups'] = u.groups;
  return out;
}
