// The value notations of the configuration: durations, byte sizes, (?i) patterns, did-you-mean.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compilePattern,
  formatDuration,
  parseByteSize,
  parseDuration,
} from '../../packages/gateway/src/config/values.js';
import { suggest } from '../../packages/gateway/src/config/walker.js';

describe('parseDuration', () => {
  const table: [string, number | undefined][] = [
    ['500ms', 500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['12h', 43_200_000],
    ['90d', 7_776_000_000],
    ['1h30m', 5_400_000],
    ['0s', 0],
    ['5', undefined],
    ['5 m', undefined],
    ['5min', undefined],
    ['1.5h', undefined],
    ['-5m', undefined],
    ['m', undefined],
    ['', undefined],
    ['5M', undefined],
  ];
  for (const [text, ms] of table) {
    test(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  }

  test('formatDuration is read back by parseDuration', () => {
    for (const ms of [500, 90_000, 600_000, 5_400_000, 43_200_000, 7_776_000_000, 90_061_001]) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
    assert.equal(formatDuration(600_000), '10m');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(0), '0s');
  });
});

describe('parseByteSize', () => {
  const table: [unknown, number | undefined][] = [
    [65536, 65536],
    ['65536', 65536],
    ['64Ki', 65536],
    ['8Mi', 8 * 1024 * 1024],
    ['1Gi', 1024 ** 3],
    ['8MB', undefined],
    ['8mi', undefined],
    [-1, undefined],
    [1.5, undefined],
    [true, undefined],
  ];
  for (const [value, bytes] of table) {
    test(`${JSON.stringify(value)} → ${bytes}`, () => assert.equal(parseByteSize(value), bytes));
  }
});

describe('compilePattern', () => {
  test('a leading (?i) makes it case-insensitive', () => {
    assert.ok(compilePattern('(?i)(password|token)').test('DB_PASSWORD'));
    assert.ok(!compilePattern('(password|token)').test('DB_PASSWORD'));
  });
  test('an invalid pattern throws', () => assert.throws(() => compilePattern('(?i)(pass'), SyntaxError));
});

describe('suggest', () => {
  test('typos, swapped letters, case and separators', () => {
    assert.equal(suggest('porrt', ['host', 'port', 'tls']), 'port');
    assert.equal(suggest('prdo', ['prod', 'staging']), 'prod');
    assert.equal(suggest('token_ttl', ['tokens', 'tokenTTL']), 'tokenTTL');
    assert.equal(suggest('identites', ['identities', 'clusters']), 'identities');
    assert.equal(suggest('banana', ['host', 'port']), undefined);
  });
});
