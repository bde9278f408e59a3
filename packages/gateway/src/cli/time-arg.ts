// Time options of the audit commands (`--since`, `--until`): a duration back from now, or an instant.
import { parseDuration } from '../config/values.js';
import { UsageError } from './args.js';

/** `--since 24h` → now − 24h; `--since 2024-05-01T00:00:00Z` → that instant. */
export function parseTimeArg(command: string, option: string, text: string, now: number): number {
  const duration = parseDuration(text);
  if (duration !== undefined) return now - duration;
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(time))
    throw new UsageError(
      command,
      `--${option} ${JSON.stringify(text)}: use an ISO time (2024-05-01T12:00:00Z) or a duration (24h)`,
    );
  return time;
}
