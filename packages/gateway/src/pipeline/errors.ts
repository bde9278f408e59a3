// Errors at the pipeline's edge: a HoopError is the answer as it is; anything else is an internal
// fault whose detail goes only to the log, never to the client or the audit record. A refusal's
// message is for the agent; its operatorDetail (config paths) goes only to the log line (issue #16).
import { createHash } from 'node:crypto';
import { HoopError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { whoMayHelp, type Helpers } from '../policy/help.js';
import type { StageRefusal } from './types.js';

export const INTERNAL_MESSAGE = 'internal error in the gateway; the gateway log has the details';

/** The error to answer with: a HoopError as it is; anything else a generic ERR_INTERNAL, logged in full. */
export function publicError(error: unknown, logger: Logger, context: Record<string, unknown> = {}): HoopError {
  if (error instanceof HoopError) return error;
  logger.error({ ...context, err: detailOf(error) }, 'internal error');
  return new HoopError('ERR_INTERNAL', INTERNAL_MESSAGE, { cause: error });
}

export function detailOf(error: unknown): string {
  return boundText(error instanceof Error ? error.message : String(error), 1024);
}

/**
 * At most `limit` characters of text; a longer one keeps its head and names its length and SHA-256,
 * so a record or log line has a fixed maximum size and still identifies what was sent (#12).
 */
export function boundText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const digest = createHash('sha256').update(text).digest('hex');
  return `${text.slice(0, limit)}…[${text.length} chars, sha256:${digest}]`;
}

/** A path as stored or logged before the caller is known: its first 256 characters and its SHA-256. */
export function boundPath(path: string): string {
  return boundText(path, 256);
}

/**
 * A 403 (policy, impersonation, approval denied/expired/cancelled, SPDY) with who may help appended,
 * unless its message already says (issue #16: every refusal names who may help).
 */
export function withHelp(refusal: StageRefusal, helpers: Helpers | (() => Helpers), auditId: string): StageRefusal {
  const { error } = refusal;
  if (error.status !== 403 || error.message.includes('Who may help:')) return refusal;
  const who = whoMayHelp(typeof helpers === 'function' ? helpers() : helpers, auditId);
  const message = `${error.message.replace(/[.;\s]+$/, '')}. ${who}`;
  return {
    ...refusal,
    error: new HoopError(error.code, message, {
      cause: error,
      details: error.details,
      operatorDetail: error.operatorDetail,
    }),
  };
}

/** An `approve` decision when the gateway has no approval channel: refused at once, saying so. */
export function noApprovalChannel(decisionMessage: string): string {
  const note = ' This gateway has no approval channel, so the call is refused now instead of held.';
  const help = decisionMessage.indexOf(' Who may help:');
  if (help === -1) return `${decisionMessage}${note}`;
  return `${decisionMessage.slice(0, help)}${note}${decisionMessage.slice(help)}`;
}

/**
 * The gateway's own credential refused (a SubjectAccessReview it may not create, a static token it
 * cannot read): the agent reads that its call is not at fault; the config key is the operator's.
 */
export function setupFault(error: HoopError, auditId: string): HoopError {
  if (error.code !== 'ERR_UPSTREAM_TOKEN') return error;
  return new HoopError(
    'ERR_UPSTREAM_TOKEN',
    `the gateway's own access to the cluster failed, not your call; run it again later or ask the gateway's operators, quoting Audit-Id ${auditId}`,
    { cause: error, details: error.details, operatorDetail: error.operatorDetail ?? error.message },
  );
}
