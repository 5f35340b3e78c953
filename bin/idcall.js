#!/usr/bin/env node
// Published entry: the compiled CLI (npm run build writes dist/).
import { run } from '../dist/cli/main.js';
import { processIO } from '../dist/cli/io.js';

const stop = new Promise((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
process.exitCode = await run(process.argv.slice(2), processIO(), { until: stop });
