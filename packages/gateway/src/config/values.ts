// Parsers for the value notations the configuration (and the CLI's --since) share: durations
// (`90s`, `5m`, `12h`, `90d`, `500ms`, also `1h30m`), byte sizes and `(?i)`-flagged patterns.

const durationUnits = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type DurationUnit = keyof typeof durationUnits;

const durationPattern = /^(?:\d+(?:ms|s|m|h|d))+$/;
const durationPart = /(\d+)(ms|s|m|h|d)/g;

/** `90s` → 90000; undefined when the text is not a duration (a bare number has no unit, so it is not one). */
export function parseDuration(text: string): number | undefined {
  if (!durationPattern.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(durationPart)) {
    total += Number(amount) * durationUnits[unit as DurationUnit];
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/** The shortest spelling parseDuration() reads back: 600000 → `10m`, 5400000 → `1h30m`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = durationUnits[unit];
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text;
}

const byteUnits = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 } as const;

/** A byte count: an integer, or a Kubernetes-style binary quantity (`64Ki`, `8Mi`, `1Gi`). */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(value);
  if (!match) return undefined;
  const bytes = Number(match[1]) * byteUnits[(match[2] ?? '') as keyof typeof byteUnits];
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Compiles a configured pattern. A leading `(?i)` (the Go/RE2 spelling operators know) means
 * case-insensitive, since JavaScript has no inline flags. Throws SyntaxError when invalid.
 */
export function compilePattern(source: string): RegExp {
  return source.startsWith('(?i)') ? new RegExp(source.slice(4), 'i') : new RegExp(source);
}
