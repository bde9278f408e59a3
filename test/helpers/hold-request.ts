// The held call the approval tests ask about: an agent deleting namespace "prod" as identity
// ci-deployer (DELETE /api/v1/namespaces/prod, held because approval is required), as a request to
// hold and as the approval record a store keeps; each test overrides what it is about.
import type { HoldRequest } from '../../packages/gateway/src/approvals/service.js';
import type { ApprovalRecord } from '../../packages/gateway/src/approvals/types.js';

export function holdRequest(overrides: Partial<HoldRequest> = {}): HoldRequest {
  return {
    sessionId: 'sess-1',
    identity: 'ci-deployer',
    issuer: 'https://idp.test',
    subject: 'agent-7',
    groups: ['ci-deployers'],
    request: {
      cluster: 'prod',
      method: 'DELETE',
      path: '/api/v1/namespaces/prod',
      verb: 'delete',
      apiGroup: '',
      resource: 'namespaces',
      subresource: '',
      namespace: '',
      name: 'prod',
    },
    heldBecause: 'approval-required',
    serviceAccount: 'agents/ci-deployer',
    ...overrides,
  };
}

/** The stored approval of that call, pending since `at` on replica r-1 (the store contract tests' fixture). */
export function approvalRecord(id: string, at: number, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id,
    state: 'pending',
    createdAt: at,
    expiresAt: at + 300_000,
    holder: 'r-1',
    ...holdRequest({ sessionId: 's-1', subject: 'bot', groups: ['ci'], serviceAccount: 'agents/ci-elevated' }),
    votes: [],
    ...overrides,
  };
}
