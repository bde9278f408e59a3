// JSON logs (pino), one line per request. Tokens and bodies are never logged: known secret-bearing
// fields are redacted by name (redactFields), and callers log decisions and sizes, never payloads. Lines are written
// in batches through a bounded queue (log-buffer.ts), so a slow log destination never slows a request.
import { destination, pino, type DestinationStream } from 'pino';
import { createLogBuffer, type LogBufferOptions } from './log-buffer.js';

export interface Logger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
  debug(obj: Record<string, unknown>, msg?: string): void;
  /** Writes the queued lines now (a stop calls it, so that no line is lost). */
  flush?(): void;
}

/** Field names whose values never reach the log, at the top of a line or one object down. */
const secretFields = new Set(['token', 'authorization', 'body', 'secret']);
const censor = '[redacted]';

/**
 * The redaction pino's `redact` did with the paths token, authorization, body, secret, *.token,
 * *.authorization, *.body, *.secret and req.headers.authorization, at a fraction of its cost per
 * line (its wildcard paths were half of the logger's CPU): a line without such a field is returned
 * as it is, otherwise a copy with the values replaced.
 */
export function redactFields(line: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in line) {
    const value = line[key];
    if (secretFields.has(key)) {
      copy ??= { ...line };
      copy[key] = censor;
    } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const inner = redactNested(value as Record<string, unknown>, key === 'req');
      if (inner !== value) {
        copy ??= { ...line };
        copy[key] = inner;
      }
    }
  }
  return copy ?? line;
}

function redactNested(value: Record<string, unknown>, isRequest: boolean): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    if (secretFields.has(key)) {
      copy ??= { ...value };
      copy[key] = censor;
    }
  }
  const headers = value['headers'];
  if (isRequest && typeof headers === 'object' && headers !== null && 'authorization' in headers) {
    copy ??= { ...value };
    copy['headers'] = { ...headers, authorization: censor };
  }
  return copy ?? value;
}

export interface LoggerOptions {
  level?: string;
  destination?: DestinationStream;
  /** The queue's bound and drop counter (lib/log-buffer.ts). */
  buffer?: LogBufferOptions;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const target = options.destination ?? destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'hoopgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactFields },
    },
    createLogBuffer(target, options.buffer),
  );
}

/** A logger that drops everything (CLI commands that print their own output). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
