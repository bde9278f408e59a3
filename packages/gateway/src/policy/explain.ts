// Pure formatter for `hoopgate explain`: how a request is classified, what it is authorised as,
// whether RBAC was asked, and the decision with its rule and ServiceAccount: the operator's detail (the
// config path that decided) and the message the agent reads (issue #16).
import type { RequestInfo } from '../kube/request-info.js';
import type { Decision, RbacAnswer } from './decision.js';
import { authorizationAttributes, describeRequest } from './rules.js';

export type ExplainRbac =
  { state: 'not-needed' } | { state: 'offline' } | { state: 'asked'; user: string; answer: RbacAnswer };

export interface Explanation {
  method: string;
  rawPath: string;
  cluster: string;
  identity: { name: string; index: number; serviceAccount: string };
  /** Set when the gateway refuses the request before deciding (non-canonical path, unparsable URL). */
  refused?: { status: number; reason: string; message: string };
  info?: RequestInfo;
  rbac: ExplainRbac;
  /** The decision; offline with RBAC needed, the two it could be. */
  outcome?: { decision: Decision } | { ifAllowed: Decision; ifDenied: Decision };
}

const WIDTH = 16;

function line(label: string, value: string): string {
  return `${`${label}:`.padEnd(WIDTH)}${value}`;
}

function quoted(value: string): string {
  return value === '' ? '""' : value;
}

function classification(info: RequestInfo): string {
  if (!info.isResourceRequest) return `non-resource request: verb=${info.verb} path=${info.path}`;
  const fields: Array<[string, string]> = [
    ['verb', info.verb],
    ['apiGroup', info.apiGroup],
    ['apiVersion', info.apiVersion],
    ['namespace', info.namespace],
    ['resource', info.resource],
    ['subresource', info.subresource],
    ['name', info.name],
  ];
  return `resource request: ${fields.map(([key, value]) => `${key}=${quoted(value)}`).join(' ')}`;
}

function decisionLines(label: string, decision: Decision): string[] {
  const lines = [line(label, `${decision.effect} (${decision.reason})`)];
  const indent = ' '.repeat(WIDTH);
  if (decision.rule !== undefined) lines.push(`${indent}rule: ${decision.rule}`);
  if (decision.effect === 'allow') lines.push(`${indent}runs as serviceaccount ${decision.serviceAccount}`);
  if (decision.effect === 'approve')
    lines.push(`${indent}once approved, runs as serviceaccount ${decision.serviceAccount}`);
  if (decision.detail !== undefined) lines.push(`${indent}operator: ${decision.detail}`);
  lines.push(`${indent}agent reads: ${decision.message}`);
  return lines;
}

export function explainDecision(explanation: Explanation): string {
  const { identity } = explanation;
  const lines = [
    line('request', `${explanation.method} ${explanation.rawPath} (cluster ${explanation.cluster})`),
    line(
      'identity',
      `${identity.name} (identities[${identity.index}]), baseline serviceaccount ${identity.serviceAccount}`,
    ),
  ];
  if (explanation.refused !== undefined) {
    const { status, reason, message } = explanation.refused;
    lines.push(line('decision', `refused before any decision: ${status} ${reason}: ${message}`));
    return `${lines.join('\n')}\n`;
  }
  if (explanation.info !== undefined) {
    const info = explanation.info;
    lines.push(line('classified', classification(info)));
    const attrs = authorizationAttributes(info);
    const asVerb =
      attrs.kind === 'resource' && attrs.verb !== info.verb
        ? ` (verb ${attrs.verb}: ${info.subresource} opens a stream)`
        : '';
    lines.push(line('authorised as', `${describeRequest(info)}${asVerb}`));
  }
  const rbac = explanation.rbac;
  switch (rbac.state) {
    case 'not-needed':
      lines.push(line('rbac', 'not asked: the decision does not depend on RBAC'));
      break;
    case 'offline':
      lines.push(line('rbac', `not asked (offline)`));
      break;
    case 'asked':
      lines.push(
        line(
          'rbac',
          `asked the API server (SubjectAccessReview for ${rbac.user}): ${rbac.answer.allowed ? 'allowed' : 'not allowed'}${rbac.answer.reason ? ` (${rbac.answer.reason})` : ''}`,
        ),
      );
      break;
  }
  const outcome = explanation.outcome;
  if (outcome !== undefined) {
    if ('decision' in outcome) lines.push(...decisionLines('decision', outcome.decision));
    else
      lines.push(
        ...decisionLines('if rbac allows', outcome.ifAllowed),
        ...decisionLines('if rbac denies', outcome.ifDenied),
      );
  }
  return `${lines.join('\n')}\n`;
}
