// Compiles `masking.rules` (docs/reference.md §4.2, §6) once: key regexes with the `(?i)` prefix and simple JSON
// paths like `spec.template.spec.containers[].env[].value`. Bad rules fail at start, not per request.
import type { MaskRule } from '../../config/types.js';
import { compilePattern } from '../../config/values.js';
import { HoopError } from '../../lib/errors.js';

export interface PathSegment {
  key: string;
  /** `key[]`: the value is a list and the rest of the path applies to each item. */
  each: boolean;
}

export interface CompiledRule {
  /** undefined = any resource (`["*"]`). */
  resources: ReadonlySet<string> | undefined;
  keys: RegExp | undefined;
  paths: readonly (readonly PathSegment[])[];
  whenName: RegExp | undefined;
}

/** Go/RE2-style `(?i)` prefix → the JS `i` flag (compilePattern, the parser the config check uses too). */
export function compileRuleRegex(source: string, where: string): RegExp {
  try {
    return compilePattern(source);
  } catch (error) {
    throw new HoopError('ERR_CONFIG', `${where}: invalid regular expression "${source}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

const segmentPattern = /^([A-Za-z0-9_$@.\-/]+?)(\[\*?\])?$/;

/** `a.b[].c` → [{a}, {b, each}, {c}]; keys are split on dots, so a key containing a dot cannot be named. */
export function compilePath(path: string, where: string): PathSegment[] {
  const parts = path.split('.');
  return parts.map((part) => {
    const match = segmentPattern.exec(part);
    if (match === null || match[1] === undefined) {
      throw new HoopError(
        'ERR_CONFIG',
        `${where}: invalid path "${path}": use dot-separated keys, "[]" after a list key (e.g. "spec.containers[].env[].value")`,
      );
    }
    return { key: match[1], each: match[2] !== undefined };
  });
}

export function compileRules(rules: readonly MaskRule[]): CompiledRule[] {
  return rules.map((rule, index) => {
    const where = `masking.rules[${index}]`;
    const any = rule.resources.length === 0 || rule.resources.includes('*');
    return {
      resources: any ? undefined : new Set(rule.resources.map((r) => r.toLowerCase())),
      keys: rule.keys === undefined ? undefined : compileRuleRegex(rule.keys, `${where}.keys`),
      paths: (rule.paths ?? []).map((p, i) => compilePath(p, `${where}.paths[${i}]`)),
      whenName: rule.whenName === undefined ? undefined : compileRuleRegex(rule.whenName, `${where}.whenName`),
    };
  });
}

export function ruleAppliesTo(rule: CompiledRule, resource: string): boolean {
  return rule.resources === undefined || rule.resources.has(resource);
}
