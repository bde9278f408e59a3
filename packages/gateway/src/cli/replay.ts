// `hoopgate replay SESSION_ID --config FILE`: one session's timeline — each call's time, verb,
// resource, decision, status and approver — read from the audit store.
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { describeRequest, formatTimeline, streamSessionEvents } from '../audit/events.js';
import type { AuditEvent, ExecFrame } from '../audit/types.js';
import { loadConfig as loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { parseCommandArgs, UsageError } from './args.js';
import type { CliCommand } from './io.js';

export const usage = `usage: hoopgate replay SESSION_ID --config FILE [--speed N] [--no-timing]

Prints one audit session's timeline: time, verb, resource, decision, status, approver; then plays
each recorded exec/attach terminal with its original timing (--speed 2 plays twice as fast,
--no-timing prints it at once). Session ids are in 'hoopgate audit export' (sessionId).
`;

/** Longest pause replayed between two frames: an idle terminal is not worth waiting for. */
const maxPauseMs = 2_000;

export interface ReplayCliDeps {
  loadConfig(path: string, env: Readonly<Record<string, string | undefined>>): Promise<Config>;
  openStore(url: string): Promise<Store>;
}

const defaults: ReplayCliDeps = {
  loadConfig: (path, env) => loadConfigFile(path, env),
  openStore: (url) =>
    createStore(url, { replicaId: `cli-${randomUUID().slice(0, 8)}`, pageCacheKb: 2048, writerThread: false }),
};

export function createReplayCommand(deps: ReplayCliDeps = defaults): CliCommand {
  return async (argv, io) => {
    const args = parseCommandArgs(
      'replay',
      argv,
      {
        config: { type: 'string', short: 'c', required: true },
        speed: { type: 'string', default: '1' },
        'no-timing': { type: 'boolean' },
      },
      { names: ['SESSION_ID'] },
    );
    const speed = Number(args.values.speed);
    if (!(speed > 0))
      throw new UsageError('replay', `--speed must be a positive number, got ${JSON.stringify(args.values.speed)}`);
    if (args.help) {
      io.stdout(usage);
      return 0;
    }
    const sessionId = args.positionals[0] as string;
    const file = args.values.config;
    const config = await deps.loadConfig(isAbsolute(file) ? file : resolve(io.cwd, file), io.env);
    const store = await deps.openStore(config.audit.store);
    try {
      // Two streamed passes (issue #17): the header's figures, then the timeline; only exec events are kept.
      let first: AuditEvent | undefined;
      let last: AuditEvent | undefined;
      let count = 0;
      const clusterNames = new Set<string>();
      for await (const event of streamSessionEvents(store.audit, sessionId)) {
        first ??= event;
        last = event;
        count += 1;
        clusterNames.add(event.cluster);
      }
      if (count === 0) {
        io.stderr(
          `hoopgate replay: no session ${JSON.stringify(sessionId)} in the audit store (see 'hoopgate audit export' for session ids)\n`,
        );
        return 1;
      }
      const identity = first?.identity ?? 'unknown identity';
      const clusters = [...clusterNames].join(', ');
      io.stdout(
        `session ${sessionId} · ${identity} · cluster ${clusters} · ${first?.time ?? ''} … ${last?.outcome?.time ?? last?.time ?? ''} · ${count} call${count === 1 ? '' : 's'}\n`,
      );
      if (first?.kubectlCommand !== undefined) io.stdout(`command: ${first.kubectlCommand}\n`);
      const terminals: AuditEvent[] = [];
      for await (const event of streamSessionEvents(store.audit, sessionId)) {
        io.stdout(`${formatTimeline([event])[0] ?? ''}\n`);
        if ((event.frames ?? 0) > 0) terminals.push(event);
        await io.drain?.();
      }
      for (const event of terminals) {
        await playTerminal(store, event, { timing: !args.values['no-timing'], speed, io });
      }
      return 0;
    } finally {
      await store.close();
    }
  };
}

export const run: CliCommand = createReplayCommand();

/** Plays one exec/attach session's recorded frames: output as it appeared, input marked with `> `. */
async function playTerminal(
  store: Store,
  event: AuditEvent,
  options: { timing: boolean; speed: number; io: Parameters<CliCommand>[1] },
): Promise<void> {
  const records = await store.audit.listRecords({ eventIds: [event.eventId], kinds: ['frames'] });
  const frames = records.flatMap((r) => (Array.isArray(r.data['frames']) ? (r.data['frames'] as ExecFrame[]) : []));
  if (frames.length === 0) return;
  const tty = /[?&]tty=(true|1)(&|$)/.test(event.path);
  const first = frames[0]?.at ?? 0;
  const last = frames[frames.length - 1]?.at ?? first;
  options.io.stdout(
    `\n--- terminal of ${describeRequest(event)} · ${frames.length} frames · ${((last - first) / 1000).toFixed(1)}s${tty ? ' · tty' : ''} ---\n`,
  );
  let previous = first;
  for (const frame of frames) {
    if (options.timing) {
      const pause = Math.min((frame.at - previous) / options.speed, maxPauseMs);
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    previous = frame.at;
    const text = frame.base64 === true ? Buffer.from(frame.data, 'base64').toString('utf8') : frame.data;
    switch (frame.stream) {
      case 'stdout':
      case 'stderr':
        options.io.stdout(text);
        break;
      case 'stdin':
        // A tty echoes what is typed on stdout already; without one, show the input explicitly.
        if (!tty) options.io.stdout(text.replace(/^(?=.)/gm, '> '));
        break;
      case 'error':
        options.io.stdout(`\n[${text}]\n`);
        break;
      case 'resize':
        break;
    }
  }
  options.io.stdout('\n--- end of terminal ---\n');
}
