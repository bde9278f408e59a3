// JSON logs (pino), one line per request. Tokens and bodies are never logged: known secret-bearing
// fields are redacted by path, and callers log decisions and sizes, never payloads.
import { destination, pino, type DestinationStream } from 'pino';

export interface Logger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
  debug(obj: Record<string, unknown>, msg?: string): void;
}

const redactPaths = [
  'token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.token',
  '*.authorization',
  'body',
  '*.body',
  'secret',
  '*.secret',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'hoopgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (CLI commands that print their own output). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
