// `hoopgate replay SESSION_ID --config FILE`: one session's timeline — each call's time, verb,
// resource, decision, status and approver — read from the audit store.
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { formatTimeline, sessionEvents } from '../audit/events.js';
import { loadConfig as loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';

export const usage = `usage: hoopgate replay SESSION_ID --config FILE

Prints one audit session's timeline: time, verb, resource, decision, status, approver.
Session ids are in 'hoopgate audit export' (sessionId).
`;

export interface ReplayCliDeps {
  loadConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<Config>;
  openStore(url: string): Promise<Store>;
}

const defaults: ReplayCliDeps = {
  loadConfig: (path, env) => loadConfigFile(path, env),
  openStore: (url) => createStore(url, { replicaId: `cli-${randomUUID().slice(0, 8)}` }),
};

export function createReplayCommand(deps: ReplayCliDeps = defaults): CliCommand {
  return async (argv, io) => {
    const args = parseCommandArgs('replay', argv, { config: { type: 'string', short: 'c', required: true } }, { names: ['SESSION_ID'] });
    if (args.help) {
      io.stdout(usage);
      return 0;
    }
    const sessionId = args.positionals[0] as string;
    const file = args.values.config;
    const config = await deps.loadConfig(isAbsolute(file) ? file : resolve(io.cwd, file), io.env);
    const store = await deps.openStore(config.audit.store);
    try {
      const events = await sessionEvents(store.audit, sessionId);
      if (events.length === 0) {
        io.stderr(`hoopgate replay: no session ${JSON.stringify(sessionId)} in the audit store (see 'hoopgate audit export' for session ids)\n`);
        return 1;
      }
      const first = events[0];
      const last = events[events.length - 1];
      const identity = first?.identity ?? 'unknown identity';
      const clusters = [...new Set(events.map((e) => e.cluster))].join(', ');
      io.stdout(
        `session ${sessionId} · ${identity} · cluster ${clusters} · ${first?.time ?? ''} … ${last?.outcome?.time ?? last?.time ?? ''} · ${events.length} call${events.length === 1 ? '' : 's'}\n`,
      );
      if (first?.kubectlCommand !== undefined) io.stdout(`command: ${first.kubectlCommand}\n`);
      for (const line of formatTimeline(events)) io.stdout(`${line}\n`);
      return 0;
    } finally {
      await store.close();
    }
  };
}

export const run: CliCommand = createReplayCommand();
