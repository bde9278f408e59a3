// The held call the approval tests ask about: an agent deleting namespace "prod" as identity
// ci-deployer (DELETE /api/v1/namespaces/prod, held because approval is required); each test
// overrides what it is about.
import type { HoldRequest } from '../../packages/gateway/src/approvals/service.js';

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
