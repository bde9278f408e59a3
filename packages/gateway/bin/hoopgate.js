#!/usr/bin/env node
// The hoopgate command: runs the compiled gateway (dist/, built by `npm run build`, which
// `npm install` runs in a checkout).
let main;
try {
  ({ main } = await import('../dist/main.js'));
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/main.js')) throw error;
  process.stderr.write('hoopgate: the gateway is not built (no dist/main.js): run `npm run build` in the repository\n');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
