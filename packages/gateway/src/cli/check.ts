// `hoopgate check --config FILE`: validates a configuration the way `serve` will, and says so:
// exit 0 with a summary and any warnings, or every problem with its path and exit 1.
import { isAbsolute, resolve } from 'node:path';
import { configWarnings, describeConfig, loadConfig } from '../config/load.js';
import { HoopError } from '../lib/errors.js';
import { parseCommandArgs } from './args.js';
import type { CliCommand } from './io.js';

export const usage = `usage: hoopgate check --config FILE [--skip-files]

Validates a configuration: exit 0 when serve would accept it, or every problem with its path and exit 1.

options:
  -c, --config FILE   the configuration file (YAML; \${ENV} is expanded)
      --skip-files    do not read referenced files (CA, tokens, TLS, keys, kubeconfig, the SQLite
                      directory), to validate a configuration away from the machine it runs on
`;

export const run: CliCommand = async (argv, io) => {
  const args = parseCommandArgs('check', argv, {
    config: { type: 'string', short: 'c', required: true },
    'skip-files': { type: 'boolean' },
  });
  if (args.help) {
    io.stdout(usage);
    return 0;
  }
  const file = args.values.config;
  const path = isAbsolute(file) ? file : resolve(io.cwd, file);
  try {
    const config = await loadConfig(path, io.env, { source: file, checkFiles: !args.values['skip-files'] });
    io.stdout(`configuration ok: ${describeConfig(config)}\n`);
    for (const warning of configWarnings(config)) io.stderr(`warning: ${warning}\n`);
    return 0;
  } catch (error) {
    if (error instanceof HoopError && error.code === 'ERR_CONFIG') {
      io.stderr(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
};
