#!/usr/bin/env node
// The hoopgate command: runs the compiled gateway (dist/, built by `npm run build`, which
// `npm install` runs in a checkout). CommonJS (bin/package.json): `hoopgate token` — kubectl runs
// it before every call — is answered from its cache by one small CommonJS module when it can
// (dist/cli/token-cached.cjs), without starting the ESM loader; otherwise, and for every other
// command, the CLI (ESM) loads.
'use strict';

function notBuilt(error, file) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' && error?.code !== 'MODULE_NOT_FOUND') return false;
  if (!String(error.message).includes(file)) return false;
  process.stderr.write(`hoopgate: the gateway is not built (no ${file}): run \`npm run build\` in the repository\n`);
  process.exitCode = 1;
  return true;
}

function cachedToken(argv) {
  if (argv[0] !== 'token') return undefined;
  let cached;
  try {
    cached = require('../dist/cli/token-cached.cjs');
  } catch (error) {
    if (notBuilt(error, 'dist/cli/token-cached.cjs')) return null;
    throw error;
  }
  return cached.cachedOidcCredential(argv.slice(1), process.env, process.cwd(), Date.now());
}

const argv = process.argv.slice(2);
const line = cachedToken(argv);
if (typeof line === 'string') {
  // fs.writeSync, not process.stdout: creating the stdout stream loads the streams stack. A closed
  // pipe (EPIPE) is the reader's choice, ignored as in the full CLI.
  try {
    require('node:fs').writeSync(1, line);
  } catch (error) {
    if (error?.code !== 'EPIPE') throw error;
  }
} else if (line === undefined) {
  import('../dist/main.js').then(
    async ({ main }) => {
      process.exitCode = await main(argv);
    },
    (error) => {
      if (!notBuilt(error, 'dist/main.js')) throw error;
    },
  );
}
