// The policy centre: pure, synchronous functions on plain data (no I/O, no Koa, no client-node).
export { mapIdentity, matchHolds, matchesEveryone, identityAllowsCluster, readClaim } from './identity.js';
export {
  authorizationAttributes,
  matchesRule,
  describeRequest,
  CONNECT_SUBRESOURCES,
  type AuthorizationAttributes,
} from './rules.js';
export {
  evaluate,
  needsRbac,
  noIdentityDecision,
  describeRule,
  isDiscoveryPath,
  type Decision,
  type EvaluateInput,
  type RbacAnswer,
} from './decision.js';
export { helpersFrom, whoMayHelp, approversText, type Helpers } from './help.js';
export { explainDecision, type Explanation, type ExplainRbac } from './explain.js';
