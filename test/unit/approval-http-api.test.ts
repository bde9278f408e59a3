// The operators' approval API: authentication, approver groups, decisions and every refusal as a Status.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { createApprovalsRoute } from '../../packages/gateway/src/http/approvals-route.js';
import {
  createApprovalService,
  type ApprovalService,
  type HoldRequest,
} from '../../packages/gateway/src/approvals/service.js';
import type { Principal } from '../../packages/gateway/src/authn/principal.js';
import { HoopError } from '../../packages/gateway/src/lib/errors.js';
import { createMemoryApprovalRepository, type MemoryApprovalRepository } from '../helpers/memory-approvals.js';
import { holdRequest as heldDelete } from '../helpers/hold-request.js';

function principal(subject: string, groups: string[], email?: string): Principal {
  return {
    issuer: 'https://idp.test',
    subject,
    username: subject,
    groups,
    claims: {},
    expiresAt: Date.now() + 60_000,
    ...(email === undefined ? {} : { email }),
  };
}

const principals: Record<string, Principal> = {
  oncall: principal('alice', ['platform-oncall'], 'alice@example.com'),
  oncall2: principal('bob', ['platform-oncall']),
  dev: principal('carol', ['developers'], 'carol@example.com'),
  owner: principal('dave', ['platform-oncall'], 'Agent-Owner@example.com'),
  agent: principal('agent-7', ['platform-oncall', 'ci-deployers']),
  // The approver group's name, in a token of another configured issuer.
  foreign: { ...principal('mallory', ['platform-oncall'], 'mallory@example.com'), issuer: 'https://other-idp.test' },
};

function holdRequest(): HoldRequest {
  return heldDelete({ sessionId: 's', email: 'agent-owner@example.com' });
}

interface StatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  code: number;
  reason: string;
  message: string;
}

function assertStatus(
  response: { status: number; body: unknown },
  code: number,
  reason: string,
  message: RegExp,
): void {
  assert.equal(response.status, code);
  const body = response.body as StatusBody;
  assert.equal(body.kind, 'Status');
  assert.equal(body.apiVersion, 'v1');
  assert.equal(body.status, 'Failure');
  assert.equal(body.code, code);
  assert.equal(body.reason, reason);
  assert.ok(body.message.startsWith('hoopgate: '), body.message);
  assert.match(body.message, message);
}

describe('approvals HTTP API', () => {
  let server: Server;
  let base: string;
  let repo: MemoryApprovalRepository;
  let service: ApprovalService;

  before(async () => {
    repo = createMemoryApprovalRepository();
    service = createApprovalService({
      repo,
      config: {
        timeoutMs: 20_000,
        minApprovals: 1,
        grantOptionsMs: [900_000],
        approvers: {
          slackUsers: [],
          slackUserGroups: [],
          oidcGroups: [{ issuer: 'https://idp.test', group: 'platform-oncall' }],
          people: [],
        },
        maxPendingPerIdentity: 10,
      },
      replicaId: 'r1',
      pollIntervalMs: 50,
    });
    const app = new Koa();
    app.use(
      createApprovalsRoute({
        service,
        approverGroups: [{ issuer: 'https://idp.test', group: 'platform-oncall' }],
        authenticate: async (ctx) => {
          const token = /^Bearer (\w+)$/.exec(ctx.get('authorization'))?.[1];
          const found = token === undefined ? undefined : principals[token];
          if (found === undefined)
            throw new HoopError('ERR_UNAUTHENTICATED', 'missing bearer token: send Authorization: Bearer <OIDC token>');
          return found;
        },
      }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hoop/v1/approvals`;
  });

  after(async () => {
    await service.shutdown('test over');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function call(
    path: string,
    options: { method?: string; token?: string; body?: string } = {},
  ): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${base}${path}`, {
      method: options.method ?? 'GET',
      headers: {
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        'content-type': 'application/json',
      },
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    return { status: response.status, body: await response.json() };
  }

  async function pending(): Promise<{ id: string; outcome: ReturnType<ApprovalService['hold']> }> {
    const before = new Set((await repo.list()).map((r) => r.id));
    const outcome = service.hold(holdRequest(), new AbortController().signal);
    for (;;) {
      const created = (await repo.list({ state: 'pending' })).find((r) => !before.has(r.id));
      if (created !== undefined) return { id: created.id, outcome };
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it('refuses without a token (401) and non-approvers (403), as Status objects', async () => {
    assertStatus(await call(''), 401, 'Unauthorized', /missing bearer token/);
    assertStatus(
      await call('', { token: 'dev' }),
      403,
      'Forbidden',
      /carol@example.com is not an approver.*platform-oncall/,
    );
    const { id, outcome } = await pending();
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'dev', body: '{}' }),
      403,
      'Forbidden',
      /not an approver/,
    );
    assert.equal((await repo.get(id))?.state, 'pending');
    assert.equal((await call(`/${id}/deny`, { method: 'POST', token: 'oncall', body: '{}' })).status, 200);
    assert.equal((await outcome).state, 'denied');
  });

  it('approver groups are per issuer: the same group name from another issuer makes no approver', async () => {
    assertStatus(
      await call('', { token: 'foreign' }),
      403,
      'Forbidden',
      /mallory@example.com is not an approver: not a member of approval.approvers.oidcGroups \(platform-oncall of https:\/\/idp.test\)/,
    );
    const { id, outcome } = await pending();
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'foreign', body: '{}' }),
      403,
      'Forbidden',
      /not an approver/,
    );
    assert.equal((await repo.get(id))?.state, 'pending');
    assert.equal((await repo.get(id))?.votes.length, 0);
    assert.equal((await call(`/${id}/deny`, { method: 'POST', token: 'oncall', body: '{}' })).status, 200);
    assert.equal((await outcome).state, 'denied');
  });

  it('lists, approves with a grant; a second decision is a 409', async () => {
    const { id, outcome } = await pending();
    const list = await call('?state=pending', { token: 'oncall' });
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body as { kind: string; items: Array<{ id: string }> }).items.map((r) => r.id),
      [id],
    );
    const one = await call(`/${id}`, { token: 'oncall' });
    assert.equal((one.body as { id: string }).id, id);
    const approved = await call(`/${id}/approve`, {
      method: 'POST',
      token: 'oncall',
      body: JSON.stringify({ reason: 'looks right', grant: '15m' }),
    });
    assert.equal(approved.status, 200);
    assert.equal((approved.body as { state: string }).state, 'approved');
    const result = await outcome;
    assert.equal(result.state, 'approved');
    assert.deepEqual(
      result.record.votes.map((v) => [v.user, v.label, v.via]),
      [['oidc:https://idp.test#alice', 'alice@example.com', 'api']],
    );
    assert.equal(result.record.decisionReason, 'looks right');
    const grant = repo.grants.at(-1);
    assert.equal(grant && grant.expiresAt - grant.createdAt, 900_000);
    assertStatus(
      await call(`/${id}/deny`, { method: 'POST', token: 'oncall2', body: '{}' }),
      409,
      'Conflict',
      /already decided/,
    );
  });

  it('/hoop/v1/grants lists grants bound to the requesting subject and revokes them (approvers only)', async () => {
    const { id, outcome } = await pending();
    assert.equal(
      (await call(`/${id}/approve`, { method: 'POST', token: 'oncall', body: JSON.stringify({ grant: '15m' }) }))
        .status,
      200,
    );
    assert.equal((await outcome).state, 'approved');
    const grants = (path: string, options: { method?: string; token?: string } = {}) =>
      call(`/../grants${path}`, options);
    assertStatus(await grants('', { token: 'dev' }), 403, 'Forbidden', /not an approver/);
    assertStatus(await grants('', { token: 'foreign' }), 403, 'Forbidden', /not an approver/);
    const listed = await grants('', { token: 'oncall' });
    assert.equal(listed.status, 200);
    const items = (
      listed.body as { kind: string; items: Array<{ id: string; subject: string; issuer: string; approvalId: string }> }
    ).items;
    const grant = items.find((g) => g.approvalId === id);
    assert.ok(grant !== undefined);
    assert.deepEqual([grant.id, grant.subject, grant.issuer], [`g-${id}`, 'agent-7', 'https://idp.test']);
    assertStatus(await grants(`/${grant.id}`, { method: 'DELETE', token: 'dev' }), 403, 'Forbidden', /not an approver/);
    const revoked = await grants(`/${grant.id}`, { method: 'DELETE', token: 'oncall' });
    assert.equal(revoked.status, 200);
    assert.equal((revoked.body as { revokedBy: string }).revokedBy, 'alice@example.com');
    assertStatus(
      await grants(`/${grant.id}`, { method: 'DELETE', token: 'oncall' }),
      404,
      'NotFound',
      /no active grant .* already revoked/,
    );
    assert.ok(
      !((await grants('', { token: 'oncall' })).body as { items: Array<{ id: string }> }).items.some(
        (g) => g.id === grant.id,
      ),
      'gone from the active list',
    );
    assert.ok(
      ((await grants('?all=true', { token: 'oncall' })).body as { items: Array<{ id: string }> }).items.some(
        (g) => g.id === grant.id,
      ),
      'kept with ?all=true',
    );
    // (an earlier test's grant for the same call may still be active; the revoked one never answers)
    assert.notEqual(
      (
        await service.findGrant(
          { identity: 'ci-deployer', issuer: 'https://idp.test', subject: 'agent-7' },
          'prod',
          holdRequest().request,
        )
      )?.id,
      grant.id,
    );
    assertStatus(await grants('', { method: 'POST', token: 'oncall' }), 405, 'MethodNotAllowed', /use GET/);
  });

  it('refuses self-approval by email or by subject, unknown ids, bad bodies, bad grants, wrong methods', async () => {
    const { id, outcome } = await pending();
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'owner', body: '{}' }),
      403,
      'Forbidden',
      /your own agent/,
    );
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'agent', body: '{}' }),
      403,
      'Forbidden',
      /your own agent/,
    );
    assertStatus(
      await call('/nope/approve', { method: 'POST', token: 'oncall', body: '{}' }),
      404,
      'NotFound',
      /approval "nope" not found/,
    );
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'oncall', body: 'not json' }),
      400,
      'BadRequest',
      /not JSON/,
    );
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'oncall', body: '{"grant":"forever"}' }),
      400,
      'BadRequest',
      /grant must be a duration/,
    );
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'oncall', body: '{"grant":"1d"}' }),
      400,
      'BadRequest',
      /approval.grantOptions/,
    );
    assertStatus(
      await call(`/${id}/approve`, { method: 'POST', token: 'oncall', body: '{"admin":true}' }),
      400,
      'BadRequest',
      /unknown field/,
    );
    assertStatus(await call(`/${id}/approve`, { token: 'oncall' }), 405, 'MethodNotAllowed', /use POST/);
    assertStatus(await call('?state=weird', { token: 'oncall' }), 400, 'BadRequest', /state must be one of/);
    const current = await repo.get(id);
    assert.equal(current?.state, 'pending');
    assert.equal(current?.votes.length, 0);
    assert.equal(
      (await call(`/${id}/deny`, { method: 'POST', token: 'oncall2', body: '{"reason":"no"}' })).status,
      200,
    );
    const result = await outcome;
    assert.equal(result.state, 'denied');
    assert.equal(result.record.decidedBy, 'bob');
  });
});

describe("approvals HTTP API: a ticket's state by the service's clock", () => {
  it('GET …/ID as the requester judges expiry by the service clock, not the wall clock', async () => {
    // The service lives in 2001: an approved ticket there is usable for its TTL after the decision.
    let now = 1_000_000_000_000;
    const service = createApprovalService({
      repo: createMemoryApprovalRepository(),
      config: {
        timeoutMs: 20_000,
        minApprovals: 1,
        grantOptionsMs: [900_000],
        approvers: { slackUsers: [], slackUserGroups: [], oidcGroups: [], people: [] },
        maxPendingPerIdentity: 10,
        ticketTtlMs: 60_000,
      },
      replicaId: 'r1',
      pollIntervalMs: 50,
      clock: () => now,
    });
    const requester = principal('agent-7', ['ci-deployers']);
    const app = new Koa();
    app.use(
      createApprovalsRoute({
        service,
        approverGroups: [],
        authenticate: async () => requester,
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hoop/v1/approvals`;
    try {
      const { record } = await service.openTicket(heldDelete({ fingerprint: 'fp-clock' }));
      const decided = await service.decide(record.id, {
        approve: true,
        actor: { user: 'U1', label: 'oncall', at: now, via: 'slack' },
        approver: true,
      });
      assert.equal(decided.ok, true);
      const view = async () => (await (await fetch(`${url}/${record.id}`)).json()) as { state: string };
      now += 30_000;
      assert.equal(
        (await view()).state,
        'approved',
        'within the TTL by the service clock (the wall clock is years later)',
      );
      now += 60_000;
      assert.equal((await view()).state, 'expired');
    } finally {
      await service.shutdown('test over');
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
