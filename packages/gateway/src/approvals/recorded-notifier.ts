// Every end state of a held request joins the audit chain before it is announced (Slack or the
// demo's terminal): the outcome is evidence even when the announcement fails or nobody listens.
import type { ApprovalNotifier } from './service.js';
import type { ApprovalRecord } from './types.js';

export function createRecordedNotifier(deps: {
  /** Appends the outcome to the audit chain (the recorder's recordApproval). */
  recordOutcome: (record: ApprovalRecord) => void;
  /** Who hears about it; absent: the outcome is only recorded. */
  announce?: ApprovalNotifier | undefined;
}): ApprovalNotifier {
  const { announce } = deps;
  return {
    posted: async (record) => announce?.posted(record),
    finalize: async (record) => {
      deps.recordOutcome(record);
      await announce?.finalize(record);
    },
    ...(announce?.threadReply === undefined ? {} : { threadReply: announce.threadReply.bind(announce) }),
  };
}
