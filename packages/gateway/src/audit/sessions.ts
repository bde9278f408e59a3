// Session grouping: one kubectl invocation (its Kubectl-Session header) is one session, with an id
// every replica derives alike; calls without the header group per identity within an idle window.
import { createHash, randomUUID } from 'node:crypto';

export interface SessionTracker {
  sessionFor(identity: string, kubectlSession: string | undefined, time: number): string;
}

/** Deterministic: the same identity and Kubectl-Session give the same id on any replica. */
export function kubectlSessionId(identity: string, kubectlSession: string): string {
  return `k-${createHash('sha256').update(`${identity}\u0000${kubectlSession}`).digest('hex').slice(0, 32)}`;
}

export function createSessionTracker(options: {
  idleMs: number;
  maxIdentities?: number;
  newId?: () => string;
}): SessionTracker {
  const open = new Map<string, { id: string; last: number }>();
  const maxIdentities = options.maxIdentities ?? 10_000;
  const newId = options.newId ?? (() => `s-${randomUUID()}`);

  function prune(now: number): void {
    for (const [identity, entry] of open) if (now - entry.last > options.idleMs) open.delete(identity);
  }

  return {
    sessionFor(identity, kubectlSession, time) {
      if (kubectlSession !== undefined && kubectlSession !== '') return kubectlSessionId(identity, kubectlSession);
      const entry = open.get(identity);
      if (entry !== undefined && time - entry.last <= options.idleMs) {
        entry.last = Math.max(entry.last, time);
        return entry.id;
      }
      if (open.size >= maxIdentities) prune(time);
      const id = newId();
      open.set(identity, { id, last: time });
      return id;
    },
  };
}
