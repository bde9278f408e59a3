// Runs every test/**/*.test.ts with node's test runner through tsx. Node 20's `--test` takes no
// globs, so the files are collected here. Extra arguments narrow the run: `npm test -- masking`.
// A full run (no filter) first checks the dependency graph (`npm run lint:deps`, .dependency-cruiser.cjs).
// `--conditions=source` makes package imports (hoopgate/…, @hoopgate/sim/…) load the TypeScript
// sources, the same modules the tests import by path; subprocesses (bin/hoopgate.js) run dist/.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  return readdirSync(dir).sort().flatMap((entry) => {
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
if (filters.length === 0) {
  const deps = spawnSync('npm', ['run', '--silent', 'lint:deps'], { stdio: 'inherit' });
  if (deps.status !== 0) {
    console.error('the dependency graph breaks .dependency-cruiser.cjs (README.md "Architecture"): fix the import, or change the table there and in the README');
    process.exit(deps.status ?? 1);
  }
}
const result = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
