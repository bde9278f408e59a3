// The operators' approval queue over HTTP: GET /hoop/v1/approvals[/ID], POST /hoop/v1/approvals/ID/approve|deny.
// OIDC-authenticated by the injected verifier; only members of approval.approvers.oidcGroups, except
// that an agent may GET its own request's state (ticket mode, issue #16); every refusal is a Kubernetes Status. Transport-neutral: a request in, an answer out; the Koa binding
// is http/approvals-route.ts.
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../authn/principal.js';
import type { ApproverGroup } from '../config/types.js';
import { parseDuration } from '../config/values.js';
import { buildStatus, statusFromError, type KubeStatus } from '../kube/status.js';
import { HoopError } from '../lib/errors.js';
import { personKeys } from './people.js';
import { ticketTtlOf } from './ticket.js';
import { isRequester, ticketView } from './ticket-view.js';
import type { ApprovalService, DecideRefusal } from './service.js';
import type { ApprovalState } from './types.js';

export const approvalsApiPrefix = '/hoop/v1/approvals';
/** GET /hoop/v1/grants[?all=true] lists grants; DELETE /hoop/v1/grants/ID revokes one. Same authentication. */
export const grantsApiPrefix = '/hoop/v1/grants';

/** One HTTP request, as the API needs it. */
export interface ApiRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: Readonly<Record<string, string | string[] | undefined>>;
  /** A request header's value, '' when absent. */
  get(name: string): string;
  /** The request body, read (bounded) only for a decision. */
  body: AsyncIterable<unknown>;
  /** The header list as received and the raw target, for the one bearer parser (authn/bearer.ts). */
  raw?: { headers: IncomingHttpHeaders; rawHeaders: readonly string[]; url: string };
  /** The request object the client limits admitted (the caller's identity slot is held until it ends). */
  scope?: object;
}

/** The answer: a status, a JSON body, and extra headers (Allow). */
export interface ApiAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface ApprovalsApiDeps {
  service: ApprovalService;
  /** Verifies the bearer token; throws a HoopError (401) when it cannot. */
  authenticate: (request: ApiRequest) => Promise<Principal>;
  /** Groups of one issuer each: the same name in another issuer's token makes no approver. */
  approverGroups: readonly ApproverGroup[];
  maxBodyBytes?: number;
}

const states: readonly ApprovalState[] = ['pending', 'approved', 'denied', 'expired', 'cancelled'];

function send(status: number, body: unknown): ApiAnswer {
  return { status, body };
}

/** A Status answer; a 429 carries its Retry-After (the per-identity limit), as the Kubernetes routes' do. */
function refuse(status: KubeStatus, headers?: Record<string, string>): ApiAnswer {
  const retryAfter = status.code === 429 ? Number(status.details?.['retryAfterSeconds']) : Number.NaN;
  const all =
    Number.isInteger(retryAfter) && retryAfter > 0 ? { ...headers, 'Retry-After': String(retryAfter) } : headers;
  return all === undefined
    ? { status: status.code, body: status }
    : { status: status.code, body: status, headers: all };
}

const refusals: Record<DecideRefusal, (id: string) => KubeStatus> = {
  'not-found': (id) => buildStatus(404, 'NotFound', `approval "${id}" not found`, { name: id, kind: 'approvals' }),
  'not-pending': (id) =>
    buildStatus(409, 'Conflict', `approval "${id}" is already decided; nothing was changed`, {
      name: id,
      kind: 'approvals',
    }),
  'already-voted': (id) =>
    buildStatus(
      409,
      'Conflict',
      `you already approved "${id}" (here, in Slack or the CLI as the same person); it needs another approver (approval.minApprovals)`,
      { name: id, kind: 'approvals' },
    ),
  'self-approval': (id) =>
    buildStatus(
      403,
      'Forbidden',
      `you cannot approve "${id}": it was made by your own agent (same email); ask another approver`,
      { name: id, kind: 'approvals' },
    ),
  'not-approver': (id) =>
    buildStatus(403, 'Forbidden', `you may not decide "${id}": not in approval.approvers.oidcGroups`, {
      name: id,
      kind: 'approvals',
    }),
  'invalid-grant': (id) =>
    buildStatus(400, 'BadRequest', `grant for "${id}" must be one of approval.grantOptions`, {
      name: id,
      kind: 'approvals',
    }),
};

async function readJson(
  req: AsyncIterable<unknown>,
  limit: number,
): Promise<{ ok: true; value: unknown } | { ok: false; why: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) return { ok: false, why: `request body exceeds ${limit} bytes` };
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, why: 'request body is not JSON; send {"reason": "…", "grant": "15m"}' };
  }
}

/** `{reason?: string, grant?: "15m" | 900000}` → validated input, or why not. */
export function parseDecisionBody(
  value: unknown,
): { ok: true; reason?: string; grantMs?: number } | { ok: false; why: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, why: 'request body must be a JSON object' };
  const body = value as Record<string, unknown>;
  const unknownKeys = Object.keys(body).filter((k) => k !== 'reason' && k !== 'grant');
  if (unknownKeys.length > 0)
    return { ok: false, why: `unknown field(s) ${unknownKeys.join(', ')}; accepted: reason, grant` };
  const out: { ok: true; reason?: string; grantMs?: number } = { ok: true };
  if (body['reason'] !== undefined) {
    if (typeof body['reason'] !== 'string' || body['reason'].length > 1000)
      return { ok: false, why: 'reason must be a string of at most 1000 characters' };
    out.reason = body['reason'];
  }
  const grant = body['grant'];
  if (grant !== undefined && grant !== null) {
    const ms =
      typeof grant === 'number' && Number.isSafeInteger(grant) && grant > 0
        ? grant
        : typeof grant === 'string'
          ? parseDuration(grant)
          : undefined;
    if (ms === undefined) return { ok: false, why: 'grant must be a duration such as "15m" (or milliseconds)' };
    out.grantMs = ms;
  }
  return out;
}

/** Member of a configured group of the issuer that signed the token. */
export function isOidcApprover(
  principal: Pick<Principal, 'issuer' | 'groups'>,
  groups: readonly ApproverGroup[],
): boolean {
  return groups.some((g) => g.issuer === principal.issuer && principal.groups.includes(g.group));
}

/** Handles one request; undefined when the path is not the approvals or grants API. */
export function createApprovalsApi(deps: ApprovalsApiDeps): (request: ApiRequest) => Promise<ApiAnswer | undefined> {
  const { service, authenticate, approverGroups } = deps;
  const maxBodyBytes = deps.maxBodyBytes ?? 16 * 1024;

  return async (ctx) => {
    if (ctx.path === grantsApiPrefix || ctx.path.startsWith(`${grantsApiPrefix}/`)) return grantsRoute(ctx);
    if (ctx.path !== approvalsApiPrefix && !ctx.path.startsWith(`${approvalsApiPrefix}/`)) return undefined;
    const rest = ctx.path
      .slice(approvalsApiPrefix.length)
      .split('/')
      .filter((s) => s !== '');
    const [id, action, extra] = rest;
    const isList = id === undefined;
    const isGet = id !== undefined && action === undefined;
    const isDecision = id !== undefined && (action === 'approve' || action === 'deny') && extra === undefined;
    if (!isList && !isGet && !isDecision)
      return refuse(buildStatus(404, 'NotFound', `no such approvals endpoint ${ctx.path}`));
    const wanted = isDecision ? 'POST' : 'GET';
    if (ctx.method !== wanted)
      return refuse(
        buildStatus(405, 'MethodNotAllowed', `${ctx.method} is not supported on ${ctx.path}; use ${wanted}`),
        { Allow: wanted },
      );

    if (isGet) return getOne(deps, ctx, id);
    const principal = await approver(ctx);
    if (!('issuer' in principal)) return principal;

    try {
      if (isList) {
        const state = ctx.query['state'];
        if (state !== undefined && (typeof state !== 'string' || !states.includes(state as ApprovalState))) {
          return refuse(buildStatus(400, 'BadRequest', `state must be one of ${states.join(', ')}`));
        }
        const items = await service.list(state === undefined ? undefined : { state: state as ApprovalState });
        return send(200, { kind: 'ApprovalList', items });
      }
      return await decideRoute(service, principal, id, action === 'approve', ctx.body, maxBodyBytes);
    } catch (error) {
      return refuse(statusFromError(asHoopError(error)));
    }
  };

  /** The caller when it is an approver; otherwise the refusal to answer. */
  async function approver(ctx: ApiRequest): Promise<Principal | ApiAnswer> {
    let principal: Principal;
    try {
      principal = await authenticate(ctx);
    } catch (error) {
      return refuse(statusFromError(asHoopError(error)));
    }
    if (!isOidcApprover(principal, approverGroups)) {
      const configured =
        approverGroups.length === 0
          ? 'none are configured'
          : approverGroups.map((g) => `${g.group} of ${g.issuer}`).join(', ');
      return refuse(
        buildStatus(
          403,
          'Forbidden',
          `${principal.email ?? principal.username} is not an approver: not a member of approval.approvers.oidcGroups (${configured})`,
        ),
      );
    }
    return principal;
  }

  async function grantsRoute(ctx: ApiRequest): Promise<ApiAnswer> {
    const [id, extra] = ctx.path
      .slice(grantsApiPrefix.length)
      .split('/')
      .filter((s) => s !== '');
    if (extra !== undefined) return refuse(buildStatus(404, 'NotFound', `no such grants endpoint ${ctx.path}`));
    const wanted = id === undefined ? 'GET' : 'DELETE';
    if (ctx.method !== wanted)
      return refuse(
        buildStatus(405, 'MethodNotAllowed', `${ctx.method} is not supported on ${ctx.path}; use ${wanted}`),
        { Allow: wanted },
      );
    const principal = await approver(ctx);
    if (!('issuer' in principal)) return principal;
    try {
      if (id === undefined) {
        const items = await service.grants({ all: ctx.query['all'] === 'true' });
        return send(200, { kind: 'GrantList', items });
      }
      const revoked = await service.revokeGrant(id, principal.email ?? principal.username);
      if (revoked === null) {
        return refuse(
          buildStatus(
            404,
            'NotFound',
            `no active grant "${id}" (unknown, expired or already revoked); list them with GET ${grantsApiPrefix}`,
            { name: id, kind: 'grants' },
          ),
        );
      }
      return send(200, revoked);
    } catch (error) {
      return refuse(statusFromError(asHoopError(error)));
    }
  }
}

/**
 * GET …/ID: an approver sees the whole record; an agent (issue #16) its own request's state only
 * (approvals/ticket-view.ts), and anyone else's ID is "not found", so existence is not revealed.
 */
async function getOne(deps: ApprovalsApiDeps, ctx: ApiRequest, id: string): Promise<ApiAnswer> {
  const { service, authenticate, approverGroups } = deps;
  let principal: Principal;
  try {
    principal = await authenticate(ctx);
  } catch (error) {
    return refuse(statusFromError(asHoopError(error)));
  }
  try {
    const record = await service.get(id);
    if (isOidcApprover(principal, approverGroups))
      return record === null ? refuse(refusals['not-found'](id)) : send(200, record);
    if (record === null || !isRequester(record, principal))
      return refuse(
        buildStatus(
          404,
          'NotFound',
          `approval "${id}" not found among your requests; use the ID from the answer to your call, with the token that made it`,
          { name: id, kind: 'approvals' },
        ),
      );
    return send(200, ticketView(record, service.clock(), ticketTtlOf(service.config)));
  } catch (error) {
    return refuse(statusFromError(asHoopError(error)));
  }
}

/** POST …/ID/approve|deny: the body checked, then the vote cast as the authenticated approver. */
async function decideRoute(
  service: ApprovalService,
  principal: Principal,
  id: string,
  approve: boolean,
  requestBody: AsyncIterable<unknown>,
  maxBodyBytes: number,
): Promise<ApiAnswer> {
  const who = principal.email ?? principal.username;
  const body = await readJson(requestBody, maxBodyBytes);
  if (!body.ok) return refuse(buildStatus(400, 'BadRequest', body.why));
  const input = parseDecisionBody(body.value);
  if (!input.ok) return refuse(buildStatus(400, 'BadRequest', input.why));
  if (!approve && input.grantMs !== undefined)
    return refuse(buildStatus(400, 'BadRequest', 'grant only applies to approve'));
  const result = await service.decide(id, {
    approve,
    actor: {
      user: `oidc:${principal.issuer}#${principal.subject}`,
      label: who,
      at: service.clock(),
      via: 'api',
      keys: personKeys(
        {
          oidc: { issuer: principal.issuer, subject: principal.subject },
          ...(principal.email === undefined || principal.emailVerified === false
            ? {}
            : { verifiedEmail: principal.email }),
        },
        service.config.approvers.people,
      ),
    },
    approver: true,
    subject: principal.subject,
    ...(principal.email === undefined ? {} : { email: principal.email }),
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    ...(input.grantMs === undefined ? {} : { grantMs: input.grantMs }),
  });
  if (!result.ok) return refuse(refusals[result.why](id));
  return send(200, result.record);
}

/** A HoopError as it is; anything else a generic 500 (the caller's log has no detail to add here). */
function asHoopError(error: unknown): HoopError {
  return error instanceof HoopError
    ? error
    : new HoopError('ERR_INTERNAL', 'internal error in the gateway; the gateway log has the details', { cause: error });
}
