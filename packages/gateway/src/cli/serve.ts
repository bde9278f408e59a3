// `hoopgate serve --config FILE`: one gateway replica until SIGTERM/SIGINT, then a graceful drain.
import { configWarnings, loadConfig } from '../config/load.js';
import { startGateway } from '../gateway.js';
import { tuneHeapForServing } from '../lib/heap-tuning.js';
import { parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';

const usage = `usage: hoopgate serve --config FILE

Runs one gateway replica until SIGTERM or SIGINT, then drains: in-flight calls get
gateway.drainTimeout to finish, held approvals are answered 503 "gateway restarting, run again".
Validate the file first with: hoopgate check --config FILE
`;

export const run: CliCommand = async (argv, io) => {
  const args = parseCommandArgs('serve', argv, { config: { type: 'string', required: true } });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  const config = await loadConfig(args.values.config, io.env);
  for (const warning of configWarnings(config)) io.stderr(`hoopgate: warning: ${warning}\n`);
  tuneHeapForServing();
  const gateway = await startGateway({ config });
  io.stderr(`hoopgate: listening on ${gateway.url} (replica ${gateway.replicaId})\n`);
  await new Promise<void>((resolve) => {
    if (io.stopSignal.aborted) resolve();
    io.stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  io.stderr('hoopgate: draining…\n');
  await gateway.close();
  return 0;
};
