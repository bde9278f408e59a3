// A decision (split out of service.ts): deny at once, or add a vote and approve once the quorum is
// reached — then the grant ("Approve for …") is created before the holds are woken, so the agent's
// next call already finds it. Every end state is a compare-and-set: one replica wins it.
import type { ApprovalCore, TransitionPatch } from './core.js';
import { samePerson } from './people.js';
import type { DecideInput, DecideResult } from './service-types.js';
import { grantIdOf } from './types.js';

export function createDecide(core: ApprovalCore): (id: string, input: DecideInput) => Promise<DecideResult> {
  const { repo, notifier, config, clock, logger, move, expire, finalize } = core;

  async function decide(id: string, input: DecideInput): Promise<DecideResult> {
    const record = await repo.get(id);
    if (record === null) return { ok: false, why: 'not-found' };
    if (!input.approver) return { ok: false, why: 'not-approver', record };
    const sameEmail =
      input.email !== undefined &&
      record.email !== undefined &&
      input.email.trim().toLowerCase() === record.email.trim().toLowerCase();
    const sameSubject = input.subject !== undefined && input.subject === record.subject;
    if (input.approve && (sameEmail || sameSubject)) return { ok: false, why: 'self-approval', record };
    if (record.state !== 'pending') return { ok: false, why: 'not-pending', record };
    const now = clock();
    if (record.expiresAt <= now) {
      await expire(record);
      return { ok: false, why: 'not-pending', record: (await repo.get(id)) ?? record };
    }
    if (input.approve && input.grantMs !== undefined && !config.grantOptionsMs.includes(input.grantMs)) {
      return { ok: false, why: 'invalid-grant', record };
    }

    if (!input.approve) {
      const patch: TransitionPatch = { decidedBy: input.actor.label, decidedAt: now };
      if (input.reason !== undefined && input.reason.trim() !== '') patch.decisionReason = input.reason.trim();
      const denied = await move(id, 'denied', patch);
      if (denied === null) return { ok: false, why: 'not-pending', record: (await repo.get(id)) ?? record };
      return { ok: true, record: denied };
    }

    const voted = await repo.addVote(id, { ...input.actor, at: now });
    if (voted === null) {
      const current = (await repo.get(id)) ?? record;
      if (current.state === 'pending' && current.votes.some((v) => samePerson(v, input.actor))) {
        return { ok: false, why: 'already-voted', record: current };
      }
      return { ok: false, why: current.state === 'pending' ? 'already-voted' : 'not-pending', record: current };
    }
    // Each stored vote is a different person (the store refuses a second vote sharing a person key).
    const voters = voted.votes.length;
    if (voters < config.minApprovals) {
      try {
        await notifier?.threadReply?.(
          voted,
          `${input.actor.label} approved (${voters} of ${config.minApprovals} approvals)`,
        );
      } catch (error) {
        logger.warn({ err: error, approvalId: id }, 'could not post the vote to the thread');
      }
      return { ok: true, record: voted };
    }
    const patch: TransitionPatch = {
      decidedBy: voted.votes.map((v) => v.label).join(', '),
      decidedAt: now,
    };
    if (input.reason !== undefined && input.reason.trim() !== '') patch.decisionReason = input.reason.trim();
    if (input.grantMs !== undefined) patch.grantMs = input.grantMs;
    // Finalized only after the grant exists, so the agent's next call already finds it.
    const approved = await move(id, 'approved', patch, true);
    if (approved === null) {
      // Another vote completed the quorum at the same moment (ours counts), or a deny won the race.
      const current = (await repo.get(id)) ?? voted;
      return current.state === 'approved'
        ? { ok: true, record: current }
        : { ok: false, why: 'not-pending', record: current };
    }
    try {
      if (input.grantMs !== undefined) {
        const r = approved.request;
        await repo.createGrant({
          id: grantIdOf(id),
          approvalId: id,
          identity: approved.identity,
          // Bound to the principal that asked, not every subject the identity maps.
          issuer: approved.issuer ?? '',
          subject: approved.subject,
          cluster: r.cluster,
          verb: r.verb,
          apiGroup: r.apiGroup,
          resource: r.resource,
          subresource: r.subresource,
          namespace: r.namespace,
          name: r.name,
          serviceAccount: approved.serviceAccount,
          grantedBy: patch.decidedBy ?? input.actor.label,
          createdAt: now,
          expiresAt: now + input.grantMs,
        });
      }
    } finally {
      await finalize(approved);
    }
    return { ok: true, record: approved };
  }

  return decide;
}
