// The one argument parser every command uses (over node:util parseArgs), so all of them refuse
// the same way: `hoopgate check: unknown option --x`. A UsageError exits 2.
import { parseArgs } from 'node:util';

/** A wrong command line; main prints the message and a pointer to `--help`, and exits 2. */
export class UsageError extends Error {
  readonly command: string;

  constructor(command: string, message: string) {
    super(`hoopgate ${command}: ${message}`);
    this.name = 'UsageError';
    this.command = command;
  }
}

export function isUsageError(value: unknown): value is UsageError {
  return value instanceof UsageError;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable: the values come back as a list. */
  multiple?: boolean;
  /** A string option that must be given (its value is then typed `string`). */
  required?: boolean;
  default?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<O extends OptionSpec> = O['type'] extends 'boolean'
  ? boolean
  : O['multiple'] extends true
    ? string[]
    : O['required'] extends true
      ? string
      : O['default'] extends string
        ? string
        : string | undefined;

export interface ParsedArgs<S extends OptionSpecs> {
  values: { [K in keyof S]: ValueOf<S[K]> };
  positionals: string[];
  /** `--help`/`-h` was given: print the command's usage and exit 0. */
  help: boolean;
}

export interface PositionalSpec {
  /** Names for messages, in order (`SESSION_ID`); the first `min` are required. */
  names?: readonly string[];
  min?: number;
  /** The most accepted (default: names.length); Infinity for a trailing list. */
  max?: number;
}

/**
 * Parses argv for `command`. Unknown options, a missing value, a value on a boolean option, a
 * missing required option and the wrong number of positionals are all UsageErrors.
 */
export function parseCommandArgs<S extends OptionSpecs>(
  command: string,
  argv: readonly string[],
  options: S,
  positionals: PositionalSpec = {},
): ParsedArgs<S> {
  const specs: OptionSpecs = { ...options, help: { type: 'boolean', short: 'h' } };
  const byShort = new Map(
    Object.entries(specs).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])),
  );
  // strict: false hands back every token, so the checks (and their wording) are ours.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(specs).map(([name, spec]) => [
        name,
        { type: spec.type, ...(spec.short ? { short: spec.short } : {}) },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  const values: Record<string, string | boolean | string[] | undefined> = {};
  const rest: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      rest.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const name = token.rawName.startsWith('--') ? token.name : (byShort.get(token.name) ?? token.name);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(command, `unknown option ${token.rawName}`);
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw new UsageError(command, `option ${token.rawName} takes no value`);
      values[name] = true;
      continue;
    }
    // A value that looks like an option is a forgotten value (`--config --verbose`); `--x=-1` passes.
    if (token.value === undefined || token.value === '' || (!token.inlineValue && token.value.startsWith('-'))) {
      throw new UsageError(command, `option ${token.rawName} needs a value`);
    }
    if (spec.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), token.value];
    else if (values[name] !== undefined) throw new UsageError(command, `option ${token.rawName} given twice`);
    else values[name] = token.value;
  }

  const help = values.help === true;
  delete values.help;
  for (const [name, spec] of Object.entries(options)) {
    if (values[name] !== undefined) continue;
    if (spec.type === 'boolean') values[name] = false;
    else if (spec.multiple) values[name] = [];
    else if (spec.default !== undefined) values[name] = spec.default;
    else if (spec.required && !help) throw new UsageError(command, `option --${name} is required`);
  }

  if (!help) {
    const names = positionals.names ?? [];
    const min = positionals.min ?? names.length;
    const max = positionals.max ?? names.length;
    if (rest.length < min) throw new UsageError(command, `missing argument ${names[rest.length] ?? ''}`.trimEnd());
    if (rest.length > max) throw new UsageError(command, `unexpected argument ${JSON.stringify(rest[max])}`);
  }
  return { values: values as ParsedArgs<S>['values'], positionals: rest, help };
}
