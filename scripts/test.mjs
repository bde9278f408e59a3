// Runs every test/**/*.test.ts with node's test runner through tsx. Node 20's `--test` takes no
// globs, so the files are collected here. Extra arguments narrow the run: `npm test -- masking`.
// A full run (no filter) first runs the dependency, size, lint and format checks.
// `--conditions=source` makes package imports (hoopgate/…, @hoopgate/sim/…) load the TypeScript
// sources, the same modules the tests import by path; subprocesses (bin/hoopgate.js) run dist/.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return collect(path);
      return path.endsWith('.test.ts') ? [path] : [];
    });
}

const filters = process.argv.slice(2);
const files = collect('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// A full run (no filter) first checks what the compiler cannot: the dependency graph, the size
// limits, lint and format. Each names what to do when it fails.
const checks = [
  [
    'lint:deps',
    'the dependency graph breaks .dependency-cruiser.cjs (README.md "Architecture"): fix the import, or change the table there and in the README',
  ],
  [
    'check:size',
    'a file is over 450 lines or a function over 120 (scripts/check-size.mjs): split it by responsibility',
  ],
  ['lint', 'ESLint found problems (eslint.config.js): fix them, or disable a rule on the line with the reason'],
  ['format:check', 'files are not formatted: run `npx prettier --write .`'],
];
if (filters.length === 0) {
  for (const [script, advice] of checks) {
    const check = spawnSync('npm', ['run', '--silent', script], { stdio: 'inherit' });
    if (check.status !== 0) {
      console.error(`npm run ${script} failed: ${advice}`);
      process.exit(check.status ?? 1);
    }
  }
}
const result = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
